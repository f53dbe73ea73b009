"""The chain's vesting rules that Steem Power depends on, per chain and hardfork (pure).

Each rule cites the hived/steemd code it copies (steemit/steem @0e27a9c,
openhive-network/hive @1584099c). Hardforks are placed by their scheduled time
(``libraries/protocol/hardfork.d/0_<n>.hf``); the chain applies one at the first block whose
time reaches it once the witnesses voted for it, after that block's transactions, so an op
in the very first block after the time is judged here by the new rule, on chain by the old.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from curation.chaintime import HF16_TIME, HF20_TIME, HF21_TIME, STEEM_HF23_TIME

STEEM, HIVE = "steem", "hive"
CHAINS = (STEEM, HIVE)


DAY = 86400
DELEGATION_RETURN_HF0 = 7 * DAY  # STEEM_CASHOUT_WINDOW_SECONDS
DELEGATION_RETURN_HF20 = 5 * DAY  # STEEM_VOTING_MANA_REGENERATION_SECONDS


def withdraw_intervals(chain: str, time: int) -> int:
    """STEEM_VESTING_WITHDRAW_INTERVALS_PRE_HF_16 (104) before HF16, then 13 (a quarter of
    weekly payments); Steem's HF23 made it 4 (STEEM_VESTING_WITHDRAW_INTERVALS_HF_23)."""
    if time < HF16_TIME:
        return 104
    if chain == STEEM and time >= STEEM_HF23_TIME:
        return 4
    return 13


def withdraw_rate(chain: str, time: int, vests: int) -> int:
    """``vesting_withdraw_rate`` set by ``withdraw_vesting`` (withdraw_vesting_evaluator in
    steem_evaluator.cpp / hive_evaluator_transfer.cpp): vests / intervals, at least 1, and
    from HF21 rounded up when the division has a remainder; 0 cancels the power-down."""
    if vests <= 0:
        return 0
    intervals = withdraw_intervals(chain, time)
    rate = max(1, vests // intervals)
    if time >= HF21_TIME and rate * intervals < vests:
        rate += 1
    return rate


def delegation_return_period(time: int) -> int:
    """``gpo.delegation_return_period``: STEEM_DELEGATION_RETURN_PERIOD_HF0 (the 7-day
    cashout window) until HF20, then STEEM_DELEGATION_RETURN_PERIOD_HF20 (5 days)."""
    return DELEGATION_RETURN_HF20 if time >= HF20_TIME else DELEGATION_RETURN_HF0


def to_vests(amount: int, fund: int, shares: int) -> int | None:
    """Core token (milli) → micro-VESTS as ``create_vesting`` does it: ``liquid *
    get_vesting_share_price()`` = amount × total_vesting_shares / total_vesting_fund in 128-bit
    integers, rounded down (database.cpp create_vesting2, asset.cpp operator*). None when the
    price is not known here (the chain itself never lacks one)."""
    if fund <= 0 or shares <= 0 or amount < 0:
        return None
    return amount * shares // fund


Price = tuple[int, int, int]  # (block, total_vesting_fund milli, total_vesting_shares micro)


def price_at(prices: Sequence[Price], block: int) -> tuple[int, int] | None:
    """The (fund, shares) in force at ``block``: the latest snapshot at or before it, else the
    earliest after it (``prices`` sorted by block). None when there is none."""
    if not prices:
        return None
    i = bisect_right(prices, (block, 2**63, 2**63))
    _, fund, shares = prices[i - 1] if i else prices[0]
    return fund, shares
