"""Time phrases in questions -> media-time windows, and time stamps for answers.

    split_time_filter("What did Maria say in the last five minutes?", 600) -> ("What did Maria say?", (300.0, 600.0))
    parse_time_filter("between 2:00 and 3:00", 3600) -> (120.0, 180.0)
    fmt_span(3725, 3731) -> "[01:02:05–01:02:11]"

Number words ("five", "ninety", "twenty-three") become digits through text2num's `alpha2digit` before the
phrase grammar runs; only the quantifiers it leaves alone ("a", "a couple of", "a few", "half an") are ours.
"""
from __future__ import annotations

import re
from typing import Callable, Optional

from engine.timefmt import hms as fmt_ts  # noqa: F401  (the one time format: engine/timefmt.py)
from engine.timefmt import span as fmt_span  # noqa: F401


_QUANT = {"a": 1.0, "an": 1.0, "half an": 0.5, "a couple of": 2.0, "couple of": 2.0, "a few": 3.0, "few": 3.0}
_NUM = r"(\d+(?:\.\d+)?|half an|a couple of|couple of|a few|few|an|a)"
_UNIT = r"(hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b"
_CLOCK = r"(\d{1,2}:\d{2}(?::\d{2})?)"


def digits(text: str) -> str:
    """Number words to digits ("five" -> "5", "forty two point five" -> "42.5"), ordinals kept as words."""
    try:
        from text_to_num import alpha2digit
    except ImportError:  # pragma: no cover - requirements.txt installs it
        return text
    out = alpha2digit(text, "en", threshold=0)
    # "first"/"second" name halves and ordinals here, not numbers
    return re.sub(r"\b(1st|2nd)\b", lambda m: {"1st": "first", "2nd": "second"}[m.group(1)], out)


def _num(s: str) -> float:
    s = s.strip().lower()
    try:
        return float(s)
    except ValueError:
        return _QUANT.get(s, 1.0)


def _dur(n: str, unit: str) -> float:
    u = unit.lower()
    k = 3600 if u.startswith("h") else 1 if u.startswith("s") else 60
    return _num(n) * k


def _clock(s: str) -> float:
    parts = [int(p) for p in s.split(":")]
    if len(parts) == 3:
        return parts[0] * 3600 + parts[1] * 60 + parts[2]
    return parts[0] * 60 + parts[1]


def _point(s: str) -> Optional[float]:
    """'2:30', '10 minutes', 'minute 5', '90 s' -> seconds."""
    s = s.strip().lower()
    m = re.fullmatch(_CLOCK, s)
    if m:
        return float(_clock(m.group(1)))
    m = re.fullmatch(r"(?:the\s+)?(?:minute|min)\s+(\d+(?:\.\d+)?)", s)
    if m:
        return float(m.group(1)) * 60
    m = re.fullmatch(_NUM + r"\s*-?\s*" + _UNIT, s)
    if m:
        return _dur(m.group(1), m.group(2))
    m = re.fullmatch(r"(\d+(?:\.\d+)?)", s)
    if m:  # bare number: minutes
        return float(m.group(1)) * 60
    return None


_PT = r"(\d{1,2}:\d{2}(?::\d{2})?|(?:the\s+)?(?:minute|min)\s+\d+(?:\.\d+)?|" + _NUM + r"\s*-?\s*" + \
      r"(?:hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b|\d+(?:\.\d+)?)"


def _between(a: str, b: str, d: float):
    pa, pb = _point(a), _point(b)
    if pa is None or pb is None:
        return None
    # "between 2 and 3 minutes": the unit sits on the second point only
    if re.fullmatch(r"\d+(?:\.\d+)?", a.strip()) and re.search(r"s(ec)?", b.strip().split()[-1] or ""):
        unit = b.strip().split()[-1]
        pa = _point(f"{a} {unit}")
    lo, hi = sorted((pa, pb))
    return (max(0.0, lo), min(d, hi) if d else hi)


def _around(s: str, d: float):
    s2 = re.sub(r"\s+(in|mark)$", "", s.strip())
    p = _point(s2)
    if p is None:
        return None
    return (max(0.0, p - 30.0), min(d, p + 30.0) if d else p + 30.0)


# (pattern, builder(match, duration) -> (lo, hi)); the first that matches wins
_RULES: list[tuple[str, Callable]] = [
    (r"\bbetween\s+" + _PT + r"\s+(?:and|to|-|–)\s+" + _PT,
     lambda m, d: _between(m.group(1), m.group(m.lastindex), d)),
    (r"\bfrom\s+" + _PT + r"\s+(?:to|until|till|-|–)\s+" + _PT,
     lambda m, d: _between(m.group(1), m.group(m.lastindex), d)),
    (r"\b(?:in|during|over|within)\s+the\s+(?:last|past|final)\s+" + _NUM + r"\s*" + _UNIT,
     lambda m, d: (max(0.0, d - _dur(m.group(1), m.group(2))), d)),
    (r"\b(?:the\s+)?(?:last|past|final)\s+" + _NUM + r"\s*" + _UNIT,
     lambda m, d: (max(0.0, d - _dur(m.group(1), m.group(2))), d)),
    (r"\b(?:in|during|over|within)?\s*the\s+(?:last|past|final)\s+(hour|minute|half hour|half an hour)\b",
     lambda m, d: (max(0.0, d - {"hour": 3600.0, "minute": 60.0}.get(m.group(1), 1800.0)), d)),
    (r"\b(?:the\s+)?(?:last|past|final)\s+(hour|minute|second)\b",  # "the last hour": one unit
     lambda m, d: (max(0.0, d - _dur("1", m.group(1))), d)),
    (r"\b(?:in|during|within)?\s*the\s+first\s+" + _NUM + r"\s*" + _UNIT,
     lambda m, d: (0.0, min(d, _dur(m.group(1), m.group(2))))),
    (r"\b(?:in|during|within)?\s*the\s+first\s+(hour|minute|second)\b",  # "the first minute": one unit
     lambda m, d: (0.0, min(d, _dur("1", m.group(1))))),
    (r"\b(?:after|since|past)\s+(?:the\s+first\s+)?" + _PT + r"(?:\s+mark)?",
     lambda m, d: (min(d, _point(m.group(1)) or 0.0), d)),
    (r"\b(?:before|until|up to|by)\s+" + _PT + r"(?:\s+mark)?",
     lambda m, d: (0.0, min(d, _point(m.group(1)) or d))),
    (r"\b(?:at|around|near|about)\s+(?:the\s+)?" + r"(\d{1,2}:\d{2}(?::\d{2})?|(?:minute|min)\s+\d+(?:\.\d+)?|"
     + _NUM + r"\s*(?:minutes?|mins?|hours?)\s+(?:in|mark))",
     lambda m, d: _around(m.group(1), d)),
    (r"\b(?:in\s+)?the\s+first\s+half\b", lambda m, d: (0.0, d / 2)),
    (r"\b(?:in\s+)?the\s+second\s+half\b", lambda m, d: (d / 2, d)),
    (r"\b(?:at|in|near|toward|towards|by)\s+the\s+(?:very\s+)?(?:start|beginning|outset|opening)\b|\bearly on\b|"
     r"\bat first\b|\bfirst thing\b", lambda m, d: (0.0, min(d, max(60.0, 0.15 * d)))),
    (r"\b(?:at|in|near|toward|towards|by)\s+the\s+(?:very\s+)?(?:end|close|finish)\b|\bat the last moment\b|"
     r"\blate in the\b|\bin the closing\b", lambda m, d: (max(0.0, d - max(60.0, 0.15 * d)), d)),
    (r"\b(?:in|around)\s+the\s+middle\b|\bhalfway\b", lambda m, d: (0.35 * d, 0.65 * d)),
    (r"\b(?:just now|a moment ago|recently|right now|just happened)\b|"
     r"^\s*what(?:'s|\s+is|\s+are)\s+(?:happening|going on)(?:\s+(?:now|here|there))?\s*[?.!]*\s*$",
     lambda m, d: (max(0.0, d - 60.0), d)),
]


def split_time_filter(question: str, duration: float) -> tuple[str, Optional[tuple[float, float]]]:
    """(question without the time phrase, (t_lo, t_hi) or None). duration: media seconds covered so far."""
    q = digits(question or "")
    ql = q.lower()
    d = float(duration or 0.0)
    for pat, build in _RULES:
        m = re.search(pat, ql)
        if not m:
            continue
        try:
            win = build(m, d)
        except (ValueError, TypeError):
            win = None
        if win is None:
            continue
        lo, hi = win
        if d:
            lo, hi = max(0.0, min(lo, d)), max(0.0, min(hi, d))
        if hi < lo:
            lo, hi = hi, lo
        if hi - lo < 1e-6 and d:
            continue
        clean = (q[:m.start()] + q[m.end():]).strip()
        clean = re.sub(r"\s+([?.!,])", r"\1", re.sub(r"\s{2,}", " ", clean))
        return clean or question, (float(lo), float(hi))
    return question, None


def parse_time_filter(question: str, duration: float) -> Optional[tuple[float, float]]:
    """(t_lo, t_hi) in media seconds for a time phrase in the question, else None."""
    return split_time_filter(question, duration)[1]
