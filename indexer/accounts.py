"""Account snapshots (get_accounts objects) and chain globals → vesting for Steem Power.

What is tracked: own vesting shares, delegations in and out, the pending power-down. Later
vesting ops in the stream keep these current (see indexer.ops); the VESTS→SP ratio is the
snapshot's (it moves by well under 1 % a month).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from curation.state import Account
from indexer.amounts import CORE, VESTS, AmountError, amount_of, parse_amount


def account_from(obj: dict) -> Account:
    def vests(key: str) -> int:
        value = obj.get(key)
        if value is None:
            return 0
        units, kind = parse_amount(value)
        if kind != VESTS and units != 0:  # some recorded objects spell zero as "0.000 STEEM"
            raise AmountError(f"{key} is not a VESTS amount: {value!r:.40}")
        return units if kind == VESTS else 0

    def units(key: str) -> int:
        value = obj.get(key, 0)
        return int(value) if not isinstance(value, dict) else amount_of(value, VESTS)

    name = obj["name"]
    if not isinstance(name, str):
        raise TypeError("account name must be a string")
    return Account(name, vests("vesting_shares"), vests("delegated_vesting_shares"),
                   vests("received_vesting_shares"), units("to_withdraw"), units("withdrawn"))


def read_accounts(paths: Iterable[str | Path], problems: list[str]) -> Iterator[Account]:
    """Accounts from JSON-lines files; unreadable lines are described in ``problems``."""
    for path in paths:
        with open(path, "rb") as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield account_from(orjson.loads(line))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    problems.append(f"{path}:{line_no}: {type(exc).__name__}: {exc}"[:200])


def globals_from(doc: dict[str, Any]) -> tuple[int, int]:
    """(total_vesting_fund in milli core units, total_vesting_shares in micro-VESTS)."""
    dgp = doc.get("dynamic_global_properties", doc)
    fund = dgp.get("total_vesting_fund_steem", dgp.get("total_vesting_fund_hive"))
    if fund is None:
        raise KeyError("total_vesting_fund_steem / total_vesting_fund_hive")
    return amount_of(fund, CORE), amount_of(dgp["total_vesting_shares"], VESTS)


def read_globals(path: str | Path) -> tuple[int, int]:
    with open(path, "rb") as fh:
        return globals_from(orjson.loads(fh.read()))
