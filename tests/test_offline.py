"""The default profile never reaches for a model hub: `python app.py` (the UI) starts, and ingest, ask and
summarize run, with every hub and proxy address pointed at a local recorder instead of the internet."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from tests.conftest import ROOT, free_port


class Recorder:
    """A TCP listener that writes down the first line of every request it gets and answers 503."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.requests.append(conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1"))
                    conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def hub_requests(self) -> list[str]:
        return [r for r in self.requests if any(w in r for w in ("huggingface", "/resolve/", "/api/models", "hf.co"))]


def no_hub_env(rec: Recorder) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=rec.url, HTTP_PROXY=rec.url, HTTPS_PROXY=rec.url, http_proxy=rec.url, https_proxy=rec.url,
               ALL_PROXY=rec.url, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               GRADIO_ANALYTICS_ENABLED="False")
    return env


def run(args, env, timeout=600):
    return subprocess.run([sys.executable, os.path.join(ROOT, "app.py"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_default_profile_ingests_answers_and_summarizes_without_a_hub(media, tmp_path):
    rec = Recorder()
    env = no_hub_env(rec)
    bank = str(tmp_path / "bank")
    r = run(["ingest", media["video"], "--bank", bank], env)
    assert r.returncode == 0, r.stderr[-2000:]
    r = run(["ask", "what colour was the screen at the start?", "--bank", bank, "--json"], env)
    # a tone and coloured scenes hold no speech, no text and no confident tag: it says so in one line, never invents
    assert (r.returncode == 0 and json.loads(r.stdout)["citations"]) or (
        r.returncode == 1 and "found by words" in r.stderr and "Traceback" not in r.stderr), r.stderr[-2000:]
    from PIL import Image
    from tests.fixtures.video import scene_frame
    Image.fromarray(scene_frame(0, 15, 320, 240, 0)).save(tmp_path / "q.png")
    r = run(["ask", "--image", str(tmp_path / "q.png"), "--bank", bank, "--json"], env)  # query by example
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["citations"][0]["start"] < 4.0
    r = run(["summarize", "--bank", bank, "--json"], env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert rec.hub_requests() == [], rec.requests


def test_python_app_py_serves_the_ui_offline(tmp_path):
    rec = Recorder()
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "app.py"), "--port", str(port), "--bank",
                             str(tmp_path / "bank")], env=no_hub_env(rec), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        deadline, page = time.time() + 180, ""
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                    page = resp.read().decode("utf-8", "replace")
                break
            except OSError:
                time.sleep(1)
        assert proc.poll() is None, proc.stdout.read()[-2000:]
        assert "gradio" in page.lower()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert rec.hub_requests() == [], rec.requests
