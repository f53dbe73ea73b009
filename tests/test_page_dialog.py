"""The curation dialog in a real headless Chromium, against real parts only.

The chain is ``curation_market.devnode`` on a loopback port (it checks TaPoS, expiration and
the signatures against the accounts' posting keys, and includes a valid transaction in its
next block); the daemon's own jobs (``follow``) index it into SQLite; the API (uvicorn) serves
that database and the page. The browser computes the commitment with Web Crypto, stores the
salt, signs with the bundled dhive (a posting key typed into the dialog) and broadcasts to the
node itself; the API then shows what the daemon indexed. Keychain is the one stand-in: a
``window.hive_keychain`` object defined by the test (the extension cannot run headless), which
records the request and answers as Keychain does.

The market is a real post (``import_posts``) paid 45 minutes after it was created, so one chain
walks through open (30 min) → revealing → settled. Every wait has a deadline.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine

from curation.commitment import commitment
from curation_market.curator.ops import commit_payload, custom_json_op, reveal_payload
from tests.browser import serve

POST = {  # a root post paid 45 minutes after it appeared (as in test_client)
    "author": "bob", "permlink": "hello-market", "parent_author": "", "parent_permlink": "test",
    "title": "hello", "created": "2017-11-07T01:00:00", "last_payout": "2017-11-07T01:45:00",
    "total_payout_value": "9.000 SBD", "curator_payout_value": "3.345 SBD",
    "active_votes": [{"voter": "carol", "weight": 100, "rshares": 5_000_000, "percent": 10000,
                      "time": "2017-11-07T01:10:00"}],
}
MARKET = "#/market/bob/hello-market"
VECTOR = "f6fd7b2a961b547177d7e345123bd044a48571de689616e4360dbf7e8fddfcdd"  # spec §2
SHOTS = Path("/tmp")  # screenshots for a human to look at (also asserted on below)


@dataclass
class Chain:
    node: object
    ctx: object
    api: str
    wif: str
    chain_id: str

    def index(self, timeout: float = 30.0) -> None:
        """The daemon's follow job until it has written the node's last irreversible block."""
        from curation_market.daemon.jobs import follow

        deadline = time.monotonic() + timeout
        while self.ctx.ingester.checkpoint < self.node.irreversible:
            assert time.monotonic() < deadline, f"stuck at {self.ctx.ingester.checkpoint}"
            follow(self.ctx)
            time.sleep(0.02)

    def advance(self, blocks: int) -> None:
        self.node.advance(blocks)
        self.index()

    def market(self) -> dict:
        return requests.get(f"{self.api}/api/markets/bob/hello-market", timeout=10).json()["market"]


def make_chain(tmp_path: Path, name: str, staked: str | None = None,
               market: str = "") -> Iterator[Chain]:
    from curation_market.api.app import app_from_url
    from curation_market.api.client import ClientSettings
    from curation_market.config import load_settings
    from curation_market.daemon.context import Context
    from curation_market.daemon.run import started
    from curation_market.devnode.node import TestNode
    from indexer.blockfile import write_blocks
    from indexer.postdump import import_posts

    blocks = import_posts([POST])
    write_blocks(blocks, tmp_path / "blocks.jsonl")
    first = blocks[0]["block_num"]
    cfg = tmp_path / "config.toml"
    cfg.write_text("[node]\npoll_seconds = 0.05\nbatch_size = 100\nhealth_seconds = 60\n"
                   "sweep_seconds = 60\n" + market)
    db = f"sqlite:///{tmp_path / 'market.db'}"
    with TestNode.from_files([tmp_path / "blocks.jsonl"], head=first + 3, lag=1,
                             chain=name) as node:
        node.serve_as(posts=[POST])  # its votes, asked at payout (no effective_comment_vote)
        wif = node.add_account("alice")
        ctx = Context.create(load_settings(cfg), [node.url], create_engine(db))
        with started(ctx):
            chain = Chain(node, ctx, "", wif, node.state.chain_id)
            chain.index()
            app = app_from_url(db, ctx.cfg, currency="HBD" if name == "hive" else "SBD",
                               client_settings=ClientSettings(chain=name, node_url=node.url,
                                                              staked=staked))
            srv, chain.api = serve(app)
            try:
                yield chain
            finally:
                srv.should_exit = True


@pytest.fixture()
def steem(tmp_path: Path) -> Iterator[Chain]:
    yield from make_chain(tmp_path, "steem")


@pytest.fixture()
def hive(tmp_path: Path) -> Iterator[Chain]:
    yield from make_chain(tmp_path, "hive")


@pytest.fixture()
def short(tmp_path: Path) -> Iterator[Chain]:
    """Windows of 2 and 5 minutes: the reveal window closes long before the 45-minute payout."""
    yield from make_chain(tmp_path, "steem",
                          market="[market]\nwindow_seconds = 120\nreveal_period_seconds = 300\n")


@pytest.fixture()
def staked(tmp_path: Path) -> Iterator[Chain]:
    yield from make_chain(tmp_path, "steem", staked="numerai-2018")


def open_market(browser: object, chain: Chain, init: str | None = None) -> object:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    if init:
        page.add_init_script(init)
    page.goto(chain.api + "/" + MARKET)
    page.wait_for_selector("#curate[data-phase]", timeout=15_000)
    return page


def predict_with_key(page: object, account: str, prediction: str, wif: str) -> None:
    """The dialog filled and sent on the posting-key path, until it says "committed"."""
    page.click("#predict")
    page.fill("input[name=account]", account)
    page.fill("input[name=prediction]", prediction)
    page.fill("input[name=wif]", wif)
    page.click("#dialog-go")
    page.wait_for_function("document.getElementById('dialog-status').textContent"
                           ".startsWith('committed')", timeout=15_000)
    page.click("#dialog-cancel")


def stored(page: object) -> list[dict]:
    return page.evaluate("curate.entries()")


# --- the commitment and the payloads: JS equals Python ----------------------------------------

WORDS = ["a", "dtube-0-3", "héllo", "e\u0301t\u00e9", "\u00e9t\u00e9", "漢字-post", "😀-emoji",
         "ß", "x" * 40, "привет-мир", "\u0000nul", "tab\there", '"quoted"\\', "\u007fdel", "-"]


def random_cases(rng: random.Random, n: int) -> list[dict]:
    cases = []
    for i in range(n):
        def word() -> str:
            return "".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
        staked = i % 3 == 0
        cases.append({
            "chain_id": rng.choice(["0" * 64, "beeab0de" + "0" * 56, rng.randbytes(32).hex()]),
            "author": word(), "permlink": word(), "predictor": word(),
            "prediction": rng.choice([0, 1, 999, 95000, rng.randrange(10**18)]),
            "salt": rng.randbytes(32).hex(),
            "stake": rng.randrange(10**12) if staked else None,
            "bid": rng.randint(0, 1000) if staked and i % 2 == 0 else None,
        })
    return cases


def test_browser_commitment_equals_the_spec_and_python(browser, steem: Chain) -> None:
    page = open_market(browser, steem)
    got = page.evaluate("""() => curate.commitment('0'.repeat(64), 'heimindanger', 'dtube-0-3',
        'alice', 95000, Uint8Array.from({length: 32}, (_, i) => i))""")
    assert got == VECTOR
    cases = random_cases(random.Random(14), 300)
    js = page.evaluate("""async (cases) => {
        const out = [];
        for (const c of cases) {
          const cm = await curate.commitment(c.chain_id, c.author, c.permlink, c.predictor,
            String(c.prediction), c.salt, c.stake === null ? null : String(c.stake),
            c.bid === null ? null : String(c.bid));
          const e = {...c, prediction: String(c.prediction),
                     stake: c.stake === null ? null : String(c.stake),
                     bid: c.bid === null ? null : String(c.bid)};
          out.push([cm,
            curate.customJsonOp('curation_market', c.predictor,
                                curate.commitPayload(c.author, c.permlink, cm))[1].json,
            curate.customJsonOp('curation_market', c.predictor, curate.revealPayload(e))[1].json]);
        }
        return out;
    }""", [{k: str(v) if isinstance(v, int) else v for k, v in c.items()} for c in cases])
    # (integers go over as strings: JSON numbers lose digits past 2**53 on the way in)
    for case, (js_c, js_commit, js_reveal) in zip(cases, js, strict=True):
        py_c = commitment(case["chain_id"], case["author"], case["permlink"], case["predictor"],
                          case["prediction"], bytes.fromhex(case["salt"]), case["stake"],
                          case["bid"])
        assert js_c == py_c, case
        bid = case["bid"]  # thousandths, as the payload builders take it
        py_commit = custom_json_op("curation_market", case["predictor"], commit_payload(
            case["chain_id"], case["author"], case["permlink"], case["predictor"],
            case["prediction"], bytes.fromhex(case["salt"]), case["stake"], bid))
        py_reveal = custom_json_op("curation_market", case["predictor"], reveal_payload(
            case["author"], case["permlink"], case["prediction"], bytes.fromhex(case["salt"]),
            case["stake"], bid))
        assert (js_commit, js_reveal) == (py_commit[1]["json"], py_reveal[1]["json"]), case
    # no normalisation, as Python: NFC and NFD spellings of one word hash apart
    nfc, nfd = (page.evaluate(f"""() => curate.commitment('0'.repeat(64), 'bob', '{w}', 'alice',
        1, '00'.repeat(32))""") for w in ("\u00e9t\u00e9", "e\u0301te\u0301"))
    assert nfc != nfd and nfc == commitment("0" * 64, "bob", "\u00e9t\u00e9", "alice", 1,
                                            bytes(32))
    # what Python refuses, the page refuses too (never a silently different hash)
    for bad in ("'\\ud800'", "'x'"):
        err = page.evaluate(f"""() => curate.commitment('0'.repeat(64), {bad}, 'p', 'a', 1,
            {"'00'.repeat(31)" if bad == "'x'" else "'00'.repeat(32)"}).then(() => null,
            (e) => e.message)""")
        assert err and ("surrogate" in err or "32 bytes" in err)
    assert not page.errors
    page.close()


# --- the whole cycle with the bundled signing library -------------------------------------------

def test_commit_and_reveal_signed_in_the_browser_reach_the_api(browser, steem: Chain) -> None:
    page = open_market(browser, steem)
    # open: the Predict button and the countdowns to the window's ends, in chain time
    panel = page.inner_text("#curate")
    assert "open" in panel and "commits close in" in panel and "reveals open in" in panel
    assert "0 commitments so far" in panel
    page.click("#predict")
    page.wait_for_selector("dialog#predict-dialog[open]")
    page.fill("input[name=account]", "alice")
    page.fill("input[name=prediction]", "12.000")
    page.fill("input[name=wif]", steem.wif)
    png = page.locator("dialog#predict-dialog").screenshot(path=str(SHOTS / "dialog-open.png"))
    assert len(png) > 1000 and "commits close in" in page.inner_text("dialog#predict-dialog")

    # the salt must be in localStorage when the signed transaction leaves the page
    at_broadcast: list[list[dict]] = []

    def watch(route) -> None:  # noqa: ANN001 - playwright's Route
        body = route.request.post_data or ""
        if "broadcast_transaction" in body:
            at_broadcast.append(stored(page))
            trx = json.loads(body)["params"][0]
            at_broadcast.append(trx)
        route.continue_()

    page.route(steem.node.url + "/**", watch)
    page.click("#dialog-go")
    page.wait_for_function("document.getElementById('dialog-status').textContent"
                           ".startsWith('committed')", timeout=15_000)
    assert page.inner_text("#dialog-cancel") == "Close"
    page.click("#dialog-cancel")
    [entry], trx = at_broadcast
    assert entry["state"] == "saved" and len(entry["salt"]) == 64  # stored, not yet sent
    sent = json.loads(trx["operations"][0][1]["json"])
    assert sent == {"v": 1, "op": "commit", "author": "bob", "permlink": "hello-market",
                    "commitment": commitment(steem.chain_id, "bob", "hello-market", "alice",
                                             12000, bytes.fromhex(entry["salt"]))}
    # the node verified the signature and included it; the daemon indexed it; the API shows it
    steem.advance(3)
    [after] = stored(page)
    assert after["state"] == "committed" and after["commit_trx"] == steem.node.included[-1].trx_id
    m = steem.market()
    assert m["sealed"] and [(p["predictor"], p["commitment"]) for p in m["predictions"]] == \
        [("alice", entry["commitment"])]
    assert "prediction" not in m["predictions"][0]

    # the commit window closes (600 blocks of 3 s): the page offers "Reveal now"
    steem.advance(600)
    page.evaluate("location.hash = '#/'")
    page.wait_for_selector("h2:text('Markets')")
    page.evaluate(f"location.hash = '{MARKET}'")
    page.wait_for_selector("#curate[data-phase=revealing] button.reveal-now")
    panel = page.inner_text("#curate")
    assert "reveals close in" in panel and "commits closed" in panel and "12.000" not in panel
    assert page.locator("#predict").count() == 0
    assert "1 commitment:" in panel
    page.locator("#curate").screenshot(path=str(SHOTS / "dialog-revealing.png"))
    # ... and on every view, the banner that it is due
    assert "Reveal now" in page.inner_text("#pending")

    page.click("button.reveal-now")  # one click: the salt from storage, the key from memory
    page.wait_for_function("document.getElementById('curate-status').textContent"
                           ".startsWith('revealed for alice')", timeout=15_000)
    assert stored(page)[0]["state"] == "revealed"  # kept until the reveal window has passed
    steem.advance(3)
    m = steem.market()
    assert m["n_revealed"] == 1 and m["sealed"]  # still sealed: values wait for the window

    # to the payout: settled, the prediction public and on the chart
    steem.advance(300)
    m = steem.market()
    assert m["phase"] == "settled"
    [pred] = m["predictions"]
    assert (pred["prediction"], pred["revealed"], pred["qualified"]) == (12000, True, True)
    page.reload()
    page.wait_for_selector("#curate[data-phase=settled]")
    page.wait_for_selector("canvas#chart[data-drawn='1']")
    panel = page.inner_text("#curate")
    assert "Settled at payout" in panel and page.locator("#curate button").count() == 0
    assert f"paid in block {m['paid_block']}" in panel and "reveals close" not in panel
    page.screenshot(path=str(SHOTS / "dialog-settled.png"), full_page=True)
    assert stored(page)  # the reveal window (6 h) has not passed on chain time yet
    assert not page.errors
    page.close()


# --- Keychain (a stand-in object: the extension cannot run headless) ----------------------------

KEYCHAIN_STANDIN = """
window.keychainCalls = [];
window.hive_keychain = {  // a STAND-IN for the Hive Keychain extension, defined by the test
  requestCustomJson(account, id, key, json, display_msg, callback, rpc) {
    window.keychainCalls.push({account, id, key, json, display_msg, rpc,
                               storedBefore: curate.entries().map((e) => e.commitment)});
    setTimeout(() => callback(window.keychainAnswer || {success: true, error: null,
      message: 'ok', result: {id: 'f00dfeed' + '0'.repeat(32)}}), 10);
  },
};
"""


def test_keychain_signs_with_the_posting_key_when_present(browser, hive: Chain) -> None:
    page = open_market(browser, hive, KEYCHAIN_STANDIN)
    page.click("#predict")
    page.wait_for_selector("dialog#predict-dialog[open]")
    assert page.locator("input[name=wif]").count() == 0  # no key field: Keychain holds it
    assert "Hive Keychain will ask you" in page.inner_text("dialog#predict-dialog")
    page.fill("input[name=account]", "alice")
    page.fill("input[name=prediction]", "7.5")
    page.click("#dialog-go")
    page.wait_for_function("document.getElementById('dialog-status').textContent"
                           ".startsWith('committed')", timeout=15_000)
    [call] = page.evaluate("window.keychainCalls")
    [entry] = stored(page)
    assert (call["account"], call["id"], call["key"], call["rpc"]) == \
        ("alice", "curation_market", "Posting", hive.node.url)
    assert call["storedBefore"] == [entry["commitment"]]  # the salt was stored first
    assert json.loads(call["json"])["commitment"] == commitment(
        hive.chain_id, "bob", "hello-market", "alice", 7500, bytes.fromhex(entry["salt"]))
    assert (entry["state"], entry["commit_trx"], entry["via"]) == \
        ("committed", "f00dfeed" + "0" * 32, "keychain")
    assert not hive.node.included  # Keychain broadcasts, not the page

    # a refusal is shown, and the stored salt is kept (marked failed, never lost)
    page.evaluate("window.keychainAnswer = {success: false, message: 'user canceled'}")
    page.fill("input[name=prediction]", "8.000")
    page.click("#dialog-go")
    page.wait_for_function("document.getElementById('dialog-status').textContent"
                           ".includes('user canceled')", timeout=15_000)
    assert sorted(e["state"] for e in stored(page)) == ["committed", "failed"]
    page.click("#dialog-cancel")
    assert "(committed)" in page.inner_text("#stored-here")

    # after the commit window, Reveal now sends the stored salt through Keychain in one click
    hive.advance(600)
    page.evaluate("window.keychainAnswer = null")
    page.evaluate("location.hash = '#/'")
    page.wait_for_selector("h2:text('Markets')")
    page.evaluate(f"location.hash = '{MARKET}'")
    page.click("#curate[data-phase=revealing] button.reveal-now")
    page.wait_for_function("document.getElementById('curate-status').textContent"
                           ".startsWith('revealed for alice')", timeout=15_000)
    reveal = page.evaluate("window.keychainCalls")[-1]
    assert (reveal["account"], reveal["key"]) == ("alice", "Posting")
    assert reveal["json"] == custom_json_op("curation_market", "alice", reveal_payload(
        "bob", "hello-market", 7500, bytes.fromhex(entry["salt"])))[1]["json"]
    assert not page.errors
    page.close()


# --- backup and import on another device --------------------------------------------------------

def test_backup_download_and_import_on_another_device(browser, steem: Chain,
                                                      tmp_path: Path) -> None:
    page = open_market(browser, steem)
    predict_with_key(page, "alice", "3.210", steem.wif)
    with page.expect_download(timeout=10_000) as dl:
        page.click("#backup")
    path = tmp_path / "backup.json"
    dl.value.save_as(path)
    doc = json.loads(path.read_text())
    [entry] = doc["entries"]
    assert doc["format"] == "curation-market-salts" and entry == stored(page)[0]
    page.close()

    steem.advance(3 + 600)  # the commit on chain, the reveal window open
    # another device: a fresh browser context, nothing stored, no key in memory
    other = browser.new_context()
    page = other.new_page()
    page.goto(steem.api + "/" + MARKET)
    page.wait_for_selector("#curate[data-phase=revealing]")
    assert "No salt for this market is stored in this browser" in page.inner_text("#curate")
    bad = json.loads(path.read_text())
    bad["entries"][0]["prediction"] = "4000"  # a damaged file never replaces a salt
    bad["entries"].append(dict(entry, predictor="<img src=x onerror=alert(1)>"))
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    page.set_input_files("#import", str(tmp_path / "bad.json"))
    page.wait_for_function("document.getElementById('curate-status').textContent"
                           ".includes('2 rejected')", timeout=10_000)
    assert stored(page) == []
    page.set_input_files("#import", str(path))
    page.wait_for_function("document.getElementById('curate-status').textContent"
                           ".includes('1 added')", timeout=10_000)
    [got] = stored(page)
    assert {k: v for k, v in got.items() if v is not None} == \
        {k: v for k, v in entry.items() if v is not None}
    # the reveal needs the key again on this device: the dialog asks, then reveals
    page.click("button.reveal-now")
    page.wait_for_selector("dialog#predict-dialog[open][data-mode=reveal]")
    page.fill("input[name=wif]", steem.wif)
    page.click("#dialog-go")
    page.wait_for_function("document.getElementById('curate-status').textContent"
                           ".startsWith('revealed for alice')", timeout=15_000)
    steem.advance(3)
    assert steem.market()["n_revealed"] == 1
    other.close()


def test_salts_are_pruned_only_after_the_reveal_window(browser, steem: Chain) -> None:
    page = open_market(browser, steem)
    kept = page.evaluate("""() => {
        const e = (c, until) => ({v: 1, chain_id: '0'.repeat(64), author: 'bob', permlink: 'p',
          predictor: 'alice', prediction: '1', salt: '00'.repeat(32), commitment: c,
          reveal_until: until, saved_at: '2017-01-01T00:00:00', state: 'committed'});
        curate.saveEntry(e('a'.repeat(64), '2017-11-07T07:30:00'));
        curate.saveEntry(e('b'.repeat(64), '2017-11-07T07:30:01'));
        const removed = curate.prune('2017-11-07T07:30:01');
        return [removed, curate.entries().map((x) => x.commitment[0])];
    }""")
    assert kept == [1, ["b"]]
    page.close()


# --- a staked rule set: stake and bid sealed with the prediction ---------------------------------

def test_staked_rule_set_seals_stake_and_bid(browser, staked: Chain) -> None:
    page = open_market(browser, staked)
    page.click("#predict")
    assert "numerai-2018" in page.inner_text("dialog#predict-dialog")
    page.fill("input[name=account]", "alice")
    page.fill("input[name=prediction]", "12.000")
    page.fill("input[name=stake]", "10")
    page.fill("input[name=bid]", "1.5")  # a bid is a confidence in 0..1: refused, nothing kept
    page.fill("input[name=wif]", staked.wif)
    page.click("#dialog-go")
    page.wait_for_function("document.getElementById('dialog-status').textContent"
                           ".includes('bid must be')", timeout=10_000)
    assert stored(page) == [] and "condenser_api.broadcast_transaction" not in staked.node.calls
    page.fill("input[name=bid]", "0.6")
    page.click("#dialog-go")
    page.wait_for_function("document.getElementById('dialog-status').textContent"
                           ".startsWith('committed')", timeout=15_000)
    page.click("#dialog-cancel")
    [entry] = stored(page)
    assert (entry["stake"], entry["bid"]) == ("10000", "600")
    staked.advance(3)
    [pred] = staked.market()["predictions"]
    assert pred["commitment"] == commitment(staked.chain_id, "bob", "hello-market", "alice",
                                            12000, bytes.fromhex(entry["salt"]), 10000, 600)
    staked.advance(600)
    page.evaluate("location.hash = '#/'")
    page.wait_for_selector("h2:text('Markets')")
    page.evaluate(f"location.hash = '{MARKET}'")
    page.click("#curate[data-phase=revealing] button.reveal-now")
    page.wait_for_function("document.getElementById('curate-status').textContent"
                           ".startsWith('revealed for alice')", timeout=15_000)
    staked.advance(300)
    [pred] = staked.market()["predictions"]
    assert (pred["prediction"], pred["stake"], pred["bid"]) == (12000, 10000, 600)
    assert not page.errors
    page.close()


# --- closed: public before the payout; the salt's job is done -----------------------------------

def test_closed_market_charts_revealed_values_and_drops_the_salt(browser, short: Chain) -> None:
    page = open_market(browser, short)
    predict_with_key(page, "alice", "12.000", short.wif)
    short.advance(3 + 40)  # past the 2-minute commit window
    page.evaluate("location.hash = '#/'")
    page.wait_for_selector("h2:text('Markets')")
    page.evaluate(f"location.hash = '{MARKET}'")
    page.click("#curate[data-phase=revealing] button.reveal-now")
    page.wait_for_function("document.getElementById('curate-status').textContent"
                           ".startsWith('revealed for alice')", timeout=15_000)
    assert len(stored(page)) == 1
    short.advance(3 + 100)  # past the reveal window, long before the payout
    m = short.market()
    assert (m["phase"], m["sealed"], m["predictions"][0]["prediction"]) == ("closed", False, 12000)
    page.reload()
    page.wait_for_selector("#curate[data-phase=closed]")
    page.wait_for_selector("canvas#chart[data-drawn='1']")  # public now: on the chart
    assert "reveals closed" in page.inner_text("#curate")
    assert page.locator("#curate button").count() == 0
    assert stored(page) == []  # its reveal window has passed on chain time: dropped
    assert not page.errors
    page.close()
