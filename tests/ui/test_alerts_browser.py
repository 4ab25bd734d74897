"""The Alerts tab in a real browser (Debian's Chromium, headless): add a watch, get a notification on the page
when a new memory matches it, see the alert in the panel (thumbnail, time, evidence) and open its moment."""
from __future__ import annotations

import os
import shutil
import types

import pytest

from tests.conftest import free_port
from tests.engine.test_watches_api import store_memory
from tests.conftest import wait_for
from tests.ui.conftest import ARTIFACTS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def alerts_ui(tmp_path_factory):
    from models.text_embed import TextEmbedder
    from ui.app import create

    d = tmp_path_factory.mktemp("alerts-ui")
    (d / "media").mkdir()
    args = types.SimpleNamespace(bank=str(d / "bank"), host="127.0.0.1", port=free_port(), auth=None,
                                 media_dir=str(d / "media"), model=None, device="cpu", trust_remote_code=False)
    # the text checks need only the text embedder: a light profile keeps this test about the page
    prof = types.SimpleNamespace(name="lite", text_embedder=TextEmbedder(), evidence=[], answerer=None, encoder=None,
                                 key_encoder=None, query_keys=lambda **kw: {})
    demo, eng, kw = create(args, profile=prof)
    demo.launch(prevent_thread_lock=True, quiet=True, **kw)
    yield types.SimpleNamespace(url=f"http://127.0.0.1:{args.port}/", eng=eng)
    demo.close()
    eng.close()


@pytest.fixture(scope="module")
def page(alerts_ui):
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is required for the browser tests (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update"])
        ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
        pg = ctx.new_page()
        pg.set_default_timeout(30_000)
        pg.goto(alerts_ui.url, wait_until="load")
        pg.get_by_role("tab", name="Alerts").click()
        pg.wait_for_selector("#watch-text textarea")
        yield pg
        ctx.close()
        browser.close()


def test_add_watch_get_notified_and_open_the_moment(page, alerts_ui):
    page.fill("#watch-text textarea", "tell me when someone mentions the budget")
    page.click("#watch-add")
    page.wait_for_selector("#watch-msg:has-text('OK: watching for')")
    page.wait_for_selector("#watches:has-text('tell me when someone mentions the budget')")
    assert [w["text"] for w in alerts_ui.eng.watches()] == ["tell me when someone mentions the budget"]
    page.fill("#watch-text textarea", "x" * 400)
    page.click("#watch-add")
    page.wait_for_selector("#watch-msg:has-text('Error: the watch text is too long')")

    store_memory(alerts_ui.eng, 30.0, "Thank you, that is very helpful.")       # not it
    store_memory(alerts_ui.eng, 32.0, "Next we talk about the budget for the new office.")
    wait_for(lambda: alerts_ui.eng.alerts(), timeout=20, what="the alert to be stored")
    toast = page.locator(".toast-body", has_text="Alert: tell me when someone mentions the budget")
    toast.first.wait_for(timeout=15_000)
    assert "the budget" in toast.first.inner_text() and "00:00:32" in toast.first.inner_text()
    page.wait_for_selector("#alerts-gallery img")
    page.wait_for_selector("#alerts-table:has-text('budget for the new office')")
    assert page.locator("#alerts-gallery img").count() == 1
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.locator("#alerts-gallery img").first.click()
    page.wait_for_selector("#alert-evidence:has-text('tell me when someone mentions the budget')")
    video = page.locator("#alert-video video")
    video.wait_for(timeout=15_000)
    src = video.get_attribute("src") or ""
    assert src.endswith(".mp4"), src
    assert "00:00:32" in page.inner_text("#alert-evidence")
    page.screenshot(path=os.path.join(ARTIFACTS, "ui-alerts.png"), full_page=True)
