"""Where a curator's salts wait between commit and reveal: a small local JSON file.

The salt is the secret that keeps a prediction hidden until the reveal; losing it turns the
commit into a miss, so it is written (atomically) before the commit is printed.

A second commit on the same post is refused unless asked for (``--replace``): a commit that
was already broadcast can only ever be revealed with its own salt, and silently overwriting
it made that impossible. A replaced entry is not deleted: it moves to the entry's
``"replaced"`` list (newest last, with ``replaced_at``), and each entry carries its
``commitment``, so the reveal can pick whichever of them the chain holds. Nothing is ever
removed from the file; a salt outlives its reveal window and is then merely useless.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from curation.commitment import commitment

DEFAULT_PATH = Path(os.environ.get("CURATION_MARKET_HOME", Path.home() / ".curation-market")) \
    / "salts.json"


class SaltExists(ValueError):
    """A salt is already stored for this post and predictor (the message says what to do)."""


def _key(chain_id: str, author: str, permlink: str, predictor: str) -> str:
    return f"{chain_id[:8]}:{predictor}:@{author}/{permlink}"


def load(path: Path = DEFAULT_PATH) -> dict[str, dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def _save(path: Path, entries: dict[str, dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".salts-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(entries, fh, indent=1, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the salt file's lock (a ``.lock`` file beside it) for a read-modify-write: the
    auto-reveal process and a ``commit`` in another shell both rewrite the file, and an
    unlocked rewrite from a stale read would drop the other's new salt."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def remember(path: Path, chain_id: str, author: str, permlink: str, predictor: str,
             prediction: int, salt: bytes, stake: int | None = None,
             bid: int | None = None, replace: bool = False) -> None:
    """``stake`` in milli-units and ``bid`` in thousandths, when the commit binds them.

    Raises :class:`SaltExists` when this post already has a salt for ``predictor``, unless
    ``replace``: then the old entry is kept in the new one's ``"replaced"`` list."""
    with locked(path):
        _remember(path, chain_id, author, permlink, predictor, prediction, salt, stake, bid,
                  replace)


def _remember(path: Path, chain_id: str, author: str, permlink: str, predictor: str,
              prediction: int, salt: bytes, stake: int | None, bid: int | None,
              replace: bool) -> None:
    entries = load(path)
    key = _key(chain_id, author, permlink, predictor)
    entry: dict = {"prediction": prediction, "salt": salt.hex(), "stored_at": _now(),
                   "commitment": commitment(chain_id, author, permlink, predictor, prediction,
                                            salt, stake, bid)}
    if stake is not None:
        entry["stake"] = stake
    if bid is not None:
        entry["bid"] = bid
    old = entries.get(key)
    if old is not None:
        if not replace:
            _refuse(path, author, permlink, predictor, old)
        history = old.pop("replaced", [])
        if "salt" in old:
            history.append({**old, "replaced_at": _now()})
        entry["replaced"] = history
    entries[key] = entry
    _save(path, entries)


def _refuse(path: Path, author: str, permlink: str, predictor: str, old: dict) -> None:
    if "salt" not in old:  # only replaced entries: nothing live to lose
        return
    raise SaltExists(
        f"a commit of {predictor} on @{author}/{permlink} is already stored in {path} "
        f"(commitment {str(old.get('commitment', '?'))[:16]}…, stored "
        f"{old.get('stored_at', 'earlier')}); if it was broadcast, only its own salt can "
        "reveal it. Pass --replace to commit anew (the old salt stays in the file, marked "
        "replaced)")


def check_free(path: Path, chain_id: str, author: str, permlink: str, predictor: str) -> None:
    """Raise :class:`SaltExists` if a live salt is stored for this post and predictor."""
    old = load(path).get(_key(chain_id, author, permlink, predictor))
    if old is not None:
        _refuse(path, author, permlink, predictor, old)


def retire(path: Path, chain_id: str, author: str, permlink: str, predictor: str) -> bool:
    """Mark the stored entry replaced (kept in the file) so a new commit may be stored; for
    callers that store through :func:`remember` without ``replace``. False if none was."""
    with locked(path):
        return _retire(path, chain_id, author, permlink, predictor)


def _retire(path: Path, chain_id: str, author: str, permlink: str, predictor: str) -> bool:
    entries = load(path)
    key = _key(chain_id, author, permlink, predictor)
    old = entries.get(key)
    if old is None or "salt" not in old:
        return False
    history = old.pop("replaced", [])
    history.append({**old, "replaced_at": _now()})
    entries[key] = {"replaced": history}  # no live salt until the next commit is stored
    _save(path, entries)
    return True


class Stored(NamedTuple):
    prediction: int  # milli
    salt: bytes
    stake: int | None  # milli, when the commit bound one
    bid: int | None  # thousandths, when the commit bound one


def _stored(entry: dict) -> Stored:
    return Stored(int(entry["prediction"]), bytes.fromhex(entry["salt"]), entry.get("stake"),
                  entry.get("bid"))


def recall(path: Path, chain_id: str, author: str, permlink: str,
           predictor: str, commitment_hex: str | None = None) -> Stored | None:
    """What the commit stored for the reveal; None when this file has no such commit.

    With ``commitment_hex`` the entry whose commitment it is, current or replaced (the one the
    chain holds); without it the current one."""
    entry = load(path).get(_key(chain_id, author, permlink, predictor))
    if entry is None:
        return None
    if commitment_hex is None:
        return _stored(entry) if "salt" in entry else None
    want = commitment_hex.lower()
    for candidate in [entry, *reversed(entry.get("replaced", []))]:
        if "salt" not in candidate:
            continue
        found = candidate.get("commitment") or commitment(
            chain_id, author, permlink, predictor, int(candidate["prediction"]),
            bytes.fromhex(candidate["salt"]), candidate.get("stake"), candidate.get("bid"))
        if found == want:
            return _stored(candidate)
    return None


def replaced(path: Path, chain_id: str, author: str, permlink: str,
             predictor: str) -> list[dict]:
    """The replaced entries of this post, oldest first (to tell the curator they exist)."""
    entry = load(path).get(_key(chain_id, author, permlink, predictor)) or {}
    return list(entry.get("replaced", []))


# --- what ``curator --auto-reveal`` keeps in the file (issue 14) ----------------------------
# Each live entry may carry an ``"auto_reveal"`` record, written *before* a reveal is
# broadcast (``status`` "sending", with the signed transaction's id and chain-time
# expiration), then "sent", then "included" (with its block) once the node's account history
# shows it; ``"retired"`` is set once the reveal window has passed (the entry stays in the
# file, like every salt, but is no longer watched).


class Pending(NamedTuple):
    key: str
    author: str
    permlink: str
    entry: dict


def pending(path: Path, chain_id: str, predictor: str) -> list[Pending]:
    """The live (not replaced, not retired) entries of ``predictor`` on this chain."""
    prefix = f"{chain_id[:8]}:{predictor}:@"
    out = []
    for key, entry in sorted(load(path).items()):
        if not key.startswith(prefix) or "salt" not in entry or entry.get("retired"):
            continue
        author, _, permlink = key[len(prefix):].partition("/")
        out.append(Pending(key, author, permlink, entry))
    return out


def update(path: Path, key: str, salt_hex: str, **fields: object) -> bool:
    """Set ``fields`` on the entry ``key`` if it still holds the salt ``salt_hex`` (a commit
    replaced meanwhile is left alone); under the lock, from a fresh read. False if not."""
    with locked(path):
        entries = load(path)
        entry = entries.get(key)
        if entry is None or entry.get("salt") != salt_hex:
            return False
        entry.update(fields)
        _save(path, entries)
        return True
