"""Where a curator's salts wait between commit and reveal: a small local JSON file.

The salt is the secret that keeps a prediction hidden until the reveal; losing it turns the
commit into a miss, so it is written (atomically) before the commit is printed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

DEFAULT_PATH = Path(os.environ.get("CURATION_MARKET_HOME", Path.home() / ".curation-market")) \
    / "salts.json"


def _key(chain_id: str, author: str, permlink: str, predictor: str) -> str:
    return f"{chain_id[:8]}:{predictor}:@{author}/{permlink}"


def load(path: Path = DEFAULT_PATH) -> dict[str, dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def remember(path: Path, chain_id: str, author: str, permlink: str, predictor: str,
             prediction: int, salt: bytes, stake: int | None = None,
             bid: int | None = None) -> None:
    """``stake`` in milli-units and ``bid`` in thousandths, when the commit binds them."""
    entries = load(path)
    entry: dict = {"prediction": prediction, "salt": salt.hex()}
    if stake is not None:
        entry["stake"] = stake
    if bid is not None:
        entry["bid"] = bid
    entries[_key(chain_id, author, permlink, predictor)] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".salts-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(entries, fh, indent=1, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class Stored(NamedTuple):
    prediction: int  # milli
    salt: bytes
    stake: int | None  # milli, when the commit bound one
    bid: int | None  # thousandths, when the commit bound one


def recall(path: Path, chain_id: str, author: str, permlink: str,
           predictor: str) -> Stored | None:
    """What the commit stored for the reveal; None when this file has no such commit."""
    entry = load(path).get(_key(chain_id, author, permlink, predictor))
    if entry is None:
        return None
    return Stored(int(entry["prediction"]), bytes.fromhex(entry["salt"]), entry.get("stake"),
                  entry.get("bid"))
