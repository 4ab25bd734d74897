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


def _request(url: str, path: str, body: dict, token: Optional[str], accept: str, timeout: float):
    req = urllib.request.Request(url.rstrip("/") + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Accept": accept})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        try:
            msg = json.loads(e.read().decode("utf-8", "replace")).get("error") or e.reason
            if isinstance(msg, dict):  # {"error": {"message", "type", …}}
                msg = msg.get("message") or e.reason
        except (ValueError, AttributeError):
            msg = e.reason
        raise ServerError(str(msg)) from None
    except (urllib.error.URLError, OSError) as e:
        raise ServerError(f"cannot reach {url}: {getattr(e, 'reason', e)}", reachable=False) from None


def _check_bank(resp, bank: Optional[str]) -> None:
    served = resp.headers.get("X-Vigil-Bank")
    if bank and served and os.path.realpath(served) != os.path.realpath(bank):
        raise ServerError(f"the server serves another bank ({served})", reachable=False)


def ask(url: str, body: dict, *, token: Optional[str] = None, bank: Optional[str] = None,
        timeout: float = 600.0) -> dict:
    """POST /v1/ask: the Answer JSON."""
    with _request(url, "/v1/ask", body, token, "application/json", timeout) as resp:
        _check_bank(resp, bank)
        return json.loads(resp.read())


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
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        try:
            msg = json.loads(e.read().decode("utf-8", "replace")).get("error") or e.reason
            if isinstance(msg, dict):
                msg = msg.get("message") or e.reason
        except (ValueError, AttributeError):
            msg = e.reason
        raise ServerError(str(msg)) from None
    except (urllib.error.URLError, OSError) as e:
        raise ServerError(f"cannot reach {url}: {getattr(e, 'reason', e)}", reachable=False) from None
    with resp:
        _check_bank(resp, bank)
        return json.loads(resp.read() or b"null")
