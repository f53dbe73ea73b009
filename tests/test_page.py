"""The page in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright)
against a real uvicorn server on an ephemeral loopback port over the demo database.

The screenshot is checked for the chart having been drawn: pixels in the canvas's bounding box
that are neither background nor the band's shading must be present in the points' colours.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.browser import serve


@pytest.fixture(scope="module")
def server(demo_db) -> Iterator[str]:
    from curation_market.api.app import app_from_url
    from curation_market.lab.demo import demo_settings

    srv, url = serve(app_from_url(demo_db["url"], demo_settings().market_config()))
    yield url
    srv.should_exit = True


def _coloured_pixels(png: bytes, box: dict) -> int:
    """Pixels of the points' colours (blue winners, red misses) inside ``box``."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    x0, y0 = int(box["x"]), int(box["y"])
    crop = img.crop((x0, y0, x0 + int(box["width"]), y0 + int(box["height"])))
    px = np.asarray(crop, dtype=np.int16)
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    blue = (b > 150) & (r < 80) & (g < 140)  # #0b5cad
    red = (r > 180) & (g < 120) & (b < 120)  # #d9534f
    return int((blue | red).sum())


def test_market_page_draws_the_chart(server: str, browser, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/")
    page.wait_for_selector("table tbody tr")
    assert "as of block" in page.inner_text("#asof")
    # from the leaderboard to the top curator to one of their markets
    page.goto(server + "/#/leaderboard")
    page.wait_for_selector("h2:text('Leaderboard')")
    top = page.locator("tbody tr td a").first
    name = top.inner_text()
    top.click()
    page.wait_for_selector(f"h2:text('Curator {name}')")
    page.locator("tbody tr td a").first.click()
    page.wait_for_selector("canvas#chart[data-drawn]")
    drawn = int(page.get_attribute("canvas#chart", "data-drawn"))
    assert drawn >= 2
    assert page.get_attribute("canvas#chart", "data-y-axis") == "predicted payout (SBD)"
    assert page.locator("td.why").count() >= drawn
    won = page.inner_text(".won")  # who won, by name and amount, before the chart
    winners = page.evaluate("""[...document.querySelectorAll('tbody tr')]
        .filter((r) => r.cells.length === 9 && Number(r.cells[8].innerText) > 0)
        .map((r) => r.cells[0].innerText.trim())""")
    assert won.startswith("Won") and winners and all(w in won for w in winners)
    shot = tmp_path / "market.png"
    png = page.screenshot(path=str(shot), full_page=True)
    box = page.locator("canvas#chart").bounding_box()
    assert _coloured_pixels(png, box) > 20 * drawn  # every point is a filled disc
    assert not errors
    Path("/tmp/curation-market-page.png").write_bytes(png)  # for a human to look at
    page.close()


def test_empty_market_draws_no_points(server: str, browser) -> None:
    """The pixel check can fail: a market without revealed predictions has no points."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(server + "/#/?phase=settled&limit=200&all=1")
    page.wait_for_selector("table tbody tr")
    link = page.locator("tbody tr").filter(has_text="steemitdev").locator("a").first
    link.click()
    page.wait_for_selector("canvas#chart[data-drawn]")
    png = page.screenshot(full_page=True)
    assert _coloured_pixels(png, page.locator("canvas#chart").bounding_box()) == 0
    assert "No winner: nobody predicted" in page.inner_text(".won")
    page.close()


def test_markets_list_shows_markets_with_commits_unless_asked(server: str, browser) -> None:
    """Most fresh posts have no commit; the list a curator lands on shows the markets that do."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(server + "/")
    page.wait_for_selector("table tbody tr")
    commits = page.locator("tbody tr td:nth-child(5)").all_inner_texts()
    assert commits and all(int(n) > 0 for n in commits)
    page.check("input[name=all]")
    page.click("form#f button")
    page.wait_for_function("location.hash.includes('all=1')")
    page.wait_for_selector("tbody tr >> text=open")
    commits = page.locator("tbody tr td:nth-child(5)").all_inner_texts()
    assert "0" in commits
    page.close()


def test_leaderboard_pages_on(server: str, browser) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(server + "/#/leaderboard?limit=5")
    page.wait_for_selector("#more")
    first = page.locator("tbody tr td:nth-child(2)").all_inner_texts()
    page.click("#more")
    page.wait_for_function("location.hash.includes('rank=6')")
    page.wait_for_function("document.querySelector('tbody td').innerText === '6'")
    second = page.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert len(first) == 5 and second and not set(first) & set(second)
    page.close()


def _m(x: int) -> str:
    return f"{x // 1000}.{x % 1000:03d}"


def test_forecasts_view_ranks_filters_pages_and_shows_the_quality(server: str, browser) -> None:
    """The feed as the API ranks it, the quality figures as the API computes them, the tag
    filter and the next page (the demo: every market settled)."""
    import requests

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/#/forecasts?limit=5&n=10")
    page.wait_for_selector("#quality")
    api = requests.get(f"{server}/api/forecasts?limit=5", timeout=10).json()
    q = requests.get(f"{server}/api/forecasts/quality?n=10", timeout=10).json()
    rows = page.locator("tbody tr")
    assert rows.count() == 5
    for i, it in enumerate(api["items"]):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[0] == str(i + 1) and cells[1] == f"@{it['author']}/{it['permlink']}"
        assert (cells[5], cells[6], cells[7]) == (_m(it["forecast_milli"]),
                                                  str(it["predictions"]), _m(it["sp"]))
    assert q["markets"] == 10 and page.inner_text("#q-markets") == "10"
    assert page.inner_text("#q-spearman") == f"{q['spearman']:.3f}"
    assert page.inner_text("#q-abs") == _m(q["median_abs_error"])
    assert page.inner_text("#q-band") == str(q["within_band"])
    page.click("#more")  # the API's cursor, ranks go on
    page.wait_for_function("location.hash.includes('rank=6')")
    page.wait_for_function("document.querySelector('tbody td').innerText === '6'")
    nxt = requests.get(f"{server}/api/forecasts?limit=5&cursor={api['next_cursor']}",
                       timeout=10).json()["items"]
    assert page.locator("tbody tr td:nth-child(2)").all_inner_texts() == \
        [f"@{it['author']}/{it['permlink']}" for it in nxt]
    tag = api["items"][0]["tag"]
    page.fill("input[name=tag]", tag)
    page.click("form#f button")
    page.wait_for_function(f"location.hash.includes('tag={tag}')")
    page.wait_for_function("!location.hash.includes('cursor')")
    page.wait_for_function("document.querySelector('tbody td').innerText === '1'")
    tags = page.locator("tbody tr td:nth-child(3)").all_inner_texts()
    assert tags and set(tags) == {tag}
    assert not errors
    page.close()
