"""Chain time: the market's only clock, and the hardfork times the rules change at.

A node writes time as ``"2017-11-07T01:25:09"``: UTC without a zone, one-second resolution
(fc::time_point_sec, serialised by fc's ``to_iso_string``). Everything in the engine counts
in epoch seconds of it; this module is the one place that turns the text into seconds and
back, for the adapter, the node client, the dumps, the read model and the tests alike.

Parsing text is no clock: the pure core still reads time only from the blocks it is given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# Hardfork times, both chains (Hive's history up to its fork is Steem's). Sources:
# steem libraries/protocol/hardfork.d/0_16.hf .. 0_23.hf (STEEM_HARDFORK_0_xx_TIME).
HF16_TIME = 1481040000  # 2016-12-06T16:00:00, both chains (shared history)
HF17_TIME = 1490886000  # 2017-03-30T15:00:00, rewards wait in reward balances from here
HF20_TIME = 1537887600  # 2018-09-25T15:00:00, both chains
HF21_TIME = 1566918000  # 2019-08-27T15:00:00, STEEM_HARDFORK_0_21_TIME
STEEM_HF23_TIME = 1589983200  # 2020-05-20T14:00:00; Hive's HF23 changed no vesting rule


class BadTime(ValueError):
    """Text that is not a chain timestamp."""


def chain_time(text: Any) -> int:
    """``"2017-11-07T01:25:09"`` → epoch seconds (chain time is UTC without a zone; a
    trailing zone or fraction some tools add is ignored)."""
    if not isinstance(text, str):
        raise BadTime(f"bad timestamp {text!r:.40}")
    try:
        return int(datetime.fromisoformat(text[:19]).replace(tzinfo=UTC).timestamp())
    except ValueError as exc:
        raise BadTime(f"bad timestamp {text!r:.40}") from exc


def format_time(epoch: int) -> str:
    """Epoch seconds → the node's own text (``chain_time``'s inverse)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")
