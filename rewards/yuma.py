"""BitTensor's Yuma consensus (seed ``001_*`` and its later implementation) mapped to curation.

Curators are validators, posts are miners. In one epoch (default a week of chain time) each
curator's weights are their predictions normalised over the posts they forecast
(``W_ij = P_ij / Σ_j P_ij``), and their stake is their summed stake in the epoch. Then:

1. consensus ``C_j`` = the stake-weighted κ-median of column j: the largest weight that
   curators holding at least κ of the stake give (κ = ½ → the stake-weighted median);
2. clipping ``W̄ = min(W, C)``: weight above consensus earns nothing, so a ring
   that over-weights its own posts is cut back to what the majority of stake supports;
3. ranks ``R_j = Σ_i S_i W̄_ij`` and incentive ``I = R / ΣR`` (what miners — here posts —
   would earn; reported, the authors are paid by the chain already);
4. bonds: ``ΔB_ij = S_i W̄_ij / Σ_i S_i W̄_ij``, then the EMA ``B ← α·ΔB + (1−α)·B_prev``
   (α = 0.1) carried across epochs, normalised per column; with ``miners = "author"`` the
   bond follows the author from epoch to epoch, so curators who backed an author before the
   rest of the stake did keep a larger bond — Yuma's reward for being early;
5. dividends ``D_i = Σ_j B_ij I_j`` normalised: the epoch's pool (Σ curation pools of its
   posts) is split by D exactly; no dividend at all → the pool is returned.

Bonds across epochs follow subtensor's original Yuma (liquid alpha and Yuma3 off), read in
opentensor/subtensor ``pallets/subtensor/src/epoch/run_epoch.rs`` (``epoch_dense_mechanism``,
the ``else`` branch "original Yuma"): the stored bonds of *every* validator are column-
normalised, ``ΔB = W◦S_active`` column-normalised, ``mat_ema`` (``math.rs``) with
α = 1 − BondsMovingAverage/10⁶ = 0.1 (runtime ``SubtensorInitialBondsMovingAverage``
900 000), column-normalised again, and ``dividends = matmul_transpose(ema_bonds,
incentive)``. A validator that set no weights this epoch is *inactive*: its stake is masked
out of consensus, ranks and ΔB, but its bonds stay in the matrix, take part in the column
normalisation and earn dividends. Mapped to curation (``miners = "author"``): a curator who
forecast none of an author's posts this epoch but holds a bond on that author is such an
inactive validator — their bond decays by (1 − α) before the column is renormalised over
all holders, and they are paid their dividend. (Before, only the epoch's curators took part:
an absent holder's bond decayed without renormalisation and was not paid; with author x,
curators A and B in week 1, A alone in week 2 and both in week 3, that paid A 1000, then
676/324 of a 1000 pool; subtensor's rule pays 550/450, then 545/455.) An author nobody
forecast this epoch is a miner nobody weighted: its ΔB column is zero, so the EMA decays the
column uniformly and the renormalisation restores it — its bonds are kept as they are.
Weights do not persist between epochs here (subtensor keeps a validator's last weights until
it sets new ones): an epoch's weights are that epoch's forecasts, so an absent curator is
inactive, not re-counted with old forecasts. Bonds penalty is 1 (runtime
``SubtensorInitialBondsPenalty`` = u16::MAX): bonds grow on the clipped weights.
With ``miners = "post"`` a post is settled once, so no bond outlives its epoch.

Yuma has no ground truth: "accurate" means "agrees with the stake-weighted majority". That
is its design, and it is why a ring holding most of the stake decides the consensus.

The whitepaper's inflation ``S ← S + τ·R/‖R‖₁`` (ranking over peers weighting each other)
is :func:`inflate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rewards.outcome import (
    WEEK,
    Award,
    Outcome,
    Round,
    Settled,
    build_settled,
    by_epoch,
    check_unrevealed,
    forfeits,
    stake_of,
)
from rewards.split import split

MINERS = ("post", "author")
BOND_FLOOR = 1e-12  # decayed bonds below this are dropped: ~260 epochs after their last use


@dataclass(frozen=True, slots=True)
class YumaParams:
    epoch_seconds: int = WEEK
    kappa: float = 0.5
    alpha: float = 0.1  # bond EMA: share of the new epoch's bonds
    miners: str = "post"  # "post" (spec §5) or "author" (bonds carry across epochs)
    default_stake: int | None = None  # milli; None → the predictor's SP at commit
    unrevealed: str = "burn"  # "burn": an unrevealed commitment forfeits its stake; "free"

    def __post_init__(self) -> None:
        check_unrevealed(self.unrevealed)
        if self.miners not in MINERS:
            raise ValueError(f"miners must be one of {MINERS}, got {self.miners!r}")
        if not 0 < self.kappa <= 1 or not 0 < self.alpha <= 1 or self.epoch_seconds <= 0:
            raise ValueError("0 < kappa <= 1, 0 < alpha <= 1 and epoch_seconds > 0 required")


@dataclass(frozen=True, slots=True)
class YumaStep:
    consensus: np.ndarray  # per miner
    clipped: np.ndarray  # validators × miners
    ranks: np.ndarray
    incentive: np.ndarray
    bonds: np.ndarray  # after the EMA, column-normalised
    dividends: np.ndarray  # per validator, Σ = 1 (or all 0)
    meta: dict = field(default_factory=dict)


def weighted_median(stake: np.ndarray, column: np.ndarray, kappa: float = 0.5) -> float:
    """Largest value c such that validators with weight ≥ c hold at least κ of the stake."""
    total = float(stake.sum())
    if total <= 0:
        return 0.0
    order = np.argsort(-column, kind="stable")
    held = np.cumsum(stake[order])
    k = int(np.searchsorted(held, kappa * total - 1e-12 * total))
    return float(column[order][min(k, len(order) - 1)])


def _normalise_columns(m: np.ndarray) -> np.ndarray:
    sums = m.sum(axis=0, keepdims=True)
    return np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)


def _normalise(v: np.ndarray) -> np.ndarray:
    total = float(v.sum())
    return v / total if total > 0 else np.zeros_like(v)


def yuma_step(stake: Sequence[float], weights: Sequence[Sequence[float]], kappa: float = 0.5,
              alpha: float = 0.1, prev_bonds: np.ndarray | None = None) -> YumaStep:
    """One Yuma epoch over validators (rows) × miners (columns)."""
    s = _normalise(np.asarray(stake, dtype=np.float64))
    w = np.asarray(weights, dtype=np.float64).reshape(len(s), -1)
    consensus = np.array([weighted_median(s, w[:, j], kappa) for j in range(w.shape[1])])
    clipped = np.minimum(w, consensus[None, :])
    ranks = s @ clipped
    incentive = _normalise(ranks)
    delta = _normalise_columns(s[:, None] * clipped)
    ema = alpha * delta if prev_bonds is None else alpha * delta + (1 - alpha) * prev_bonds
    bonds = _normalise_columns(ema)
    dividends = _normalise(bonds @ incentive)
    return YumaStep(consensus, clipped, ranks, incentive, bonds, dividends)


def inflate(stake: Sequence[float], weights: Sequence[Sequence[float]], tau: float = 1.0
            ) -> np.ndarray:
    """The whitepaper's emission: ranks ``R = Wᵀ S`` and ``S ← S + τ·R/‖R‖₁``."""
    s = np.asarray(stake, dtype=np.float64)
    r = np.asarray(weights, dtype=np.float64).T @ s
    total = float(np.abs(r).sum())
    return s + (tau * r / total if total > 0 else 0.0)


def settle(outcomes: Sequence[Outcome], params: YumaParams = YumaParams()) -> Settled:
    """Per epoch: the Yuma step over curators × posts (or authors), pool split by dividends.

    With ``miners = "author"`` bonds are kept per (curator, author) across epochs in chain
    order, and every holder of a bond on an author of the epoch joins its step as an
    inactive validator (stake 0, no weights) — subtensor's bond matrix spans every validator,
    not only those who set weights. Deterministic: curators and miners sorted by name.
    """
    awards: list[Award] = []
    rounds: list[Round] = []
    bonds: dict[tuple[str, str], float] = {}
    carry = params.miners == "author"
    for start, posts in by_epoch(outcomes, params.epoch_seconds):
        pool = sum(o.pool for o in posts)
        predicted: dict[str, dict[str, float]] = {}
        stakes: dict[str, int] = {}
        for o in posts:
            miner = o.author if carry else f"@{o.author}/{o.permlink}"
            for f in o.forecasts:
                row = predicted.setdefault(f.predictor, {})
                row[miner] = row.get(miner, 0.0) + max(f.prediction, 0)
                stakes[f.predictor] = stakes.get(f.predictor, 0) + stake_of(
                    f, params.default_stake)
        miners = sorted({m for row in predicted.values() for m in row})
        col = {m: j for j, m in enumerate(miners)}
        # holders of a bond on this epoch's miners who forecast none of them: inactive
        holders = {n for (n, m) in bonds if m in col} if carry else set()
        names = sorted(set(predicted) | holders)
        if not predicted:
            rounds.append(Round(f"epoch:{start}", pool, 0, pool, 0))
            continue
        w = np.zeros((len(names), len(miners)))
        for i, name in enumerate(names):
            row = predicted.get(name, {})
            total = sum(row.values())
            for m, v in row.items():
                w[i, col[m]] = v / total if total > 0 else 0.0
        prev = np.array([[bonds.get((n, m), 0.0) for m in miners] for n in names])
        step = yuma_step([stakes.get(n, 0) for n in names], w, params.kappa, params.alpha,
                         prev if prev.any() else None)
        if carry:
            # the epoch's columns take the step's bonds; a bond decayed to nothing is dropped
            # (~260 epochs of absence), else every pair ever seen would be carried for ever.
            # Columns of authors nobody forecast stay as they are (see the module docstring).
            for i, n in enumerate(names):
                for j, m in enumerate(miners):
                    if step.bonds[i, j] > BOND_FLOOR:
                        bonds[(n, m)] = float(step.bonds[i, j])
                    else:
                        bonds.pop((n, m), None)
        rewards, returned = split(pool, [float(d) for d in step.dividends])
        paid = pool - returned
        awards.extend(Award(n, "", "", r, start) for n, r in zip(names, rewards, strict=True)
                      if r > 0)
        info = (("curators", float(len(predicted))), ("holders", float(len(names))),
                ("miners", float(len(miners))),
                ("consensus_sum", float(step.consensus.sum())))
        rounds.append(Round(f"epoch:{start}", pool, paid, returned, 0, info))
    lost, forfeited = forfeits(outcomes, params.default_stake, params.unrevealed,
                               params.epoch_seconds)
    return build_settled("yuma", outcomes, awards + lost, rounds + forfeited)
