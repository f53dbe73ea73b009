"""The report of an evaluation: Markdown, HTML and matplotlib PNGs from one set of tables.

Every table is built once (:func:`build_tables`) and rendered twice, so the Markdown and the
HTML cannot disagree; the plots draw the same statistics (``lab/stats.py``). Nothing here
depends on timing or the worker count, so the same evaluation gives a byte-identical
``report.md``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation_market.lab.agents import agent_type
from curation_market.lab.runner import Evaluation
from curation_market.lab.stats import (
    ATTACKS,
    LEVEL,
    REPLICATES,
    Headline,
    agent_types,
    fmt_interval,
    gini,
    headline,
    shares,
    skill_spearman,
    sybil_row,
)


def _milli(x: int) -> str:
    sign = "-" if x < 0 else ""
    x = abs(x)
    return f"{sign}{x // 1000:,}.{x % 1000:03d}"


def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _per_1000(x: int, sp: int) -> str:
    """Reward (milli-units) per 1000 SP, where ``sp`` is milli-SP."""
    return _milli(x * 1000 * 1000 // sp) if sp else "n/a"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


@dataclass
class Tables:
    """Every table of the report as (title, head, rows, note): one source for MD and HTML."""

    items: list[tuple[str, list[str], list[list[str]], str]]


def headlines(ev: Evaluation) -> dict[str, Headline]:
    """Every rule set's headline ratios with bootstrap intervals (computed once per report:
    the tables and the plots show the same numbers)."""
    return {r.label: headline(ev, r) for r in ev.results if not r.note}


def build_tables(ev: Evaluation, heads: dict[str, Headline] | None = None) -> Tables:
    """A failed staked rule set keeps its row (dashes and the reason), never vanishes."""
    heads = headlines(ev) if heads is None else heads
    items = []
    rows = [[a.name, agent_type(a), _milli(a.sp), str(ev.commits.get(a.name, 0)),
             str(ev.reveals.get(a.name, 0)), _num(ev.skills.get(a.name))] for a in ev.agents]
    items.append(("Agents", ["agent", "type", "SP", "commits (all runs)", "revealed (seed rules)",
                             "skill −mean abs ln(P/F)"], rows,
                  "Skill is measured over every committed prediction, revealed or not."))
    types = agent_types(ev)
    rows = []
    for r in ev.results:
        if r.note:
            rows.append([r.label] + ["—"] * len(types))
            continue
        s = shares(ev, r)
        rows.append([r.label] + [f"{100 * s[t]:.1f}" for t in types])
    items.append(("Share of rewards by agent type (% of the agents' positive net rewards)",
                  ["rule set"] + types, rows,
                  "Net = awards minus burned stakes per agent; an agent with a negative net "
                  "counts as 0 here. Gross burned stakes are in the summary table."))
    rows = []
    for r in ev.results:
        net: dict[str, int] = defaultdict(int)
        for a in ev.agents:
            net[agent_type(a)] += r.rewards.get(a.name, 0)
        rows.append([r.label] + (["—"] * len(types) if r.note else
                                 [_milli(net[t]) for t in types]))
    items.append(("Net reward by agent type (awards minus burned stakes)", ["rule set"] + types,
                  rows, "Milli-unit amounts shown as units, pooled over the runs."))
    rows = []
    for r in ev.results:
        if r.note:
            rows.append([r.label, "—", "—", "—", "—", r.note])
            continue
        ring_r, ring_sp, twin_r, twin_sp, ratio = sybil_row(ev, r)
        ci = heads[r.label].ring_twin
        rows.append([r.label, _milli(ring_r), _milli(twin_r), _per_1000(ring_r, ring_sp),
                     _per_1000(twin_r, twin_sp),
                     "n/a (twin net ≤ 0)" if ratio is None else f"{ratio:.2f}",
                     _ci(ci)])
    pct = f"{100 * LEVEL:g} %"
    items.append(("Sybil ring vs an honest curator with the same total SP",
                  ["rule set", "ring reward", "twin reward", "ring per 1000 SP",
                   "twin per 1000 SP", "ring/twin per SP", f"{pct} CI"], rows,
                  "Ring: accounts splitting one SP budget and spraying ±40 % around one "
                  "rough guess. Twin: one account with the same total SP and the same skill "
                  "(σ of its guess), no spraying. Ratio > 1: spraying pays. CI: percentile "
                  "bootstrap over runs and settlement units (markets; epochs for mmc and "
                  "yuma), crossed; ∞ where resampled twin rewards net ≤ 0."))
    kinds = [k for k in ATTACKS if any(a.kind == k for a in ev.agents)]
    rows = []
    for r in ev.results:
        if r.note:
            rows.append([r.label] + ["—"] * (len(kinds) + 2))
            continue
        h = heads[r.label]
        beats = [k for k in kinds if h.attacks[k].verdict(1.0) == "above"]
        unsure = [k for k in kinds if h.attacks[k].verdict(1.0) in ("straddles", "undefined")]
        rows.append([r.label] + [fmt_interval(h.attacks[k]) for k in kinds]
                    + [fmt_interval(h.rho), _verdict(beats, unsure, h.rho.verdict(0.8))])
    items.append((f"Headline ratios with {pct} bootstrap intervals",
                  ["rule set"] + [f"{k} / honest per SP" for k in kinds]
                  + ["ρ(skill, reward/SP)", "verdict"], rows,
                  "Each cell: the pooled value [interval]. Attack / honest per SP: the "
                  "attacking agents' net reward per SP over the honest agents' (skilled and "
                  "twin) pooled net reward per SP; > 1 means the attack out-earns honest "
                  "curation per SP. The verdict names the attacks whose whole interval lies "
                  "above 1 (beats honest), those whose interval straddles 1 (unsure), and "
                  "whether ρ's interval lies above 0.8 (skill paid). Intervals: percentile "
                  "bootstrap over runs and settlement units, crossed (lab/stats.py)."))
    rows = []
    for r in ev.results:
        if r.note:
            rows.append([r.label, str(r.markets), _milli(r.pools), "—", "—", "—", "—",
                         _num(r.early_spearman), r.note])
            continue
        rows.append([r.label, str(r.markets), _milli(r.pools), _milli(r.paid),
                     _milli(r.burned), _num(gini(list(r.rewards.values()))),
                     _num(skill_spearman(ev, r)), _num(r.early_spearman),
                     ", ".join(f"{k} {v}" for k, v in r.rejections.items()) or "none"])
    items.append(("Summary per rule set",
                  ["rule set", "markets", "pools", "paid", "burned", "Gini", "ρ(skill, reward/SP)",
                   "ρ(early median, F)", "rejections"], rows,
                  "Paid and burned are gross, award by award. Gini over agents' net rewards "
                  "(negative counts as 0). ρ = Spearman. Early median: "
                  "the median revealed prediction committed in the window's first half."))
    return Tables(items)


def intro(ev: Evaluation) -> str:
    """What was replayed, in one paragraph (the same text heads the Markdown and HTML)."""
    e = ev.cfg.evaluate
    runs = e.runs
    source = f"{ev.source} " if ev.source else ""
    return (f"{source}{ev.posts} real posts ({ev.votes:,} timed votes); {runs} independent runs of "
            f"{len(ev.agents)} simulated curators (seeds {e.seed}–{e.seed + runs - 1}), "
            f"{ev.markets // runs} settled markets with predictions per run, "
            f"{ev.self_votes} self-votes in all. Money and counts are pooled over the runs; "
            f"ρ(early median, F) is the mean over the runs; ρ(skill, reward/SP) is taken on "
            f"the pooled rewards. Replies are markets: {e.include_replies}. "
            f"Pending posts older than {e.pending_min_age_hours} h settle at their cashout "
            f"with the pending value at block 17M: {e.settle_pending}. Stake per prediction: "
            f"SP × {e.stake_per_sp:g}. Intervals: {100 * LEVEL:g} % percentile bootstrap, "
            f"{REPLICATES:,} replicates, resampling runs and settlement units (crossed).")


def _ci(i: Any) -> str:
    text = fmt_interval(i)
    return text[text.index("["):] if "[" in text else text


def _verdict(beats: Sequence[str], unsure: Sequence[str], rho: str) -> str:
    parts = [("beats honest: " + ", ".join(beats)) if beats else "no attack beats honest"]
    if unsure:
        parts.append("unsure: " + ", ".join(unsure))
    parts.append({"above": "skill paid (ρ > 0.8)", "below": "skill not paid (ρ < 0.8)"}
                 .get(rho, "ρ vs 0.8 unsure"))
    return "; ".join(parts)


def render_markdown(ev: Evaluation, tables: Tables, plots: Sequence[str]) -> str:
    where = "history (--history)" if ev.source else "block-17M history"
    lines = [f"# Rule sets compared on replayed {where}", "", intro(ev), ""]
    for title, head, rows, note in tables.items:
        lines += [f"## {title}", ""] + _table(head, rows) + ["", note, ""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def render_html(ev: Evaluation, tables: Tables, plots: Sequence[str]) -> str:
    from html import escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             "<title>curation-market: rule sets compared</title><style>",
             "body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:"
             "collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .5em;"
             "text-align:right}td:first-child,th:first-child{text-align:left}"
             "img{max-width:100%}</style></head><body>",
             "<h1>Rule sets compared on replayed "
             f"{'history (--history)' if ev.source else 'block-17M history'}</h1>",
             f"<p>{escape(intro(ev))}</p>"]
    for p in plots:
        parts.append(f"<p><img src='{escape(p)}' alt='{escape(p)}'></p>")
    for title, head, rows, note in tables.items:
        parts.append(f"<h2>{escape(title)}</h2><table><tr>"
                     + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append(f"</table><p>{escape(note)}</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def plot(ev: Evaluation, out: Path, heads: dict[str, Headline] | None = None) -> list[str]:
    """PNG plots (matplotlib, Agg); returns their file names.

    Legends sit below the axes (never over a bar) and every pair of bars carries its value,
    so the small bars (beat-average, numerai-2018) can still be read.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    done = [r for r in ev.results if not r.note]
    if not done:
        return []
    heads = headlines(ev) if heads is None else heads
    labels = [r.label for r in done]
    types = agent_types(ev)
    names = []
    height = 0.42 * len(done) + 2.6
    y = list(range(len(done)))

    def finish(fig: Any, ax: Any, name: str, ncol: int) -> None:
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07 if ncol > 2 else -0.06),
                  ncol=ncol, fontsize=9, frameon=False)
        fig.tight_layout()
        fig.savefig(out / name, dpi=90, metadata={"Software": None})
        plt.close(fig)
        names.append(name)

    fig, ax = plt.subplots(figsize=(11, height))
    left = [0.0] * len(done)
    cmap = plt.get_cmap("tab10")
    by_rules = [shares(ev, r) for r in done]
    # a type with no positive reward under any rule set draws no bar: no legend entry either
    # (its colour stays its own, so the colours match between runs of different configs)
    for i, t in enumerate(types):
        vals = [100 * sh[t] for sh in by_rules]
        if not any(vals):
            continue
        ax.barh(y, vals, left=left, color=cmap(i % 10), label=t, edgecolor="white",
                linewidth=0.5)
        for j, v in enumerate(vals):
            if v >= 6:
                ax.text(left[j] + v / 2, j, f"{v:.0f}", ha="center", va="center", fontsize=7,
                        color="white")
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of the agents' positive net rewards (labels: shares ≥ 6 %)")
    absent = [t for t in types if not any(sh[t] for sh in by_rules)]
    ax.set_title("Share of rewards by agent type"
                 + (f" (never rewarded: {', '.join(absent)})" if absent else ""))
    finish(fig, ax, "shares.png", ncol=5)

    fig, ax = plt.subplots(figsize=(11, height))
    ring, twin, ratios = [], [], []
    for r in done:
        ring_r, ring_sp, twin_r, twin_sp, ratio = sybil_row(ev, r)
        ring.append(ring_r * 1000 / ring_sp if ring_sp else 0)
        twin.append(twin_r * 1000 / twin_sp if twin_sp else 0)
        ci = _ci(heads[r.label].ring_twin)
        ratios.append(("ring/twin n/a (twin net ≤ 0)" if ratio is None
                       else f"ring/twin {ratio:.2f}×") + ("" if ci == "n/a" else f" {ci}"))
    kinds = {a.kind for a in ev.agents}  # a legend names only agents the population has
    ax.barh([i - 0.2 for i in y], ring, height=0.4, color="tab:red",
            label="sybil ring" if "sybil" in kinds else "_nolegend_")
    ax.barh([i + 0.2 for i in y], twin, height=0.4, color="tab:blue",
            label="honest twin (same total SP)" if "twin" in kinds else "_nolegend_")
    top = max([*ring, *twin, 1e-9])
    for i, text in enumerate(ratios):
        ax.text(max(ring[i], twin[i], 0) + 0.01 * top, i, text, va="center", fontsize=8)
    ax.set_xlim(min([*ring, *twin, 0]) - 0.01 * top, top * 1.75)
    ax.axvline(0, color="black", lw=0.5)
    ax.set_xlabel("net reward per 1000 SP (milli-units, pooled over the runs)")
    ax.set_title("Sybil ring vs honest curator with the same total SP "
                 f"(ratio [{100 * LEVEL:g} % bootstrap interval])")
    finish(fig, ax, "sybil.png", ncol=2)

    fig, ax = plt.subplots(figsize=(11, height))
    g = [gini(list(r.rewards.values())) or 0 for r in done]
    s = [skill_spearman(ev, r) or 0 for r in done]
    ax.barh([i - 0.2 for i in y], g, height=0.4, label="Gini of net rewards",
            color="tab:gray")
    ax.barh([i + 0.2 for i in y], s, height=0.4,
            label="ρ(skill, reward per SP) — Spearman, on pooled rewards", color="tab:green")
    rho = [heads[r.label].rho for r in done]
    # the ρ interval as a whisker; a rule set without one (undefined) draws none
    lo = [max(v - (i.low if i.low is not None else v), 0) for v, i in zip(s, rho, strict=True)]
    hi = [max((i.high if i.high is not None else v) - v, 0) for v, i in zip(s, rho, strict=True)]
    ax.errorbar(s, [i + 0.2 for i in y], xerr=[lo, hi], fmt="none", ecolor="black",
                elinewidth=0.8, capsize=2,
                label=f"{100 * LEVEL:g} % bootstrap interval of ρ")
    for i in y:
        ax.text(max(g[i], 0) + 0.01, i - 0.2, f"{g[i]:.2f}", va="center", fontsize=7)
        ax.text(max(s[i] + hi[i], 0) + 0.01, i + 0.2, f"{s[i]:.2f}", va="center", fontsize=7)
    ax.set_xlim(min([*(v - d for v, d in zip(s, lo, strict=True)), 0]) - 0.05, 1.12)
    ax.axvline(0, color="black", lw=0.5)
    ax.set_xlabel("Gini coefficient (0 equal … 1 one agent takes all) and Spearman ρ "
                  "(−1 … 1), unitless")
    ax.set_title("Concentration and skill–reward rank correlation (whiskers: ρ's interval; "
                 "dashed: ρ = 0.8)")
    ax.axvline(0.8, color="tab:green", lw=0.8, ls="--")  # the findings' "skill paid" bar
    finish(fig, ax, "gini_skill.png", ncol=2)
    return names


def write_report(ev: Evaluation, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    heads = headlines(ev)
    plots = plot(ev, out, heads)
    tables = build_tables(ev, heads)
    md, html = out / "report.md", out / "report.html"
    md.write_text(render_markdown(ev, tables, plots), encoding="utf-8")
    html.write_text(render_html(ev, tables, plots), encoding="utf-8")
    return [md, html, *(out / p for p in plots)]
