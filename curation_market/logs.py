"""Logging for the command line: one stderr handler, our messages at ``--log-level``, the
libraries' (beem, urllib3, uvicorn, APScheduler) only from ERROR unless ``-v``.

beem logs a WARNING for every retry of every request ("Lost connection or internal error on
node …", the urllib3 error); shown by default they buried the daemon's own lines, yet the
last of them is the only place that says *why* a node failed (beem's ``NumRetriesReached``
carries no message). So they are filtered at the handler, not at the logger: ``LastProblem``
still sees them and the error a command prints can name the cause.
"""

from __future__ import annotations

import logging
import re
import sys
from collections import deque

OURS = "curation"  # curation.daemon, curation.api, …
LIBRARIES = ("beem", "beemapi", "beembase", "beemgraphenebase", "beemstorage", "urllib3",
             "apscheduler", "uvicorn", "websocket")
LEVELS = ("debug", "info", "warning", "error")


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


class _Shown(logging.Filter):
    """Our records from their logger's level; other libraries' from ``library_level``."""

    def __init__(self, library_level: int):
        super().__init__()
        self.library_level = library_level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == OURS or record.name.startswith(OURS + "."):
            return True
        return record.levelno >= self.library_level


class LastProblem(logging.Handler):
    """Keeps the last few WARNINGs or worse that libraries logged, shown or not."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: deque[str] = deque(maxlen=20)

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(OURS):
            try:
                self.messages.append(record.getMessage().strip())
            except Exception:  # noqa: BLE001 - a bad format string must not break logging
                self.messages.append(str(record.msg))

    @property
    def message(self) -> str:
        """Per host the last connection problem (``host:port: reason``), else the last one."""
        by_host: dict[str, str] = {}
        for text in self.messages:
            short = summarise(text)
            host, sep, _ = short.partition(": ")
            if sep and _HOST.search(text):
                by_host.pop(host, None)
                by_host[host] = short
        if by_host:
            return "; ".join(by_host.values())
        return summarise(self.messages[-1]) if self.messages else ""


last_problem = LastProblem()


def setup(level: str = "info", verbose: int = 0) -> None:
    """Configure the root logger once per command (idempotent: the handlers are reused)."""
    ours = logging.DEBUG if verbose >= 2 else getattr(logging, level.upper())
    library = {0: logging.ERROR, 1: logging.WARNING}.get(verbose, logging.DEBUG)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _Stderr)), None)
    if handler is None:
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root.addHandler(handler)
    handler.filters = [_Shown(library)]
    if last_problem not in root.handlers:
        root.addHandler(last_problem)
    root.setLevel(min(library, logging.WARNING))
    logging.getLogger(OURS).setLevel(ours)
    for name in LIBRARIES:  # WARNING reaches LastProblem; the handler's filter decides display
        logging.getLogger(name).setLevel(min(library, logging.WARNING))


def describe_exception(exc: BaseException) -> str:
    """``Type: message``; an exception with no message (beem's ``NumRetriesReached``) borrows
    the message of the one it was raised from, then the last problem a library logged."""
    text = str(exc).strip()
    inner = exc.__cause__ or exc.__context__
    while not text and inner is not None:
        text = str(inner).strip()
        inner = inner.__cause__ or inner.__context__
    out = type(exc).__name__ + (f": {text}" if text else "")
    return with_cause(out)


_EMPTY_TAIL = re.compile(r"(\w+):\s*$")


def with_cause(message: str) -> str:
    """Complete a failure message that ends in a bare exception name (``…: NumRetriesReached:
    ``) with the last problem a library logged, summarised (``127.0.0.1:9: Connection
    refused``)."""
    message = message.rstrip()
    cause = last_problem.message
    m = _EMPTY_TAIL.search(message)
    if m:
        message = message[:m.end(1)]
    if cause and cause not in message:
        message += f" (last error{'s' if '; ' in cause else ''}: {cause})"
    return message


_HOST = re.compile(r"host='([^']+)', port=(\d+)")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^\"')]+)")


def summarise(problem: str) -> str:
    """urllib3's long retry message → ``host:port: reason``; anything else, trimmed."""
    problem = problem.removeprefix("Error: ").strip()
    if not problem:
        return ""
    host, reason = _HOST.search(problem), _ERRNO.search(problem)
    if "timed out" in problem.lower() and not reason:
        reason_text = "timed out"
    else:
        reason_text = reason.group(1).strip() if reason else ""
    if host and reason_text:
        return f"{host.group(1)}:{host.group(2)}: {reason_text}"
    return problem[:200]
