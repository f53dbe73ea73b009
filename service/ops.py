"""Building the market's own custom_json ops (what a curator broadcasts)."""

from __future__ import annotations

import json

from curation.commitment import commitment
from curation.payload import format_milli


def commit_payload(chain_id: str, author: str, permlink: str, predictor: str, prediction: int,
                   salt: bytes) -> dict:
    return {"v": 1, "op": "commit", "author": author, "permlink": permlink,
            "commitment": commitment(chain_id, author, permlink, predictor, prediction, salt)}


def reveal_payload(author: str, permlink: str, prediction: int, salt: bytes,
                   stake: int | None = None, bid: str | None = None) -> dict:
    doc: dict = {"v": 1, "op": "reveal", "author": author, "permlink": permlink,
                 "prediction": format_milli(prediction), "salt": salt.hex()}
    if stake is not None:
        doc["stake"] = format_milli(stake)
    if bid is not None:
        doc["bid"] = bid
    return doc


def custom_json_op(market_id: str, predictor: str, payload: dict) -> list:
    """A condenser-encoded op, ready for a transaction (or a block file)."""
    return ["custom_json", {"required_auths": [], "required_posting_auths": [predictor],
                            "id": market_id,
                            "json": json.dumps(payload, separators=(",", ":"), sort_keys=True)}]
