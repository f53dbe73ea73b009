"""Chain amounts in both encodings → integers in the asset's smallest unit.

``"1.000 SBD"`` and ``{"amount": "1000", "precision": 3, "nai": "@@000000013"}`` are the same
thing; money never passes through a float.
"""

from __future__ import annotations

from typing import Any

DOLLAR = "dollar"  # SBD / HBD, precision 3 → milli-units
CORE = "core"  # STEEM / HIVE / TESTS, precision 3
VESTS = "vests"  # precision 6 → micro-VESTS

SYMBOLS = {"SBD": DOLLAR, "HBD": DOLLAR, "TBD": DOLLAR, "STEEM": CORE, "HIVE": CORE,
           "TESTS": CORE, "VESTS": VESTS}
NAIS = {"@@000000013": DOLLAR, "@@000000021": CORE, "@@000000037": VESTS}
PRECISION = {DOLLAR: 3, CORE: 3, VESTS: 6}
MAX_UNITS = 10**18  # ~2,500× all VESTS in existence (micro-units); sums stay inside int64


class AmountError(ValueError):
    pass


def parse_amount(value: Any) -> tuple[int, str]:
    """Return ``(units, kind)`` where units are in the kind's smallest unit."""
    if isinstance(value, str):
        return _parse_legacy(value)
    if isinstance(value, dict):
        return _parse_nai(value)
    if isinstance(value, list) and len(value) == 3:  # ["1000", 3, "@@000000013"]
        return _parse_nai({"amount": value[0], "precision": value[1], "nai": value[2]})
    raise AmountError(f"not an amount: {value!r:.60}")


def _parse_legacy(text: str) -> tuple[int, str]:
    number, _, symbol = text.strip().partition(" ")
    kind = SYMBOLS.get(symbol)
    if kind is None:
        raise AmountError(f"unknown asset in {text!r:.60}")
    whole, _, frac = number.partition(".")
    if (not whole.isdigit() or (frac and not frac.isdigit()) or len(frac) > PRECISION[kind]
            or not number.isascii()):
        raise AmountError(f"bad number in {text!r:.60}")
    return _bounded(int(whole) * 10 ** PRECISION[kind] + int(frac.ljust(PRECISION[kind], "0")),
                    text), kind


def _parse_nai(obj: dict) -> tuple[int, str]:
    kind = NAIS.get(obj.get("nai"))  # type: ignore[arg-type]
    amount, precision = obj.get("amount"), obj.get("precision")
    if kind is None or precision != PRECISION[kind]:
        raise AmountError(f"unknown asset {obj!r:.80}")
    if isinstance(amount, int) and not isinstance(amount, bool):
        units = amount
    elif isinstance(amount, str) and amount.isdigit() and amount.isascii() and len(amount) <= 24:
        units = int(amount)
    else:
        raise AmountError(f"bad amount {obj!r:.80}")
    if units < 0:
        raise AmountError(f"negative amount {obj!r:.80}")
    return _bounded(units, obj), kind


def _bounded(units: int, raw: Any) -> int:
    """Refuse amounts no chain holds: they would overflow the 64-bit columns downstream."""
    if units > MAX_UNITS:
        raise AmountError(f"absurd amount {raw!r:.60}")
    return units


def amount_of(value: Any, kind: str) -> int:
    """Units of ``value``, which must be of ``kind``."""
    units, got = parse_amount(value)
    if got != kind:
        raise AmountError(f"expected a {kind} amount, got {value!r:.60}")
    return units
