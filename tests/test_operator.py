"""What an operator meets on the command line: version and log levels, a dead node said
plainly (exit 1), ``status`` of a stopped daemon, the catch-up told batch by batch, a replay's
percentage, salts that a second commit cannot lose, ``db upgrade`` wording, whole permlinks
in the report, the chart's unit and the evaluation plots' labels.

Each test failed before its fix (noted in its docstring). Nothing is mocked: the daemon runs
against the real test node on loopback, the commands through their real entry points.
"""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from rich.console import Console
from sqlalchemy import create_engine
from typer.testing import CliRunner

from curation.commitment import commitment
from curation.payload import PayloadLimits, parse_payload
from curation_market.cli.common import FilePosition, progress_bar
from curation_market.cli.main import app
from curation_market.config import load_settings
from curation_market.daemon.run import Daemon
from curation_market.devnode.node import TestNode
from indexer.blockfile import read_blocks
from indexer.ingest import Ingester
from indexer.store import Store

ROOT = Path(__file__).parents[1]
DATA = Path(__file__).parent / "data"
BLOCKS = DATA / "hive5m_raw_blocks.jsonl.gz"
OPS = DATA / "hive5m_ops.jsonl.gz"
runner = CliRunner()

CONFIG = """
[ingest]
batch_blocks = 100
[node]
batch_size = 50
poll_seconds = 0.05
retries = 2
backoff_seconds = 0.05
timeout_seconds = 2
health_seconds = 0.5
sweep_seconds = 0.5
"""


def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return path


def cli(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def dead_port() -> int:
    """A loopback port nobody listens on (bound, then closed: connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- version, log levels, a dead node --------------------------------------------------------

def test_version() -> None:
    """Before: ``--version`` was an unknown option."""
    from importlib.metadata import version

    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"curation-market {version('curation-market')}"


def _run_dead(tmp_path: Path, *front: str) -> subprocess.CompletedProcess:
    port = dead_port()
    return subprocess.run(
        [sys.executable, "-m", "curation_market", *front, "run", "--node",
         f"http://127.0.0.1:{port}", "--db", f"sqlite:///{tmp_path / 'dead.db'}",
         "--config", str(config(tmp_path))],
        cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_run_against_a_dead_node_says_which_and_why(tmp_path: Path) -> None:
    """Before: exit 2 (docs/node.md says 1) and ``… failed 5 times: NumRetriesReached: ``
    with nothing after it, under a screenful of beem's retry warnings."""
    p = _run_dead(tmp_path)
    assert p.returncode == 1, p.stderr
    last = p.stderr.strip().splitlines()[-1]
    # the chain profile is the first thing asked, over plain JSON-RPC (not beem)
    m = re.fullmatch(r"error: node\(s\) (http://127\.0\.0\.1:(\d+)) failed 2 times: "
                     r".*port=(\d+).*Connection refused.*", last)
    assert m and m.group(2) == m.group(3), last
    assert "Lost connection" not in p.stderr  # beem's retries: shown only with -v
    loud = _run_dead(tmp_path, "-v")
    assert loud.returncode == 1 and "Connection refused" in loud.stderr
    quiet = _run_dead(tmp_path, "--log-level", "error")
    assert quiet.returncode == 1 and "INFO" not in quiet.stderr
    code, _, err = cli("--log-level", "loud", "status")
    assert code == 2 and "--log-level must be one of" in err


# --- the daemon: batch log, status after a stop -----------------------------------------------

def test_catch_up_logs_every_batch_then_status_says_stopped(tmp_path: Path,
                                                             caplog) -> None:
    """Before: a catch-up logged nothing per batch, and ``status`` of a stopped daemon showed
    its last ops/s as if it still ran."""
    cfg = config(tmp_path)
    db = f"sqlite:///{tmp_path / 'daemon.db'}"
    caplog.set_level(logging.INFO, logger="curation.daemon")
    with TestNode.from_files([BLOCKS], ops=[OPS], head=1_100, lag=20) as node:
        daemon = Daemon(load_settings(cfg), [node.url], create_engine(db), until=1_080)
        thread = threading.Thread(target=daemon.run, daemon=True)
        thread.start()
        thread.join(60)
        assert not thread.is_alive() and daemon.ingester.checkpoint == 1_080
        code, out, _ = cli("status", "--db", db, "--config", str(cfg))
        assert code == 0 and re.search(r"^daemon +running \(status written \d+s ago\)", out,
                                       re.M), out
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("batch of")]
    assert len(lines) >= 8, lines  # 1,080 blocks in batches of 100
    m = re.fullmatch(r"batch of 100 blocks \(to ([\d,]+)\): ([\d,]+) blocks/s, ([\d,]+) ops/s; "
                     r"block \1 of LIB ([\d,]+), ([\d,]+) to go, ETA (<1s|\d+s|\d+m \d\ds)",
                     lines[0])
    assert m, lines[0]
    assert int(m.group(1).replace(",", "")) + int(m.group(5).replace(",", "")) == \
        int(m.group(4).replace(",", ""))
    # the stopped daemon's last row, aged past 3 health intervals (3 s at least) by moving
    # its wall-clock stamp back, not by sleeping: a loaded machine makes sleeps race
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE node_status SET checked_at = checked_at - 9")
    code, out, _ = cli("status", "--db", db, "--config", str(cfg))
    assert code == 0
    assert re.search(r"^daemon +not running: its last status was written \d+s ago", out, re.M)
    assert re.search(r"^ops/s +0\.0 \(not running; [\d.]+ when last seen\)", out, re.M), out
    assert re.search(r"^last status +\d{4}-\d\d-\d\dT[\d:]+Z \(wall clock\); head [\d,]+ at "
                     r"\d{4}-\d\d-\d\dT", out, re.M), out
    code, out, _ = cli("status", "--db", db, "--config", str(cfg), "--format", "json")
    doc = json.loads(out)
    assert doc["daemon"] == "not running" and doc["ops_per_second"] == 0.0
    assert doc["status_age_seconds"] >= 1 and "last_ops_per_second" in doc


# --- replay: a percentage when the file's size is known ---------------------------------------

def test_replay_bar_shows_the_share_of_the_file_read(tmp_path: Path, demo_db) -> None:
    """Before: an open-ended bar (block, ops) although a regular file's size is known."""
    blocks = Path(demo_db["blocks"])
    position = FilePosition([blocks])
    assert position.total == blocks.stat().st_size
    seen = []
    reader = read_blocks([blocks])
    for i, _ in enumerate(reader):
        if i % 2000 == 0:
            seen.append(position.read())
    reader.close()
    assert seen[0] < seen[-1] <= position.total and seen == sorted(seen)
    assert seen[-1] > 0.9 * position.total
    assert FilePosition([Path("-")]).total is None  # stdin: no size, the open-ended bar

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    store = Store(create_engine(f"sqlite:///{tmp_path / 'r.db'}"), "0" * 64, "seed")
    with progress_bar("replay", [blocks], console) as update:
        Ingester(store, load_settings(None).market_config(), 200).run(
            read_blocks([blocks]), progress=update)
    shown = re.findall(r"(\d+)%", out.getvalue())
    assert shown and max(map(int, shown)) >= 50, out.getvalue()[-500:]


# --- salts ------------------------------------------------------------------------------------

def _prepare(salts: Path, *extra: str, prediction: str = "12.345") -> tuple[int, str, str]:
    return cli("prepare", "commit", "--author", "bob", "--permlink", "p", "--predictor",
               "alice", "--prediction", prediction, "--salt-file", str(salts), *extra)


def _commitment_of(out: str) -> str:
    (msg,) = parse_payload(json.loads(out)[1]["json"], PayloadLimits())
    return msg.commitment


def test_a_second_commit_never_loses_the_first_salt(tmp_path: Path) -> None:
    """Before: ``prepare commit`` on the same post silently replaced the stored salt, so a
    curator whose first commit was broadcast could never reveal it."""
    salts = tmp_path / "salts.json"
    code, out, _ = _prepare(salts)
    assert code == 0
    first = _commitment_of(out)
    kept = salts.read_bytes()
    code, _, err = _prepare(salts, prediction="20.000")
    assert code == 2 and "--replace" in err and "already stored" in err
    assert salts.read_bytes() == kept  # refused: nothing changed
    code, out, _ = _prepare(salts, "--replace", prediction="20.000")
    assert code == 0
    second = _commitment_of(out)
    [entry] = json.loads(salts.read_text()).values()
    assert entry["commitment"] == second
    [old] = entry["replaced"]
    assert old["commitment"] == first and old["prediction"] == 12345 and old["replaced_at"]
    reveal = ["prepare", "reveal", "--author", "bob", "--permlink", "p", "--predictor",
              "alice", "--salt-file", str(salts)]
    code, out, err = cli(*reveal)
    (msg,) = parse_payload(json.loads(out)[1]["json"], PayloadLimits())
    assert code == 0 and msg.prediction == 20000 and first in err  # told the old one exists
    code, out, _ = cli(*reveal, "--commitment", first)  # the one broadcast: still revealable
    (msg,) = parse_payload(json.loads(out)[1]["json"], PayloadLimits())
    assert code == 0 and msg.prediction == 12345
    assert commitment("0" * 64, "bob", "p", "alice", 12345, msg.salt) == first
    code, _, err = cli(*reveal, "--commitment", "ab" * 32)
    assert code == 2 and "no stored salt" in err


def test_commit_twice_on_a_node_is_refused_before_sending(tmp_path: Path) -> None:
    """The signing ``commit`` too: the second is refused before anything is signed or sent;
    with ``--replace`` it goes out and the first salt stays in the file."""
    from curation_market.curator.client import KEY_ENV
    from indexer.blockfile import write_blocks
    from indexer.postdump import import_posts
    from tests.test_client import POST

    path = tmp_path / "blocks.jsonl"
    blocks = import_posts([POST])
    write_blocks(blocks, path)
    salts = tmp_path / "salts.json"
    with TestNode.from_files([path], head=blocks[0]["block_num"], lag=2, chain="steem") as node:
        wif = node.add_account("alice")
        args = ["commit", "--author", "bob", "--permlink", "hello-market", "--node", node.url,
                "--salt-file", str(salts)]
        ok = runner.invoke(app, [*args, "--prediction", "12.000"], env={KEY_ENV: wif})
        assert ok.exit_code == 0, ok.output
        kept = salts.read_bytes()
        again = runner.invoke(app, [*args, "--prediction", "13.000"], env={KEY_ENV: wif})
        assert again.exit_code == 2 and "--replace" in again.stderr
        assert salts.read_bytes() == kept
        node.advance(3)
        assert len(node.included) == 1  # the refused one was never broadcast
        replaced = runner.invoke(app, [*args, "--prediction", "13.000", "--replace"],
                                 env={KEY_ENV: wif})
        assert replaced.exit_code == 0, replaced.output
        node.advance(3)
        assert len(node.included) == 2
    [entry] = json.loads(salts.read_text()).values()
    assert entry["prediction"] == 13000 and [e["prediction"] for e in entry["replaced"]] == \
        [12000]


# --- wording ----------------------------------------------------------------------------------

def test_db_upgrade_says_what_it_found(demo_db, tmp_path: Path) -> None:
    """Before: a filled create_all database was reported as ``empty → 0002``. (The demo's
    database is migrated now; without its alembic_version it is what replay used to make.)"""
    filled = tmp_path / "filled.db"
    src = sqlite3.connect(demo_db["url"].removeprefix("sqlite:///"))
    with sqlite3.connect(filled) as dst:  # the backup API: WAL pages included
        src.backup(dst)
        dst.execute("DROP TABLE alembic_version")
    src.close()
    code, out, _ = cli("db", "upgrade", "--db", f"sqlite:///{filled}")
    assert code == 0 and "empty" not in out
    assert re.search(r"tables made by create_all .*adopted at revision \d{4}", out), out
    code, out, _ = cli("db", "upgrade", "--db", f"sqlite:///{filled}")
    assert code == 0 and re.search(r"at revision \d{4}, nothing to do", out), out
    code, out, _ = cli("db", "upgrade", "--db", f"sqlite:///{tmp_path / 'new.db'}")
    assert code == 0 and re.search(r"empty database → \d{4}", out), out


def test_report_never_cuts_a_permlink(demo_db) -> None:
    """Before: permlinks were cut at 40 characters (and folded in narrow terminals), so they
    could not be pasted into ``report --post``."""
    from curation_market.report.build import build_report
    from curation_market.report.render import print_report

    doc = build_report(create_engine(demo_db["url"]))
    ids = [f"@{m['author']}/{m['permlink']}" for m in doc["markets"] if m["predictions"]]
    assert max(map(len, ids)) > 100
    for width in (60, 100, 140):
        out = io.StringIO()
        print_report(doc, Console(file=out, width=width), detail=False)
        text = out.getvalue()
        assert all(i in text for i in ids), width
    longest = max(ids, key=len)
    out = io.StringIO()
    one = build_report(create_engine(demo_db["url"]), tuple(longest[1:].split("/", 1)))
    print_report(one, Console(file=out, width=60), detail=True)
    assert out.getvalue().count(longest) == 2  # the summary row and the detail's heading


def test_status_names_the_dollar_token(demo_db) -> None:
    """The page labels its money axis with it (app.js): SBD on Steem, HBD on Hive."""
    from fastapi.testclient import TestClient

    from curation_market.api.app import app_from_url

    steem = TestClient(app_from_url(demo_db["url"])).get("/api/status").json()
    hive = TestClient(app_from_url(demo_db["url"], currency="HBD")).get("/api/status").json()
    assert (steem["currency"], hive["currency"]) == ("SBD", "HBD")
    js = (ROOT / "curation_market" / "api" / "static" / "app.js").read_text()
    assert "predicted payout (${cur})" in js


def test_plots_label_their_axes_and_list_only_agents_present(tmp_path: Path,
                                                            monkeypatch) -> None:
    """Before: ``gini_skill.png`` had no x label, and the share legend listed agent types
    that never earned anything (no bar to match)."""
    from matplotlib.figure import Figure

    from curation_market.lab.evaluate import evaluate, load_eval_config, plot, shares

    cfg = tmp_path / "small.toml"
    cfg.write_text("[evaluate]\nmax_posts = 40\nruns = 1\nvariants = [\"seed\", "
                   "\"commit-reveal\"]\n[agents]\nskilled_sigmas = [0.03, 0.3]\n"
                   "ring_size = 3\nring_total_sp = 9000\nwhale_sp = 50000\n")
    ev = evaluate(load_eval_config(cfg), workers=1)
    seen: dict[str, tuple[list[str], str, str]] = {}
    save = Figure.savefig

    def spy(fig: Figure, fname, *args, **kwargs):  # noqa: ANN001, ANN202
        ax = fig.axes[0]
        legend = ax.get_legend()
        seen[Path(fname).name] = ([x.get_text() for x in legend.get_texts()] if legend else [],
                                  ax.get_xlabel(), ax.get_title())
        return save(fig, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    plot(ev, tmp_path)
    assert seen["gini_skill.png"][1]  # an x label
    done = [r for r in ev.results if not r.note]
    paid = [k for k in shares(ev, done[0]) if any(shares(ev, r)[k] > 0 for r in done)]
    never = [k for k in shares(ev, done[0]) if k not in paid]
    assert never, "the small population should have a type that is never rewarded"
    legend, _, title = seen["shares.png"]
    assert legend == paid
    assert all(k in title for k in never)


def test_no_traceback_for_a_missing_server_or_a_post_without_permlink(tmp_path: Path) -> None:
    """Was: `db upgrade` with no PostgreSQL server printed a 142-line traceback, and a post
    with no permlink was refused as "unreadable post: 'permlink'". Now: one error line naming
    the database, exit 2; the refusal names the missing field."""
    port = dead_port()
    code, out, err = cli("db", "upgrade", "--db", f"postgresql+psycopg://u@127.0.0.1:{port}/x")
    assert code == 2 and "Traceback" not in out + err
    assert f"cannot upgrade postgresql+psycopg://u@127.0.0.1:{port}/x" in err
    posts = tmp_path / "posts.jsonl"
    posts.write_text('not json\n{"author": "a"}\n')
    code, out, err = cli("import-posts", str(posts), "--out", str(tmp_path / "o.jsonl"))
    assert "Traceback" not in out + err
    assert f"{posts}:2: unreadable post: no field 'permlink'" in " ".join(err.split())
