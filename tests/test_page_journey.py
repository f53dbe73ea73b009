"""A new user's whole journey through the page, in a real headless Chromium, on a live chain.

Issue 14's "done means": the test node (``add_live_posts``: real posts of the bundled 17M
slice, shifted onto the node's clock, paid later), the daemon's own ``follow`` job indexing
it into SQLite, and ``serve``'s app (uvicorn) with the page. On the page a user predicts on
an open live market (the bundled dhive signs with a posting key typed into the dialog),
reveals it by hand with "Reveal now" from the curator's own view; a second account commits
on the page too, its salt leaves the browser through the backup file into the command-line
salt file, and ``curation-market curator --auto-reveal`` (the command, a child process)
reveals it; after
the reveal window the post enters the page's Forecasts view; after the payout the market
page shows the settled reward with its reasons and the curator view the settled result.

Each step's screenshot is taken and the same element's text asserted. The node's clock is
driven by the test in big steps (``advance(n)`` makes n blocks at once); every wait has a
deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine

from curation.chaintime import chain_time
from curation_market.curator import salts
from curation_market.curator.client import KEY_ENV
from curation_market.lab.demo import bundled_posts
from indexer.amounts import DOLLAR, amount_of
from indexer.blockfile import write_blocks
from indexer.ops import op_name_value
from indexer.postdump import import_posts
from tests.browser import serve
from tests.test_devnode_live import SEED  # the one post the live node starts from
from tests.test_page import _coloured_pixels

WINDOW, PERIOD, PAYOUT = 60, 120, 600  # seconds: commit window, reveal period, payout delay
CONFIG = f"""
[market]
window_seconds = {WINDOW}
reveal_period_seconds = {PERIOD}
[node]
batch_size = 100
poll_seconds = 0.05
health_seconds = 60
sweep_seconds = 60
"""
SHOTS = Path("/tmp")
VESTS = "2000000.000000 VESTS"  # both curators hold SP, so a prediction in the band weighs > 0


@dataclass
class Live:
    node: object
    ctx: object
    api: str
    post: dict  # the live post predicted on
    final: int  # its F (milli), from the payout virtual op the node will produce
    wifs: dict[str, str]

    def index(self, timeout: float = 60.0) -> None:
        from curation_market.daemon.jobs import follow

        deadline = time.monotonic() + timeout
        while self.ctx.ingester.checkpoint < self.node.irreversible:
            assert time.monotonic() < deadline, f"stuck at {self.ctx.ingester.checkpoint}"
            follow(self.ctx)
            time.sleep(0.01)

    def advance(self, blocks: int) -> None:
        self.node.advance(blocks)
        self.index()

    def to_time(self, t: int) -> None:
        """Blocks until the last irreversible block's time (what the daemon has indexed) is
        past ``t`` (chain seconds), in one step."""
        now = chain_time(self.node.state.timestamp(self.node.head))
        self.advance(max(1, (t - now) // 3 + 1 + (self.node.head - self.node.irreversible)))

    @property
    def hash(self) -> str:
        return f"#/market/{self.post['author']}/{self.post['permlink']}"

    def market(self) -> dict:
        a, p = self.post["author"], self.post["permlink"]
        return requests.get(f"{self.api}/api/markets/{a}/{p}", timeout=10).json()["market"]


@pytest.fixture()
def live(tmp_path: Path) -> Iterator[Live]:
    from curation_market.api.app import app_from_url
    from curation_market.api.client import ClientSettings
    from curation_market.config import load_settings
    from curation_market.daemon.context import Context
    from curation_market.daemon.run import started
    from curation_market.devnode.node import TestNode

    blocks = import_posts([SEED])
    write_blocks(blocks, tmp_path / "seed.jsonl")
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG)
    db = f"sqlite:///{tmp_path / 'market.db'}"
    # a bundled root post that the dump shows paid more than 0 (a band to land in)
    posts = [p for p in bundled_posts() if not p.get("parent_author")]
    with TestNode.from_files([tmp_path / "seed.jsonl"], head=blocks[0]["block_num"], lag=2,
                             chain="hive") as node:
        plan = node.add_live_posts(posts[:6], lead=30, spacing=30, payout_after=PAYOUT)
        final = {}
        for ops in plan.vops.values():
            for op in ops:
                name, value = op_name_value(op)
                if name == "comment_reward":
                    final[(value["author"], value["permlink"])] = amount_of(value["payout"],
                                                                           DOLLAR)
        post = next(p for p in plan.posts if final.get((p["author"], p["permlink"]), 0) > 10_000)
        wifs = {a: node.add_account(a, vests=VESTS) for a in ("alice", "dave")}
        node.advance(3)  # the seed block irreversible before the daemon looks for it
        ctx = Context.create(load_settings(cfg), [node.url], create_engine(db))
        with started(ctx):
            app = app_from_url(db, ctx.cfg, currency="HBD",
                               client_settings=ClientSettings(chain="hive", node_url=node.url))
            srv, url = serve(app)
            try:
                yield Live(node, ctx, url, post, final[(post["author"], post["permlink"])],
                           wifs)
            finally:
                srv.should_exit = True


def shot(target: object, name: str, **kw: object) -> bytes:
    """A screenshot saved for a human, checked to show something: enough dark (text) pixels,
    not a blank or half-drawn box."""
    import io

    import numpy as np
    from PIL import Image

    png = target.screenshot(path=str(SHOTS / name), **kw)
    px = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    assert int((px < 100).sum()) > 2000, f"{name} shows next to nothing"
    return png


def wait_text(page: object, selector: str, text: str, timeout: int = 15_000) -> None:
    page.wait_for_function("([s, t]) => { const e = document.querySelector(s);"
                           " return e && e.textContent.includes(t); }", arg=[selector, text],
                           timeout=timeout)


def goto(page: object, hash_: str, ready: str) -> None:
    # through the markets view, once it has rendered (a hash change re-renders, even to the
    # same view; and the old view's elements must be gone before `ready` is looked for)
    page.evaluate("location.hash = '#/nowhere'")
    page.wait_for_selector("h2:text-is('Markets')", timeout=15_000)
    page.evaluate(f"location.hash = '{hash_}'")
    try:
        page.wait_for_selector(ready, timeout=15_000)
    except Exception:
        print(page.inner_text("#view"))  # what the page shows instead, for the report
        raise


def auto_reveal(live: Live, tmp: Path, salt_file: Path) -> tuple[subprocess.Popen, Path]:
    """``curation-market curator --auto-reveal`` for dave as a child process (the key in
    its environment variable); returns once it is watching."""
    cfg = tmp / "curator.toml"
    cfg.write_text(f"[market]\nwindow_seconds = {WINDOW}\nreveal_period_seconds = {PERIOD}\n")
    log = tmp / "auto-reveal.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "curation_market", "curator", "--auto-reveal", "--node",
             live.node.url, "--salt-file", str(salt_file), "--config", str(cfg),
             "--poll-seconds", "0.05", "--until-idle", "--max-seconds", "120"],
            env={**os.environ, KEY_ENV: live.wifs["dave"]}, stdout=subprocess.DEVNULL,
            stderr=fh, text=True)
    deadline = time.monotonic() + 60
    while "auto-reveal for dave" not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the process did not start"
        time.sleep(0.05)
    return proc, log


def commit_on_page(page: object, live: Live, account: str, value: int) -> None:
    page.click("#predict")
    page.wait_for_selector("dialog#predict-dialog[open]")
    page.fill("input[name=account]", account)
    page.fill("input[name=prediction]", f"{value // 1000}.{value % 1000:03d}")
    page.fill("input[name=wif]", live.wifs[account])
    page.click("#dialog-go")
    wait_text(page, "#dialog-status", "committed")
    page.click("#dialog-cancel")


def test_new_user_predicts_reveals_sees_the_feed_and_the_reward(browser, live: Live,  # noqa: F811
                                                                tmp_path: Path) -> None:
    t0 = time.monotonic()
    author, permlink = live.post["author"], live.post["permlink"]
    created = chain_time(live.post["created"])
    # the live post appears in a block the node makes now, and the daemon indexes it
    live.to_time(created + 3)
    assert live.market()["phase"] == "open"

    page = browser.new_page(viewport={"width": 1200, "height": 1000}, accept_downloads=True)
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(live.api + "/" + live.hash)
    page.wait_for_selector("#curate[data-phase=open]", timeout=15_000)

    # 1. predict on the open market: alice exactly F, dave 5 % under (both in the band)
    alice_p, dave_p = live.final, live.final * 95 // 100
    commit_on_page(page, live, "alice", alice_p)
    shot(page.locator("#curate"), "journey-1-predicted.png")
    assert "(committed)" in page.inner_text("#stored-here") or \
        "(saved)" in page.inner_text("#stored-here")
    commit_on_page(page, live, "dave", dave_p)
    live.advance(3)
    m = live.market()
    assert m["n_commits"] == 2 and m["sealed"] and all("prediction" not in p
                                                        for p in m["predictions"])
    # dave's salt leaves the browser in the backup file, into the command-line salt file
    with page.expect_download(timeout=10_000) as dl:
        page.click("#backup")
    backup = tmp_path / "backup.json"
    dl.value.save_as(backup)
    salt_file = tmp_path / "salts.json"
    [d] = [e for e in json.loads(backup.read_text())["entries"] if e["predictor"] == "dave"]
    salts.remember(salt_file, d["chain_id"], author, permlink, "dave", int(d["prediction"]),
                   bytes.fromhex(d["salt"]))
    assert salts.load(salt_file)[next(iter(salts.load(salt_file)))]["commitment"] == \
        d["commitment"]  # the page's hash is the client's hash
    # ... where `curation-market curator --auto-reveal` (the real command) watches it
    proc, log = auto_reveal(live, tmp_path, salt_file)

    # 2. the commit window closes: the curator's own view offers "Reveal now" (API ∪ salts)
    live.to_time(created + WINDOW + 1)
    goto(page, "#/curator/alice", "#own button.reveal-now")
    own = page.inner_text("#own")
    assert "1 to reveal" in own and "reveal now" in own and "revealing" in own
    assert f"{alice_p // 1000}.{alice_p % 1000:03d}" in own  # from this browser, not the API
    shot(page.locator("#own"), "journey-2-reveal-due.png")
    # another browser (no salts): the same view, no value and no button, it says what to do
    other = browser.new_context()
    elsewhere = other.new_page()
    elsewhere.goto(live.api + "/#/curator/alice")
    elsewhere.wait_for_selector("#own")
    there = elsewhere.inner_text("#own")
    assert "no salt in this browser" in there and "curator --auto-reveal" in there
    assert elsewhere.locator("#own button").count() == 1  # only the hidden key form's
    assert f"{alice_p // 1000}.{alice_p % 1000:03d}" not in elsewhere.inner_text("body")
    other.close()
    page.click("#own button.reveal-now")
    # the page's memory holds dave's key (the last commit): it asks for alice's, then reveals
    page.wait_for_selector("#own-key:not([hidden])", timeout=10_000)
    page.fill("#own-wif", live.wifs["alice"])
    page.click("#own-go")
    wait_text(page, "#own-status", "revealed for alice")
    # dave: the command reveals from the salt file in the block after the window opened
    deadline = time.monotonic() + 60
    while live.market()["n_revealed"] < 2:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        live.advance(1)
        time.sleep(0.1)
    [entry] = salts.load(salt_file).values()  # the command's own record of what it sent
    assert entry["auto_reveal"]["trx_id"] in {inc.trx_id for inc in live.node.included}
    m = live.market()
    assert m["n_revealed"] == 2 and m["sealed"]  # revealed, still sealed until the period ends
    goto(page, "#/curator/alice", "#own")
    own = page.inner_text("#own")
    assert "0 to reveal" in own and "revealed" in own
    shot(page.locator("#own"), "journey-3-revealed.png")

    # 3. after the reveal period: the post enters the page's Forecasts view
    goto(page, "#/forecasts", "#quality")
    assert page.locator(f"tr[data-post='{author}/{permlink}']").count() == 0  # still sealed
    live.to_time(created + WINDOW + PERIOD + 1)
    assert proc.wait(timeout=30) == 0, log.read_text()  # --until-idle: its window passed
    [entry] = salts.load(salt_file).values()
    assert entry["auto_reveal"]["status"] == "included" and entry["salt"] == d["salt"]
    feed = requests.get(f"{live.api}/api/forecasts", timeout=10).json()["items"]
    [item] = [f for f in feed if (f["author"], f["permlink"]) == (author, permlink)]
    assert item["predictions"] == 2 and item["phase"] == "closed"
    goto(page, "#/forecasts", f"tr[data-post='{author}/{permlink}']")
    row = page.inner_text(f"tr[data-post='{author}/{permlink}']")
    forecast = item["forecast_milli"]
    assert f"{forecast // 1000}.{forecast % 1000:03d}" in row and "closed" in row
    assert dave_p <= forecast <= alice_p
    assert page.inner_text("#q-markets") == "0"  # nothing settled yet: no track record
    shot(page, "journey-4-forecasts.png", full_page=True)

    # 4. the payout: the market page shows the reward and its reasons
    live.to_time(created + PAYOUT + 3)
    m = live.market()
    assert m["phase"] == "settled" and m["settlement"]["final_payout"] == live.final
    preds = {p["predictor"]: p for p in m["predictions"]}
    assert preds["alice"]["qualified"] and preds["dave"]["qualified"]
    assert preds["alice"]["reward"] > 0 and preds["dave"]["reward"] > 0
    goto(page, live.hash, "#curate[data-phase=settled]")
    page.wait_for_selector("canvas#chart[data-drawn='2']")
    won = page.inner_text(".won")
    assert "Won" in won and "alice" in won and "dave" in won and "2 of 2" in won
    body = page.inner_text("#view")
    ra = preds["alice"]["reward"]
    assert f"{ra // 1000}.{ra % 1000:03d}" in body and preds["alice"]["why"] in body
    png = shot(page, "journey-5-settled.png", full_page=True)
    # both winners' points drawn in the rewarded colour on the chart, in the screenshot
    assert _coloured_pixels(png, page.locator("canvas#chart").bounding_box()) > 60

    # ... the curator view the settled result with every factor, and the feed its quality
    goto(page, "#/curator/alice", "#own")
    own = page.inner_text("#own")
    assert "Open commitments 0 to reveal" in own.replace("\n", " ") or "none" in own
    assert f"{ra // 1000}.{ra % 1000:03d}" in own and preds["alice"]["why"] in own
    shot(page.locator("#own"), "journey-6-curator.png")
    goto(page, "#/forecasts?phase=settled", f"tr[data-post='{author}/{permlink}']")
    q = requests.get(f"{live.api}/api/forecasts/quality", timeout=10).json()
    assert q["markets"] == 1 and page.inner_text("#q-markets") == "1"
    abs_err = q["median_abs_error"]
    assert abs_err == abs(forecast - live.final)
    assert page.inner_text("#q-abs") == f"{abs_err // 1000}.{abs_err % 1000:03d}"
    assert not page.errors, page.errors
    page.close()
    assert time.monotonic() - t0 < 120
