"""Block files as an operator hands them over: pipes, chunks, truncated gzip, odd values.

Each test here failed before its fix (issue "Never lose, never leak, never wedge").
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from pathlib import Path

import orjson

from indexer.blockfile import TRUNCATED, BadLine, read_blocks
from tests.helpers import ingest, market_stream, new_store, report_json

DEADLINE = 120  # seconds for any child process or writer thread here


def _lines(blocks: list[dict]) -> bytes:
    return b"".join(orjson.dumps(b) + b"\n" for b in blocks)


def _blocks() -> list[dict]:
    return market_stream(posts=3, curators=4).blocks()


def _report(source: list, db: Path) -> dict:
    store = new_store(f"sqlite:///{db}")
    ingest(store, source)
    return orjson.loads(report_json(store))


def test_a_fifo_is_read_whole_gzipped_or_not(tmp_path: Path) -> None:
    """Was: the gzip sniff read the pipe's first buffer, then reopened it: the start of the
    input was lost ("replayed 0 blocks", exit 0). Now a FIFO reads exactly like a file."""
    blocks = _blocks()
    ref = _report(blocks, tmp_path / "ref.db")
    for name, data in (("plain", _lines(blocks)), ("gz", gzip.compress(_lines(blocks)))):
        fifo = tmp_path / f"{name}.fifo"
        os.mkfifo(fifo)

        def feed(path: Path = fifo, payload: bytes = data) -> None:
            with open(path, "wb") as fh:
                fh.write(payload)

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        got = list(read_blocks([fifo]))
        writer.join(DEADLINE)
        assert got == blocks, name
        assert _report(got, tmp_path / f"{name}.db") == ref


def _cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("curation-market")
    return subprocess.run([str(exe), *args], input=stdin, capture_output=True,
                          timeout=DEADLINE)


def test_replay_from_stdin_through_the_cli(tmp_path: Path) -> None:
    blocks = _blocks()
    path = tmp_path / "blocks.jsonl"
    path.write_bytes(_lines(blocks))
    dbs = [f"sqlite:///{tmp_path / name}" for name in ("stdin.db", "file.db")]
    piped = _cli("replay", "-", "--db", dbs[0], stdin=gzip.compress(_lines(blocks)))
    assert piped.returncode == 0, piped.stderr.decode()
    assert f"replayed {len(blocks)} blocks" in piped.stderr.decode()
    assert _cli("replay", str(path), "--db", dbs[1]).returncode == 0
    reports = [_cli("report", "--format", "json", "--db", db).stdout for db in dbs]
    assert reports[0] == reports[1] and orjson.loads(reports[0])["markets"]


def test_leading_bad_lines_of_each_chunk_are_all_kept(tmp_path: Path) -> None:
    """Was: a broken first line of a resumed chunk was keyed (0, -1, 1), so the second such
    chunk's row collided and vanished: 2 recorded where 3 were read. Re-reading a chunk
    still adds nothing."""
    blocks = _blocks()
    chunks = [blocks[:4], blocks[4:8], blocks[8:]]
    paths = []
    for i, chunk in enumerate(chunks):
        path = tmp_path / f"chunk{i}.jsonl"
        path.write_bytes(b"{broken\n" + _lines(chunk))
        paths.append(path)
    store = new_store(f"sqlite:///{tmp_path / 'chunks.db'}")
    for path in [*paths, paths[1]]:
        ingest(new_store(store.engine), read_blocks([path]))
    doc = orjson.loads(report_json(store))
    assert doc["rejections"] == {"malformed_block": 3}
    assert {**doc, "rejections": {}} == {**_report(blocks, tmp_path / "ref.db"),
                                         "rejections": {}}


def test_one_odd_value_does_not_cost_the_block_its_other_ops(tmp_path: Path) -> None:
    """Was: a lone-surrogate escape or 1e309 anywhere in a line dropped the whole block with
    one rejection. Now the line is read by the standard parser; the odd values sit in ops the
    market ignores (a transfer memo), so the block's market ops all count."""
    blocks = _blocks()
    odd = []
    for i, block in enumerate(blocks):
        line = orjson.dumps(block)
        if i % 3 == 0 and block.get("transactions"):
            junk = (b'{"operations": [["transfer", {"from": "x", "to": "y", "amount": 1e309, '
                    b'"memo": "\\ud800"}]]}')
            line = line.replace(b'"transactions":[', b'"transactions":[' + junk + b",", 1)
        odd.append(line + b"\n")
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"".join(odd))
    got = list(read_blocks([path]))
    assert not [g for g in got if isinstance(g, BadLine)]
    ref = _report(blocks, tmp_path / "ref.db")
    assert _report(got, tmp_path / "odd.db") == ref


def test_a_line_nobody_can_parse_says_how_many_ops_it_held(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_bytes(b'{"transactions": [{"operations": [["vote", {}], ["vote", {}]]}], '
                     b'"x": ' + b"[" * 5000 + b"\n")
    (bad,) = list(read_blocks([path]))
    assert isinstance(bad, BadLine) and "about 2 ops lost" in bad.reason


def test_a_truncated_gzip_names_the_file_and_line_and_keeps_what_was_read(
        tmp_path: Path) -> None:
    """Was: the replay died with only "Aborted." (exit 1). Now the file and the line it
    stopped at are named, the readable blocks are kept, and the exit code says so."""
    blocks = _blocks()
    data = gzip.compress(_lines(blocks) * 40)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    got = list(read_blocks([path]))
    assert isinstance(got[-1], BadLine) and got[-1].reason.startswith(TRUNCATED)
    assert got[-1].line_no == len(got)
    assert all(isinstance(g, dict) for g in got[:-1]) and len(got) > len(blocks)
    p = _cli("replay", str(path), "--db", f"sqlite:///{tmp_path / 'cut.db'}")
    err = p.stderr.decode()
    assert p.returncode == 2, err  # the CLI's "error:" exit code
    assert str(path) in err and f":{len(got)}:" in err and "truncated" in err


def test_a_block_id_longer_than_a_real_one_is_refused_before_the_checkpoint(
        tmp_path: Path) -> None:
    """Was (PostgreSQL): a 41+ character block id passed the adapter and overflowed
    meta.last_block_id VARCHAR(40) on every rerun. Now it is a malformed block."""
    blocks = _blocks()
    bad = dict(blocks[-1], block_num=blocks[-1]["block_num"] + 1, block_id="f" * 41)
    doc = _report([*blocks, bad], tmp_path / "long.db")
    assert doc["rejections"] == {"malformed_block": 1}
