"""What a source spec means, the same for the CLI, the UI and the API: its kind, its stream id (never with
credentials), the label stored in the bank (credentials and query stripped), and whether it is live."""
from __future__ import annotations

import os
import re
from typing import Optional

from .errors import EngineError

PUSH = "push"  # frames pushed by the application (the UI's browser webcam)


def kind_of(spec: str) -> str:
    """'rtsp' | 'webcam' | 'push' | 'file'."""
    s = (spec or "").strip()
    if s.startswith(("rtsp://", "rtsps://")):
        return "rtsp"
    if s.startswith("webcam:") or s.startswith("/dev/video"):
        return "webcam"
    if s == PUSH:
        return "push"
    if "://" in s:
        raise EngineError(f"unsupported source {s!r}: use a file, rtsp://… or webcam:N")
    return "file"


def is_live(spec: str) -> bool:
    return kind_of(spec) in ("rtsp", "webcam", "push")


def _rtsp_rest(url: str) -> str:
    """host[:port]/path of an RTSP URL: no user:password@, no ?query (tokens live there too)."""
    return url.split("://", 1)[1].split("@")[-1].split("?")[0]


def public_source(spec: str) -> str:
    """The source as stored in the bank and shown to users: credentials stripped from URLs, files absolute."""
    kind = kind_of(spec)
    if kind == "rtsp":
        return spec.split("://", 1)[0] + "://" + _rtsp_rest(spec)
    if kind == "file":
        return os.path.realpath(spec)
    if kind == "push":
        return "browser webcam"
    return spec


def default_stream_id(spec: str) -> str:
    """The stream id a source gets when none is given: rtsp:<host/path>, webcam:N, or the file's name."""
    kind = kind_of(spec)
    if kind == "rtsp":
        return "rtsp:" + _rtsp_rest(spec)
    if kind == "push":
        return "webcam"
    if kind == "webcam":
        return spec
    return os.path.basename(spec) or spec


def safe_stream_id(given: Optional[str], default: str) -> str:
    """A stream id as given (control characters removed, at most 120 characters), else the default."""
    s = re.sub(r"[\x00-\x1f\x7f]", "", (given or "").strip())[:120].strip()
    return s or default


def stream_id_for(spec: str, given: Optional[str] = None) -> str:
    return safe_stream_id(given, default_stream_id(spec))
