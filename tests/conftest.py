"""Shared fixtures: generated media, a real RTSP server, and a CLI runner."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    """Generated videos (PyAV-encoded H.264/AAC) and broken files, made once per session."""
    from tests.fixtures.video import make_audio_only, make_video

    d = tmp_path_factory.mktemp("media")
    files = {
        "video": make_video(str(d / "scenes.mp4"), seconds=12, scenes=(4.0, 8.0)),
        "noaudio": make_video(str(d / "noaudio.mp4"), seconds=6, audio_hz=None),
        "long": make_video(str(d / "long.mp4"), seconds=40, scenes=(10, 20, 30), size=(320, 240), fps=10),
        "audio_only": make_audio_only(str(d / "audio.m4a")),
    }
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("this is not a video\n" * 50)
    raw = open(files["video"], "rb").read()
    (d / "truncated.mp4").write_bytes(raw[: len(raw) // 2])
    files.update(empty=str(d / "empty.mp4"), text=str(d / "text.mp4"), truncated=str(d / "truncated.mp4"))
    return files


def wait_for(cond, timeout: float = 60.0, what: str = "condition", every: float = 0.25):
    """Poll cond() until it returns something truthy (returned), or fail the test after timeout seconds."""
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """GStreamer's RTSP server in a subprocess (Debian python3 + gi); stop() and start() it mid-test."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"rtsp://127.0.0.1:{port}/cam"
        self.proc = None

    def start(self, timeout: float = 15.0) -> None:
        py = shutil.which("python3", path="/usr/bin") or "/usr/bin/python3"
        self.proc = subprocess.Popen([py, os.path.join(ROOT, "tests", "fixtures", "rtsp_server.py"), str(self.port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        deadline = time.time() + timeout
        line = self.proc.stdout.readline()
        if "READY" not in line or time.time() > deadline:
            raise RuntimeError(f"RTSP server did not start: {line!r}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
def rtsp_server():
    if not os.path.exists("/usr/bin/python3"):
        pytest.fail("Debian's python3 with gst-rtsp-server is required (see .ci/run)")
    server = RtspServer(free_port())
    server.start()
    yield server
    server.stop()


def run_cli(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python app.py ARGS` from the repo root; returns the completed process (text output)."""
    e = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run([sys.executable, os.path.join(ROOT, "app.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=e)


@pytest.fixture
def cli():
    return run_cli
