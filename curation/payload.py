"""Reading a market ``custom_json`` payload into judged messages (spec §2).

Every way a payload can be wrong maps to a stable reason code, so a rejected op is
explained in the report instead of crashing the indexer or vanishing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from curation.records import BadMsg, CommitMsg, Msg, RevealMsg

ACCOUNT_RE = re.compile(r"[a-z][a-z0-9\-.]{2,15}")
PERMLINK_RE = re.compile(r"[a-z0-9\-_.]{1,256}")
HEX64_RE = re.compile(r"[0-9a-f]{64}")
SALT_RE = re.compile(r"[0-9a-fA-F]{64}")
MILLI_RE = re.compile(r"([0-9]{1,15})(?:\.([0-9]{1,3}))?")  # ASCII digits only (not \d)


@dataclass(frozen=True, slots=True)
class PayloadLimits:
    max_payload_bytes: int = 8192
    max_ops_per_payload: int = 50
    max_prediction: int = 10_000_000_000  # milli-units (10 million dollars)


def parse_payload(raw: Any, limits: PayloadLimits) -> tuple[Msg, ...]:
    """Judge a custom_json ``json`` field; never raises."""
    if isinstance(raw, (bytes, bytearray)):
        size = len(raw)
    elif isinstance(raw, str):
        size = len(raw.encode("utf-8", "surrogatepass"))
    elif isinstance(raw, (dict, list)):
        size = 0  # already-decoded payloads (some APIs return them so)
    else:
        return (BadMsg("malformed_json", f"json field is {type(raw).__name__}"),)
    if size > limits.max_payload_bytes:
        return (BadMsg("payload_too_large", f"{size} bytes > {limits.max_payload_bytes}"),)
    try:
        doc = orjson.loads(raw) if size or isinstance(raw, (str, bytes, bytearray)) else raw
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        return (BadMsg("malformed_json", str(exc)[:120]),)
    if not isinstance(doc, dict):
        return (BadMsg("not_an_object", type(doc).__name__),)
    if doc.get("v") != 1 or isinstance(doc.get("v"), bool):
        return (BadMsg("bad_version", repr(doc.get("v"))[:40]),)
    if "ops" in doc:
        items = doc["ops"]
        if not isinstance(items, list) or not items:
            return (BadMsg("bad_ops_list", "ops must be a non-empty list"),)
        if len(items) > limits.max_ops_per_payload:
            return (BadMsg("too_many_ops", f"{len(items)} > {limits.max_ops_per_payload}"),)
        return tuple(_judge(item, limits, in_list=True) for item in items)
    return (_judge(doc, limits),)


def _judge(item: Any, limits: PayloadLimits, in_list: bool = False) -> Msg:
    if not isinstance(item, dict):
        return BadMsg("not_an_object", type(item).__name__)
    # inside {"v":1,"ops":[...]} the envelope carries the version; an item may repeat it,
    # but a different one means a payload of another version was pasted in
    if in_list and "v" in item and (item["v"] != 1 or isinstance(item["v"], bool)):
        return BadMsg("bad_version", repr(item["v"])[:40])
    kind = item.get("op")
    post = _post(item)
    if isinstance(post, BadMsg):
        return post
    author, permlink = post
    if kind == "commit":
        c = item.get("commitment")
        if not isinstance(c, str) or not HEX64_RE.fullmatch(c):
            return BadMsg("bad_commitment", "commitment must be 64 lowercase hex characters")
        return CommitMsg(author, permlink, c)
    if kind == "reveal":
        return _reveal(item, author, permlink, limits)
    return BadMsg("unknown_op", repr(kind)[:40])


def _post(item: dict) -> tuple[str, str] | BadMsg:
    author, permlink = item.get("author"), item.get("permlink")
    if not isinstance(author, str) or not ACCOUNT_RE.fullmatch(author):
        return BadMsg("bad_author", repr(author)[:40])
    if not isinstance(permlink, str) or not PERMLINK_RE.fullmatch(permlink):
        return BadMsg("bad_permlink", repr(permlink)[:60])
    return author, permlink


def _reveal(item: dict, author: str, permlink: str, limits: PayloadLimits) -> Msg:
    prediction = parse_milli(item.get("prediction"))
    if prediction is None:
        return BadMsg("bad_prediction", 'prediction must be a decimal string like "12.345"')
    if prediction > limits.max_prediction:
        return BadMsg("prediction_too_large", f"{prediction} > {limits.max_prediction} milli")
    salt = item.get("salt")
    if not isinstance(salt, str) or not SALT_RE.fullmatch(salt):
        return BadMsg("bad_salt", "salt must be 32 bytes as 64 hex characters")
    stake = None
    if "stake" in item:
        stake = parse_milli(item["stake"])
        if stake is None or stake > limits.max_prediction:
            return BadMsg("bad_stake", 'stake must be a decimal string like "10.000"')
    bid = None  # thousandths: an integer from the text to the commitment and the database
    if "bid" in item:
        bid = parse_milli(item["bid"])
        if bid is None or bid > 1000:
            return BadMsg("bad_bid", 'bid must be a decimal string in "0".."1"')
    return RevealMsg(author, permlink, prediction, bytes.fromhex(salt), stake, bid)


def parse_milli(value: Any) -> int | None:
    """``"12.345"`` → 12345; anything else (floats, signs, exponents, junk) → None.

    Only decimal strings are accepted: a JSON float could not carry milli-units exactly.
    """
    if not isinstance(value, str):
        return None
    m = MILLI_RE.fullmatch(value)
    if m is None:
        return None
    whole, frac = m.group(1), (m.group(2) or "")
    return int(whole) * 1000 + int(frac.ljust(3, "0") or 0)


def format_milli(milli: int) -> str:
    """The inverse of :func:`parse_milli` (always three decimals)."""
    sign = "-" if milli < 0 else ""
    q, r = divmod(abs(milli), 1000)
    return f"{sign}{q}.{r:03d}"
