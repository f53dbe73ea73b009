"""Settlement rules as data, and the named rule sets of spec §5."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from fractions import Fraction

CLOSENESS = ("prose", "as_written", "inverse", "off")
UNDERDOG = ("off", "curve", "beat-average")
DAY = 86_400


@dataclass(frozen=True, slots=True)
class Rules:
    name: str = "seed"
    closeness: str = "prose"
    information_added: bool = False
    underdog: str = "off"
    # None: the chain's own share for the era of the settled block (0.25 before Steem's HF21,
    # 0.5 from it, on Steem and Hive alike); the caller knows chain time and passes it in
    curation_fraction: Fraction | None = None
    reputation_min_payout: int = 1000  # milli-units; F below this leaves N and R alone
    underdog_c: Fraction = Fraction(1, 5)
    underdog_floor: float = 1.0  # R_floor in rshares²: x = r / max(R_before, R_floor)
    author_window: int = 28 * DAY
    disqualify_voters: bool = False

    def __post_init__(self) -> None:
        if self.closeness not in CLOSENESS:
            raise ValueError(f"closeness must be one of {CLOSENESS}, got {self.closeness!r}")
        if self.underdog not in UNDERDOG:
            raise ValueError(f"underdog must be one of {UNDERDOG}, got {self.underdog!r}")
        if self.curation_fraction is not None and not 0 <= self.curation_fraction <= 1:
            raise ValueError("curation_fraction must be within 0..1")
        if not 0 < self.underdog_c < 1:
            raise ValueError("underdog_c must be within (0, 1)")

    @property
    def label(self) -> str:
        """The rule set and every setting that changes payouts: one database, one label."""
        ia = "on" if self.information_added else "off"
        voters = "out" if self.disqualify_voters else "flagged"
        return (f"{self.name}(closeness={self.closeness},ia={ia},underdog={self.underdog},"
                f"c={self.underdog_c},fraction={_fraction_text(self.curation_fraction)},"
                f"min_payout={self.reputation_min_payout},voters={voters})")


ERA = "era"  # the label's word for "the chain's fraction at the settled block"


def _fraction_text(fraction: Fraction | None) -> str:
    return ERA if fraction is None else str(fraction)


def label_fraction(label: str) -> Fraction | None:
    """The configured curation fraction a rules label records; None when it follows the era
    (or the label names none), so a report can say which fraction made a stored pool."""
    m = re.search(r"fraction=([^,)]+)", label)
    if m is None or m.group(1) == ERA:
        return None
    try:
        return Fraction(m.group(1))
    except (ValueError, ZeroDivisionError):
        return None


RULE_SETS: dict[str, Rules] = {
    "seed": Rules(),
    "seed-as-written": Rules(name="seed-as-written", closeness="as_written"),
    "commit-reveal": Rules(name="commit-reveal", closeness="off", information_added=True),
}


def named(name: str, **overrides: object) -> Rules:
    """A named rule set with explicit overrides (e.g. ``underdog="curve"``)."""
    if name not in RULE_SETS:
        raise KeyError(f"unknown rule set {name!r}; known: {', '.join(RULE_SETS)}")
    return replace(RULE_SETS[name], **overrides)  # type: ignore[arg-type]
