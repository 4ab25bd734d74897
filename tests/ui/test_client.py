"""The launched UI driven through its API with gradio_client: ingest, ask with citations, bad inputs, exposure."""
from __future__ import annotations

import os
import re
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import wait_for
from tests.ui.conftest import UPLOAD_CAP_MB


@pytest.fixture(scope="module")
def client(ui_app):
    from gradio_client import Client

    return Client(ui_app.url, verbose=False)


# the Sources table's columns (ui/handlers.py SOURCE_HEADERS)
STATE, PROGRESS, MEMORIES, SETTINGS, NOTES = 2, 3, 4, 8, 9


def rows(client):
    """The sources table from the /poll endpoint: {stream: row}."""
    out = client.predict(None, api_name="/poll")
    table = out[2]
    data = table["data"] if isinstance(table, dict) else table
    return {r[0]: r for r in data}


def replay(client, path, sid, mode="fast", start=0, meeting=False, replace=False):
    msg, _ = client.predict(None, path, sid, mode, start, meeting, replace, api_name="/start_file")
    return msg


def value_of(x):
    """An output sent as gr.update(value=…, label=…) reaches the client as that update's dict."""
    return x.get("value") if isinstance(x, dict) and x.get("__type__") == "update" else x


def text_of(content) -> str:
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)


def test_ingest_ask_and_citations(client, ui_app):
    msg = replay(client, ui_app.media.video, "client-scenes")
    assert msg.startswith("OK:") and "client-scenes" in msg, msg
    seen = []
    row = wait_for(lambda: (r := rows(client).get("client-scenes")) and seen.append(r[PROGRESS]) is None
                   and r[STATE] in ("finished", "error") and r, timeout=90, what="the file to finish")
    assert row[STATE] == "finished" and row[PROGRESS] == "100%", row
    # the share done while it runs (with the time left once a rate is known: a fast replay may end before that)
    assert any(re.fullmatch(r"\d+%( · (\d+ s|\d+ min \d\d s) left)?", p) and p != "100%" for p in seen), seen
    assert row[MEMORIES] >= 5  # 12 s at 2 s clips (scene cuts may add some)
    assert row[SETTINGS] == "pool2d · 32 tok · 2 s clips · 1 fps", row  # what the stream is stored with
    assert "no transcript" in row[NOTES], row  # a tone, not speech: the table says why there is no transcript
    # a question with the stream's last frame as the example: only the picture can match, and the answer says so
    history, gallery, question = client.predict("what is in the picture?", [], 5, ["client-scenes"], True,
                                                 "client-scenes", api_name="/ask")
    assert question == ""
    assert history[-1]["role"] == "assistant"
    answer = text_of(history[-1]["content"])
    assert answer.startswith("No speech or on-screen text answers this, but these moments look most like the "
                             "example picture"), answer
    assert "could not find" not in answer and "Error" not in answer
    assert gallery["label"] == "Moments that look most like it (click to open)", gallery
    gallery = value_of(gallery)
    assert gallery, "an answer comes with the moments it names"
    captions = [g["caption"] for g in gallery]
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d–\d\d:\d\d:\d\d · client-scenes", c) for c in captions), captions
    assert captions[0].split(" · ")[0] in answer  # best first: the first moment shown is the first one named
    assert all(os.path.isfile(g["image"] if isinstance(g["image"], str) else g["image"]["path"]) for g in gallery)


def test_replaying_a_file_again_keeps_one_copy_and_can_be_removed(client, ui_app):
    bank = ui_app.ctl.bank
    assert replay(client, ui_app.media.video, "twice").startswith("OK:")
    wait_for(lambda: rows(client)["twice"][STATE] == "finished", timeout=90, what="the first replay")
    first = [(m.t0, m.t1) for m in bank.list(stream="twice")]
    msg = replay(client, ui_app.media.video, "twice")
    assert msg.startswith("OK: nothing to add: stream **twice** already holds all of **scenes.mp4**"), msg
    assert [(m.t0, m.t1) for m in bank.list(stream="twice")] == first
    msg = replay(client, ui_app.media.video, "twice", replace=True)
    assert msg.startswith("OK: replaced what the stream held"), msg
    wait_for(lambda: rows(client)["twice"][STATE] == "finished", timeout=90, what="the replacing replay")
    assert [(m.t0, m.t1) for m in bank.list(stream="twice")] == first
    assert rows(client)["twice"][MEMORIES] == len(first)  # the stream's memories, not a sum over runs
    msg, choices = client.predict("twice", 4, 6, api_name="/forget")
    assert msg.startswith("OK: removed **twice** from 00:00:04 to 00:00:06"), msg
    assert len(bank.list(stream="twice")) < len(first)
    msg = replay(client, ui_app.media.video, "twice")
    assert msg.startswith("OK: resuming **scenes.mp4** as stream **twice** at 00:00:04"), msg
    wait_for(lambda: rows(client)["twice"][STATE] == "finished", timeout=90, what="the resumed replay")
    assert sorted((m.t0, m.t1) for m in bank.list(stream="twice")) == pytest.approx(sorted(first), abs=0.1)
    msg, _ = client.predict("twice", None, None, api_name="/forget")
    assert msg.startswith("OK: removed stream **twice**"), msg
    assert bank.list(stream="twice") == [] and "twice" not in [s["stream"] for s in bank.streams()]


@pytest.mark.parametrize("start,needle", [(100, "Error: start 00:01:40 is past the end of 'scenes.mp4' (it is "
                                                  "00:00:12 long)"),
                                          (-5, "Error: start must be 0 s or later, got -5 s")])
def test_a_start_outside_the_file_is_refused_before_anything_starts(client, ui_app, start, needle):
    msg = replay(client, ui_app.media.video, "out-of-range", start=start)
    assert msg == needle, msg
    assert "out-of-range" not in ui_app.ctl.started()


def test_unreachable_camera_says_why_within_seconds(client):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.time()
    msg = client.predict(f"rtsp://ann:s3cret@127.0.0.1:{port}/cam", "nocam", False, api_name="/start_rtsp")
    assert msg.startswith("OK:") and "connecting" in msg, msg
    why = f"cannot connect to rtsp://ann:***@127.0.0.1:{port}/cam: Connection refused"
    statuses = []  # the message under Sources follows the source this session started (sent when it changes)

    def row():
        out = client.predict(None, api_name="/poll")
        if isinstance(out[-1], str):
            statuses.append(out[-1])
        data = out[2]["data"] if isinstance(out[2], dict) else out[2]
        return next(r for r in data if r[0] == "nocam")

    r = wait_for(lambda: (r := row()) and why in r[NOTES] and r, timeout=5, what="the reason while it retries")
    assert r[STATE] == "connecting" and time.time() - t0 < 5  # never "running" before a frame
    assert any(x.startswith("Connecting to **nocam**") and why in x for x in statuses), statuses
    r = wait_for(lambda: (r := row()) and r[STATE] == "error" and r, timeout=20, what="the error state")
    assert r[NOTES] == why, r
    assert statuses[-1] == f"Error: **nocam**: {why}", statuses
    text = repr(client.predict(None, api_name="/poll"))
    assert "s3cret" not in text


def test_an_unknown_model_is_refused_when_saved(client, ui_app):
    old = dict(ui_app.ctl.settings)
    msg = client.predict("no-such-org/no-such-model", "pool2d", 32, 2.0, 1.0, api_name="/save_settings")
    assert msg.startswith("Error:") and "no-such-org/no-such-model" in msg and "not allowed" in msg, msg
    assert ui_app.ctl.settings == old and ui_app.ctl.bank.get_meta("ui.settings", {}).get("model", "lite") == "lite"


def test_ask_edge_cases_are_clean(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="not in the list of choices"):  # the UI validates stream filters
        client.predict("what happened?", [], 5, ["no-such-stream"], False, None, api_name="/ask")
    history, gallery, _ = client.predict("", [], 5, [], False, None, api_name="/ask")
    assert history == []  # nothing asked, nothing answered


def test_bad_upload_gets_a_clean_error(client, ui_app, tmp_path):
    from gradio_client import handle_file

    fake = tmp_path / "holiday.mp4"
    fake.write_text("this is not a video\n" * 100)
    msg, _ = client.predict(handle_file(str(fake)), None, "", "fast", 0, False, False, api_name="/start_file")
    assert msg.startswith("Error:") and "not a" in msg and "video" in msg, msg
    assert str(tmp_path) not in msg and "/tmp" not in msg  # no server paths in errors
    png = tmp_path / "still.mp4"  # an image renamed: checked by content, not extension
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 10, 10)).save(png, format="PNG")
    msg, _ = client.predict(handle_file(str(png)), None, "", "fast", 0, False, False, api_name="/start_file")
    assert msg.startswith("Error:") and "not a supported video" in msg, msg
    assert not os.path.exists(os.path.join(ui_app.media.media, "uploads", "holiday.mp4"))


def test_upload_size_cap(client, tmp_path):
    from gradio_client import handle_file

    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(1024) * (UPLOAD_CAP_MB * 1024 + 10))
    with pytest.raises(Exception) as e:
        client.predict(handle_file(str(big)), None, "", "fast", 0, False, False, api_name="/start_file")
    assert "size" in str(e.value).lower() or "large" in str(e.value).lower() or "413" in str(e.value)


def test_good_upload_is_replayed_from_the_media_dir(client, ui_app):
    from gradio_client import handle_file

    src = os.path.join(ui_app.media.media, ui_app.media.video)
    msg, _ = client.predict(handle_file(src), None, "uploaded", "fast", 2.0, False, False, api_name="/start_file")
    assert msg.startswith("OK:") and "uploaded" in msg and "00:00:02" in msg, msg
    assert ui_app.media.media not in msg and "/tmp" not in msg  # named by its name in the media dir only
    row = wait_for(lambda: (r := rows(client).get("uploaded")) and r[STATE] in ("finished", "error") and r,
                   timeout=90, what="the upload to finish")
    assert row[STATE] == "finished", row
    assert os.listdir(os.path.join(ui_app.media.media, "uploads"))
    first = ui_app.ctl.bank.list(stream="uploaded")[0]
    assert first.t0 >= 1.9  # started 2 s in: media times stay the file's own


@pytest.mark.parametrize("name", ["../secret.txt", "/etc/passwd", "link.mp4", "", "nope.mp4"])
def test_server_paths_are_allow_listed(client, name):
    msg, _ = client.predict(None, name, "", "fast", 0, False, False, api_name="/start_file")
    assert msg.startswith("Error:"), msg
    assert "/tmp" not in msg and "pytest" not in msg  # no server paths in what the user reads


def test_file_route_serves_only_thumbs_and_media(ui_app):
    base = ui_app.url + "gradio_api/file="
    thumb = ui_app.ctl.bank.thumbnail_path(ui_app.ctl.bank.list(limit=1)[0].id)
    assert urllib.request.urlopen(base + thumb).status == 200
    assert urllib.request.urlopen(base + os.path.join(ui_app.media.media, ui_app.media.video)).status == 200
    for path in (os.path.join(ui_app.bank, "bank.sqlite"), ui_app.media.secret, "/etc/passwd",
                 os.path.abspath("app.py"), os.path.join(ui_app.media.media, "..", "secret.txt")):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + path)
        assert e.value.code in (403, 404), path


def test_settings_are_saved_per_bank(client, ui_app):
    old = dict(ui_app.ctl.settings)
    try:
        msg = client.predict("lite", "tome", 24, 3.0, 2.0, api_name="/save_settings")
        assert msg.startswith("OK:"), msg
        assert ui_app.ctl.bank.get_meta("ui.settings")["reducer"] == "tome"
        assert ui_app.ctl.bank.get_meta("ui.settings")["budget"] == 24
        from gradio_client.exceptions import AppError

        with pytest.raises(AppError):
            client.predict("lite", "no-such-reducer", 24, 3.0, 2.0, api_name="/save_settings")
        msg = client.predict("lite", "pool2d", -1, 3.0, 2.0, api_name="/save_settings")
        assert msg.startswith("Error:")
    finally:
        ui_app.ctl.save_settings(**old)


def test_settings_come_back_with_their_bank(ui_app, tmp_path):
    from engine import Engine

    a = Engine(str(tmp_path / "bank"), media_dir=str(tmp_path / "media"), profile=ui_app.ctl.profile())
    a.save_settings(reducer="tome", budget=12, clip_seconds=4.0, fps=0.5)
    a.close()
    b = Engine(str(tmp_path / "bank"), media_dir=str(tmp_path / "media"), profile=ui_app.ctl.profile())
    try:
        assert (b.settings["reducer"], b.settings["budget"], b.settings["clip_seconds"], b.settings["fps"]) == \
            ("tome", 12, 4.0, 0.5)
        cfg = b.ingest_config()  # what the next source is started with
        assert (cfg.reducer, cfg.budget, cfg.clip_seconds, cfg.fps) == ("tome", 12, 4.0, 0.5)
    finally:
        b.close()
    other = Engine(str(tmp_path / "bank2"), media_dir=str(tmp_path / "media"), profile=ui_app.ctl.profile())
    assert other.settings["reducer"] == "pool2d"  # per bank, not global
    other.close()


def test_stop_and_errors_for_sources(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError):
        client.predict("nope", api_name="/stop")
    assert client.predict(None, api_name="/stop").startswith("Error:")
    assert client.predict("http://example.com/x", "", False, api_name="/start_rtsp").startswith("Error:")


def test_exposure_rules(capsys):
    from ui.app import check_exposure

    assert check_exposure("127.0.0.1", None) is None
    with pytest.raises(SystemExit):
        check_exposure("0.0.0.0", None)
    assert check_exposure("0.0.0.0", "ann:secret") == ("ann", "secret")
    assert "warning" in capsys.readouterr().err


def test_rtsp_camera_starts_and_stops_independently(client, ui_app, rtsp_server):
    msg = client.predict(rtsp_server.url, "cam1", False, api_name="/start_rtsp")
    assert msg.startswith("OK:") and "cam1" in msg and "continuing" not in msg, msg
    wait_for(lambda: (r := rows(client).get("cam1")) and r[MEMORIES] >= 1, timeout=60, what="a camera memory")
    msg = client.predict(rtsp_server.url, "cam1", False, api_name="/start_rtsp")
    assert msg.startswith("Error:") and "already running" in msg
    msg = client.predict("cam1", api_name="/stop")
    assert msg.startswith("OK:") and "stopped" in msg, msg
    assert rows(client)["cam1"][STATE] == "stopped"
    first = ui_app.ctl.bank.list(stream="cam1")
    # started again under the same id, the camera's media clock goes on from where it stopped
    msg = client.predict(rtsp_server.url, "cam1", False, api_name="/start_rtsp")
    assert msg.startswith("OK:") and "continuing the stream at" in msg, msg
    wait_for(lambda: len(ui_app.ctl.bank.list(stream="cam1")) > len(first), timeout=60, what="a second-run memory")
    assert client.predict("cam1", api_name="/stop").startswith("OK:")
    new = [m for m in ui_app.ctl.bank.list(stream="cam1") if m.id not in {x.id for x in first}]
    assert min(m.t0 for m in new) >= max(m.t1 for m in first), ([m.t0 for m in new], [m.t1 for m in first])
    ev = ui_app.ctl.bank.events("cam1")
    connected = [e["t"] for e in ev if e["kind"] == "connected"]
    assert len(connected) == 2 and connected[1] > max(m.t1 for m in first)  # events are on the same clock


def _md(x) -> str:
    return x if isinstance(x, str) else (x or {}).get("value", "") if isinstance(x, dict) else str(x or "")


def test_live_panel_shows_rates_memories_clips_and_system(ui_app):
    from gradio_client import Client

    fresh = Client(ui_app.url, verbose=False)  # a new session: the panel sends everything once
    out = fresh.predict(None, api_name="/poll")
    stats, table, clips, sys_md = _md(out[1]), out[2], out[3], _md(out[4])
    for field in ("fps in", "fps out", "dropped", "frames in", "memories", "MB"):
        assert field in stats, (field, stats)
    n = ui_app.ctl.bank.count()
    assert f">{n}</span> memories" in stats
    headers = table["headers"] if isinstance(table, dict) else []
    assert headers == ["stream", "kind", "state", "progress", "memories", "frames in", "fps in / out", "dropped",
                       "stored as", "error / notes"], headers
    assert clips and all(os.path.isfile(c["image"] if isinstance(c["image"], str) else c["image"]["path"])
                         for c in clips), clips
    assert len(clips) <= 8 and re.fullmatch(r"\d\d:\d\d:\d\d–\d\d:\d\d:\d\d · .+", clips[0]["caption"]), clips
    assert "CPU" in sys_md and "RAM" in sys_md and "MB" in sys_md and "GPU" in sys_md, sys_md


def test_timeline_filters_by_stream_and_window(client, ui_app):
    bank = ui_app.ctl.bank
    mine = bank.list(stream="client-scenes")
    assert len(mine) >= 5
    html_, df, count = client.predict("client-scenes", None, None, api_name="/timeline")
    ids = {int(m) for m in re.findall(r"data-mid='(\d+)'", html_)}
    assert ids == {m.id for m in mine}  # every clip of that stream, and only those
    assert "novelty" in html_ and "clip start" in html_  # labelled axes
    assert "client-scenes (%d clips)" % len(mine) in html_  # the legend
    assert f"{len(mine)} clips" in _md(count)
    assert [r[0] for r in df["data"]] == [m.id for m in mine]
    assert df["headers"] == ["id", "stream", "start", "end", "change", "evidence"]
    for r in df["data"]:  # times as h:mm:ss only, change rounded: no seconds or raw floats
        assert re.fullmatch(r"\d\d:\d\d:\d\d", r[2]) and re.fullmatch(r"\d\d:\d\d:\d\d", r[3]), r
        assert r[4] == "first clip" or r[4] == "<0.01" or re.fullmatch(r"\d\.\d\d", r[4]), r
    assert df["data"][0][4] == "first clip"
    assert not re.search(r"novelty [\d.e-]+", html_) and not re.search(r"\de-\d", html_)
    labels = [float(x) for x in re.findall(r"<text x='([\d.]+)'[^>]*>\d\d:\d\d:\d\d</text>", html_)]
    assert labels and max(labels) <= 960 - 30  # the last time label is not cut off at the edge
    _, _, count = client.predict("client-scenes", -4, None, api_name="/timeline")  # a clear message, no traceback
    assert _md(count).startswith("Error:") and "0 or later" in _md(count), count
    html_, df, count = client.predict("client-scenes", 4, 8, api_name="/timeline")
    win = {int(m) for m in re.findall(r"data-mid='(\d+)'", html_)}
    want = {m.id for m in mine if m.t1 > 4 and m.t0 < 8}
    assert win == want and 0 < len(win) < len(mine)
    html_, _, _ = client.predict(None, None, None, api_name="/timeline")  # all streams: one legend entry each
    streams = set(re.findall(r"data-stream='([^']+)'", html_))
    assert {"client-scenes"} < streams and streams == {m.stream for m in bank.list()}


def test_realtime_and_concurrent_sources_and_a_slow_answer_block_nothing(client, ui_app, monkeypatch):
    """A real-time replay keeps media time with the wall clock; it runs beside a fast replay under its own
    stream id; a slow answer streams while ingestion goes on and the panel keeps polling promptly."""
    ctl = ui_app.ctl
    real_ask = ctl.ask

    class SlowAnswer:
        answered, kind, heading = True, "answer", "Retrieved moments"

        def __init__(self, citations):
            self.citations = self.shown = citations

        def close(self):
            pass

        def __iter__(self):
            for i in range(6):
                time.sleep(0.5)
                yield f"piece{i} "

    def slow_ask(question, **kw):
        return SlowAnswer(real_ask(question, **kw).citations)

    t_start = time.time()
    msg = replay(client, ui_app.media.video, "rt", "real time")
    assert msg.startswith("OK:") and "real time" in msg, msg
    msg = replay(client, ui_app.media.video, "fast-b")
    assert msg.startswith("OK:"), msg
    both = rows(client)
    assert both["rt"][STATE] == "running" and both["fast-b"][STATE] in ("running", "finished"), both
    try:
        monkeypatch.setattr(ctl, "ask", slow_ask)
        job = client.submit("what is in the picture?", [], 3, [], False, None, api_name="/ask")
        seen_t, lat = [], []
        while not job.done():
            t0 = time.time()
            rows(client)["rt"]
            lat.append(time.time() - t0)
            seen_t.append(ctl.stream("rt").last_t)
            assert seen_t[-1] <= (time.time() - t_start) + 1.5, "real time replay ran ahead of the wall clock"
            time.sleep(0.2)
        history = job.result()[0]
    finally:
        monkeypatch.setattr(ctl, "ask", real_ask)
    answer = history[-1]["content"]
    answer = answer if isinstance(answer, str) else " ".join(p.get("text", "") for p in answer)
    assert "piece0" in answer and "piece5" in answer, answer
    assert len(seen_t) >= 5 and max(lat) < 1.5, lat  # the page kept polling while the answer was slow
    assert seen_t[-1] - seen_t[0] >= 1.0, seen_t  # ... and ingestion went on meanwhile
    wait_for(lambda: rows(client)["fast-b"][STATE] == "finished", timeout=90, what="the fast replay")
    assert rows(client)["rt"][STATE] == "running"  # 12 s of media cannot be done in real time yet
    assert client.predict("rt", api_name="/stop").startswith("OK:")
    assert {m.stream for m in ctl.bank.list()} >= {"rt", "fast-b"}


def test_live_stream_clock_continues_after_stop_and_start(ui_app):
    """Stopping and starting a live source under the same stream id continues its media clock."""
    import numpy as np

    ctl = ui_app.ctl
    sid = "cam-restart"
    frame = np.zeros((120, 160, 3), np.uint8)

    def run_for(seconds: float, shade: int):
        ctl.start("push", stream=sid)
        r = ctl.handle(sid)
        end = time.time() + seconds
        while time.time() < end:
            frame[:] = shade
            ctl.push_frame(sid, frame)
            time.sleep(0.1)
        for _ in range(40):  # a burst: the live queue keeps only the latest frame
            r.source.push(frame, r.t_offset + time.monotonic() - r.source._t0)
        assert r.source.stats.dropped > 0
        ctl.stop(sid)
        return r

    first = run_for(2.5, 40)
    mem1 = ctl.bank.list(stream=sid)
    assert mem1 and first.t_offset == 0
    time.sleep(1.5)
    second = run_for(2.5, 200)
    assert second.t_offset >= max(m.t1 for m in mem1) + 0.8  # the clock went on while it was stopped
    mem = ctl.bank.list(stream=sid)
    new = [m for m in mem if m.id not in {x.id for x in mem1}]
    assert new and min(m.t0 for m in new) >= max(m.t1 for m in mem1)
    ordered = sorted(mem, key=lambda m: m.id)
    assert all(a.t0 < b.t0 for a, b in zip(ordered, ordered[1:])), [(m.id, m.t0) for m in ordered]
    gaps = [e for e in ctl.bank.events(sid) if e["kind"] == "gap"]
    assert gaps and "restarted" in gaps[-1]["detail"]


def test_summarize_reports_progress_and_writes_markdown(ui_app):
    calls = []
    s = ui_app.ctl.summarize("client-scenes", lambda f, d="": calls.append((f, d)))
    md, path = s.markdown, s.path
    assert path.endswith(".md") and open(path, encoding="utf-8").read() == md
    assert "00:00:" in md
    fr = [f for f, _ in calls]
    assert len(calls) >= 2 and fr == sorted(fr) and calls[-1][0] == 1.0, calls
    from engine import EngineError as UIError

    with pytest.raises(UIError):
        ui_app.ctl.summarize("")
    with pytest.raises(UIError, match="no memories"):
        ui_app.ctl.summarize("never-ingested")


def test_default_bind_is_local_and_a_public_bind_needs_auth(monkeypatch, tmp_path):
    import app as cli

    assert cli.build_parser().parse_args(["ui"]).host == "127.0.0.1"
    monkeypatch.delenv("VIGIL_AUTH", raising=False)
    from tests.conftest import run_cli

    p = run_cli("ui", "--host", "0.0.0.0", "--bank", str(tmp_path / "b"), "--media-dir", str(tmp_path), timeout=120,
                env={"VIGIL_AUTH": ""})
    assert p.returncode != 0 and "requires --auth" in p.stderr, (p.returncode, p.stderr[-500:])
    assert not os.path.exists(tmp_path / "b" / "bank.sqlite")  # refused before anything was opened


def test_public_bind_with_auth_warns_and_locks_the_api(ui_app, tmp_path, capsys):
    import types

    from gradio_client import Client

    from tests.conftest import free_port
    from ui.app import create

    port = free_port()
    args = types.SimpleNamespace(bank=str(tmp_path / "bank"), host="0.0.0.0", port=port, auth="ann:s3cret",
                                 media_dir=str(tmp_path / "media"), model=None, device="cpu", trust_remote_code=False)
    demo, ctl, kw = create(args, profile=ui_app.ctl.profile())
    assert "warning" in capsys.readouterr().err
    demo.launch(prevent_thread_lock=True, quiet=True, **kw)
    try:
        url = f"http://127.0.0.1:{port}/"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url + "config")
        assert e.value.code in (401, 403)
        with pytest.raises(Exception):
            Client(url, verbose=False)
        ok = Client(url, auth=("ann", "s3cret"), verbose=False)
        assert "No source running" in _md(ok.predict(None, api_name="/poll")[1])
    finally:
        demo.close()
        ctl.close()


def test_the_model_box_offers_only_the_launch_allow_list(ui_app, tmp_path):
    """`--models A` at launch: the Settings box offers lite and A; another model (a real, loadable VLM directory)
    is refused with the reason in the page's message and never loaded; A is accepted; a bank's saved model
    outside the list is not loaded at the next launch; an entry that cannot load stops the launch in one line."""
    import types

    from gradio_client import Client

    from tests.conftest import free_port, run_cli
    from tests.models import tiny
    from ui.app import create

    allowed = tiny.tiny_qwen25(str(tmp_path / "allowed"))
    other = tiny.tiny_qwen25(str(tmp_path / "other"))
    port = free_port()
    args = types.SimpleNamespace(bank=str(tmp_path / "bank"), host="127.0.0.1", port=port, auth=None,
                                 media_dir=str(tmp_path / "media"), model=None, device="cpu", trust_remote_code=False,
                                 models=[allowed])
    demo, ctl, kw = create(args, profile=ui_app.ctl.profile())
    demo.launch(prevent_thread_lock=True, quiet=True, **kw)
    try:
        box = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "settings-model")
        assert [v for _, v in box.choices] == ["lite", allowed] and box.value == "lite"
        c = Client(f"http://127.0.0.1:{port}/", verbose=False)
        msg = c.predict(other, "pool2d", 32, 2.0, 1.0, api_name="/save_settings")
        assert msg.startswith("Error:") and "not allowed" in msg and "lite, " + allowed in msg, msg
        assert ctl.settings["model"] == "lite" and (ctl.bank.get_meta("ui.settings") or {}).get("model") != other
        from engine import profiles

        assert not [k for (k, _, _) in profiles._CACHE if k[0] == other]  # refused before anything loaded
        msg = c.predict(allowed, "pool2d", 32, 2.0, 1.0, api_name="/save_settings")
        assert msg.startswith("OK:") and ctl.settings["model"] == allowed, msg
        ctl.bank.set_meta("ui.settings", {**ctl.settings, "model": other})  # saved under an earlier, wider list
    finally:
        demo.close()
        ctl.close()
    from engine import Engine

    with Engine(args.bank, readonly=True, models=[allowed], parts=()) as again:
        assert again.settings["model"] == "lite"  # the saved model is outside the list: not loaded
    r = run_cli("serve", "--bank", str(tmp_path / "bank2"), "--port", "0", "--models", f"{allowed},/no/such/model")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "/no/such/model" in r.stderr, r.stderr
