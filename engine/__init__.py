"""Vigil's engine: the one object the CLI, the UI and the HTTP API share (see engine/core.py).

Importing this package is cheap (nothing heavy loads until an Engine is made), so a CLI that only talks to a
running server never imports torch.
"""
from __future__ import annotations

from .errors import EngineError

__all__ = ["Engine", "EngineError", "StreamInfo", "Answer", "Summary"]


def __getattr__(name):
    if name == "Engine":
        from .core import Engine

        return Engine
    if name == "StreamInfo":
        from .streams import StreamInfo

        return StreamInfo
    if name in ("Answer", "Summary"):
        from . import answers

        return getattr(answers, name)
    raise AttributeError(name)
