"""Media time as every face prints it: one format, HH:MM:SS (hours always shown, seconds floored), standard library
only. The CLI, the UI, the API, answers, minutes and VLM prompts all use these (models re-export them), so a
moment reads the same wherever it appears.

    hms(3725.9)       -> "01:02:05"
    span(3725, 3731)  -> "[01:02:05–01:02:11]"
"""
from __future__ import annotations

import math


def hms(t: float) -> str:
    """Seconds -> HH:MM:SS (media time; negative clamps to 0, fractions are floored)."""
    try:
        t = max(0, int(math.floor(float(t) + 1e-6)))
    except (TypeError, ValueError, OverflowError):
        t = 0
    return f"{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}"


def span(t0: float, t1: float) -> str:
    """`[HH:MM:SS–HH:MM:SS]` (en dash): a moment's time span, as answers and minutes stamp it."""
    return f"[{hms(t0)}–{hms(t1)}]"


def duration(seconds: float) -> str:
    """A length of time for people: "42 s", "3 min 05 s", "1 h 02 min"."""
    s = max(0, int(round(float(seconds))))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
