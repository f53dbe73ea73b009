"""Reading JSON-lines block files (optionally gzipped) as a stream of block dicts.

Lines are parsed lazily, one at a time, so memory does not grow with the file. A line that is
not JSON is handed on as a :class:`BadLine` so the ingester can record it instead of dying.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import orjson

from curation.records import Block

if TYPE_CHECKING:
    from indexer.ops import Adapter


@dataclass(frozen=True, slots=True)
class BadLine:
    source: str
    line_no: int
    reason: str


@contextmanager
def open_text(path: str | Path) -> Iterator[IO[bytes]]:
    """Open a block file, FIFO, pipe or ``-`` (stdin) exactly once, gunzipping by magic.

    The gzip test peeks at the first bytes through the same buffered stream that is then
    read: a pipe cannot be reopened, and reopening it lost the start of the input.
    """
    raw: IO[bytes] = sys.stdin.buffer if str(path) == "-" else open(path, "rb")  # noqa: SIM115
    try:
        stream = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
        if stream.peek(2)[:2] == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=stream, mode="rb") as gz:
                yield gz  # type: ignore[misc]
        else:
            yield stream
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()


def read_blocks(paths: Iterable[str | Path],
                adapter: Adapter | None = None) -> Iterator[dict | Block | BadLine]:
    """Block dicts, or a :class:`BadLine` for each line that cannot be read.

    Given the ingester's ``adapter``, a line is first offered to the fast path
    (:class:`indexer.fastblock.FastDecoder`), which yields it already adapted as a
    :class:`Block`; a line the fast path is not certain of is read as below, unchanged.

    A line orjson refuses (a lone surrogate escape, ``1e309``) is read again by the standard
    library's parser, which takes both: a bad value in an op nobody looks at must not cost the
    block its other ops, and the adapter still refuses such values where they matter. A
    truncated or corrupt gzip stream ends the file with a BadLine naming the line it stopped
    at, instead of an exception.
    """
    fast = None
    if adapter is not None:
        from indexer.fastblock import FastDecoder

        fast = FastDecoder(adapter).decode
    for path in paths:
        line_no = 0
        with open_text(path) as fh:
            loads = orjson.loads
            try:
                for line_no, line in enumerate(fh, 1):  # noqa: B007 - read after the loop
                    if fast is not None:
                        block = fast(line)
                        if block is not None:
                            yield block
                            continue
                    try:
                        yield loads(line)
                    except orjson.JSONDecodeError as exc:
                        if line.strip():  # blank lines are allowed; strip only on an error
                            yield _reread(line, str(path), line_no, exc)
            except (EOFError, OSError, zlib.error) as exc:
                yield BadLine(str(path), line_no + 1,
                              f"{TRUNCATED}: {type(exc).__name__}: {exc}"[:160])


TRUNCATED = "unreadable input (truncated or corrupt)"


def _reread(line: bytes, source: str, line_no: int, exc: Exception) -> dict | BadLine:
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return BadLine(source, line_no, f"{str(exc)[:100]} ({_op_count(line)})")
    if not isinstance(value, dict):
        return BadLine(source, line_no, f"not a JSON object ({_op_count(line)})")
    return value


def _op_count(line: bytes) -> str:
    """How many ops an unreadable block line held, as near as the raw text tells."""
    n = line.count(b'_operation"') + line.count(b'", {') + line.count(b'",{')
    return f"about {n} ops lost" if n else "no ops recognised"


def write_blocks(blocks: Iterable[dict], path: str | Path) -> int:
    """Write block dicts as JSON lines (gzip when the name ends in .gz); returns the count.
    The gzip header carries no time and no name: the same blocks give the same bytes."""
    path = Path(path)
    n = 0
    with open(path, "wb") as raw:
        fh = gzip.GzipFile("", "wb", 6, raw, mtime=0) if path.suffix == ".gz" else raw
        with fh:
            for block in blocks:
                fh.write(orjson.dumps(block) + b"\n")
                n += 1
    return n
