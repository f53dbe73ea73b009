"""Building the market's own custom_json ops (what a curator broadcasts).

Stake and bid (for the staked rule sets of spec §5) ride in the reveal as decimal strings
(``"stake":"10.000"``, ``"bid":"0.600"``) and are bound by the commitment, so the commit
must be built with the same stake and bid the reveal will carry.
"""

from __future__ import annotations

import json

from curation.commitment import commitment
from curation.payload import format_milli, parse_milli


def bid_milli(bid: str | None) -> int | None:
    """A bid's text as thousandths: ``"0.6"`` → 600 (never through a float). Raises
    ValueError outside 0..1."""
    if bid is None:
        return None
    milli = parse_milli(bid)
    if milli is None or not 0 <= milli <= 1000:
        raise ValueError(f"bid must be a decimal in 0..1, got {bid!r}")
    return milli


def commit_payload(chain_id: str, author: str, permlink: str, predictor: str, prediction: int,
                   salt: bytes, stake: int | None = None, bid: int | None = None) -> dict:
    """``stake`` in milli-units, ``bid`` in thousandths (600 = "0.600")."""
    _check_bid(bid)
    return {"v": 1, "op": "commit", "author": author, "permlink": permlink,
            "commitment": commitment(chain_id, author, permlink, predictor, prediction, salt,
                                     stake, bid)}


def reveal_payload(author: str, permlink: str, prediction: int, salt: bytes,
                   stake: int | None = None, bid: int | None = None) -> dict:
    """``stake`` in milli-units, ``bid`` in thousandths, written as the decimal strings the
    parser reads back to the same integers."""
    _check_bid(bid)
    doc: dict = {"v": 1, "op": "reveal", "author": author, "permlink": permlink,
                 "prediction": format_milli(prediction), "salt": salt.hex()}
    if stake is not None:
        doc["stake"] = format_milli(stake)
    if bid is not None:
        doc["bid"] = format_milli(bid)
    return doc


def _check_bid(bid: int | None) -> None:
    if bid is not None and (type(bid) is not int or not 0 <= bid <= 1000):
        raise ValueError(f"bid must be thousandths in 0..1000, got {bid!r}")


def custom_json_op(market_id: str, predictor: str, payload: dict) -> list:
    """A condenser-encoded op, ready for a transaction (or a block file)."""
    return ["custom_json", {"required_auths": [], "required_posting_auths": [predictor],
                            "id": market_id,
                            "json": json.dumps(payload, separators=(",", ":"), sort_keys=True)}]
