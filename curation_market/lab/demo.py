"""The README's first command: real block-17M posts + simulated curators → replay → report."""

from __future__ import annotations

import gzip
from importlib import resources
from pathlib import Path

import orjson
from rich.console import Console
from sqlalchemy import create_engine

from curation_market.config import Market, Settings
from curation_market.lab.agents import Play, agent_accounts, demo_population, simulate
from curation_market.report.build import build_report
from indexer.accounts import read_accounts, read_globals
from indexer.blockfile import read_blocks, write_blocks
from indexer.ingest import Ingester
from indexer.postdump import STEEM_17M, Anchor, Events, import_posts
from indexer.store import Store

DATA = resources.files("curation_market") / "data"


def bundled_posts() -> list[dict]:
    with gzip.open(str(DATA / "steem17m_posts.jsonl.gz"), "rb") as fh:
        return [orjson.loads(line) for line in fh]


def demo_settings() -> Settings:
    """Defaults, but replies are markets too: half of the slice's paid posts are replies."""
    return Settings(market=Market(include_replies=True))


def demo_play(settings: Settings, seed: int = 17) -> Play:
    """The demo's curators play the market of ``settings``, stake nothing, and draw from one
    sequential generator (``lab/agents.py``: their chain stays what the docs show)."""
    cfg = settings.market_config()
    return Play(cfg.chain_id, cfg.market_id, cfg.window, cfg.reveal_period, seed,
                stake_per_sp=None, draws="sequential")


def build_demo_blocks(out: Path, seed: int = 17) -> int:
    settings = demo_settings()
    posts = bundled_posts()
    anchor = Anchor.of(*STEEM_17M)
    events = Events.empty()
    simulate(posts, demo_population(), anchor, events, demo_play(settings, seed))
    return write_blocks(import_posts(posts, anchor, extra=events), out)


def run_demo(db: str, out: Path, seed: int, console: Console) -> dict:
    settings = demo_settings()
    n = build_demo_blocks(out, seed)
    console.print(f"demo: {n:,} blocks of real Steem history (block 17M slice) with simulated "
                  f"curators → {out}")
    engine = create_engine(db)
    store = Store(engine, settings.chain.id, settings.market_config().rules.label)
    fund, shares = read_globals(str(DATA / "steem17m_globals.json"))
    store.set_globals(fund, shares)
    problems: list[str] = []
    store.add_account_snapshot(read_accounts([DATA / "steem17m_accounts.jsonl.gz"], problems))
    store.add_account_snapshot(agent_accounts(demo_population(), store.new_state().globals))
    stats = Ingester(store, settings.market_config(), settings.ingest.batch_blocks).run(
        read_blocks([out]))
    console.print(f"demo: replayed {stats.blocks:,} blocks, {stats.ops:,} ops in "
                  f"{stats.seconds:.2f}s into {db}")
    return build_report(engine)
