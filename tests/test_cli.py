"""The command line as a user meets it: help, config errors, curator tooling, demo, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curation.payload import PayloadLimits, parse_payload
from curation.records import CommitMsg, RevealMsg
from curation_market.cli.main import app
from curation_market.config import ConfigError, Settings, load_settings
from curation_market.report.build import to_json

ROOT = Path(__file__).parents[1]
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_every_subcommand_has_help() -> None:
    code, out, _ = run("--help")
    assert code == 0
    commands = ["replay", "import-posts", "report", "rejections", "commitment", "demo",
                "prepare commit", "prepare reveal"]
    for cmd in commands:
        code, out, _ = run(*cmd.split(), "--help")
        assert code == 0 and "Usage" in out, cmd


def test_shipped_config_is_the_defaults() -> None:
    assert load_settings(ROOT / "config.toml") == Settings()


def test_config_errors_name_the_key_and_the_form(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[market]\nwindow_seconds = "30m"\nfoo = 1\n[rules]\nname = "nope"\n'
                   'curation_fraction = "1.5"\nreputation_min_payout = "1.0001"\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(bad)
    msg = str(exc.value)
    for needle in ("market.window_seconds", "unknown key 'market.foo'", "rules.name",
                   "rules.curation_fraction", "between 0 and 1", "rules.reputation_min_payout",
                   '"1.000"'):
        assert needle in msg
    code, _, err = run("report", "--config", str(bad), "--db", "sqlite://")
    assert code == 2 and "market.window_seconds" in err
    broken = tmp_path / "broken.toml"
    broken.write_text("[market\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken)


def test_commitment_command_prints_the_test_vector() -> None:
    code, out, _ = run("commitment", "--author", "heimindanger", "--permlink", "dtube-0-3",
                       "--predictor", "alice", "--prediction", "95", "--salt",
                       bytes(range(32)).hex())
    assert code == 0
    assert out.strip() == "f6fd7b2a961b547177d7e345123bd044a48571de689616e4360dbf7e8fddfcdd"


def test_commitment_command_refuses_bad_input() -> None:
    for args in (["--prediction", "1e3"], ["--prediction", "-1"], ["--salt", "00"]):
        base = {"--author": "bob", "--permlink": "p", "--predictor": "alice",
                "--prediction": "1.000"}
        base.update(dict(zip(args[::2], args[1::2], strict=True)))
        code, _, err = run("commitment", *[x for kv in base.items() for x in kv])
        assert code == 2 and "error" in err


def test_prepare_commit_then_reveal_round_trip(tmp_path: Path) -> None:
    salts = tmp_path / "salts.json"
    args = ["--author", "bob", "--permlink", "p", "--predictor", "alice",
            "--salt-file", str(salts)]
    code, out, _ = run("prepare", "commit", *args, "--prediction", "12.345")
    assert code == 0
    name, body = json.loads(out)
    assert name == "custom_json" and body["required_posting_auths"] == ["alice"]
    (commit,) = parse_payload(body["json"], PayloadLimits())
    assert isinstance(commit, CommitMsg)
    code, out, _ = run("prepare", "reveal", *args)
    assert code == 0
    (reveal,) = parse_payload(json.loads(out)[1]["json"], PayloadLimits())
    assert isinstance(reveal, RevealMsg) and reveal.prediction == 12345
    from curation.commitment import commitment

    assert commitment("0" * 64, "bob", "p", "alice", 12345, reveal.salt) == commit.commitment
    code, _, err = run("prepare", "reveal", "--author", "bob", "--permlink", "other",
                       "--predictor", "alice", "--salt-file", str(salts))
    assert code == 2 and "no stored salt" in err


def test_demo_then_report(demo_db: dict, tmp_path: Path) -> None:
    """What ``demo --format json`` prints (the session's demo database is built by the same
    ``run_demo``, once), then ``report`` over that database."""
    db = demo_db["url"]
    doc = json.loads(to_json(demo_db["report"]))
    code, _, err = run("demo", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--format", "yaml")
    assert code == 2 and "--format" in err  # refused before anything is built
    markets = doc["markets"]
    assert len(markets) == 32
    won = [p for m in markets for p in m["predictions"] if p["reward"]]
    assert won, "the demo pays somebody"
    for m in markets:
        paid = sum(p["reward"] for p in m["predictions"])
        assert paid + m["returned"] == m["pool"]
    assert doc["rejections"]["hash_mismatch"] > 0  # the copycat cannot open copied hashes
    code, out, _ = run("report", "--db", db, "--config", str(tmp_path / "missing.toml"))
    assert code == 2
    demo_cfg = tmp_path / "demo.toml"
    demo_cfg.write_text("[market]\ninclude_replies = true\n")
    ref = f"@{markets[0]['author']}/{markets[0]['permlink']}"
    code, out, _ = run("report", "--db", db, "--config", str(demo_cfg), "--post", ref)
    assert code == 0 and markets[0]["author"] in out
    code, out, _ = run("report", "--db", db, "--config", str(demo_cfg), "--format", "json")
    assert json.loads(out)["markets"] == markets
    code, out, _ = run("rejections", "--db", db, "--config", str(demo_cfg), "--reason",
                       "hash_mismatch", "--limit", "3")
    assert code == 0 and len(out.strip().splitlines()) == 3


def test_import_posts_then_replay(tmp_path: Path, steem_posts: list[dict]) -> None:
    posts = tmp_path / "posts.jsonl"
    posts.write_text("".join(json.dumps(p) + "\n" for p in steem_posts[:40]))
    blocks = tmp_path / "blocks.jsonl.gz"
    code, _, _ = run("import-posts", str(posts), "--out", str(blocks))
    assert code == 0
    db = f"sqlite:///{tmp_path / 'r.db'}"
    code, _, err = run("replay", str(blocks), "--db", db)
    assert code == 0 and "replayed" in err
    code, _, err = run("replay", str(blocks), "--db", db)
    assert code == 0 and "already ingested" in err


def test_a_database_password_is_never_printed() -> None:
    url = "postgresql+psycopg://curator:s3cret@127.0.0.1:1/curation"  # nothing listens on :1
    res = runner.invoke(app, ["report", "--db", url])
    assert res.exit_code == 2
    assert "cannot open database" in res.output and "curator:***@" in res.output
    assert "s3cret" not in res.output
