"""HTTP routes for watches and alerts, each a thin call into the Engine (engine/watch_api.py and engine/alerts.py hold the logic).

    POST   /v1/watches          {"text", "stream", "threshold", "cooldown", "kind", "webhook", "image"} -> 201, the
                                watch (image: an example picture, base64; optional)
    GET    /v1/watches          -> {"object": "list", "data": [watch, ...]}
    GET    /v1/watches/{id}     -> the watch
    DELETE /v1/watches/{id}     -> {"deleted": true, "watch": …}
    GET    /v1/alerts           ?since=SECONDS&stream=&watch=&after=ID&limit= -> {"object": "list", "data": [alert…]}
    GET    /v1/alerts/stream    Server-Sent Events: `event: alert` + `data: {alert}` for every new alert (after=ID
                                first replays the stored ones after that id; limit=N ends after N; timeout=S ends
                                after S idle seconds; a `: ping` comment every 15 s keeps proxies open)
    GET    /v1/alerts/{id}      -> the alert; /v1/alerts/{id}/clip -> its MP4; /v1/alerts/{id}/thumbnail -> JPEG

An alert: {"id", "watch", "watch_id", "stream", "start", "end", "score", "evidence", "thumbnail", "clip", ...}.
`router(engine)` returns these routes; api/app.py mounts them beside the other /v1 routes with the same bearer-token
check and error shape (api/http.py: one-line JSON errors; EngineError kinds -> 400/404/409). The event stream is
left out of /openapi.json: a schema-driven client would wait on it forever.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import queue
import time
from typing import Optional

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from engine import EngineError

from . import http

MAX_IMAGE_B64 = 28 * 2**20     # ~20 MB of picture
MAX_ID = 2**63 - 1


class WatchCreate(BaseModel):
    text: str = Field("", max_length=10000, description="what to watch for, e.g. 'tell me when someone mentions the "
                                                        "budget'")
    stream: Optional[str] = Field(None, max_length=200, description="only this stream (default: all, also later ones)")
    threshold: Optional[float] = Field(None, description="score (0..1] at which it alerts (default: per kind)")
    cooldown: Optional[float] = Field(None, description="media seconds between two alerts on one stream (default 60)")
    kind: str = Field("auto", max_length=20, description="auto|speech|screen|text|image|motion|people|vlm")
    webhook: Optional[str] = Field(None, max_length=2000, description="POST each alert of this watch here")
    image: Optional[str] = Field(None, max_length=MAX_IMAGE_B64, description="example picture, base64 (PNG/JPEG)")


def router(engine) -> APIRouter:
    """The watch and alert routes over one engine."""
    r = APIRouter(prefix="/v1", route_class=http.V1Route, responses=http.ERROR_RESPONSES, tags=["watches"])

    @r.post("/watches", status_code=201)
    def add_watch(body: WatchCreate):
        image = None
        if body.image:
            data = body.image.split(",", 1)[1] if body.image.startswith("data:") else body.image
            try:
                image = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise EngineError("image must be a base64-encoded PNG or JPEG") from None
        w = engine.add_watch(body.text, image=image, stream=body.stream, threshold=body.threshold,
                             cooldown=body.cooldown, kind=body.kind, webhook=body.webhook)
        return JSONResponse(w, status_code=201)

    @r.get("/watches")
    def list_watches(stream: Optional[str] = Query(None, max_length=200)):
        return {"object": "list", "data": engine.watches(stream)}

    @r.get("/watches/{watch_id}")
    def get_watch(watch_id: int = Path(ge=0, le=MAX_ID)):
        return engine.watch(watch_id)

    @r.delete("/watches/{watch_id}")
    def delete_watch(watch_id: int = Path(ge=0, le=MAX_ID)):
        return {"deleted": True, "watch": engine.remove_watch(watch_id)}

    @r.get("/alerts")
    def list_alerts(since: Optional[float] = Query(None, ge=0, le=1e10, description="only the last SECONDS"),
                    stream: Optional[str] = Query(None, max_length=200),
                    watch: Optional[int] = Query(None, ge=0, le=MAX_ID),
                    after: Optional[int] = Query(None, ge=0, le=MAX_ID, description="only alerts after this id"),
                    limit: int = Query(200, ge=1, le=10000)):
        return {"object": "list", "data": engine.alerts(since=since, stream=stream, watch=watch, after=after,
                                                        limit=limit)}

    @r.get("/alerts/stream", include_in_schema=False)
    async def alert_events(request: Request, after: Optional[int] = Query(None, ge=0, le=MAX_ID),
                           limit: Optional[int] = Query(None, ge=1), timeout: Optional[float] = Query(None, gt=0)):
        q = engine.subscribe_alerts()
        try:
            backlog = engine.alerts(after=after, limit=1000) if after is not None else []
        except BaseException:
            engine.unsubscribe_alerts(q)
            raise
        return StreamingResponse(_events(request, engine, q, backlog, limit, timeout), media_type="text/event-stream",
                                 headers=http.SSE_HEADERS)

    @r.get("/alerts/{alert_id}")
    def get_alert(alert_id: int = Path(ge=0, le=MAX_ID)):
        return engine.alert(alert_id)

    @r.get("/alerts/{alert_id}/clip", response_class=FileResponse)
    def alert_clip(alert_id: int = Path(ge=0, le=MAX_ID)):
        return _file(engine.alert(alert_id), "clip", "video/mp4")

    @r.get("/alerts/{alert_id}/thumbnail", response_class=FileResponse)
    def alert_thumbnail(alert_id: int = Path(ge=0, le=MAX_ID)):
        return _file(engine.alert(alert_id), "thumbnail", "image/jpeg")

    return r


def _file(alert: dict, field: str, media_type: str) -> FileResponse:
    path = alert.get(field)
    if not path or not os.path.isfile(path):
        raise EngineError(f"alert {alert['id']} has no {field} (yet)", "not_found")
    return FileResponse(path, media_type=media_type)


def _event(a: dict) -> str:
    return f"event: alert\nid: {a['id']}\ndata: {json.dumps(a)}\n\n"


async def _events(request: Request, engine, q, backlog: list, limit: Optional[int], timeout: Optional[float]):
    sent, seen = 0, set()
    idle_since = last_ping = time.monotonic()
    try:
        yield ": connected\n\n"
        for a in backlog:
            seen.add(a["id"])
            yield _event(a)
            sent += 1
            if limit and sent >= limit:
                return
        while True:
            if await request.is_disconnected():
                return
            try:
                a = q.get_nowait()
            except queue.Empty:
                now = time.monotonic()
                if timeout is not None and now - idle_since >= timeout:
                    return
                if now - last_ping >= 15.0:
                    last_ping = now
                    yield ": ping\n\n"
                await asyncio.sleep(0.1)
                continue
            if a["id"] in seen:
                continue
            seen.add(a["id"])
            idle_since = time.monotonic()
            yield _event(a)
            sent += 1
            if limit and sent >= limit:
                return
    finally:
        engine.unsubscribe_alerts(q)
