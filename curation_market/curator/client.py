"""The curator's side: sign and broadcast commit and reveal ops with beem.

Why here and not in the CLI: the CLI only parses options; this module holds the rules a
curator's tool must keep:

- the posting key never comes from the command line (it would sit in shell history and in
  ``ps``): it is read from ``$CURATION_POSTING_KEY`` or from a key file;
- the chain id hashed into a commitment is the one the node it broadcasts to reports
  (``get_version``/``get_config``), so a commitment made for one chain can never be revealed
  on another; a configured ``chain.chain_id`` (or ``chain.name``) that contradicts the node
  is refused, never silently replaced;
- the salt is written to the local salt file *before* the commit is broadcast: a crash after
  broadcasting must not lose the only secret that opens the commitment;
- a stake and bid (staked rule sets) are bound into the commitment and stored with the salt;
  the reveal takes them from there, so it cannot carry anything the commit did not bind;
- a dry run signs the very transaction it would send, prints it, and changes nothing (no
  broadcast, no salt stored).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.commitment import new_salt
from curation.payload import ACCOUNT_RE, PERMLINK_RE, format_milli
from curation_market.config import Chain, ConfigError
from curation_market.curator import salts
from curation_market.curator.ops import commit_payload, custom_json_op, reveal_payload

KEY_ENV = "CURATION_POSTING_KEY"


class ClientError(ValueError):
    """A problem the curator can fix; the message says how (and never contains the key)."""


def read_key(key_file: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """The posting key (WIF) from ``key_file`` if given, else from ``$CURATION_POSTING_KEY``."""
    from beemgraphenebase.account import PrivateKey

    env = os.environ if env is None else env
    if key_file is not None:
        try:
            lines = [ln.strip() for ln in key_file.read_text(encoding="utf-8").splitlines()]
        except OSError as exc:
            raise ClientError(f"cannot read key file {key_file}: {exc.strerror}") from None
        wif, source = next((ln for ln in lines if ln and not ln.startswith("#")), ""), \
            f"key file {key_file}"
    else:
        wif, source = env.get(KEY_ENV, "").strip(), f"${KEY_ENV}"
        if not wif:
            raise ClientError(f"no posting key: set ${KEY_ENV} or pass --key-file PATH "
                              "(a key is never accepted as a command-line argument)")
    try:
        PrivateKey(wif, prefix="STM")
    except Exception:  # noqa: BLE001 - any decoding failure means the same thing to the user
        raise ClientError(f"the {source} does not hold a valid private key (WIF)") from None
    return wif


def connect(nodes: str | list[str], wif: str, dry_run: bool = False, timeout: int = 30) -> Any:
    """A beem chain instance holding only this key in memory (no wallet file, no config file)."""
    from indexer.chain import beem_instance

    return beem_instance([nodes] if isinstance(nodes, str) else nodes, timeout, retries=3,
                         keys=[wif], nobroadcast=dry_run, expiration=600)


def account_of_key(chain: Any, wif: str) -> str:
    """The one account whose authorities hold this key (asked of the node)."""
    from beemgraphenebase.account import PrivateKey

    pub = str(PrivateKey(wif, prefix="STM").pubkey)
    refs = chain.rpc.get_key_references({"keys": [pub]}, api="account_by_key")["accounts"]
    names = sorted(set(refs[0])) if refs else []
    if len(names) != 1:
        found = ", ".join(names) or "none"
        raise ClientError(f"cannot tell the account from the key (accounts found: {found}); "
                          "pass --account NAME")
    return names[0]


@dataclass(frozen=True)
class Sent:
    """What was (or, in a dry run, would have been) broadcast."""

    op: str
    predictor: str
    chain_id: str
    trx_id: str
    transaction: dict
    broadcast: bool

    def as_json(self) -> dict:
        return {"op": self.op, "predictor": self.predictor, "chain_id": self.chain_id,
                "trx_id": self.trx_id, "broadcast": self.broadcast,
                "transaction": self.transaction}


class Curator:
    """One curator on one node: ``commit`` then, after the window, ``reveal``."""

    def __init__(self, chain: Any, wif: str, account: str | None = None,
                 market_id: str = "curation_market", salt_file: Path = salts.DEFAULT_PATH,
                 dry_run: bool = False, configured: Chain | None = None):
        from indexer.chain import node_profile

        self.chain, self.wif = chain, wif
        try:
            profile = node_profile(chain.rpc)
            if configured is not None:
                profile = configured.against(profile, str(chain.rpc.url))
        except ConfigError as exc:
            raise ClientError(str(exc)) from None
        self.profile = profile
        self.chain_id = profile.chain_id
        self.market_id, self.salt_file, self.dry_run = market_id, salt_file, dry_run
        self.account = account or account_of_key(chain, wif)
        if not ACCOUNT_RE.fullmatch(self.account):
            raise ClientError(f"--account {self.account!r} is not a valid account name")

    def commit(self, author: str, permlink: str, prediction: int, stake: int | None = None,
               bid: int | None = None) -> Sent:
        """``stake`` in milli-units and ``bid`` in thousandths, for the staked rule sets: both
        are bound by the commitment and stored with the salt, so the reveal carries them."""
        _check_post(author, permlink)
        _check_terms(prediction, stake, bid)
        salt = new_salt()
        payload = commit_payload(self.chain_id, author, permlink, self.account, prediction, salt,
                                 stake, bid)
        if not self.dry_run:
            salts.remember(self.salt_file, self.chain_id, author, permlink, self.account,
                           prediction, salt, stake, bid)
        return self._send("commit", payload)

    def reveal(self, author: str, permlink: str, stake: int | None = None,
               bid: int | None = None) -> Sent:
        """Reveal with the prediction, salt, stake and bid stored at commit. ``stake``/``bid``
        need not be given; when given they must equal the stored ones (else the reveal could
        only be a ``hash_mismatch``), and nothing is sent."""
        _check_post(author, permlink)
        stored = salts.recall(self.salt_file, self.chain_id, author, permlink, self.account)
        if stored is None:
            raise ClientError(f"no stored salt for {self.account} on @{author}/{permlink} "
                              f"(chain {self.chain_id[:8]}…) in {self.salt_file}: commit from "
                              "this machine first, or point --salt-file at the right file")
        for option, given, kept in (("--stake", stake, stored.stake), ("--bid", bid, stored.bid)):
            if given is not None and given != kept:
                was = "none" if kept is None else format_milli(kept)
                raise ClientError(
                    f"{option} {format_milli(given)} differs from the one the commit bound "
                    f"({was}); a reveal can only carry what was committed (omit {option} to "
                    "use the stored value)")
        prediction, salt, stake, bid = stored
        return self._send("reveal", reveal_payload(author, permlink, prediction, salt,
                                                   stake=stake, bid=bid))

    def signed(self, payload: dict) -> tuple[Any, str]:
        """The market message as a signed transaction, not yet broadcast, and its id: the
        one place a message is signed (``commit``, ``reveal`` and the auto-revealer, which
        records the id before it broadcasts)."""
        from beem.transactionbuilder import TransactionBuilder
        from beembase.operations import Custom_json

        _, value = custom_json_op(self.market_id, self.account, payload)
        tb = TransactionBuilder(blockchain_instance=self.chain)
        tb.appendOps(Custom_json(**value, prefix=self.chain.prefix))
        tb.appendWif(self.wif)
        return tb, tb.sign().id

    def _send(self, kind: str, payload: dict) -> Sent:
        tb, trx_id = self.signed(payload)
        transaction = dict(tb.json())
        if not self.dry_run:
            tb.broadcast()
        return Sent(kind, self.account, self.chain_id, trx_id, transaction, not self.dry_run)


def _check_terms(prediction: int, stake: int | None, bid: int | None) -> None:
    if prediction < 0:
        raise ClientError("--prediction cannot be negative")
    if stake is not None and stake < 0:
        raise ClientError("--stake cannot be negative")
    if bid is not None and not 0 <= bid <= 1000:
        raise ClientError("--bid: expected a decimal between 0 and 1, like 0.600")


def _check_post(author: str, permlink: str) -> None:
    if not ACCOUNT_RE.fullmatch(author):
        raise ClientError(f"--author {author!r} is not a valid account name")
    if not PERMLINK_RE.fullmatch(permlink):
        raise ClientError(f"--permlink {permlink!r} is not a valid permlink")
