"""What every /v1 route shares: the one error shape, bearer-token checks, and Server-Sent Events.

Errors: every failure is `{"error": {"message": "<one line>", "type": "<kind>", "param", "code"}}` (OpenAI's
error shape, so OpenAI clients read it too) with a 4xx status; 503 only when a model cannot load. `V1Route` turns
malformed JSON, wrong types and EngineErrors into that shape inside the route itself, so it holds whichever app
the routes are mounted on (the API's own, or Gradio's beside the page); `install_handlers` does the same for the
API's own app (unknown paths, wrong methods, anything unexpected: never a traceback).
"""
from __future__ import annotations

import hmac
import json
import logging
from typing import Callable, Iterable, Iterator, Optional

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from engine.errors import EngineError, part_errors

from .schemas import ErrorBody

log = logging.getLogger("vigil.api")

STATUS = {"invalid": 400, "not_found": 404, "conflict": 409, "unavailable": 503, "failed": 422}
HTTP_KINDS = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "validation"}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

# documented on every /v1 route, so a client (and schemathesis) knows every status it can get
ERROR_RESPONSES = {code: {"model": ErrorBody, "description": what} for code, what in (
    (400, "bad input"), (401, "missing or wrong bearer token"), (404, "unknown stream, memory or model"),
    (409, "a stream already running under that id, or a read-only bank"),
    (422, "malformed JSON or wrong types"), (503, "a model cannot be loaded"))}


def is_loopback(host: str) -> bool:
    return host in LOCAL_HOSTS or host.startswith("127.")


def one_line(text: object, limit: int = 300) -> str:
    s = " ".join(str(text).split()) or "error"
    return s if len(s) <= limit else s[: limit - 1] + "…"


def error_response(status: int, message: object, kind: Optional[str] = None, param: Optional[str] = None,
                   headers: Optional[dict] = None) -> JSONResponse:
    kind = kind or HTTP_KINDS.get(status, "invalid")
    body = {"error": {"message": one_line(message), "type": kind, "param": param, "code": kind}}
    return JSONResponse(body, status_code=status, headers=headers)


def engine_error(e: EngineError, headers: Optional[dict] = None) -> JSONResponse:
    return error_response(STATUS.get(e.kind, 400), str(e), e.kind, headers=headers)


def validation_error(e: RequestValidationError) -> JSONResponse:
    errs = e.errors()
    first = errs[0] if errs else {}
    if first.get("type") == "json_invalid":
        return error_response(422, "malformed JSON in the request body", "invalid_json")
    if tuple(first.get("loc", ())) == ("body",) and first.get("type") != "missing":
        return error_response(422, "the request body must be a JSON object", "validation")
    loc = [str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path", "header")]
    where = ".".join(loc)
    msg = first.get("msg", "invalid request")
    if not where and first.get("type") == "missing":
        msg = "a JSON request body is required"
    return error_response(422, f"{where}: {msg}" if where else msg, "validation", param=where or None)


def http_error(e: StarletteHTTPException) -> JSONResponse:
    headers = getattr(e, "headers", None)
    return error_response(e.status_code, e.detail if isinstance(e.detail, str) else "error", headers=headers)


def unexpected(e: Exception) -> JSONResponse:
    if isinstance(e, part_errors()):  # a part's own one-line error the engine did not wrap
        return error_response(400, str(e), "invalid")
    log.exception("unexpected error in the API")
    return error_response(500, f"internal error ({type(e).__name__}); see the server's log", "internal")


class V1Route(APIRoute):
    """An APIRoute whose errors (validation, HTTPException, EngineError, anything else) are one-line JSON."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as e:
                return validation_error(e)
            except (HTTPException, StarletteHTTPException) as e:
                return http_error(e)
            except EngineError as e:
                return engine_error(e)
            except Exception as e:  # noqa: BLE001 - never a traceback to a client
                return unexpected(e)

        return route


def install_handlers(app) -> None:
    """The same error shape for the API's own app: unknown paths, wrong methods, anything unexpected."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, e):
        resp = http_error(e)
        if e.status_code == 405:  # Allow: every method the path has (Starlette names only one route's)
            allowed = allowed_methods(app, request.url.path)
            if allowed:
                resp.headers["Allow"] = ", ".join(allowed)
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(request, e):
        return validation_error(e)

    @app.exception_handler(Exception)
    async def _any(request, e):
        return unexpected(e)


def allowed_methods(app, path: str) -> list[str]:
    """The methods the app's schema documents for a concrete path."""
    import re

    out: list[str] = []
    for template, ops in app.openapi().get("paths", {}).items():
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", ".+", re.escape(template)), path):
            out += [m.upper() for m in ops if m in ("get", "post", "put", "patch", "delete") and m.upper() not in out]
    return out


# ---- tokens -------------------------------------------------------------------------------------------

def token_ok(tokens: Iterable[str], authorization: str) -> bool:
    """Does `Authorization: Bearer <token>` name one of tokens? (constant-time compare)."""
    auth = authorization or ""
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    return bool(given) and any(hmac.compare_digest(given.encode(), t.encode()) for t in tokens)


def unauthorized() -> JSONResponse:
    return error_response(401, "missing or wrong API token: send Authorization: Bearer <token>", "unauthorized",
                          headers={"WWW-Authenticate": "Bearer"})


def require_token(tokens: Iterable[str]) -> Callable:
    """A dependency: 401 unless the request carries one of tokens (no tokens: everything passes)."""
    tokens = [t for t in tokens if t]

    def check(request: Request) -> None:
        if tokens and not token_ok(tokens, request.headers.get("authorization", "")):
            raise HTTPException(401, "missing or wrong API token: send Authorization: Bearer <token>",
                                headers={"WWW-Authenticate": "Bearer"})

    return check


class TokenMiddleware:
    """Every request to the API's own app needs the bearer token (pure ASGI: streaming responses pass through).
    prefixes: only paths under these (e.g. Gradio's MCP endpoint on the page's app); none: every path."""

    def __init__(self, app, tokens: Iterable[str], prefixes: Iterable[str] = ()):
        self.app = app
        self.tokens = [t for t in tokens if t]
        self.prefixes = tuple(p.rstrip("/") for p in prefixes)

    def _guarded(self, path: str) -> bool:
        return not self.prefixes or any(path == p or path.startswith(p + "/") for p in self.prefixes)

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and self.tokens and self._guarded(scope.get("path", "")):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            if not token_ok(self.tokens, headers.get("authorization", "")):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await unauthorized()(scope, receive, send)
                return
        await self.app(scope, receive, send)


# ---- Server-Sent Events -------------------------------------------------------------------------------

def wants_events(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


def sse(data) -> str:
    return "data: " + (data if isinstance(data, str) else json.dumps(data)) + "\n\n"


def sse_guard(events: Iterator[str], close: Optional[Callable] = None) -> Iterator[str]:
    """Events, then `data: [DONE]`; a failure once streaming has begun is reported in band, in one line."""
    try:
        yield from events
    except Exception as e:  # noqa: BLE001 - the response has started: no status code can change now
        if not isinstance(e, (EngineError, *part_errors())):
            log.exception("failed while streaming")
        yield sse({"type": "error", "error": one_line(e)})
    finally:
        if close is not None:
            close()
    yield sse("[DONE]")


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
