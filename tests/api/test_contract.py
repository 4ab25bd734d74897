"""The /v1 contract through a real `app.py serve`: streams (start, states, stop), memories and thumbnails, ask
(JSON and Server-Sent Events), summaries (JSON and progress events), bearer tokens, exposure rules, and bad input
answered with one-line JSON errors (never a 5xx, nothing stored lost)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx

from tests.api.conftest import MEETING_STREAM, TOKEN, start_server, stop_server
from tests.conftest import ROOT, free_port, wait_for

STATES = {"starting", "running", "finished", "stopped", "error"}


def fact(truth, attribute: str, project: str):
    return next(f for f in truth.facts if f.attribute == attribute and f.project == project)


def events(resp) -> list:
    out = []
    for line in resp.iter_lines():
        if line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def assert_error(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert isinstance(err["message"], str) and err["message"] and "\n" not in err["message"], err
    assert "Traceback" not in r.text and err["type"]
    return err


def test_stream_lifecycle_and_listing(api):
    c = api.client
    assert api.created["stream"] == MEETING_STREAM and api.created["state"] in ("starting", "running")
    assert api.created["source"].endswith("meeting.mp4")
    s = api.finished
    assert s["state"] == "finished" and s["memories"] >= 8 and s["last_t"] >= 20 and s["error"] is None
    assert {"stream", "source", "state", "frames_in", "memories", "last_t", "error"} <= set(s)
    # a real-time replay runs until it is stopped; DELETE stops it and keeps what it stored
    r = c.post("/v1/streams", json={"source": "scenes.mp4", "stream": "rt", "realtime": True})
    assert r.status_code == 201 and r.json()["state"] in ("starting", "running"), r.text
    assert_error(c.post("/v1/streams", json={"source": "scenes.mp4", "stream": "rt"}), 409)  # a second writer
    wait_for(lambda: c.get("/v1/streams/rt").json()["memories"] >= 1, 90, "a real-time memory")
    r = c.delete("/v1/streams/rt")
    assert r.status_code == 200 and r.json()["state"] == "stopped", r.text
    kept = r.json()["memories"]
    assert kept >= 1 and len(c.get("/v1/memories", params={"stream": "rt"}).json()) == kept
    assert c.delete("/v1/streams/rt").json()["state"] == "stopped"  # stopping again: as it is
    states = {x["stream"]: x["state"] for x in c.get("/v1/streams").json()}
    assert states[MEETING_STREAM] == "finished" and states["rt"] == "stopped" and set(states.values()) <= STATES


def test_memories_window_and_thumbnails(api):
    c = api.client
    rows = c.get("/v1/memories", params={"stream": MEETING_STREAM}).json()
    assert len(rows) == api.finished["memories"]
    assert [m["start"] for m in rows] == sorted(m["start"] for m in rows)
    assert all(set(m["evidence"]) == {"asr", "ocr", "tags"} for m in rows)
    office = fact(api.truth, "office", "Pioneer")
    assert any("Toronto" in m["evidence"]["ocr"] for m in rows if m["start"] >= office.t0 - 2)
    win = c.get("/v1/memories", params={"stream": MEETING_STREAM, "start": 12, "end": 18, "limit": 50}).json()
    assert win and all(m["end"] > 12 and m["start"] < 18 for m in win) and len(win) < len(rows)
    assert len(c.get("/v1/memories", params={"limit": 2}).json()) == 2
    r = c.get(f"/v1/memories/{rows[0]['id']}/thumbnail")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"


def test_ask_json_and_events(api):
    c = api.client
    office = fact(api.truth, "office", "Pioneer")
    body = {"question": office.question, "k": 5, "streams": [MEETING_STREAM]}
    out = c.post("/v1/ask", json=body).json()
    assert set(out) >= {"answer", "citations", "usage", "latency"}
    assert office.answer in out["answer"], out["answer"]
    assert out["citations"] and all(c_["stream"] == MEETING_STREAM for c_ in out["citations"])
    assert any(c_["end"] > office.t0 and c_["start"] < office.t1 for c_ in out["citations"])
    assert out["usage"]["visual_tokens"] == sum(c_["tokens"] for c_ in out["citations"])
    with c.stream("POST", "/v1/ask", json=body, headers={"Accept": "text/event-stream"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        ev = events(r)
    assert ev[-1] == "[DONE]" and ev[-2]["type"] == "answer"
    text = "".join(e["text"] for e in ev if isinstance(e, dict) and e["type"] == "text")
    assert text == ev[-2]["answer"] and office.answer in text
    assert [x["id"] for x in ev[-2]["citations"]] == [x["id"] for x in out["citations"]]
    # a time window outside the fact's slide does not find it
    late = c.post("/v1/ask", json={**body, "start": 0, "end": 10}).json()
    assert all(x["start"] < 10 for x in late["citations"])


def test_summaries_json_and_progress_events(api):
    c = api.client
    out = c.post("/v1/summaries", json={"stream": MEETING_STREAM}).json()
    assert out["stream"] == MEETING_STREAM and out["markdown"].strip() and isinstance(out["minutes"], dict)
    assert "Pioneer" in out["markdown"] or "Horizon" in out["markdown"]
    with c.stream("POST", "/v1/summaries", json={"stream": MEETING_STREAM},
                  headers={"Accept": "text/event-stream"}) as r:
        ev = events(r)
    progress = [e for e in ev if isinstance(e, dict) and e["type"] == "progress"]
    assert len(progress) >= 2 and progress[-1]["fraction"] == 1.0
    assert [p["fraction"] for p in progress] == sorted(p["fraction"] for p in progress)
    assert ev[-2]["type"] == "summary" and ev[-2]["markdown"] == out["markdown"] and ev[-1] == "[DONE]"
    assert_error(c.post("/v1/summaries", json={"stream": "no-such"}), 404)


def test_every_request_needs_the_token(api):
    for method, path, body in (("GET", "/v1/streams", None), ("GET", "/v1/memories", None),
                               ("POST", "/v1/ask", {"question": "x"}), ("GET", "/v1/models", None),
                               ("POST", "/v1/chat/completions", {"model": "vigil", "messages": []}),
                               ("GET", "/openapi.json", None), ("GET", "/v1/health", None),
                               ("DELETE", f"/v1/streams/{MEETING_STREAM}", None), ("GET", "/nope", None),
                               ("POST", "/mcp/gradio_api/mcp/", {})):
        for auth in (None, "Bearer wrong", f"Basic {TOKEN}", TOKEN):
            headers = {"Authorization": auth} if auth else {}
            r = httpx.request(method, api.url + path, json=body, headers=headers, timeout=30)
            assert_error(r, 401)
            assert r.headers.get("www-authenticate") == "Bearer"
    assert api.client.get(f"/v1/streams/{MEETING_STREAM}").json()["state"] == "finished"  # nothing was stopped


def test_bad_input_is_one_line_4xx_and_loses_nothing(api):
    c = api.client
    before = c.get("/v1/memories", params={"limit": 10000}).json()
    cases = [
        (("POST", "/v1/streams", {"source": "../secret.txt"}), 400),
        (("POST", "/v1/streams", {"source": api.media.secret}), 400),
        (("POST", "/v1/streams", {"source": "link.mp4"}), 400),          # a symlink out of the media dir
        (("POST", "/v1/streams", {"source": "/etc/passwd"}), 400),
        (("POST", "/v1/streams", {"source": "nope.mp4"}), 404),
        (("POST", "/v1/streams", {"source": "http://example.com/x.mp4"}), 400),
        (("POST", "/v1/streams", {"source": "push"}), 400),
        (("POST", "/v1/streams", {"source": ""}), 422),
        (("POST", "/v1/streams", {"source": 5}), 422),
        (("POST", "/v1/streams", {"source": "scenes.mp4", "realtime": "yes"}), 422),
        (("POST", "/v1/streams", {"source": "meeting.mp4", "stream": MEETING_STREAM}), None),  # 201 or 409
        (("POST", "/v1/streams", None), 422),
        (("DELETE", "/v1/streams/no-such-stream", None), 404),
        (("GET", "/v1/streams/no-such-stream", None), 404),
        (("GET", "/v1/memories?stream=no-such", None), 404),
        (("GET", "/v1/memories?limit=0", None), 422),
        (("GET", "/v1/memories?start=abc", None), 422),
        (("GET", "/v1/memories?start=10&end=5", None), 400),
        (("GET", "/v1/memories/99999999/thumbnail", None), 404),
        (("GET", "/v1/memories/-1/thumbnail", None), 422),
        (("GET", "/v1/memories/abc/thumbnail", None), 422),
        (("POST", "/v1/ask", {"question": ""}), 400),
        (("POST", "/v1/ask", {"question": "x", "k": 0}), 422),
        (("POST", "/v1/ask", {"question": "x", "k": "5"}), 422),
        (("POST", "/v1/ask", {"question": ["x"]}), 422),
        (("POST", "/v1/ask", {"question": "x", "streams": ["no-such"]}), 404),
        (("POST", "/v1/ask", {"question": "x", "start": 10, "end": 5}), 400),
        (("POST", "/v1/ask", [1, 2]), 422),
        (("POST", "/v1/summaries", {"stream": 3}), 422),
        (("POST", "/v1/chat/completions", {"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}), 404),
        (("POST", "/v1/chat/completions", {"model": "vigil", "messages": []}), 422),
        (("POST", "/v1/chat/completions", {"model": "vigil", "messages": [{"role": "system", "content": "x"}]}), 400),
        (("POST", "/v1/chat/completions", {"model": "vigil", "messages": [{"role": "wizard", "content": "x"}]}), 422),
        (("PUT", "/v1/streams", {}), 405),
        (("GET", "/v1/nope", None), 404),
    ]
    for (method, path, body), status in cases:
        r = c.request(method, path, json=body) if body is not None else c.request(method, path)
        if status is None:
            assert r.status_code in (201, 409), r.text
            continue
        err = assert_error(r, status)
        assert api.media.secret not in err["message"] and str(api.media.root) not in err["message"], err
    for raw in (b"{bad json", b"", b"\xff\xfe", b'{"question": "x",}'):
        r = c.post("/v1/ask", content=raw, headers={"Content-Type": "application/json"})
        assert_error(r, 422)
    after = c.get("/v1/memories", params={"limit": 10000}).json()
    assert {m["id"] for m in before} <= {m["id"] for m in after}  # nothing stored was lost


def test_a_public_host_needs_a_token_and_the_bank_one_writer(api, tmp_path):
    env = dict(os.environ, VIGIL_API_TOKEN="")
    bank = str(tmp_path / "b")
    r = subprocess.run([sys.executable, "app.py", "serve", "--bank", bank, "--host", "0.0.0.0", "--port",
                        str(free_port())], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1 and "needs --api-token" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not os.path.exists(bank)  # refused before anything was opened
    # a second server on a bank that one already writes: one line, and the first one keeps serving
    r = subprocess.run([sys.executable, "app.py", "serve", "--bank", api.bank, "--port", str(free_port())],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "being written by" in r.stderr, r.stderr
    assert api.client.get("/v1/health").json()["ok"]
    info = json.load(open(os.path.join(api.bank, "server.json")))
    assert info["url"] == api.url and TOKEN not in json.dumps(info)  # only the token's hash is written


def test_secrets_never_reach_the_log(api):
    api.client.post("/v1/streams", json={"source": "rtsp://ann:s3cretpw@127.0.0.1:9/cam?token=zz9"})
    log = open(api.proc.log_path).read()
    assert TOKEN not in log and "s3cretpw" not in log and "zz9" not in log
    streams = json.dumps(api.client.get("/v1/streams").json())
    assert "s3cretpw" not in streams and "zz9" not in streams


def test_a_token_and_a_free_port_on_loopback(tmp_path, api_media):
    """A second server on another bank without a token is reachable without one; a port in use is one line."""
    proc, url = start_server(str(tmp_path / "bank"), api_media.media, token=None)
    try:
        assert httpx.get(url + "/v1/streams").json() == []
        port = url.rsplit(":", 1)[1]
        r = subprocess.run([sys.executable, "app.py", "serve", "--bank", str(tmp_path / "b2"), "--port", port],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "cannot listen" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    finally:
        assert stop_server(proc) == 0
