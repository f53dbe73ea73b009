"""Reading JSON-lines block files (optionally gzipped) as a stream of block dicts.

Lines are parsed lazily, one at a time, so memory does not grow with the file. A line that is
not JSON is handed on as a :class:`BadLine` so the ingester can record it instead of dying.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson


@dataclass(frozen=True, slots=True)
class BadLine:
    source: str
    line_no: int
    reason: str


def open_text(path: str | Path) -> IO[bytes]:
    path = Path(path)
    with path.open("rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")


def read_blocks(paths: Iterable[str | Path]) -> Iterator[dict | BadLine]:
    for path in paths:
        with open_text(path) as fh:
            loads = orjson.loads
            for line_no, line in enumerate(fh, 1):
                try:
                    yield loads(line)
                except orjson.JSONDecodeError as exc:
                    if line.strip():  # blank lines are allowed; strip only on the rare error
                        yield BadLine(str(path), line_no, str(exc)[:120])


def write_blocks(blocks: Iterable[dict], path: str | Path) -> int:
    """Write block dicts as JSON lines (gzip when the name ends in .gz); returns the count."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    n = 0
    with opener(path, "wb") as fh:
        for block in blocks:
            fh.write(orjson.dumps(block) + b"\n")
            n += 1
    return n
