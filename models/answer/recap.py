"""Open questions about a stretch of time: "What happened in the last minute?", "What was said between 1:00 and
1:20?", "What was on screen at the start?". They ask for a recap of the window, not for one fact, so no single
line "answers" them; extracting one would refuse or pick a random sentence.

    recap_kind("What was said in the last minute?")        -> "said"
    recap_kind("What did Maria say in the last minute?")   -> None   (a fact about Maria: the normal path)
    pick_moments(memories, k=8)                            -> up to k memories of the window, time order, one per
                                                              stretch of the same evidence, spread over the window
    recap_text(views, "said")                              -> "[00:01:02–00:01:10] Said: “…”\n…"

Pure functions over memories / MemoryViews (t0, t1, evidence {"asr", "ocr", "tags"}); the ask path decides when to
use them (models/ask.py: a time window and an open question).
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

from models.text.timephrase import fmt_span, fmt_ts, split_time_filter
from models.text.words import content, ocr_lines, sentences, words

# what a question may hold besides its time phrase and still ask for "everything in that window"
_SAID = {"say", "said", "saying", "says", "talk", "talked", "talking", "discuss", "discussed", "discussing",
         "discussion", "mention", "mentioned", "spoken", "speak", "spoke", "hear", "heard",
         "conversation", "audio", "speech", "words", "asked"}
_SHOWN = {"screen", "screens", "show", "shown", "showed", "showing", "display", "displayed", "slide", "slides",
          "written", "read", "text", "presented", "presentation", "board", "whiteboard"}
_SEEN = {"see", "seen", "saw", "visible", "look", "looked", "looks", "camera", "view", "picture", "scene", "appear",
         "appeared", "watch"}
_ANY = {"happen", "happened", "happening", "happens", "going", "go", "goes", "went", "occur", "occurred",
        "summarize", "summarise", "summary", "recap", "overview", "brief", "briefly", "anything", "everything",
        "something", "stuff", "notable", "important", "main", "key", "points", "topics", "topic", "covered",
        "cover", "new", "change", "changed", "changes", "meeting", "video", "recording", "stream", "clip", "moment",
        "moments", "time", "people", "person", "someone", "anyone", "did", "do", "does", "doing", "done", "just",
        "now", "recently", "update", "updates", "status", "events", "event", "activity"}


def recap_kind(question: str) -> Optional[str]:
    """"said" / "shown" / "seen" / "all" when the question, without its time phrase, names nothing but what
    kind of record it wants; None when it asks about something (a name, a thing, a number)."""
    rest, _ = split_time_filter(question or "", 1e9)
    rest = rest if words(rest) else question or ""  # "What is happening?" is all time phrase
    if not words(rest) or not re.search(r"\b(what|anything|summari[sz]e|recap|tell|describe|give|list)\b",
                                        rest.lower()):
        return None
    terms = set(content(rest)) | {w for w in words(rest) if w in _SAID | _SHOWN | _SEEN | _ANY}
    if terms - (_SAID | _SHOWN | _SEEN | _ANY | {"what", "tell", "describe", "give", "list"}):
        return None
    kinds = [k for k, vocab in (("said", _SAID), ("shown", _SHOWN), ("seen", _SEEN)) if terms & vocab]
    return kinds[0] if len(kinds) == 1 else "all"


def _signature(memory) -> tuple:
    ev = getattr(memory, "evidence", None) or {}
    return (tuple(sentences(ev.get("asr", ""))), tuple(ocr_lines(ev.get("ocr", ""))[:1]), ev.get("tags", ""))


def pick_moments(memories: Sequence, k: int = 8) -> list:
    """Memories of one window (any order) -> up to k of them in time order: the first of each run of memories
    whose evidence says the same, spread evenly over the window when there are more runs than k (memories with
    any evidence first)."""
    ms = sorted(memories, key=lambda m: (m.stream, m.t0))
    runs, last = [], None
    for m in ms:
        sig = (m.stream, _signature(m))
        if sig != last:
            runs.append(m)
        last = sig
    if len(runs) <= k:
        return runs
    told = [m for m in runs if any(getattr(m, "evidence", None) or {})] or runs
    if len(told) < k:
        keep = set(map(id, told))
        told += _spread([m for m in runs if id(m) not in keep], k - len(told))
        return sorted(told, key=lambda m: (m.stream, m.t0))
    return _spread(told, k)


def _spread(items: Sequence, k: int) -> list:
    """k of the items, evenly spaced, each the middle of its share (k=1 of a window: its middle)."""
    step = len(items) / k
    return [items[int((i + 0.5) * step)] for i in range(k)]


def recap_lines(views: Sequence, kind: str = "all") -> list[str]:
    """One line per moment that adds something: the sentences not said in an earlier moment, a slide or screen
    whose first line changed, tags when the question asks what was seen (or nothing else is known)."""
    said_before: set = set()
    screen_before = None
    out = []
    for v in sorted(views, key=lambda v: (v.stream, v.t0)):
        ev = v.evidence or {}
        parts = []
        if kind in ("said", "all"):
            new = [s for s in sentences(ev.get("asr", "")) if s.lower() not in said_before]
            said_before.update(s.lower() for s in new)
            if new:
                parts.append("Said: “" + " ".join(new) + "”")
        if kind in ("shown", "all"):
            lines = ocr_lines(ev.get("ocr", ""))
            if lines and lines[0] != screen_before:
                screen_before = lines[0]
                parts.append("On screen: “" + " · ".join(lines[:4]) + "”")
        if ev.get("tags") and (kind == "seen" or (kind == "all" and not parts)):
            parts.append(f"Looks like: {ev['tags']}")
        if parts:
            out.append(f"{fmt_span(v.t0, v.t1)} " + " ".join(parts))
    return out


def recap_text(views: Sequence, kind: str = "all") -> str:
    """The answer to an open question about a window: what was said / shown / seen, moment by moment."""
    lines = recap_lines(views, kind)
    if not lines:
        what = {"said": "nothing was said", "shown": "no screen text was read",
                "seen": "nothing was recognised"}.get(kind, "nothing was said, shown or recognised")
        return f"In that stretch {what} that I recorded."
    t0, t1 = min(v.t0 for v in views), max(v.t1 for v in views)
    return f"Between {fmt_ts(t0)} and {fmt_ts(t1)}:\n" + "\n".join(lines)
