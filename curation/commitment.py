"""The commitment a curator publishes before revealing a prediction (spec §2).

Every field is length-prefixed so that no two different field tuples can hash alike
(``"ab" + "c"`` vs ``"a" + "bc"``), and the predictor and post are inside the hash so a
copied commitment can never be revealed by the copier.

Staked rule sets (spec §5) read a ``stake`` and a ``bid`` from the reveal. Both must be as
binding as the prediction — else a curator could pick their stake after seeing the votes —
so when present they are hashed too, as extra framed fields after the salt:
``b"stake:" + milli-units as ASCII decimal`` then ``b"bid:" + the bid in thousandths as
ASCII decimal`` (``"0.600"`` → ``b"bid:600"``). The tags keep "stake only" and "bid only"
apart; a commitment without them is byte-for-byte the v1 hash (the spec's test vector).
"""

from __future__ import annotations

import secrets

from Crypto.Hash import SHA256

DOMAIN = b"curation-market/v1"
SALT_BYTES = 32


def _frame(field: bytes) -> bytes:
    return len(field).to_bytes(4, "big") + field


def commitment(
    chain_id: str,
    author: str,
    permlink: str,
    predictor: str,
    prediction_milli: int,
    salt: bytes,
    stake_milli: int | None = None,
    bid_milli: int | None = None,
) -> str:
    """Lowercase hex SHA-256 over the framed fields, in the order the spec fixes (then the
    optional stake and bid, see the module docstring)."""
    if len(salt) != SALT_BYTES:
        raise ValueError(f"salt must be exactly {SALT_BYTES} bytes, got {len(salt)}")
    if prediction_milli < 0:
        raise ValueError("prediction must be >= 0")
    if stake_milli is not None and stake_milli < 0:
        raise ValueError("stake must be >= 0")
    if bid_milli is not None and not 0 <= bid_milli <= 1000:
        raise ValueError("bid must be within 0..1000 thousandths")
    fields = [
        DOMAIN,
        chain_id.encode("ascii"),
        author.encode("utf-8"),
        permlink.encode("utf-8"),
        predictor.encode("utf-8"),
        str(prediction_milli).encode("ascii"),
        salt,
    ]
    if stake_milli is not None:
        fields.append(b"stake:" + str(stake_milli).encode("ascii"))
    if bid_milli is not None:
        fields.append(b"bid:" + str(bid_milli).encode("ascii"))
    # one call on the joined frames: a replay checks every reveal, and a pycryptodome update
    # per field costs ~30 µs a reveal against ~7 µs for a single call
    return SHA256.new(b"".join(map(_frame, fields))).hexdigest()


def new_salt() -> bytes:
    """A fresh salt from the OS CSPRNG: guessing it is the only way to open a commitment early."""
    return secrets.token_bytes(SALT_BYTES)
