"""Shared builders for the bad-input and property tests: a tiny block stream in condenser
encoding (post, votes, commit, reveal, payout) and the two ways of running it (in memory
through Adapter+Applier, or the real Ingester into SQLite).

Blocks are assembled with the importer's own :class:`indexer.postdump.Events`/``assemble`` and
the curator ops with :mod:`curation_market.curator.ops`, so the tests feed exactly what the
product writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Engine, create_engine

from curation.market import Applier, MarketConfig
from curation.state import Account, Globals, State
from curation_market.curator.ops import commit_payload, custom_json_op, reveal_payload
from curation_market.report.build import build_report, to_json
from indexer.ingest import Ingester
from indexer.ops import Adapter
from indexer.postdump import Anchor, Events, assemble, sbd
from indexer.store import Store

T0 = 1_500_000_000
CHAIN_ID = "0" * 64
MARKET_ID = "curation_market"
ANCHOR = Anchor(1000, T0)  # block 1000 at T0, 3 s per block
WINDOW = 30 * 60
REVEAL_AT = WINDOW + 60  # seconds after the post: inside the reveal period
PAYOUT_AT = 7 * 86400


def salt_of(who: str, permlink: str) -> bytes:
    """A stable 32-byte salt per (curator, post) so streams are reproducible."""
    raw = f"{who}/{permlink}".encode()
    return (raw * (32 // len(raw) + 1))[:32]


@dataclass
class Stream:
    """Transactions and virtual ops placed at chain seconds (relative to T0).

    ``order`` keys decide the position inside a block; by default ops keep the order in which
    they were added (ties broken by insertion), which is what a test wants to control.
    """

    events: Events = field(default_factory=Events.empty)
    n: int = 0

    def _key(self, t: int) -> tuple:
        self.n += 1
        return (t, self.n)

    def tx(self, t: int, *ops: list) -> None:
        self.events.tx(ANCHOR.block_at(T0 + t), self._key(t), list(ops))

    def vop(self, t: int, op: list) -> None:
        self.events.vop(ANCHOR.block_at(T0 + t), self._key(t), op)

    # --- the ops a market needs -------------------------------------------------------
    def post(self, t: int, author: str, permlink: str, parent: str = "") -> None:
        self.tx(t, post_op(author, permlink, parent))

    def vote(self, t: int, voter: str, author: str, permlink: str, rshares: int) -> None:
        self.tx(t, ["vote", {"voter": voter, "author": author, "permlink": permlink,
                             "weight": 10000}])
        self.vop(t, ["effective_comment_vote", {"voter": voter, "author": author,
                                                "permlink": permlink, "rshares": rshares}])

    def commit(self, t: int, who: str, author: str, permlink: str, prediction: int) -> None:
        self.tx(t, commit_op(who, author, permlink, prediction))

    def reveal(self, t: int, who: str, author: str, permlink: str, prediction: int) -> None:
        self.tx(t, reveal_op(who, author, permlink, prediction))

    def payout(self, t: int, author: str, permlink: str, final: int) -> None:
        self.vop(t, payout_op(author, permlink, final))

    def blocks(self) -> list[dict]:
        return list(assemble(self.events, ANCHOR))


def post_op(author: str, permlink: str, parent: str = "") -> list:
    return ["comment", {"parent_author": parent, "parent_permlink": "tag", "author": author,
                        "permlink": permlink, "title": "", "body": "", "json_metadata": ""}]


def commit_op(who: str, author: str, permlink: str, prediction: int,
              chain_id: str = CHAIN_ID) -> list:
    payload = commit_payload(chain_id, author, permlink, who, prediction,
                             salt_of(who, permlink))
    return custom_json_op(MARKET_ID, who, payload)


def reveal_op(who: str, author: str, permlink: str, prediction: int) -> list:
    return custom_json_op(MARKET_ID, who, reveal_payload(author, permlink, prediction,
                                                         salt_of(who, permlink)))


def payout_op(author: str, permlink: str, final: int) -> list:
    curator = final // 4
    return ["comment_reward", {"author": author, "permlink": permlink, "payout": sbd(final),
                               "total_payout_value": sbd(final - curator),
                               "curator_payout_value": sbd(curator),
                               "beneficiary_payout_value": sbd(0)}]


def market_stream(posts: int = 3, curators: int = 4, stream: Stream | None = None) -> Stream:
    """A small healthy market: every curator commits early and reveals; all posts pay."""
    s = stream or Stream()
    for i in range(posts):
        author, permlink = f"author{i}", f"post-{i}"
        t = 30 * i
        s.post(t, author, permlink)
        s.vote(t + 6, f"voter{i}", author, permlink, 1000 * (i + 1))
        final = 10_000 * (i + 1)
        for j in range(curators):
            who = f"curator{j}"
            prediction = final * (90 + 3 * j) // 100
            s.commit(t + 60 + 9 * j, who, author, permlink, prediction)
            s.reveal(t + REVEAL_AT + 9 * j, who, author, permlink, prediction)
        s.payout(t + PAYOUT_AT, author, permlink, final)
    return s


CURATOR_SP = {f"curator{j}": 1_000_000 * (j + 1) for j in range(8)}


def seed_accounts(state: State) -> None:
    """Known Steem Power for the healthy curators (1 micro-VESTS = 1 milli-SP)."""
    state.globals = Globals(1000, 1000)
    for name, sp in CURATOR_SP.items():
        state.accounts[name] = Account(name, vesting_shares=sp)


def run_memory(blocks: Iterable[dict], cfg: MarketConfig | None = None) -> State:
    """Adapter + Applier over one in-memory state (nothing is flushed or forgotten)."""
    cfg = cfg or MarketConfig()
    state = State()
    seed_accounts(state)
    adapter, applier = Adapter(cfg.market_id, cfg.limits, cfg.chain), Applier(state, cfg)
    for raw in blocks:
        applier.apply(adapter.block(raw))
    return state


def settled_view(state: State, names: Iterable[str] | None = None) -> dict:
    """Every settled commit (of ``names`` when given): what the report would show for it."""
    keep = None if names is None else set(names)
    by_id = {p.id: p.key for p in state.posts.values() if p is not None}
    out = {}
    for (post_id, who), c in state.commits.items():
        if c is None or (keep is not None and who not in keep):
            continue
        r = c.result
        out[(by_id[post_id], who)] = (c.status, c.prediction, r is not None and r.qualified,
                                      None if r is None else r.reward)
    return out


def new_store(db: str | Engine = "sqlite://", cfg: MarketConfig | None = None) -> Store:
    """A Store (in-memory SQLite by default); a fresh database gets the curators' SP."""
    cfg = cfg or MarketConfig()
    store = Store(create_engine(db) if isinstance(db, str) else db, CHAIN_ID, cfg.rules.label)
    if store.new_state().globals.total_vesting_shares == 0:
        store.set_globals(1000, 1000)
        store.add_account_snapshot([Account(n, vesting_shares=sp)
                                    for n, sp in CURATOR_SP.items()])
    return store


def ingest(store: Store, source: Iterable, cfg: MarketConfig | None = None,
           batch_blocks: int = 3) -> Ingester:
    ing = Ingester(store, cfg or MarketConfig(), batch_blocks=batch_blocks)
    ing.run(source)
    return ing


def report_json(store: Store) -> bytes:
    return to_json(build_report(store.engine))
