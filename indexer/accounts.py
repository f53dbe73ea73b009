"""Account snapshots (get_accounts objects) and chain globals → vesting for Steem Power.

What is tracked: own vesting shares, delegations in and out (delegated_vesting_shares still
holds lowered delegations until the chain returns them), the power-down (rate, to_withdraw,
withdrawn). Later vesting ops in the stream keep these current (see indexer.ops); a globals
file is one point of the VESTS→SP price history (``Store.add_globals``). Files may be gzipped.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from curation.state import Account
from indexer.amounts import CORE, VESTS, AmountError, amount_of, parse_amount


def account_from(obj: dict, as_of_block: int = 0) -> Account:
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
    # (steemd's recorded answers hold an all-zero object named "" for an unknown account)
    if not isinstance(name, str) or not name or not name.isascii() or not name.isprintable():
        raise TypeError(f"account name {name!r:.40} is not a printable ASCII name")
    return Account(name, vests("vesting_shares"), vests("delegated_vesting_shares"),
                   vests("received_vesting_shares"), units("to_withdraw"), units("withdrawn"),
                   vests("vesting_withdraw_rate"), as_of_block)


def _open(path: str | Path) -> IO[bytes]:
    """A file, gunzipped when it is gzip (by its magic bytes, not its name)."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")  # noqa: SIM115 - caller closes


def _loads(line: bytes) -> Any:
    """JSON as the node wrote it. orjson refuses lone surrogates (``\\ud83d`` alone), which
    real account objects carry in free text such as json_metadata; the standard parser keeps
    them, and only the vesting fields and the (ASCII) name are used."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


def read_accounts(paths: Iterable[str | Path], problems: list[str],
                  as_of_block: int = 0) -> Iterator[Account]:
    """Accounts from JSON-lines files (gzipped or not); unreadable lines are described in
    ``problems``. ``as_of_block``: the block the snapshot was read at (0: before the replay's
    first block, so every op of the replay applies)."""
    for path in paths:
        with _open(path) as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield account_from(_loads(line), as_of_block)
                except (KeyError, TypeError, ValueError, OSError) as exc:
                    problems.append(f"{path}:{line_no}: {type(exc).__name__}: {exc}"[:200])


def globals_from(doc: dict[str, Any]) -> tuple[int, int]:
    """(total_vesting_fund in milli core units, total_vesting_shares in micro-VESTS)."""
    dgp = doc.get("dynamic_global_properties", doc)
    fund = dgp.get("total_vesting_fund_steem", dgp.get("total_vesting_fund_hive"))
    if fund is None:
        raise KeyError("total_vesting_fund_steem / total_vesting_fund_hive")
    return amount_of(fund, CORE), amount_of(dgp["total_vesting_shares"], VESTS)


def read_globals(path: str | Path) -> tuple[int, int]:
    return read_globals_at(path)[1:]


def read_globals_at(path: str | Path) -> tuple[int, int, int]:
    """(head_block_number, fund, shares) of a dynamic global properties file (gzipped or
    not); block 0 when the file does not say."""
    with _open(path) as fh:
        doc = _loads(fh.read())
    dgp = doc.get("dynamic_global_properties", doc)
    block = dgp.get("head_block_number", 0)
    if type(block) is not int or block < 0:
        raise ValueError(f"head_block_number is not a block number: {block!r:.40}")
    return (block, *globals_from(doc))
