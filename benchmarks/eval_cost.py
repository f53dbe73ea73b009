"""Wall time of ``curation-market evaluate``: the full default comparison, then how the cost
grows with posts and with agents. Prints the figures quoted in docs/findings.md.

    python benchmarks/eval_cost.py [--workers 2]
"""

from __future__ import annotations

import argparse
import time

from curation_market.lab.evaluate import EvalConfig, evaluate


def timed(cfg: EvalConfig, workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    ev = evaluate(cfg, workers=workers)
    return time.perf_counter() - start, ev.markets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    base = EvalConfig()
    seconds, markets = timed(base, args.workers)
    print(f"full default comparison: {len(base.evaluate.variants)} rule sets, {markets} "
          f"markets, {len(base.agents.population().agents())} agents, "
          f"{args.workers} workers: {seconds:.1f} s")
    few = ["seed", "seed+ia=on", "commit-reveal", "seed+underdog=curve"]
    print("\ngrowth (1 run, 1 worker, 4 seed-family rule sets; every pending post settles):")
    print(f"{'posts':>6} {'agents':>7} {'markets':>8} {'seconds':>8}")
    for posts in (60, 120, 249):
        ev = base.evaluate.model_copy(update={"variants": few, "pending_min_age_hours": 0,
                                              "runs": 1, "max_posts": posts if posts < 249 else 0})
        cfg = base.model_copy(update={"evaluate": ev})
        s, m = timed(cfg, 1)
        print(f"{posts:>6} {len(cfg.agents.population().agents()):>7} {m:>8} {s:>8.2f}")
    for ring in (27, 81, 243):
        ev = base.evaluate.model_copy(update={"variants": few, "pending_min_age_hours": 0,
                                              "runs": 1})
        ag = base.agents.model_copy(update={"ring_size": ring, "ring_total_sp": 2500 * ring})
        cfg = base.model_copy(update={"evaluate": ev, "agents": ag})
        s, m = timed(cfg, 1)
        print(f"{249:>6} {len(cfg.agents.population().agents()):>7} {m:>8} {s:>8.2f}")


if __name__ == "__main__":
    main()
