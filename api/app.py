"""HTTP routes under /v1, each a thin call into the Engine (no ingest or ask logic here).

    POST /v1/ask  {"question", "k", "streams", "start", "end"} -> the Answer JSON
                  {"answer", "citations", "usage", "latency"}; with `Accept: text/event-stream`, Server-Sent Events:
                  `data: {"type": "text", "text": …}` per piece, then `data: {"type": "answer", "answered", …the
                  Answer…}` (answered: an answerer wrote the text, not just the list of moments), then
                  `data: [DONE]` (an error midway: `data: {"type": "error", "error": …}`).
    GET  /v1/health -> {"ok", "bank", "pid", "memories"}

Errors are one-line JSON `{"error": "…"}` with a 4xx status (EngineError.kind -> status). Every response names
the bank it serves in `X-Vigil-Bank`. With tokens, every request needs `Authorization: Bearer <token>`.
`attach()` mounts the routes on a running app (Gradio's FastAPI app) and advertises the server in the bank
directory (engine/discovery.py) so `app.py ask` finds it.
"""
from __future__ import annotations

import hmac
import json
import os
from typing import Iterable, Iterator, Optional

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from engine import EngineError, discovery

STATUS = {"invalid": 400, "not_found": 404, "conflict": 409, "unavailable": 503, "failed": 502}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class AskRequest(BaseModel):
    question: str = Field("", max_length=4000)
    k: int = Field(5, ge=1, le=100)
    streams: Optional[list[str]] = None
    start: Optional[float] = None
    end: Optional[float] = None


def error(e: EngineError, headers: Optional[dict] = None) -> JSONResponse:
    return JSONResponse({"error": str(e)}, status_code=STATUS.get(e.kind, 400), headers=headers)


def router(engine, tokens: Iterable[str] = ()) -> APIRouter:
    """The /v1 routes over one engine. tokens: accepted bearer tokens (none: no authentication)."""
    tokens = [t for t in tokens if t]
    bank = {"X-Vigil-Bank": engine.path}

    def denied(request: Request) -> Optional[JSONResponse]:
        if not tokens:
            return None
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if any(hmac.compare_digest(given.encode(), t.encode()) for t in tokens):
            return None
        return JSONResponse({"error": "missing or wrong API token"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})

    r = APIRouter(prefix="/v1")

    @r.get("/health")
    def health(request: Request):
        if (no := denied(request)) is not None:
            return no
        return JSONResponse({"ok": True, "bank": engine.path, "pid": os.getpid(),
                             "memories": engine.bank_summary()["memories"]}, headers=bank)

    @r.post("/ask")
    def ask(body: AskRequest, request: Request):
        if (no := denied(request)) is not None:
            return no
        kw = dict(k=body.k, streams=body.streams, start=body.start, end=body.end)
        try:
            answer = engine.ask(body.question, **kw)
        except EngineError as e:
            return error(e, bank)
        if "text/event-stream" in request.headers.get("accept", ""):
            return StreamingResponse(_events(answer), media_type="text/event-stream",
                                     headers={**bank, "Cache-Control": "no-cache"})
        try:
            return JSONResponse(answer.collect().to_dict(), headers=bank)
        except EngineError as e:
            return error(e, bank)

    return r


def _events(answer) -> Iterator[str]:
    try:
        for piece in answer:
            yield "data: " + json.dumps({"type": "text", "text": piece}) + "\n\n"
        yield "data: " + json.dumps({"type": "answer", "answered": answer.answered, **answer.to_dict()}) + "\n\n"
    except Exception as e:  # noqa: BLE001 - the stream has started: report in band, never a traceback
        yield "data: " + json.dumps({"type": "error", "error": str(e).splitlines()[0] if str(e) else "error"}) + "\n\n"
    finally:
        answer.close()
    yield "data: [DONE]\n\n"


def local_url(host: str, port: int) -> str:
    """The URL a client on this machine uses for a server bound to host:port."""
    if host in ("0.0.0.0", "", "::") or host in LOCAL_HOSTS:
        host = "127.0.0.1"
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


def attach(app, engine, *, host: str, port: int, token: Optional[str] = None) -> bool:
    """Mount the /v1 routes on a running FastAPI app (Gradio's) and advertise the server in the bank directory.
    A non-loopback host needs a token (else nothing is mounted: False). Call detach() on shutdown."""
    if host not in LOCAL_HOSTS and not token:
        return False
    app.include_router(router(engine, [token] if token else []))
    discovery.advertise(engine.path, local_url(host, port), token)
    return True


def detach(engine) -> None:
    discovery.withdraw(engine.path)
