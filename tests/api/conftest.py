"""One real `python app.py serve` (uvicorn on 127.0.0.1, a free port, a bearer token) per test session, over a
bank that a generated meeting is ingested into through the API itself (POST /v1/streams)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import types

import httpx
import pytest

from tests.conftest import ROOT, free_port, wait_for

TOKEN = "test-token-5f2c"
MEETING_STREAM = "talk"


def start_server(bank: str, media: str, *extra: str, token: str | None = TOKEN, env: dict | None = None):
    """`app.py serve` in a subprocess; returns (process, url) once /v1/health answers."""
    port = free_port()
    args = [sys.executable, "app.py", "serve", "--bank", bank, "--media-dir", media, "--host", "127.0.0.1",
            "--port", str(port), *extra]
    if token:
        args += ["--api-token", token]
    e = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    e.pop("VIGIL_API_TOKEN", None)
    log = open(os.path.join(os.path.dirname(bank), f"serve-{port}.log"), "w")
    proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=e)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"the server exited ({proc.returncode}): {open(log.name).read()[-2000:]}")
        try:
            return httpx.get(url + "/v1/health", headers=headers, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 120, "the server to answer")
    proc.log_path = log.name
    return proc, url


def stop_server(proc) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


@pytest.fixture(scope="session")
def api_media(tmp_path_factory):
    """A media dir with a generated meeting (slides + speech) and the generated scenes video; a secret outside it
    and a symlink that points out of it."""
    from tests.fixtures.meeting import make_meeting
    from tests.fixtures.video import make_video

    d = tmp_path_factory.mktemp("api")
    media = d / "media"
    media.mkdir()
    truth = make_meeting(media / "meeting.mp4", duration_s=24, n_slides=2, size=(640, 360), seed=3)
    make_video(str(media / "scenes.mp4"), seconds=12, scenes=(4.0, 8.0))
    (d / "secret.txt").write_text("not for clients\n")
    os.symlink(str(d / "secret.txt"), str(media / "link.mp4"))
    return types.SimpleNamespace(root=d, media=str(media), truth=truth, secret=str(d / "secret.txt"))


@pytest.fixture(scope="session")
def api(api_media):
    """The running server with the meeting ingested through POST /v1/streams (stream "talk")."""
    bank = str(api_media.root / "bank")
    proc, url = start_server(bank, api_media.media)
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=600)
    try:
        r = client.post("/v1/streams", json={"source": "meeting.mp4", "stream": MEETING_STREAM})
        assert r.status_code == 201, r.text
        created = r.json()

        def finished():
            rows = {s["stream"]: s for s in client.get("/v1/streams").json()}
            s = rows[MEETING_STREAM]
            assert s["state"] in ("starting", "running", "finished"), s
            return s if s["state"] == "finished" else None

        done = wait_for(finished, 420, "the meeting to be ingested", every=1.0)
        yield types.SimpleNamespace(url=url, token=TOKEN, bank=bank, media=api_media, client=client, proc=proc,
                                    created=created, finished=done, truth=api_media.truth)
    finally:
        client.close()
        rc = stop_server(proc)
        print(open(proc.log_path).read()[-3000:])
        assert rc == 0, rc
        assert not os.path.exists(os.path.join(bank, "server.json"))  # withdrawn on SIGTERM
