"""The UI in a real browser: Debian's Chromium (headless) with a fake camera fed from a generated .y4m.

One walk through the page, in order: webcam source (frame counter rises), a meeting file replayed in meeting
mode (progress with time left), replayed again (nothing stored twice), a start past the end and a negative one
refused next to the button inside a 1280×800 window, an unreachable camera with its reason (no password), a
question whose answer streams in after a typing indicator with only its sources shown, a citation opened in the
replay player, a not-found answer whose moments are labelled closest, a picture-only match said as such, the
timeline (h:mm:ss, rounded change, labels inside the picture), and the meeting minutes (the only meeting chosen,
the button off while it runs). Screenshots go to artifacts/ (ignored by git); the README's docs/screenshot.png is
a committed asset, rewritten only on purpose: VIGIL_UPDATE_SCREENSHOT=1.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from urllib.parse import urljoin

import pytest

from tests.conftest import wait_for
from tests.ui.conftest import ARTIFACTS, ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def shot(page, name: str) -> str:
    path = os.path.join(ARTIFACTS, f"ui-{name}.png")
    page.screenshot(path=path, full_page=True)
    return path


def number(page, selector: str) -> int:
    el = page.query_selector(selector)
    if el is None:
        return -1
    m = re.search(r"\d+", el.inner_text())
    return int(m.group()) if m else -1


@pytest.fixture(scope="module")
def page(ui_app, tmp_path_factory):
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is required for the browser tests (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from tests.fixtures.webcam import make_y4m

    y4m = make_y4m(str(tmp_path_factory.mktemp("cam") / "cam.y4m"))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}", "--disable-background-networking",
            "--disable-component-update", "--autoplay-policy=no-user-gesture-required"])
        ctx = browser.new_context(viewport={"width": 1680, "height": 1050})
        ctx.grant_permissions(["camera"], origin=ui_app.url.rstrip("/"))
        pg = ctx.new_page()
        pg.set_default_timeout(30_000)
        pg.goto(ui_app.url, wait_until="load")
        pg.wait_for_selector("#live-stats")
        yield pg
        ctx.close()
        browser.close()


def choose(page, dropdown_id: str, value: str) -> None:
    """Pick a value in a Gradio dropdown (typing filters the options)."""
    inp = page.locator(f"#{dropdown_id} input")
    inp.click()
    inp.fill(value)
    page.get_by_role("option", name=value, exact=True).first.click()


def test_webcam_frame_counter_rises(page, ui_app):
    page.click("#webcam-start")
    page.wait_for_selector("#source-msg:has-text('webcam source')")
    page.get_by_text("Click to Access Webcam").click()
    page.locator("#webcam button", has_text="Record").click()
    first = wait_for(lambda: number(page, "#frames-in") >= 3 and number(page, "#frames-in"), timeout=30,
                     what="webcam frames to arrive")
    wait_for(lambda: number(page, "#frames-in") >= first + 5, timeout=20, what="the frame counter to rise")
    wait_for(lambda: ui_app.ctl.bank.list(stream="webcam"), timeout=30, what="a webcam memory")
    wait_for(lambda: page.query_selector("#live-frame img") is not None, timeout=10, what="the current frame")
    shot(page, "webcam")


def sources_cell(page, stream: str, col: int) -> str:
    """A cell of the Sources table, in the row of that stream."""
    for cell in page.locator("#sources [data-testid^='cell-']").all():
        tid = cell.get_attribute("data-testid")
        if tid.endswith("-0") and cell.inner_text().strip() == stream:
            row = tid.split("-")[1]
            return page.locator(f"#sources [data-testid='cell-{row}-{col}']").first.inner_text().strip()
    raise AssertionError(f"no row for {stream!r} in the Sources table")


def in_viewport(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    vp = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= vp["height"] and box["width"] > 0


def test_replay_meeting_file(page, ui_app):
    name = ui_app.media.meeting or ui_app.media.video
    page.get_by_text("Video file").click()
    choose(page, "server-path", name)
    page.check("#file-meeting input")
    page.fill("#file-id textarea, #file-id input", "meeting")
    page.click("#file-start")
    page.wait_for_selector("#source-msg:has-text('replaying')")
    progress = []  # the message under Sources follows the replay: share done and time left
    wait_for(lambda: progress.append(page.inner_text("#source-msg")) is None and "meeting" in ui_app.ctl.started()
             and ui_app.ctl.stream("meeting").state not in ("starting", "running"), timeout=120,
             what="the meeting file to be ingested")
    assert ui_app.ctl.stream("meeting").state == "finished"
    assert "meeting" in ui_app.ctl.meetings()
    assert any(re.search(r"Replaying meeting: \d+% · .* left", p) for p in progress), progress
    page.wait_for_selector("#source-msg:has-text('finished')")
    shot(page, "replay-finished")


def test_replaying_it_again_adds_nothing(page, ui_app):
    """The duplicate case: the same file into the same stream stores nothing twice, and says so."""
    before = len(ui_app.ctl.bank.list(stream="meeting"))
    page.click("#file-start")
    page.wait_for_selector("#source-msg:has-text('nothing to add')")
    assert "already holds all of" in page.inner_text("#source-msg")
    time.sleep(1.5)
    assert len(ui_app.ctl.bank.list(stream="meeting")) == before
    assert sources_cell(page, "meeting", 4) == str(before)  # the stream's count, not a run's


def test_errors_show_above_the_fold_at_1280x800(page, ui_app):
    """A start past the end of the file is refused up front, next to the button, inside a 1280×800 window, with
    no red error pill and no server path."""
    page.set_viewport_size({"width": 1280, "height": 800})
    try:
        page.evaluate("window.scrollTo(0, 0)")
        page.fill("#file-start-at input", "999")
        page.click("#file-start")
        page.wait_for_selector("#source-msg:has-text('past the end')")
        text = page.inner_text("#source-msg")
        assert text.startswith("Error: start 00:16:39 is past the end of"), text
        assert ui_app.media.media not in text and "/tmp" not in text
        page.evaluate("window.scrollTo(0, 0)")
        assert in_viewport(page, "#source-msg"), page.locator("#source-msg").bounding_box()
        assert in_viewport(page, "#live-stats"), page.locator("#live-stats").bounding_box()
        page.fill("#file-start-at input", "-5")  # a negative start: a message, no validation pill or traceback
        page.click("#file-start")
        page.wait_for_selector("#source-msg:has-text('0 s or later')")
        assert page.locator(".error:visible, [data-testid='error']:visible").count() == 0
        shot(page, "start-refused-1280")
    finally:
        page.fill("#file-start-at input", "0")
        page.set_viewport_size({"width": 1680, "height": 1050})


def test_unreachable_camera_shows_why(page, ui_app):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    page.get_by_text("RTSP camera").click()
    page.fill("input[placeholder^='rtsp://'], textarea[placeholder^='rtsp://']",
              f"rtsp://ann:s3cret@127.0.0.1:{port}/cam")
    t0 = time.time()
    page.get_by_role("button", name="Connect camera").click()
    why = f"cannot connect to rtsp://ann:***@127.0.0.1:{port}/cam: Connection refused"
    page.wait_for_selector(f"#source-msg:has-text('{why}')", timeout=8_000)
    assert time.time() - t0 < 8 and "Connecting to" in page.inner_text("#source-msg")
    page.wait_for_selector("#source-msg:has-text('Error:')", timeout=25_000)
    assert why in page.inner_text("#source-msg") and why in page.inner_text("#sources")
    assert "s3cret" not in page.content()
    shot(page, "camera-unreachable")
    page.get_by_text("RTSP camera").click()


def test_ask_streams_an_answer_with_citations(page, ui_app):
    truth = ui_app.media.truth
    q = f"Who will {truth.action_items[0].task}?" if truth and truth.action_items else "What is on the screen?"
    page.evaluate("""() => {  // remember every text the answer bubble shows
        window.__bot = [];
        new MutationObserver(() => {
            const m = document.querySelectorAll('#chat .message.bot, #chat [data-testid="bot"]');
            if (m.length) window.__bot.push(m[m.length - 1].innerText);
        }).observe(document.querySelector('#chat'), {subtree: true, childList: true, characterData: true});
    }""")
    page.fill("#question textarea", q)
    page.click("#ask")
    seen = []

    def answered():
        msgs = page.query_selector_all("#chat .message.bot, #chat [data-testid='bot']")
        if msgs:
            seen.append(len(msgs[-1].inner_text()))
        return bool(seen) and seen[-1] > 0 and page.query_selector("#citations img") is not None

    wait_for(answered, timeout=60, every=0.05, what="the answer")
    wait_for(lambda: answered() and len(seen) > 3 and seen[-1] == seen[-4], timeout=60, every=0.05,
             what="the answer to finish")
    assert seen[-1] > 10
    # the answer is complete when its moments are headed by what they are to it
    wait_for(lambda: "(click to open)" in page.inner_text("#citations"), timeout=30, what="the labelled moments")
    answer = page.query_selector_all("#chat .message.bot, #chat [data-testid='bot']")[-1].inner_text()
    assert "Error:" not in answer
    bubbles = page.evaluate("window.__bot")
    assert any("Searching the memories" in b or "Reading" in b for b in bubbles), bubbles[:5]  # typing indicator
    label = page.inner_text("#citations")
    shown = page.locator("#citations img").count()
    if "Sources" in label:  # only the moments the answer names, each with its time
        assert "Sources:" in answer
        stamps = re.findall(r"\d\d:\d\d:\d\d–\d\d:\d\d:\d\d", label)
        assert len(stamps) == shown and all(st.split("–")[0] in answer or st in answer for st in stamps), (label, answer)
    else:
        assert "Closest moments" in label or "Retrieved moments" in label, label


def test_click_citation_opens_it(page, ui_app):
    page.locator("#citations img").first.click()
    page.wait_for_selector("#cite-evidence:has-text('memory #')")
    text = page.inner_text("#cite-evidence")
    stream = text.split("·")[0].strip()
    if stream == "webcam":
        assert "live stream" in text
        assert page.query_selector("#cite-img img") is not None
    else:  # a file: the replay player seeks to the cited moment
        page.wait_for_selector("#vigil-player")
        t = float(page.get_attribute("#vigil-player", "data-t"))
        page.wait_for_function("document.querySelector('#vigil-player').readyState >= 1")
        cur = page.evaluate("document.querySelector('#vigil-player').currentTime")
        assert abs(cur - t) < 1.0, (cur, t)
    shot(page, "citation")
    page.evaluate("window.scrollTo(0, 0)")
    time.sleep(0.3)
    page.screenshot(path=readme_screenshot(), full_page=False)


def readme_screenshot() -> str:
    """Where the page's first screen goes: artifacts/ui-readme.png, or the README's committed docs/screenshot.png
    when VIGIL_UPDATE_SCREENSHOT=1 (so a test run never leaves the tree dirty)."""
    if os.environ.get("VIGIL_UPDATE_SCREENSHOT", "").strip() in ("1", "true", "yes"):
        os.makedirs(os.path.join(ROOT, "docs"), exist_ok=True)
        return os.path.join(ROOT, "docs", "screenshot.png")
    os.makedirs(ARTIFACTS, exist_ok=True)
    return os.path.join(ARTIFACTS, "ui-readme.png")


def test_a_not_found_answer_labels_its_moments_as_closest(page, ui_app):
    before = page.inner_text("#chat")
    page.fill("#question textarea", "When did someone juggle three oranges?")
    page.click("#ask")
    wait_for(lambda: page.inner_text("#chat") != before and "Closest moments" in page.inner_text("#citations")
             and page.locator("#citations img").count() > 0, timeout=90, what="a not-found answer")
    answer = page.query_selector_all("#chat .message.bot, #chat [data-testid='bot']")[-1].inner_text()
    assert "could not find" in answer.lower() and "Sources:" not in answer, answer
    assert "Closest moments (not an answer)" in page.inner_text("#citations")
    shot(page, "not-found")


def test_live_citation_opens_the_stored_clip(page, ui_app):
    """A citation of a live stream opens its stored thumbnail and text evidence (there is no file to seek)."""
    page.get_by_text("Search options").click()
    choose(page, "chat-streams", "webcam")
    page.keyboard.press("Escape")
    page.get_by_label("Also search with the current frame (query by example)").check()
    before = page.inner_text("#chat")
    page.fill("#question textarea", "When was this on camera?")
    page.click("#ask")
    wait_for(lambda: page.inner_text("#chat") != before and page.query_selector("#citations img") is not None
             and "· webcam" in page.inner_text("#citations") and "look most like" in page.inner_text("#citations"),
             timeout=60, what="an answer citing the webcam")
    answer = page.query_selector_all("#chat .message.bot, #chat [data-testid='bot']")[-1].inner_text()
    # only the picture matched: the answer says which moments look like it, never "could not find"
    assert answer.startswith("No speech or on-screen text answers this, but these moments look most like the "
                             "example picture"), answer
    first = re.search(r"\d\d:\d\d:\d\d–\d\d:\d\d:\d\d", page.inner_text("#citations")).group()
    assert first in answer
    page.get_by_label("Also search with the current frame (query by example)").uncheck()
    page.locator("#citations img").first.click()
    page.wait_for_selector("#cite-evidence:has-text('live stream')")
    assert page.inner_text("#cite-evidence").startswith("webcam")
    assert page.query_selector("#cite-img img") is not None
    assert page.query_selector("#vigil-player") is None and page.query_selector("#vigil-player-empty") is not None
    shot(page, "live-citation")


def test_timeline_opens_a_memory(page, ui_app):
    page.get_by_role("tab", name="Timeline").click()
    page.click("#timeline-show")
    page.wait_for_selector("#timeline-plot circle[data-mid]")
    legend = page.inner_text("#timeline-legend")
    assert "webcam" in legend and "meeting" in legend, legend
    axes = page.locator("#timeline-plot .axis-title").all_text_contents()
    assert any("novelty" in a for a in axes) and any("media time" in a for a in axes), axes
    n = page.locator("#timeline-plot circle[data-mid]").count()
    assert f"{n} clips" in page.inner_text("#timeline-count") and n >= 10
    table = page.inner_text("#timeline-rows")
    assert not re.search(r"\de-\d|\b\d+\.\d{3,}\b", table), table[:500]  # no raw novelty, no bare seconds
    cells = page.locator("#timeline-rows [data-testid='cell-0-2'], #timeline-rows [data-testid='cell-0-3']")
    assert [re.fullmatch(r"\d\d:\d\d:\d\d", c.strip()) is not None for c in cells.all_inner_texts()] == [True, True]
    svg = page.locator("#timeline-plot svg").bounding_box()
    for label in page.locator("#timeline-plot svg text").all():  # every axis label inside the picture
        box = label.bounding_box()
        assert box["x"] >= svg["x"] - 1 and box["x"] + box["width"] <= svg["x"] + svg["width"] + 1, label.inner_text()
    page.locator("#timeline-plot circle[data-mid]").nth(n // 2).click()  # a point opens its memory
    mid = page.get_attribute("#timeline-plot circle.sel", "data-mid")
    page.wait_for_selector(f"#timeline-evidence:has-text('memory #{mid}')")
    shot(page, "timeline")
    cell = page.locator("#timeline-rows [data-testid='cell-1-1']")  # so does a row of the table
    cell.click()
    page.wait_for_selector(f"#timeline-evidence:has-text('memory #'):not(:has-text('memory #{mid}'))")
    choose(page, "timeline-stream", "meeting")  # filtered by stream
    page.click("#timeline-show")
    wait_for(lambda: page.inner_text("#timeline-legend").strip().startswith("meeting")
             and "webcam" not in page.inner_text("#timeline-legend"), timeout=20, what="the stream filter")
    assert page.locator("#timeline-plot circle[data-mid]").count() == len(ui_app.ctl.bank.list(stream="meeting"))


def test_summarize_meeting(page, ui_app):
    page.get_by_role("tab", name="Meeting").click()
    # the only meeting in the bank is chosen already
    wait_for(lambda: page.input_value("#meeting-stream input") == "meeting", timeout=10, what="the meeting preselected")
    page.evaluate("""() => {  // remember every progress text Gradio shows while summarize runs
        window.__progress = [];
        new MutationObserver(() => document.querySelectorAll(
            '.progress-text, .progress-level-inner, .meta-text, .meta-text-center').forEach(
            (n) => window.__progress.push(n.textContent.trim()))).observe(
            document.body, {subtree: true, childList: true, characterData: true});
    }""")
    page.click("#summarize")
    # off while it runs, so a second click cannot start a second summary
    page.wait_for_selector("#summarize:disabled", timeout=5_000)
    wait_for(lambda: "00:" in page.inner_text("#minutes") and page.query_selector("#minutes-file a") is not None,
             timeout=90, what="the minutes")
    page.wait_for_selector("#summarize:enabled", timeout=10_000)
    md = page.inner_text("#minutes")
    assert "Minutes" in md or "minutes" in md
    progress = [p for p in page.evaluate("window.__progress") if "%" in p]  # gr.Progress: "what - 33.3%"
    assert progress, "summarize shows its progress while it works"
    link = page.locator("#minutes-file a").first
    href = link.get_attribute("href")
    assert href and href.split("?")[0].endswith(".md"), href
    body = page.request.get(urljoin(ui_app.url, href)).text()
    assert body.startswith("#") and "Minutes" in body
    shot(page, "meeting")
    page.get_by_role("tab", name="Live").click()
    choose(page, "stop-id", "webcam")
    page.click("#stop")
    page.wait_for_selector("#source-msg:has-text('stopped')")
