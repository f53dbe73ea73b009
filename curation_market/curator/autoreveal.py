"""``curation-market curator --auto-reveal``: reveal every stored salt when its window opens.

Why a process: a commit that is never revealed is a miss (it counts against the curator's
reputation, spec §2–3), and the reveal window (30 min to 6 h 30 after the post, by default)
is easy to forget. This loop watches the salt file and the node and reveals for the curator.

The rules it keeps:

* **Chain time only.** Whether a window is open is decided from the node's head block time
  (``get_dynamic_global_properties.time``) and the post's ``created`` as the node reports it
  (``database_api.find_comments``), never from the wall clock. The wall clock only paces the
  polling and the back-off.
* **A reveal is sent in the block after the window opens.** A reveal counts when
  ``window < t_block − created <= window + reveal_period`` (spec §2; ``Windows.reveal_open``):
  it is sent as soon as the *next* block (head + 3 s) falls inside the window.
* **Never twice.** Before a reveal is broadcast, its transaction id and chain-time
  expiration are written to the salt file (``auto_reveal.status = "sending"``). After a
  restart an entry in flight is not sent again while its transaction can still be included;
  the account's history (``account_history_api.get_account_history``, custom_json ops,
  reversible blocks included) tells whether it was. Only once the transaction has expired
  unincluded is the reveal sent anew. A reveal of this salt found in the history (sent by
  anyone, from anywhere) also counts as done.
* **Retries.** A node error (unreachable, refused, timed out) is logged and retried with a
  doubling back-off (0.5 s to 30 s); a reveal the node refuses (it answered with an error)
  is retried at the next poll, at most ``max_attempts`` times per salt. A broadcast that got
  no answer may still have arrived: it stays in flight until its expiration, like one sent
  by a process that was killed.
* **Salts are kept.** An entry is retired (``"retired"`` set, the entry and its salt stay in
  the file) only once its reveal window has passed on chain time: revealed, or missed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.chaintime import chain_time, format_time
from curation.phase import Windows
from curation_market.curator import salts
from curation_market.curator.client import Curator
from curation_market.curator.ops import reveal_payload
from indexer.ops import op_name_value

log = logging.getLogger("curation.curator")
BLOCK_SECONDS = 3
CUSTOM_JSON_BIT = 18  # custom_json's place in the operation list (hived and steemd)
HISTORY_PAGES = 10  # ×1000 custom_json ops looked back per poll at most


@dataclass
class Step:
    """What one pass did, for the log and the tests."""

    head: int = 0
    head_time: int = 0
    sent: list[str] = field(default_factory=list)
    included: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    left: int = 0  # entries still watched after this pass


class AutoRevealer:
    """One curator on one node; :meth:`step` is one pass over the salt file."""

    def __init__(self, curator: Curator, windows: Windows, salt_file: Path,
                 max_attempts: int = 10):
        self.curator, self.windows, self.salt_file = curator, windows, salt_file
        self.rpc = curator.chain.rpc
        self.max_attempts = max_attempts
        self._created: dict[tuple[str, str], int] = {}
        self._unknown_said: set[str] = set()

    # ---- node reads
    def head(self) -> tuple[int, int]:
        dgp = self.rpc.get_dynamic_global_properties({}, api="database")
        return int(dgp["head_block_number"]), chain_time(dgp["time"])

    def created(self, author: str, permlink: str) -> int | None:
        key = (author, permlink)
        if key not in self._created:
            got = self.rpc.find_comments({"comments": [[author, permlink]]}, api="database")
            found = [c for c in (got or {}).get("comments", [])
                     if c.get("author") == author and c.get("permlink") == permlink]
            if not found:
                return None
            self._created[key] = chain_time(found[0]["created"])
        return self._created[key]

    def reveals_on_chain(self, since: int) -> dict[tuple[str, str, str], tuple[int, str]]:
        """(author, permlink, salt hex) → (block, trx id) of this account's reveals in
        blocks stamped at or after ``since``, reversible blocks included."""
        account = self.curator.account
        out: dict[tuple[str, str, str], tuple[int, str]] = {}
        start = -1
        for _ in range(HISTORY_PAGES):
            got = self.rpc.get_account_history(
                {"account": account, "start": start, "limit": 1000, "include_reversible": True,
                 "operation_filter_low": 1 << CUSTOM_JSON_BIT, "operation_filter_high": 0},
                api="account_history")
            rows = got.get("history", []) if isinstance(got, dict) else got or []
            if not rows:
                break
            for _seq, entry in rows:
                for key in self._reveal_keys(entry):
                    out.setdefault(key, (int(entry["block"]), str(entry.get("trx_id", ""))))
            oldest_seq, oldest = rows[0]
            if len(rows) < 1000 or oldest_seq == 0 or \
                    chain_time(str(oldest.get("timestamp", "1970-01-01T00:00:00"))) < since:
                break
            start = oldest_seq - 1
        return out

    def _reveal_keys(self, entry: dict) -> list[tuple[str, str, str]]:
        name, value = op_name_value(entry.get("op"))
        if name != "custom_json" or not isinstance(value, dict) or \
                value.get("id") != self.curator.market_id:
            return []
        signers = list(value.get("required_posting_auths") or []) + \
            list(value.get("required_auths") or [])
        if signers != [self.curator.account]:
            return []
        try:
            body = json.loads(value.get("json") or "")
        except ValueError:
            return []
        items = body.get("ops") if isinstance(body, dict) and "ops" in body else [body]
        out = []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.get("op") == "reveal":
                out.append((str(item.get("author")), str(item.get("permlink")),
                            str(item.get("salt", "")).lower()))
        return out

    # ---- one pass
    def step(self, send: bool = True) -> Step:
        """Look at every watched salt once; ``send=False`` decides but sends nothing."""
        num, now = self.head()
        st = Step(head=num, head_time=now)
        w = self.windows
        entries = salts.pending(self.salt_file, self.curator.chain_id, self.curator.account)
        created: dict[str, int] = {}
        for e in entries:
            t = self.created(e.author, e.permlink)
            if t is None:
                if e.key not in self._unknown_said:
                    log.warning("@%s/%s: the node does not know this post (yet); watching it",
                                e.author, e.permlink)
                    self._unknown_said.add(e.key)
                st.waiting.append(e.key)
                continue
            created[e.key] = t
        on_chain = self.reveals_on_chain(min(created.values())) if created else {}
        for e in entries:
            if e.key not in created:
                continue
            self._one(e, created[e.key], now, on_chain, st, send, w)
        st.left = len(entries) - len(st.retired)
        return st

    def _one(self, e: salts.Pending, created: int, now: int,
             on_chain: dict[tuple[str, str, str], tuple[int, str]], st: Step, send: bool,
             w: Windows) -> None:
        salt_hex = e.entry["salt"]
        rec = dict(e.entry.get("auto_reveal") or {})
        where = f"@{e.author}/{e.permlink}"
        over = now - created > w.window + w.reveal_period  # the window has passed
        found = on_chain.get((e.author, e.permlink, salt_hex))
        if found is not None and rec.get("status") != "included":
            rec.update(status="included", block=found[0], trx_id=found[1])
            salts.update(self.salt_file, e.key, salt_hex, auto_reveal=rec)
            log.info("%s: reveal included in block %s (trx %s)", where, found[0], found[1])
            st.included.append(e.key)
        status = rec.get("status")
        if over:
            in_flight = status in ("sending", "sent") and now <= rec.get("expiration", 0)
            if in_flight:  # it may still land (too late to count): wait for its fate
                st.waiting.append(e.key)
                return
            why = "revealed" if status == "included" else "missed: the reveal window passed"
            salts.update(self.salt_file, e.key, salt_hex,
                         retired={"at": format_time(now), "why": why})
            (log.info if status == "included" else log.error)(
                "%s: retired (%s); the salt stays in %s", where, why, self.salt_file)
            st.retired.append(e.key)
            return
        if status == "included":
            return
        if status in ("sending", "sent") and now <= rec.get("expiration", 0):
            st.waiting.append(e.key)  # in flight: never sent twice while it can land
            return
        next_block_age = now + BLOCK_SECONDS - created
        if not w.reveal_open(next_block_age):
            st.waiting.append(e.key)  # the window has not opened yet
            return
        if rec.get("attempts", 0) >= self.max_attempts:
            st.waiting.append(e.key)
            return
        if send:
            self._send(e, rec, where, created)
            st.sent.append(e.key)
        else:
            st.waiting.append(e.key)

    def _send(self, e: salts.Pending, rec: dict, where: str, created: int) -> None:
        stored = salts._stored(e.entry)  # noqa: SLF001 - the module's own decoding
        tb, trx_id = self.curator.signed(reveal_payload(
            e.author, e.permlink, stored.prediction, stored.salt, stake=stored.stake,
            bid=stored.bid))
        expiration = chain_time(str(tb.json()["expiration"]))
        _, now = self.head()  # signing took node calls: is the next block still in time?
        if now + BLOCK_SECONDS - created > self.windows.window + self.windows.reveal_period:
            log.error("%s: the reveal window closed while the reveal was being signed", where)
            return
        rec.update(status="sending", trx_id=trx_id, expiration=expiration,
                   attempts=rec.get("attempts", 0) + 1)
        rec.pop("error", None)
        salts.update(self.salt_file, e.key, e.entry["salt"], auto_reveal=rec)  # before sending
        try:
            tb.broadcast()
        except Exception as exc:  # noqa: BLE001 - see below: refused, or outcome unknown
            from beemapi.exceptions import RPCError

            from curation_market.logs import describe_exception

            rec["error"] = describe_exception(exc)[:300]
            if isinstance(exc, RPCError):  # the node answered with an error: not accepted
                rec["status"] = "refused"
                log.warning("%s: the node refused the reveal (attempt %s): %s", where,
                            rec["attempts"], rec["error"])
            else:  # no answer: it may have arrived, so it stays in flight until it expires
                log.warning("%s: broadcast outcome unknown (%s); not resent before it "
                            "expires at %s", where, rec["error"], format_time(expiration))
            salts.update(self.salt_file, e.key, e.entry["salt"], auto_reveal=rec)
            return
        rec["status"] = "sent"
        salts.update(self.salt_file, e.key, e.entry["salt"], auto_reveal=rec)
        log.info("%s: reveal sent (trx %s, expires %s)", where, trx_id, format_time(expiration))

    # ---- the loop
    def run(self, poll_seconds: float = 1.0, until_idle: bool = False,
            max_seconds: float | None = None, stop: Callable[[], bool] = lambda: False,
            sleep: Callable[[float], Any] = time.sleep) -> int:
        """Poll until stopped (or, ``until_idle``, until nothing is left to watch); returns
        the exit code (0; 3 when ``max_seconds`` ran out first)."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        backoff = 0.5
        while not stop():
            if deadline is not None and time.monotonic() > deadline:
                log.error("stopping: --max-seconds ran out with salts still watched")
                return 3
            try:
                st = self.step()
            except Exception as exc:  # noqa: BLE001 - a node error: back off and retry
                from curation_market.logs import describe_exception

                log.warning("node error, retrying in %.1f s: %s", backoff,
                            describe_exception(exc))
                sleep(backoff)
                backoff = min(30.0, backoff * 2)
                continue
            backoff = 0.5
            if until_idle and st.left == 0:
                log.info("nothing left to reveal (head %s, %s)", st.head,
                         format_time(st.head_time))
                return 0
            sleep(poll_seconds)
        return 0
