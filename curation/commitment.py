"""The commitment a curator publishes before revealing a prediction (spec §2).

Every field is length-prefixed so that no two different field tuples can hash alike
(``"ab" + "c"`` vs ``"a" + "bc"``), and the predictor and post are inside the hash so a
copied commitment can never be revealed by the copier.
"""

from __future__ import annotations

import secrets

from Crypto.Hash import SHA256

DOMAIN = b"curation-market/v1"
SALT_BYTES = 32
ZERO_CHAIN_ID = "0" * 64


def _frame(field: bytes) -> bytes:
    return len(field).to_bytes(4, "big") + field


def commitment(
    chain_id: str,
    author: str,
    permlink: str,
    predictor: str,
    prediction_milli: int,
    salt: bytes,
) -> str:
    """Lowercase hex SHA-256 over the framed fields, in the order the spec fixes."""
    if len(salt) != SALT_BYTES:
        raise ValueError(f"salt must be exactly {SALT_BYTES} bytes, got {len(salt)}")
    if prediction_milli < 0:
        raise ValueError("prediction must be >= 0")
    fields = (
        DOMAIN,
        chain_id.encode("ascii"),
        author.encode("utf-8"),
        permlink.encode("utf-8"),
        predictor.encode("utf-8"),
        str(prediction_milli).encode("ascii"),
        salt,
    )
    h = SHA256.new()
    for field in fields:
        h.update(_frame(field))
    return h.hexdigest()


def new_salt() -> bytes:
    """A fresh salt from the OS CSPRNG: guessing it is the only way to open a commitment early."""
    return secrets.token_bytes(SALT_BYTES)
