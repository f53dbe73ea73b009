"""Post dumps pay exactly what the dump says the chain paid, or refuse the post out loud.

``data/hive5m_posts_slice.jsonl.gz``: 15 real posts copied from ../shared/data/hive-5m/posts.jsonl
(``_line`` is their line there, ``_source`` the hivemind/tests_api pattern file they were
recorded in; bodies emptied). They cover the three shapes of that dump: hivemind bridge posts
(``is_paidout``/``payout_at``/``author_payout_value``), condenser objects (legacy amounts,
``last_payout``) and database_api objects (NAI amounts), paid and pending, with and without
beneficiaries.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from curation.chaintime import chain_time
from curation.market import MarketConfig
from curation_market.cli.main import app
from indexer import schema as t
from indexer.ingest import Ingester
from indexer.postdump import Payout, PostRefused, Refusal, import_posts, payout_of
from indexer.store import Store

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def dump() -> list[dict]:
    with gzip.open(DATA / "hive5m_posts_slice.jsonl.gz", "rb") as fh:
        return [orjson.loads(line) for line in fh]


def by_line(dump: list[dict], line: int) -> dict:
    return next(p for p in dump if p["_line"] == line)


def test_bridge_posts_settle_with_hiveminds_own_payout(dump: list[dict]) -> None:
    # @blocktrades: author 1670.666 + curators 1662.020 = payout 3332.686 HBD
    p = by_line(dump, 35)
    paid = payout_of(p)
    assert isinstance(paid, Payout)
    assert (paid.final, paid.curator, paid.beneficiary) == (3_332_686, 1_662_020, 0)
    assert paid.time == chain_time(p["payout_at"])
    bridge_paid = [p for p in dump if p.get("is_paidout") is True and not p["beneficiaries"]]
    assert len(bridge_paid) == 7
    for p in bridge_paid:
        paid = payout_of(p)
        assert isinstance(paid, Payout)
        assert paid.final == round(p["payout"] * 1000)  # the float only as a cross-check


def test_pending_bridge_post_waits_or_settles_at_its_estimate(dump: list[dict]) -> None:
    p = by_line(dump, 1942)  # pending 0.053 HBD, payout_at 2016-08-23T15:44:03
    assert payout_of(p) is None
    est = payout_of(p, settle_pending=True)
    assert isinstance(est, Payout)
    assert (est.time, est.final) == (chain_time("2016-08-23T15:44:03"), 53)


def test_post_objects_add_the_beneficiaries_part_when_they_state_it(dump: list[dict]) -> None:
    p = by_line(dump, 1)  # @steemit/firstpost: 0.942 + 0.756 HBD
    paid = payout_of(p)
    assert isinstance(paid, Payout) and paid.final == 1_698
    with_benef = {**p, "beneficiary_payout_value": "0.123 HBD"}
    paid = payout_of(with_benef)
    assert isinstance(paid, Payout)
    assert (paid.final, paid.beneficiary) == (1_821, 123)
    nai = by_line(dump, 19)  # database_api shape, NAI amounts: 18.340 + 18.338
    paid = payout_of(nai)
    assert isinstance(paid, Payout) and paid.final == 36_678


def test_beneficiaries_without_their_value_are_refused_with_the_fields(dump: list[dict]) -> None:
    bridge = by_line(dump, 3266)  # 0.054 + 0.001 HBD, esteemapp 5 %
    refusal = payout_of(bridge)
    assert isinstance(refusal, Refusal)
    assert "beneficiaries" in refusal.fields and "author_payout_value" in refusal.fields
    msg = refusal.message(bridge, "dump.jsonl:7")
    assert msg.startswith("dump.jsonl:7: @mammasitta/") and "beneficiary_payout_value" in msg
    included = payout_of(bridge, beneficiaries_included=True)
    assert isinstance(included, Payout) and included.final == 55
    db_shape = by_line(dump, 3376)
    refusal = payout_of(db_shape)
    assert isinstance(refusal, Refusal) and "total_payout_value" in refusal.fields


def test_inconsistent_or_unreadable_payout_fields_are_refused(dump: list[dict]) -> None:
    p = by_line(dump, 3)  # proskynneo: 1.058 + 1.059 = 2.117
    refusal = payout_of({**p, "payout": 2.118})
    assert isinstance(refusal, Refusal)
    assert refusal.fields == ("author_payout_value", "curator_payout_value", "payout")
    refusal = payout_of({**p, "curator_payout_value": "1.0591 HBD"})
    assert isinstance(refusal, Refusal) and "unreadable" in refusal.reason
    refusal = payout_of({k: v for k, v in p.items() if k != "payout_at"})
    assert isinstance(refusal, Refusal) and refusal.fields == ("payout_at",)
    refusal = payout_of({**by_line(dump, 1), "total_payout_value": None})
    assert isinstance(refusal, Refusal) and refusal.fields == ("total_payout_value",)


def test_refusals_are_never_silent(dump: list[dict]) -> None:
    with pytest.raises(PostRefused, match="post #13: @mammasitta/"):
        import_posts(dump)
    refused: list[str] = []
    import_posts(dump, refused=refused)
    assert len(refused) == 2  # a bridge post and a database object, both with beneficiaries


def test_the_slice_settles_through_the_pipeline(dump: list[dict], sqlite_engine) -> None:
    refused: list[str] = []
    blocks = import_posts(dump, refused=refused)
    Ingester(Store(sqlite_engine), MarketConfig(include_replies=True)).run(iter(blocks))
    with sqlite_engine.connect() as conn:
        settled = dict(((a, p), f) for a, p, f in conn.execute(
            select(t.posts.c.author, t.posts.c.permlink, t.settlements.c.final_payout)
            .join(t.settlements, t.settlements.c.post_id == t.posts.c.id)))
    expected = {}
    for p in dump:
        paid = payout_of(p)
        if isinstance(paid, Payout):
            expected[(p["author"], p["permlink"])] = paid.final
    assert len(expected) == 9
    assert settled == expected
    assert settled[("blocktrades", by_line(dump, 35)["permlink"])] == 3_332_686


def test_import_posts_command_names_file_line_and_fields(tmp_path: Path,
                                                         dump: list[dict]) -> None:
    posts = tmp_path / "posts.jsonl"
    posts.write_text("".join(json.dumps(p) + "\n" for p in dump) + "{not json\n")
    out, refused = tmp_path / "blocks.jsonl", tmp_path / "refused.txt"
    res = CliRunner().invoke(app, ["import-posts", str(posts), "--out", str(out),
                                   "--refused", str(refused)])
    assert res.exit_code == 0, res.output
    said = " ".join(res.stderr.split())  # rich wraps long lines
    assert "from 13 posts" in said and "9 settle" in said and "4 stay unsettled" in said
    assert "3 refused" in said
    lines = refused.read_text().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{posts}:13: @mammasitta/")
    assert "fields: author_payout_value, curator_payout_value, beneficiaries" in lines[0]
    assert lines[-1].startswith(f"{posts}:16: unreadable post")
