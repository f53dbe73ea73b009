"""A market's phase on chain time, and the windows that define it (spec §2).

One definition for everyone who asks "can this post still take commits / reveals?": the
engine when it judges an op, the API and the report when they show a market, and the SQL
filters built from :func:`created_bounds`. Ages are ``t − created`` in chain seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

# the keys of the windows among a database's recorded settings (MarketConfig.settings)
WINDOW_KEYS = ("market.window_seconds", "market.reveal_period_seconds")


class Phase(StrEnum):
    open = "open"  # commits accepted
    revealing = "revealing"  # commit window closed, reveals accepted
    closed = "closed"  # reveal period over, waiting for the payout
    settled = "settled"
    deleted = "deleted"


@dataclass(frozen=True, slots=True)
class Windows:
    window: int = 30 * 60  # commits count when 0 <= age <= window
    reveal_period: int = 6 * 3600  # reveals count when window < age <= window + reveal_period

    @classmethod
    def of_settings(cls, settings: Mapping[str, str]) -> Windows | None:
        """The windows a database recorded (:meth:`curation.market.MarketConfig.settings`);
        None when it recorded none (built before it kept its settings, and not written
        since): a reader then has no phase to show, never a default one."""
        if not all(k in settings for k in WINDOW_KEYS):
            return None
        return cls(int(settings[WINDOW_KEYS[0]]), int(settings[WINDOW_KEYS[1]]))

    def commit_open(self, age: int) -> bool:
        return 0 <= age <= self.window

    def reveal_open(self, age: int) -> bool:
        return self.window < age <= self.window + self.reveal_period

    def sealed(self, age: int) -> bool:
        """Predictions stay private while a reveal can still come (spec §2): until then only
        counts and commitments are public."""
        return age <= self.window + self.reveal_period

    def phase(self, created: int, now: int, paid: bool, deleted: bool) -> Phase:
        if paid:
            return Phase.settled
        if deleted:
            return Phase.deleted
        age = now - created
        if age <= self.window:
            return Phase.open
        if age <= self.window + self.reveal_period:
            return Phase.revealing
        return Phase.closed

    def created_bounds(self, phase: Phase, now: int) -> tuple[int | None, int | None]:
        """``created`` range ``(lo, hi)`` (inclusive, None = unbounded) of the unpaid,
        undeleted posts in ``phase`` at ``now``: the same boundaries as :meth:`phase`, for a
        database query."""
        if phase is Phase.open:
            return now - self.window, None
        if phase is Phase.revealing:
            return now - self.window - self.reveal_period, now - self.window - 1
        if phase is Phase.closed:
            return None, now - self.window - self.reveal_period - 1
        raise ValueError(f"{phase} is not decided by time")
