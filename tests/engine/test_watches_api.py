"""The HTTP face of watches and alerts (api/watches.py, mounted by api/app.py): POST/GET/DELETE /v1/watches,
GET /v1/alerts, an alert's clip and thumbnail, and the Server-Sent Events stream of new alerts, on a real server
on 127.0.0.1."""
from __future__ import annotations

import base64
import io
import json
import threading
import time
import types

import httpx
import numpy as np
import pytest

from tests.conftest import free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    from api.app import create_app
    from engine import Engine
    from models.text_embed import TextEmbedder

    # the text checks need only the text embedder: a light profile, no speech or OCR models
    prof = types.SimpleNamespace(name="lite", text_embedder=TextEmbedder(), evidence=[], answerer=None, encoder=None,
                                 key_encoder=None, query_keys=lambda **kw: {})
    eng = Engine(str(tmp_path_factory.mktemp("api-watch") / "bank"), profile=prof)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(eng), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url + "/v1/watches", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield types.SimpleNamespace(url=url, engine=eng)
    srv.should_exit = True
    t.join(10)
    eng.close()


def store_memory(eng, t0: float, said: str) -> int:
    """A memory as ingestion stores it (evidence, thumbnail), announced to the watches as the pipeline does."""
    from memory.bank import encode_jpeg

    img = np.full((72, 128, 3), 90, np.uint8)
    img[20:50, 30:90] = (200, 40, 40)
    mid = eng.bank.add(stream="talk", t0=t0, t1=t0 + 2.0, wall=time.time(), carrier=None, keys={},
                       thumbnail=encode_jpeg(img), evidence={"asr": said})
    frames = [types.SimpleNamespace(t=t0, image=img), types.SimpleNamespace(t=t0 + 1.0, image=img)]
    eng.alert_service.on_clip("talk", mid, types.SimpleNamespace(frames=frames))
    return mid


def test_watches_crud_and_errors(server):
    u = server.url
    r = httpx.post(u + "/v1/watches", json={"text": "tell me when someone mentions the budget", "cooldown": 0})
    assert r.status_code == 201, r.text
    w = r.json()
    assert w["kind"] == "speech" and w["stream"] is None and w["id"] >= 1
    from tests.fixtures.watch_media import q3_slide
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(q3_slide()).save(buf, "PNG")
    r = httpx.post(u + "/v1/watches", json={"text": "the Q3 slide", "image": base64.b64encode(buf.getvalue()).decode(),
                                            "stream": "talk"})
    assert r.status_code == 201 and r.json()["kind"] == "image", r.text
    img_watch = r.json()
    for body, words in (({"text": "budget", "webhook": "ftp://x/y"}, "bad webhook URL"),
                        ({"text": "budget", "image": "%%% not base64"}, "base64"),
                        ({"text": "budget", "image": base64.b64encode(b"plain text").decode()}, "cannot read"),
                        ({"text": ""}, "needs a text"), ({"text": "budget", "threshold": 2}, "threshold")):
        r = httpx.post(u + "/v1/watches", json=body)
        assert r.status_code == 400 and words in r.json()["error"]["message"], (body, r.text)
    listed = httpx.get(u + "/v1/watches").json()
    assert listed["object"] == "list" and [x["id"] for x in listed["data"]] == [w["id"], img_watch["id"]]
    assert httpx.get(u + f"/v1/watches/{w['id']}").json()["text"] == w["text"]
    r = httpx.delete(u + f"/v1/watches/{img_watch['id']}")
    assert r.status_code == 200 and r.json()["deleted"] is True
    r = httpx.delete(u + f"/v1/watches/{img_watch['id']}")
    assert r.status_code == 404 and "no watch with id" in r.json()["error"]["message"]
    assert httpx.delete(u + "/v1/watches/abc").status_code == 422
    assert httpx.get(u + "/v1/alerts", params={"since": -1}).status_code == 422
    assert httpx.get(u + "/v1/alerts/999").status_code == 404


def test_event_stream_alerts_and_clip(server):
    u, eng = server.url, server.engine
    httpx.post(u + "/v1/watches", json={"text": "tell me when someone mentions the budget", "cooldown": 0})
    got, opened = [], threading.Event()

    def listen():
        with httpx.stream("GET", u + "/v1/alerts/stream", params={"limit": 1, "timeout": 30}, timeout=40) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                if line.startswith(": connected"):
                    opened.set()
                if line.startswith("data: "):
                    got.append(json.loads(line[6:]))

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    assert opened.wait(10)
    store_memory(eng, 10.0, "Thank you, that is very helpful.")
    store_memory(eng, 12.0, "Now we should discuss the budget for the launch.")
    t.join(30)
    assert len(got) == 1, got
    a = got[0]
    assert a["watch"] == "tell me when someone mentions the budget" and a["stream"] == "talk"
    assert (a["start"], a["end"]) == (12.0, 14.0) and "budget" in a["evidence"]
    listed = httpx.get(u + "/v1/alerts", params={"since": 60}).json()["data"]
    assert [x["id"] for x in listed] == [a["id"]]
    assert httpx.get(u + f"/v1/alerts/{a['id']}").json()["evidence"] == a["evidence"]
    r = httpx.get(u + f"/v1/alerts/{a['id']}/thumbnail")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    r = httpx.get(u + f"/v1/alerts/{a['id']}/clip")
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    import av

    with av.open(io.BytesIO(r.content)) as c:
        assert sum(1 for _ in c.decode(video=0)) >= 2
    # a client that connects later replays what it missed with after=
    with httpx.stream("GET", u + "/v1/alerts/stream", params={"after": 0, "limit": 1}, timeout=20) as r:
        replay = [json.loads(ln[6:]) for ln in r.iter_lines() if ln.startswith("data: ")]
    assert [x["id"] for x in replay] == [a["id"]]
