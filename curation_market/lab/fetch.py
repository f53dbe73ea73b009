"""``curation-market fetch``: a node's blocks, with their virtual ops, archived as block files.

Why this shape: an operator who wants to ask "how would these rule sets have paid on the last
month of my chain?" needs that month on disk in the form the replay reads, once, however many
times it is then evaluated. hivemind's sync keeps its place in the database it writes
(``hive/indexer/sync.py``: the last block of each committed batch), and sbds' ``stream-blocks``
writes blocks as JSON lines; this module does both for files:

- the range ``--from..--to`` is cut into chunks of ``chunk_blocks`` blocks at fixed
  boundaries, each written as ``blocks-FIRST-LAST.jsonl.gz`` (the replay's own block-file
  format, :mod:`indexer.blockfile`, block dicts with ``virtual_ops`` and, on Steem,
  ``post_votes``: exactly what :class:`indexer.chain.NodeClient` gives the daemon);
- a chunk is written to a temporary name and renamed when complete, then recorded in
  ``manifest.json`` (also written by temp + rename), so a killed run leaves only whole chunks
  and a restart continues after the last one. The gzip header carries no time and no name,
  so a chunk's bytes depend only on the blocks: an interrupted and resumed fetch gives the
  same files as one run through;
- only irreversible blocks are archived (a chunk must never change after it is written);
- blocks come through :meth:`NodeClient.blocks`, which keeps within the node's batch limits
  (jussi's 50 calls, a proxy's 413), fails over between nodes and refuses virtual ops that an
  account-history backend has not filled in yet (``producer_reward`` check).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from indexer.chain import ChainError, NodeClient, VopsIncomplete

MANIFEST = "manifest.json"
FORMAT = "curation-market-archive/1"


class FetchError(RuntimeError):
    """The archive cannot be made or continued as asked (said in so many words)."""


@dataclass
class Chunk:
    file: str
    first: int
    last: int
    ops: int
    sha256: str


@dataclass
class Archive:
    """What ``manifest.json`` holds: the range asked for and the chunks written so far."""

    chain: str
    first: int
    last: int
    chunk_blocks: int
    chunks: list[Chunk] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return bool(self.chunks) and self.chunks[-1].last == self.last

    @property
    def next_block(self) -> int:
        return self.chunks[-1].last + 1 if self.chunks else self.first

    def files(self, root: Path) -> list[Path]:
        return [root / c.file for c in self.chunks]

    def dump(self) -> bytes:
        return orjson.dumps({"format": FORMAT, "chain": self.chain, "from": self.first,
                             "to": self.last, "chunk_blocks": self.chunk_blocks,
                             "chunks": [c.__dict__ for c in self.chunks]},
                            option=orjson.OPT_INDENT_2)

    @classmethod
    def load(cls, path: Path) -> Archive:
        try:
            doc = orjson.loads(path.read_bytes())
            if doc.get("format") != FORMAT:
                raise FetchError(f"{path}: not a {FORMAT} manifest")
            return cls(doc["chain"], int(doc["from"]), int(doc["to"]), int(doc["chunk_blocks"]),
                       [Chunk(**c) for c in doc["chunks"]])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise FetchError(f"{path}: unreadable manifest ({exc})") from None


def write_atomic(path: Path, data: bytes) -> None:
    """Temp file, fsync, rename: a reader (or a restart) sees the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def chunk_bytes(blocks: list[dict]) -> bytes:
    """JSON lines, gzipped without a time or a name in the header: same blocks, same bytes."""
    body = b"".join(orjson.dumps(b) + b"\n" for b in blocks)
    return gzip.compress(body, compresslevel=6, mtime=0)


def open_archive(out: Path, chain: str, first: int, last: int, chunk_blocks: int) -> Archive:
    """The manifest of ``out`` if it is this range's (resume), else a new one. A manifest for
    another range or chain is refused rather than mixed in."""
    path = out / MANIFEST
    if not path.exists():
        return Archive(chain, first, last, chunk_blocks)
    old = Archive.load(path)
    if (old.chain, old.first, old.chunk_blocks) != (chain, first, chunk_blocks):
        raise FetchError(f"{out} holds an archive of {old.chain} from block {old.first:,} in "
                         f"chunks of {old.chunk_blocks:,}; asked: {chain} from {first:,} in "
                         f"chunks of {chunk_blocks:,} (use another --out)")
    if last < old.next_block - 1:
        raise FetchError(f"{out} already holds blocks up to {old.next_block - 1:,}, past "
                         f"--to {last:,}")
    old.last = last  # a longer range continues the same archive
    # a chunk recorded but missing or changed on disk is fetched again, with all after it
    for i, c in enumerate(old.chunks):
        f = out / c.file
        if not f.exists() or hashlib.sha256(f.read_bytes()).hexdigest() != c.sha256:
            del old.chunks[i:]
            break
    return old


Progress = Callable[[int, int, int, float], None]  # blocks done, ops done, last block, seconds


def fetch(client: NodeClient, out: Path, first: int, last: int | None = None,
          chunk_blocks: int = 10_000, batch_blocks: int = 100, progress: Progress | None = None,
          history_wait: float = 600.0, poll: float = 0.5,
          stop: Callable[[], bool] | None = None) -> Archive:
    """Archive blocks ``first..last`` (default: the node's last irreversible block).

    ``stop`` is asked after each chunk (tests interrupt a run with it; a real interruption is a
    kill, which the temp + rename writes survive the same way).
    """
    if first < 1:
        raise FetchError("--from must be a block number ≥ 1")
    node = client.state()
    target = node.irreversible if last is None else last
    if target < first:
        raise FetchError(f"--to {target:,} is before --from {first:,}")
    if target > node.irreversible:
        raise FetchError(f"block {target:,} is not irreversible yet on {node.url} (LIB "
                         f"{node.irreversible:,}); an archive holds only blocks that cannot "
                         "change")
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.tmp"):
        stale.unlink()
    chain = client.profile().name
    archive = open_archive(out, chain, first, target, chunk_blocks)
    started, done_blocks, done_ops = time.monotonic(), 0, 0
    while not archive.complete:
        lo = archive.next_block
        hi = min(archive.last, first + ((lo - first) // chunk_blocks + 1) * chunk_blocks - 1)
        blocks = _range(client, lo, hi, batch_blocks, history_wait, poll)
        data = chunk_bytes(blocks)
        name = f"blocks-{lo:010d}-{hi:010d}.jsonl.gz"
        write_atomic(out / name, data)
        ops = sum(len(t.get("operations") or []) for b in blocks
                  for t in b.get("transactions") or []) + sum(len(b.get("virtual_ops") or [])
                                                              for b in blocks)
        archive.chunks.append(Chunk(name, lo, hi, ops, hashlib.sha256(data).hexdigest()))
        write_atomic(out / MANIFEST, archive.dump())
        done_blocks, done_ops = done_blocks + len(blocks), done_ops + ops
        if progress:
            progress(done_blocks, done_ops, hi, time.monotonic() - started)
        if stop is not None and stop() and not archive.complete:
            break
    if archive.complete:
        write_atomic(out / MANIFEST, archive.dump())
    return archive


def _range(client: NodeClient, lo: int, hi: int, batch_blocks: int, history_wait: float,
           poll: float) -> list[dict]:
    """Blocks lo..hi in node batches; a batch cut short (untrusted virtual ops) continues where
    it stopped; a block whose virtual ops stay missing for ``history_wait`` s stops the fetch."""
    out: list[dict] = []
    nxt, waiting_since = lo, None
    while nxt <= hi:
        try:
            got = client.blocks(nxt, min(hi, nxt + batch_blocks - 1))
        except ChainError as exc:
            if not isinstance(exc.last, VopsIncomplete):
                raise
            now = time.monotonic()
            waiting_since = waiting_since or now
            if now - waiting_since > history_wait:
                raise FetchError(f"gave up after {history_wait:.0f} s: {exc}") from None
            time.sleep(poll)
            continue
        waiting_since = None
        if not got:
            raise FetchError(f"{client.url} returned no block from {nxt:,}")
        for b in got:
            if b.get("block_num") != nxt:
                raise FetchError(f"{client.url} answered block {b.get('block_num')} for {nxt:,}")
            nxt += 1
        out += got
    return out
