"""The CLI contract end to end, with real files, a real RTSP server and real crashes."""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import ROOT, run_cli


def test_ingest_info_ask_roundtrip(media, tmp_path, cli):
    bank = str(tmp_path / "bank")
    r = cli("ingest", media["video"], "--bank", bank, "--fps", "2", "--budget", "16")
    assert r.returncode == 0, r.stderr
    assert "stored" in r.stdout and "Traceback" not in r.stderr
    assert "100%" in r.stderr or "12/12" in r.stderr  # the progress bar
    info = json.loads(cli("info", "--bank", bank, "--json").stdout)
    assert info["memories"] >= 6 and info["consistent"] and info["bytes"] > 0
    assert info["streams"][0]["covered_s"] == pytest.approx(12.0, abs=0.6)
    # query by example: a frame from the third scene finds the third scene
    from PIL import Image
    from tests.fixtures.video import scene_frame
    Image.fromarray(scene_frame(9 * 15, 15, 320, 240, 2)).save(tmp_path / "q.png")
    r = cli("ask", "--bank", bank, "--image", str(tmp_path / "q.png"), "--k", "2", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"answer", "citations", "usage", "latency"}
    assert out["usage"] == {"prompt_tokens": 0, "visual_tokens": 0, "completion_tokens": 0}  # no answerer ran
    top = out["citations"][0]
    assert top["tokens"] == 0  # the lite profile places no carrier tokens
    assert top["start"] >= 7.9 and top["end"] <= 12.1
    assert {"stream", "start", "end", "score", "evidence"} <= set(top)
    assert top["label"] == "retrieved" and top["used"]  # the list of moments is the answer
    # a question over moments that hold no speech or screen text: what the picture matched, said as such
    r = cli("ask", "what is in the picture?", "--bank", bank, "--image", str(tmp_path / "q.png"), "--k", "2")
    assert r.returncode == 0, r.stderr
    assert "No speech or on-screen text answers this, but these moments look most like the example picture" in r.stdout
    assert "1. [00:00:08–00:00:10] scenes.mp4" in r.stdout, r.stdout
    assert "could not find" not in r.stdout
    r = cli("ask", "what is in the picture?", "--bank", bank, "--image", str(tmp_path / "q.png"), "--json")
    cites = json.loads(r.stdout)["citations"]
    assert cites and all(c["label"] == "looks_like" for c in cites)
    text = cli("info", "--bank", bank).stdout
    assert "pool2d reducer, 16 tokens per clip, 2 s clips at 2 fps" in text and "00:00:12 covered" in text, text
    assert info["streams"][0]["settings"] == {"reducer": "pool2d", "budget": 16, "clip_seconds": 2.0, "fps": 2.0}


def spans_of(bank: str) -> list:
    from memory.bank import MemoryBank

    with MemoryBank(bank, readonly=True) as b:
        return [(m.id, m.t0, m.t1) for m in b.list()]


def test_ingesting_a_file_again_never_duplicates_it(media, tmp_path, cli):
    """The same file into the same stream: skipped when covered, resumed into what is missing, replaced when
    asked, refused with other settings or under a stream that holds another file; forget removes a range or all."""
    bank = str(tmp_path / "bank")
    assert cli("ingest", media["noaudio"], "--bank", bank).returncode == 0
    first = spans_of(bank)
    assert len(first) >= 3
    r = cli("ingest", media["noaudio"], "--bank", bank)
    assert r.returncode == 0, r.stderr
    assert "nothing new" in r.stdout and "already stored" in r.stderr, (r.stdout, r.stderr)
    assert spans_of(bank) == first  # the same memories, not twice as many
    info = json.loads(cli("info", "--bank", bank, "--json").stdout)
    assert info["streams"][0]["covered_s"] == pytest.approx(6.0, abs=0.6)
    r = cli("ingest", media["noaudio"], "--bank", bank, "--reducer", "tome")
    assert r.returncode == 1 and "stored with reducer pool2d (asked: reducer tome)" in r.stderr, r.stderr
    r = cli("ingest", media["video"], "--bank", bank, "--stream", "noaudio.mp4")
    assert r.returncode == 1 and "already holds 'noaudio.mp4'" in r.stderr, r.stderr
    r = cli("ingest", media["noaudio"], "--bank", bank, "--replace")
    assert r.returncode == 0 and "replaced" in r.stderr, r.stderr
    again = spans_of(bank)
    assert [(a, b) for _, a, b in again] == [(a, b) for _, a, b in first]
    assert min(i for i, _, _ in again) > max(i for i, _, _ in first)  # stored afresh
    # forget a stretch, then ingest again: only the hole is filled
    r = cli("forget", "--bank", bank, "--stream", "noaudio.mp4", "--start", "2.5", "--end", "3.5")
    assert r.returncode == 0 and "forgot 'noaudio.mp4' from 00:00:02 to 00:00:03: 1 memories" in r.stdout, r.stdout
    assert len(spans_of(bank)) == len(first) - 1
    r = cli("ingest", media["noaudio"], "--bank", bank)
    assert r.returncode == 0 and "resuming there" in r.stderr, r.stderr
    filled = sorted((a, b) for _, a, b in spans_of(bank))
    assert all(x[1] <= y[0] + 1e-6 for x, y in zip(filled, filled[1:])), filled  # no overlaps
    assert filled[0][0] == 0 and filled[-1][1] == pytest.approx(6.0, abs=0.1)
    assert sum(b - a for a, b in filled) == pytest.approx(6.0, abs=0.1)
    # forget the whole stream: its memories, shards and thumbnails go
    r = cli("forget", "--bank", bank, "--stream", "noaudio.mp4")
    assert r.returncode == 0 and "forgot stream 'noaudio.mp4'" in r.stdout and "MB freed" in r.stdout, r.stdout
    info = json.loads(cli("info", "--bank", bank, "--json").stdout)
    assert info["memories"] == 0 and info["streams"] == [] and info["consistent"]
    assert os.listdir(os.path.join(bank, "shards")) == []
    r = cli("forget", "--bank", bank, "--stream", "noaudio.mp4")
    assert r.returncode == 1 and "unknown stream 'noaudio.mp4'" in r.stderr


def test_second_ingest_appends_a_second_stream(media, tmp_path, cli):
    bank = str(tmp_path / "bank")
    assert cli("ingest", media["noaudio"], "--bank", bank).returncode == 0
    assert cli("ingest", media["noaudio"], "--bank", bank, "--stream", "again", "--reducer", "framemerge").returncode == 0
    info = json.loads(cli("info", "--bank", bank, "--json").stdout)
    assert {s["stream"] for s in info["streams"]} == {"noaudio.mp4", "again"}


@pytest.mark.parametrize("args,needle", [
    (["ingest", "{empty}", "--bank", "{bank}"], "empty"),
    (["ingest", "{truncated}", "--bank", "{bank}"], "cannot read"),
    (["ingest", "{text}", "--bank", "{bank}"], "cannot read"),
    (["ingest", "/no/such/file.mp4", "--bank", "{bank}"], "no such file"),
    (["ingest", "rtsp://127.0.0.1:{closed_port}/cam", "--bank", "{bank}", "--connect-timeout", "3"], "cannot connect"),
    (["ingest", "{video}", "--bank", "{bank}", "--fps", "0"], "must be > 0"),
    (["ingest", "{video}", "--bank", "{bank}", "--budget", "-3"], "must be > 0"),
    (["ingest", "{video}", "--bank", "{bank}", "--reducer", "nope"], "unknown reducer"),
    (["ingest", "{video}", "--bank", "{bank}", "--start", "100"],
     "start 00:01:40 is past the end of 'scenes.mp4' (it is 00:00:12 long)"),
    (["ingest", "{video}", "--bank", "{bank}", "--start", "-5"], "start must be 0 s or later"),
    (["forget", "--bank", "{tmp}/missing", "--stream", "x"], "no memory bank"),
    (["ingest", "{video}"], "required: --bank"),
    (["ask", "--bank", "{tmp}/missing", "hello"], "no memory bank"),
    (["ask", "--bank", "{bank}", "--image", "{text}"], "cannot read image"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_gives_one_clear_line_and_nonzero_exit(media, tmp_path, cli, args, needle):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    fmt = dict(media, bank=str(tmp_path / "b"), tmp=str(tmp_path), closed_port=closed_port)
    t0 = time.monotonic()
    r = cli(*[a.format(**fmt) for a in args], timeout=60)
    assert r.returncode != 0
    assert needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert time.monotonic() - t0 < 30


def test_summarize_goes_on_with_a_partly_ingested_recording(media, tmp_path, cli):
    """summarize FILE --bank B after an interrupted ingest of that file: the rest is ingested, nothing twice."""
    from engine import recordings

    bank = str(tmp_path / "bank")
    assert cli("ingest", media["noaudio"], "--bank", bank, "--duration", "3").returncode == 0
    part = spans_of(bank)
    rec = recordings.prepare(media["noaudio"], bank)
    assert not rec.reuse and any("ingesting the rest" in n for n in rec.notes), rec.notes
    r = cli("ingest", media["noaudio"], "--bank", bank)  # what summarize runs next: the engine resumes
    assert r.returncode == 0 and "resuming there" in r.stderr, r.stderr
    spans = sorted((a, b) for _, a, b in spans_of(bank))
    assert spans[:len(part)] == sorted((a, b) for _, a, b in part) and spans[-1][1] == pytest.approx(6.0, abs=0.1)
    assert all(x[1] <= y[0] + 1e-6 for x, y in zip(spans, spans[1:]))
    assert recordings.prepare(media["noaudio"], bank).reuse  # covered now: summarize reuses it


def test_unreachable_camera_says_why_without_its_password(tmp_path, cli):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    r = cli("ingest", f"rtsp://ann:s3cret@127.0.0.1:{port}/cam?token=abc", "--bank", str(tmp_path / "b"),
            "--connect-timeout", "3", timeout=60)
    assert r.returncode == 1, r.stderr
    assert f"vigil: error: cannot connect to rtsp://ann:***@127.0.0.1:{port}/cam?…: Connection refused" in r.stderr, \
        r.stderr
    assert "s3cret" not in r.stderr + r.stdout and "abc" not in r.stderr and "Traceback" not in r.stderr
    assert time.monotonic() - t0 < 40


def test_silent_rtsp_server_does_not_hang(tmp_path, cli):
    """A server that accepts the connection and never answers: a clear error within seconds."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    conns = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.5)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    try:
        t0 = time.monotonic()
        r = cli("ingest", f"rtsp://127.0.0.1:{port}/cam", "--bank", str(tmp_path / "b"), "--connect-timeout", "4", timeout=40)
        assert r.returncode != 0 and "cannot connect" in r.stderr and "Traceback" not in r.stderr
        assert time.monotonic() - t0 < 35
    finally:
        stop.set()
        srv.close()


def read_count(bank: str) -> int:
    p = os.path.join(bank, "bank.sqlite")
    if not os.path.exists(p):
        return 0
    db = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute("SELECT COUNT(*) FROM memories").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def start_ingest(*args):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "app.py"), "ingest", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def test_sigkill_loses_nothing_acknowledged(media, tmp_path, cli):
    bank = str(tmp_path / "bank")
    p = start_ingest(media["long"], "--bank", bank, "--fps", "2", "--realtime")
    try:
        assert wait_for(lambda: read_count(bank) >= 4, 120)
        acked = read_count(bank)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
    info = json.loads(cli("info", "--bank", bank, "--json").stdout)
    assert info["memories"] >= acked and info["consistent"]
    # reopening for writing repairs, and ingestion keeps appending to the same bank
    r = cli("ingest", media["noaudio"], "--bank", bank)
    assert r.returncode == 0, r.stderr
    from memory.bank import MemoryBank
    with MemoryBank(bank) as b:
        assert b.check()["ok"] and b.count() >= acked + 3
        assert all(b.carrier(m.id) is not None for m in b.list())


def test_ctrl_c_stops_flushes_and_exits_zero(media, tmp_path):
    bank = str(tmp_path / "bank")
    p = start_ingest(media["long"], "--bank", bank, "--realtime")
    assert wait_for(lambda: read_count(bank) >= 2, 120)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert "interrupted" in out and "Traceback" not in err
    from memory.bank import MemoryBank
    with MemoryBank(bank, readonly=True) as b:
        assert b.check()["ok"] and b.count() >= 2
        before = [(m.t0, m.t1) for m in b.list()]
    # the same command again goes on where the first stopped: the file ends up stored once
    r = run_cli("ingest", media["long"], "--bank", bank)
    assert r.returncode == 0 and "resuming there" in r.stderr, r.stderr
    after = sorted((a, b) for _, a, b in spans_of(bank))
    assert after[:len(before)] == sorted(before)
    assert all(x[1] <= y[0] + 1e-6 for x, y in zip(after, after[1:])), after  # nothing twice
    assert after[-1][1] == pytest.approx(40.0, abs=0.2) and sum(b - a for a, b in after) == pytest.approx(40.0, abs=1.5)


def test_rtsp_ingest_reconnects_after_the_server_restarts(rtsp_server, tmp_path, cli):
    bank = str(tmp_path / "bank")
    p = start_ingest(rtsp_server.url, "--bank", bank, "--duration", "40", "--clip-seconds", "1")
    try:
        assert wait_for(lambda: read_count(bank) >= 2, 120), p.stderr.read() if p.poll() is not None else ""
        rtsp_server.stop()
        time.sleep(3)
        before = read_count(bank)
        rtsp_server.start()
        assert wait_for(lambda: read_count(bank) >= before + 3, 90)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
    finally:
        if p.poll() is None:
            p.kill()
    from memory.bank import MemoryBank
    with MemoryBank(bank, readonly=True) as b:
        kinds = [e["kind"] for e in b.events()]
        assert "gap" in kinds and kinds.count("connected") >= 2
        gap = [e for e in b.events() if e["kind"] == "gap"][0]
        assert gap["t"] > 0


def test_rtsp_ingested_again_under_its_id_continues_the_stream_clock(rtsp_server, tmp_path, cli):
    """Two CLI runs of one camera into one bank: the second run's memories come after the first's, with a gap event."""
    bank = str(tmp_path / "bank")
    for _ in range(2):
        r = cli("ingest", rtsp_server.url, "--bank", bank, "--duration", "4", "--clip-seconds", "1", timeout=120)
        assert r.returncode == 0, r.stderr
    assert "continuing stream" in r.stderr
    from memory.bank import MemoryBank
    with MemoryBank(bank, readonly=True) as b:
        (stream,) = b.streams()
        mems = b.list(stream=stream["stream"])
        gaps = [e for e in b.events() if e["kind"] == "gap" and "restarted" in e["detail"]]
        assert len(gaps) == 1
        first = [m for m in mems if m.t0 < gaps[0]["t"] + 1e-6]
        second = [m for m in mems if m.t0 > gaps[0]["t"] + 1e-6]
        assert first and second and max(m.t1 for m in first) <= min(m.t0 for m in second)
        assert min(m.t0 for m in second) >= max(m.t1 for m in first) + 0.5  # the stopped stretch is a jump in t


def test_help_and_no_traceback_on_bare_ask(cli, tmp_path):
    assert cli("--help").returncode == 0
    r = cli("ask", "--bank", str(tmp_path))
    assert r.returncode != 0 and "Traceback" not in r.stderr


@pytest.mark.parametrize("status, code, err", [(None, 0, ""), (0, 0, ""), (3, 3, ""), ("no such bank", 1, "no such bank")])
def test_exit_now_ends_as_sys_exit_would_with_all_output_delivered(status, code, err):
    """`python app.py` ends through app.exit_now (no interpreter teardown): the status means what sys.exit's would,
    and everything printed before it reaches a pipe whole (here 2 MB, beyond any pipe's buffer)."""
    script = ("import sys, app; print('x' * 2_000_000); print('end'); sys.stderr.write('on stderr\\n'); "
              f"app.exit_now({status!r})")
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == code
    assert r.stdout.splitlines() == ["x" * 2_000_000, "end"]
    assert r.stderr.splitlines() == ["on stderr"] + ([err] if err else [])
