"""HTTP routes under /v1, each a thin call into the Engine (no ingest or ask logic here).

    POST   /v1/streams {"source", "stream", "realtime", "meeting"} -> 201 Stream   (source: a file name inside the
           media directory, rtsp://… or webcam:N)
    GET    /v1/streams -> [Stream]  {"stream", "source", "state", "frames_in", "memories", "last_t", "error", …}
    GET    /v1/streams/{id} -> Stream;   DELETE /v1/streams/{id} stops it (flushed; its memories stay)
    GET    /v1/memories?stream=&start=&end=&limit= -> [Memory];   GET /v1/memories/{id}/thumbnail -> the JPEG
    POST   /v1/ask {"question", "k", "streams", "start", "end"} -> Answer {"answer", "citations", "usage",
           "latency"}; with `Accept: text/event-stream`: `data: {"type": "text", "text"}` per piece, then
           `data: {"type": "answer", "answered", …the Answer…}`, then `data: [DONE]`
    POST   /v1/summaries {"stream"} -> {"stream", "markdown", "minutes"}; streamed: `{"type": "progress",
           "fraction", "what"}` events, then `{"type": "summary", …}`, then [DONE]
    GET    /v1/models, POST /v1/chat/completions: OpenAI-compatible (api/openai_compat.py)
    GET    /v1/health -> {"ok", "bank", "pid", "memories"};   GET /openapi.json describes all of it

Errors are one-line JSON `{"error": {"message", "type", "param", "code"}}` (api/http.py). Every response names
the bank it serves in `X-Vigil-Bank`. With a token, every request needs `Authorization: Bearer <token>`.
`create_app()` is the API's own app (`app.py serve`); `attach()` mounts the same routes on Gradio's app beside
the page, and both advertise the server in the bank directory (engine/discovery.py) so `app.py ask` finds it.
"""
from __future__ import annotations

import os
import queue
import threading
from typing import Iterable, Iterator, Optional

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from engine import EngineError, discovery

from . import http, openai_compat
from .http import LOCAL_HOSTS, SSE_HEADERS, V1Route, is_loopback, sse, sse_guard, wants_events  # noqa: F401
from .schemas import (Answer, AskRequest, Health, Memory, Stream, StreamCreate, Summary, SummaryRequest)

API_TITLE = "Vigil API"
API_VERSION = "1.0"
API_DESCRIPTION = ("Streams in, memories out: start sources, list memories, ask with citations, minutes, and an "
                   "OpenAI-compatible chat endpoint over the same engine as the CLI and the UI.")
STATE_NAMES = {"connecting": "starting"}  # the engine's finer states, in the contract's five
MAX_ID = 2**63 - 1
EVENTS = {"text/event-stream": {"schema": {"type": "string"}, "example": 'data: {"type": "text", "text": "…"}'}}


def stream_out(info) -> dict:
    d = info.to_dict() if hasattr(info, "to_dict") else dict(info)
    d["state"] = STATE_NAMES.get(d.get("state"), d.get("state"))
    return d


def router(engine, tokens: Iterable[str] = ()) -> APIRouter:
    """The /v1 routes over one engine. tokens: accepted bearer tokens (none: no authentication)."""
    bank = {"X-Vigil-Bank": engine.path}
    r = APIRouter(prefix="/v1", route_class=V1Route, dependencies=[Depends(http.require_token(tokens))],
                  responses=http.ERROR_RESPONSES)

    def named(data, status: int = 200) -> JSONResponse:
        return JSONResponse(data, status_code=status, headers=bank)

    # ---- service ---------------------------------------------------------------------------------

    @r.get("/health", response_model=Health, tags=["service"])
    def health():
        return named({"ok": True, "bank": engine.path, "pid": os.getpid(),
                      "memories": engine.bank_summary()["memories"]})

    # ---- streams ---------------------------------------------------------------------------------

    @r.get("/streams", response_model=list[Stream], tags=["streams"])
    def list_streams():
        """Every stream: those started by this server with their live state, then the bank's others
        ("stopped": not running here; their memories are kept)."""
        return named([Stream.model_validate(stream_out(i)).model_dump() for i in engine.stream_list()])

    @r.post("/streams", response_model=Stream, status_code=201, tags=["streams"])
    def start_stream(body: StreamCreate):
        """Start ingesting a source in the background: a file name inside the media directory, rtsp://… or
        webcam:N. 201 with the stream; poll GET /v1/streams for its state."""
        if body.source.strip() == "push":
            raise EngineError("'push' streams take frames from the page; give a file, rtsp://… or webcam:N")
        info = engine.start(body.source, stream=body.stream, realtime=body.realtime, meeting=body.meeting,
                            probe=True)
        return named(Stream.model_validate(stream_out(info)).model_dump(), 201)

    @r.get("/streams/{stream_id:path}", response_model=Stream, tags=["streams"])
    def get_stream(stream_id: str = Path(max_length=120)):
        return named(Stream.model_validate(stream_out(_find(engine, stream_id))).model_dump())

    @r.delete("/streams/{stream_id:path}", response_model=Stream, tags=["streams"])
    def stop_stream(stream_id: str = Path(max_length=120)):
        """Stop a stream: the clip in progress is stored and flushed; its memories stay. A stream not running
        here is returned as it is."""
        info = _find(engine, stream_id)
        if stream_id in engine.started():
            info = engine.stop(stream_id)
        return named(Stream.model_validate(stream_out(info)).model_dump())

    # ---- memories --------------------------------------------------------------------------------

    @r.get("/memories", response_model=list[Memory], tags=["memories"])
    def memories(stream: Optional[str] = Query(None, max_length=120),
                 start: Optional[float] = Query(None, ge=0, allow_inf_nan=False),
                 end: Optional[float] = Query(None, ge=0, allow_inf_nan=False),
                 limit: int = Query(100, ge=1, le=10000)):
        """Stored memories in time order, of one stream or all, overlapping [start, end] (media seconds)."""
        if stream:
            engine.require_stream(stream)
        if start is not None and end is not None and end < start:
            raise EngineError("end must not be before start")
        rows = engine.memories(stream=stream or None, start=start, end=end, limit=limit)
        return named([Memory.model_validate(m).model_dump() for m in rows])

    @r.get("/memories/{memory_id}/thumbnail", tags=["memories"], response_class=FileResponse,
           responses={200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
                            "description": "the memory's thumbnail"}})
    def thumbnail(memory_id: int = Path(ge=0, le=MAX_ID)):
        path = engine.thumbnail(memory_id)
        if not os.path.isfile(path):
            raise EngineError(f"memory {memory_id} has no thumbnail", "not_found")
        return FileResponse(path, media_type="image/jpeg", headers=bank)

    # ---- ask / summaries -------------------------------------------------------------------------

    @r.post("/ask", response_model=Answer, tags=["ask"], responses={200: {"content": EVENTS}})
    def ask(body: AskRequest, request: Request):
        """Ask the bank. JSON: the Answer. `Accept: text/event-stream`: text pieces as they are generated,
        then the Answer (with citations and usage), then [DONE]."""
        answer = engine.ask(body.question, k=body.k, streams=body.streams, start=body.start, end=body.end)
        if wants_events(request):
            return StreamingResponse(sse_guard(_answer_events(answer), answer.close), media_type="text/event-stream",
                                     headers={**bank, **SSE_HEADERS})
        try:
            return named(answer.collect().to_dict())
        finally:
            answer.close()

    @r.post("/summaries", response_model=Summary, tags=["summaries"], responses={200: {"content": EVENTS}})
    def summaries(body: SummaryRequest, request: Request):
        """Minutes of one stream as Markdown and JSON (saved in the bank too). `Accept: text/event-stream`:
        progress events, then the summary, then [DONE]."""
        if body.stream:
            engine.require_stream(body.stream)
        if wants_events(request):
            return StreamingResponse(sse_guard(_summary_events(engine, body.stream)), media_type="text/event-stream",
                                     headers={**bank, **SSE_HEADERS})
        return named(_summary_dict(engine.summarize(body.stream)))

    r.include_router(openai_compat.router(engine))
    return r


def _find(engine, stream_id: str):
    for info in engine.stream_list():
        if info.stream == stream_id:
            return info
    raise EngineError(f"unknown stream {stream_id!r}", "not_found")


def _answer_events(answer) -> Iterator[str]:
    for piece in answer:
        yield sse({"type": "text", "text": piece})
    yield sse({"type": "answer", "answered": answer.answered, **answer.to_dict()})


def _summary_dict(s) -> dict:
    return {"stream": s.stream, "markdown": s.markdown, "minutes": s.minutes}


def _summary_events(engine, stream: Optional[str]) -> Iterator[str]:
    """Summarize in a thread; its progress calls become events as they happen."""
    q: queue.Queue = queue.Queue()

    def run():
        try:
            s = engine.summarize(stream, lambda f, what="": q.put(("progress", f, what)))
            q.put(("done", s, None))
        except BaseException as e:  # noqa: BLE001 - reported in band by sse_guard
            q.put(("error", e, None))

    threading.Thread(target=run, daemon=True, name="vigil-api-summary").start()
    while True:
        kind, a, b = q.get()
        if kind == "progress":
            yield sse({"type": "progress", "fraction": round(float(a), 4), "what": str(b or "")})
        elif kind == "done":
            yield sse({"type": "summary", **_summary_dict(a)})
            return
        else:
            raise a


# ---- the API's schema, its own app, and mounting beside the page ----------------------------------------

def extra_routers(engine) -> list[APIRouter]:
    """Routers other modules add (their own full paths under /v1): api/watches.py's `router(engine)` when
    present (the alerts work). Mounted with the same token check and error shape."""
    out = []
    try:
        from api import watches
    except ImportError:
        return out
    make = getattr(watches, "router", None)
    if callable(make):
        out.append(make(engine))
    return out


def openapi_router(routes_of: FastAPI, tokens: Iterable[str] = ()) -> APIRouter:
    """GET /openapi.json: the schema of routes_of's routes (the /v1 routes, whatever app they are mounted on)."""
    r = APIRouter(route_class=V1Route, dependencies=[Depends(http.require_token(tokens))])
    cache: dict = {}

    @r.get("/openapi.json", include_in_schema=False)
    def openapi():
        if "schema" not in cache:
            cache["schema"] = get_openapi(title=API_TITLE, version=API_VERSION, description=API_DESCRIPTION,
                                          routes=routes_of.routes)
        return JSONResponse(cache["schema"])

    return r


def mount(app: FastAPI, engine, tokens: Iterable[str] = ()) -> None:
    """The /v1 routes, /openapi.json and any extra routers, on app (the API's own, or Gradio's)."""
    tokens = [t for t in tokens if t]
    holder = FastAPI(openapi_url=None)  # only to collect the routes the schema describes
    v1 = router(engine, tokens)
    holder.include_router(v1)
    app.include_router(v1)
    for extra in extra_routers(engine):
        holder.include_router(extra, dependencies=[Depends(http.require_token(tokens))])
        app.include_router(extra, dependencies=[Depends(http.require_token(tokens))])
    app.include_router(fallback_router(holder, tokens))
    app.router.routes[:] = [x for x in app.router.routes if getattr(x, "path", None) != "/openapi.json"]
    app.include_router(openapi_router(holder, tokens))


def fallback_router(routes_of: FastAPI, tokens: Iterable[str] = ()) -> APIRouter:
    """Last under /v1: an unknown path is a 404 and a known path's other methods a 405 (with Allow), in the one
    error shape on whatever app the routes are mounted on (Gradio's answers those its own way)."""
    r = APIRouter(route_class=V1Route, dependencies=[Depends(http.require_token(tokens))])

    @r.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                 include_in_schema=False)
    def fallback(request: Request, rest: str):
        allowed = http.allowed_methods(routes_of, request.url.path)
        if allowed:
            return http.error_response(405, f"{request.method} is not allowed here; use {', '.join(allowed)}",
                                       headers={"Allow": ", ".join(allowed)})
        return http.error_response(404, f"no such route: {request.url.path[:200]}")

    return r


def create_app(engine, token: Optional[str] = None) -> FastAPI:
    """The API's own app (`app.py serve`): the /v1 routes and /openapi.json; with a token, every request needs
    it; every error, even on unknown paths, is the one JSON shape."""
    app = FastAPI(title=API_TITLE, version=API_VERSION, description=API_DESCRIPTION, openapi_url=None,
                  docs_url=None, redoc_url=None)
    http.install_handlers(app)
    mount(app, engine, [token] if token else [])
    if token:
        app.add_middleware(http.TokenMiddleware, tokens=[token])
    return app


def local_url(host: str, port: int) -> str:
    """The URL a client on this machine uses for a server bound to host:port."""
    if host in ("0.0.0.0", "", "::") or is_loopback(host):
        host = "127.0.0.1"
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


def attach(app, engine, *, host: str, port: int, token: Optional[str] = None) -> bool:
    """Mount the /v1 routes on a running FastAPI app (Gradio's) and advertise the server in the bank directory.
    A non-loopback host needs a token (else nothing is mounted: False). Call detach() on shutdown."""
    if not is_loopback(host) and not token:
        return False
    mount(app, engine, [token] if token else [])
    discovery.advertise(engine.path, local_url(host, port), token)
    return True


def detach(engine) -> None:
    discovery.withdraw(engine.path)
