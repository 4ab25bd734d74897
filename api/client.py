"""The CLI's client of a running Vigil server (standard library only: asking a server imports nothing heavy)."""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Iterator, Optional


class ServerError(RuntimeError):
    """The server answered with an error (one line), or could not be reached (reachable=False)."""

    def __init__(self, message: str, reachable: bool = True):
        super().__init__(message)
        self.reachable = reachable


def _error_text(e: urllib.error.HTTPError) -> str:
    """The one line of an error answer: {"error": "…"} or OpenAI's {"error": {"message", …}}; else the reason."""
    try:
        msg = json.loads(e.read().decode("utf-8", "replace")).get("error") or e.reason
        if isinstance(msg, dict):
            msg = msg.get("message") or e.reason
    except (ValueError, AttributeError):
        msg = e.reason
    return str(msg)


def _request(url: str, path: str, body: Optional[dict], token: Optional[str], accept: str, timeout: float,
             method: str = "POST"):
    """Send `method path` (a JSON body when given) and return the open response; errors as ServerError."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", "Accept": accept})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise ServerError(_error_text(e)) from None
    except (urllib.error.URLError, OSError) as e:
        raise ServerError(f"cannot reach {url}: {getattr(e, 'reason', e)}", reachable=False) from None


def _check_bank(resp, bank: Optional[str]) -> None:
    served = resp.headers.get("X-Vigil-Bank")
    if bank and served and os.path.realpath(served) != os.path.realpath(bank):
        raise ServerError(f"the server serves another bank ({served})", reachable=False)


def ask(url: str, body: dict, *, token: Optional[str] = None, bank: Optional[str] = None,
        timeout: float = 600.0) -> dict:
    """POST /v1/ask: the Answer JSON."""
    return call(url, "POST", "/v1/ask", body, token=token, bank=bank, timeout=timeout)


def ask_stream(url: str, body: dict, *, token: Optional[str] = None, bank: Optional[str] = None,
               timeout: float = 600.0) -> Iterator[dict]:
    """POST /v1/ask as Server-Sent Events: yields {"type": "text", "text"} pieces, then {"type": "answer", …}."""
    resp = _request(url, "/v1/ask", body, token, "text/event-stream", timeout)
    with resp:
        _check_bank(resp, bank)
        for raw in resp:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                return
            event = json.loads(data)
            if event.get("type") == "error":
                raise ServerError(event.get("error") or "the server failed to answer")
            yield event


def call(url: str, method: str, path: str, body: Optional[dict] = None, *, token: Optional[str] = None,
         bank: Optional[str] = None, timeout: float = 60.0):
    """Any JSON route: `method path` with an optional JSON body -> the decoded JSON answer (ServerError as above)."""
    with _request(url, path, body, token, "application/json", timeout, method=method) as resp:
        _check_bank(resp, bank)
        return json.loads(resp.read() or b"null")
