"""The CLI faces of watches and alerts, from a fresh bank: `watch add|list|remove`, `ingest --watch/--watch-image/
--webhook`, `alerts [--json] [--since]`, and bad input as one clear line with exit code 1."""
from __future__ import annotations

import json
import types

import pytest

from engine.timefmt import span
from tests.conftest import run_cli
from tests.engine.test_watches import Receiver


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    from PIL import Image

    from tests.fixtures.watch_media import make_watch_meeting, q3_slide

    d = tmp_path_factory.mktemp("cli-watch-media")
    truth = make_watch_meeting(d / "meeting.mp4")
    Image.fromarray(q3_slide()).save(d / "q3.png")
    (d / "notes.png").write_text("not a picture\n")
    return types.SimpleNamespace(truth=truth, meeting=str(d / "meeting.mp4"), q3=str(d / "q3.png"),
                                 not_image=str(d / "notes.png"))


def one_error_line(r, words: str) -> None:
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("vigil: error: ") and words in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_watch_commands_ingest_alerts_from_a_fresh_bank(media, tmp_path):
    bank = str(tmp_path / "fresh")
    r = run_cli("watch", "add", "tell me when someone mentions the budget", "--bank", bank)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("watch 1: 'tell me when someone mentions the budget' (speech")
    r = run_cli("watch", "add", "--image", media.q3, "--stream", "meeting", "--bank", bank, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["kind"] == "image"
    listed = json.loads(run_cli("watch", "list", "--bank", bank, "--json").stdout)
    assert [(w["id"], w["kind"], w["stream"]) for w in listed] == [(1, "speech", None), (2, "image", "meeting")]
    rx = Receiver(fail_first=0)
    try:
        r = run_cli("ingest", media.meeting, "--bank", bank, "--stream", "meeting", "--watch",
                    "when the slide shows the Q3 results", "--webhook", rx.url, timeout=600)
    finally:
        rx.close()
    assert r.returncode == 0, r.stderr[-3000:]
    assert "3 alert(s):" in r.stdout, r.stdout
    assert "'tell me when someone mentions the budget'" in r.stdout and "Q3 Results" in r.stdout
    assert len(rx.bodies) == 3 and all(set(b) >= {"watch", "stream", "start", "end", "score", "evidence",
                                                  "thumbnail"} for b in rx.bodies)
    r = run_cli("alerts", "--bank", bank, "--json")
    assert r.returncode == 0, r.stderr
    alerts = json.loads(r.stdout)
    assert len(alerts) == 3 and [a["id"] for a in alerts] == sorted(a["id"] for a in alerts)
    budget = [a for a in alerts if a["watch_id"] == 1]
    assert len(budget) == 1 and budget[0]["start"] < media.truth["budget1"][1] and \
        budget[0]["end"] > media.truth["budget1"][0]
    slide = [a for a in alerts if a["watch_id"] == 3]
    assert len(slide) == 1 and 12.0 <= slide[0]["start"] < 16.0 and slide[0]["stream"] == "meeting"
    assert {a["watch_id"] for a in alerts} == {1, 2, 3}
    assert sorted(b["id"] for b in rx.bodies) == [a["id"] for a in alerts]   # every alert of the run was POSTed
    r = run_cli("alerts", "--bank", bank, "--since", "3600")
    assert r.returncode == 0 and r.stdout.count("clip: ") == 3 and span(budget[0]["start"], budget[0]["end"]) in \
        r.stdout, r.stdout
    r = run_cli("alerts", "--bank", bank, "--json", "--since", "0.001")
    assert r.returncode == 0 and json.loads(r.stdout) == []
    r = run_cli("watch", "remove", "1", "--bank", bank)
    assert r.returncode == 0 and "removed watch 1" in r.stdout
    assert [w["id"] for w in json.loads(run_cli("watch", "list", "--bank", bank, "--json").stdout)] == [2, 3]
    assert len(json.loads(run_cli("alerts", "--bank", bank, "--json").stdout)) == 3   # its alerts stay


def test_bad_input_gives_one_line_and_exit_1(media, tmp_path):
    bank = str(tmp_path / "bank")
    assert run_cli("watch", "add", "budget", "--bank", bank).returncode == 0
    one_error_line(run_cli("watch", "remove", "99", "--bank", bank), "no watch with id 99")
    one_error_line(run_cli("watch", "remove", "abc", "--bank", bank), "no watch with id 'abc'")
    one_error_line(run_cli("watch", "add", "--image", media.not_image, "--bank", bank), "cannot read")
    one_error_line(run_cli("watch", "add", "budget", "--webhook", "localhost:9000", "--bank", bank), "bad webhook URL")
    one_error_line(run_cli("watch", "add", "", "--bank", bank), "needs a text")
    one_error_line(run_cli("ingest", media.meeting, "--bank", bank, "--watch-image", media.not_image), "cannot read")
    one_error_line(run_cli("ingest", media.meeting, "--bank", bank, "--watch", "budget", "--webhook", "ftp://x/y"),
                   "bad webhook URL")
    one_error_line(run_cli("alerts", "--bank", str(tmp_path / "nothing")), "no memory bank")
    listed = json.loads(run_cli("watch", "list", "--bank", bank, "--json").stdout)
    assert [w["text"] for w in listed] == ["budget"]      # nothing half-added by the failed commands


def test_watch_add_and_remove_go_through_the_server_that_holds_the_bank(media, tmp_path):
    """`app.py serve` holds the bank (one writer): `watch add|remove` go through its /v1/watches, `watch list` and
    `alerts` read the bank beside it."""
    import os
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT, free_port

    bank = str(tmp_path / "served")
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "app.py"), "serve", "--bank", bank, "--port", str(port),
                             "--no-mcp"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not os.path.exists(os.path.join(bank, "server.json")) and time.time() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.2)
        r = run_cli("watch", "add", "tell me when someone mentions the budget", "--bank", bank)
        assert r.returncode == 0 and r.stdout.startswith("watch 1: "), (r.stdout, r.stderr)
        r = run_cli("watch", "add", "--image", media.q3, "--bank", bank, "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["kind"] == "image", r.stderr
        one_error_line(run_cli("watch", "add", "budget", "--webhook", "nope", "--bank", bank), "bad webhook URL")
        listed = json.loads(run_cli("watch", "list", "--bank", bank, "--json").stdout)
        assert [w["id"] for w in listed] == [1, 2]
        r = run_cli("watch", "remove", "1", "--bank", bank)
        assert r.returncode == 0 and "removed watch 1" in r.stdout, r.stderr
        one_error_line(run_cli("watch", "remove", "1", "--bank", bank), "no watch with id 1")
        assert [w["id"] for w in json.loads(run_cli("watch", "list", "--bank", bank, "--json").stdout)] == [2]
        assert json.loads(run_cli("alerts", "--bank", bank, "--json").stdout) == []
    finally:
        proc.terminate()
        proc.wait(30)
