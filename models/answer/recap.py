"""Open questions about a stretch of time: "What happened in the last minute?", "What was said between 1:00 and
1:20?", "What was on screen at the start?". They ask for a recap of the window, not for one fact, so no single
line "answers" them; extracting one would refuse or pick a random sentence.

    recap_kind("What was said in the last minute?")        -> "said"
    recap_kind("What did Maria say in the last minute?")   -> None   (a fact about Maria: the normal path)
    pick_moments(memories, k=5, kind="said")               -> the memories of the window that tell the most of it,
                                                              in time order
    recap_text(views, "said")                              -> "Between 00:01:00 and 00:02:00:\n
                                                              - [00:01:02–00:01:10] Said: “…”\n…"

Pure functions over memories / MemoryViews (t0, t1, evidence {"asr", "ocr", "tags"}); the ask path decides when to
use them (models/ask.py: a time window and an open question).
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

from models.text.timephrase import fmt_span, fmt_ts, split_time_filter
from models.text.words import content, ocr_lines, sentences, sounds_like, stems, words

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
        "now", "recently", "update", "updates", "status", "events", "event", "activity", "know", "known", "learn",
        "learned", "all"}

# "... about the Osprey launch?": an open question about one subject
_ABOUT = re.compile(r"\b(?:about|regarding|concerning|on the subject of|with regard to)\s+(?:the\s+)?"
                    r"(.+?)\s*[?.!]*\s*$", re.I)


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


# "When was Rampart discussed?": the moments that name it are the answer
_WHEN_NAMED = re.compile(r"^\s*when\s+(?:was|were|is|are|did|has|have)\s+(?:the\s+)?(.+?)\s+(?:first\s+|last\s+)?"
                         r"(discussed|mentioned|shown|brought up|talked about|raised|covered|presented|named|"
                         r"said|displayed|on screen)\s*[?.!]*\s*$", re.I)


def _head_kind(head: str) -> Optional[str]:
    """The record a question's head asks for: "What did they say" -> said; "When did they talk" -> said."""
    if re.match(r"\s*when\b", head, re.I):
        ws = set(words(head))
        if set(content(head)) - (_SAID | _SHOWN | _SEEN | _ANY | {"when"}):
            return None  # "When did Maria talk about ...": a question about Maria
        return "said" if ws & _SAID else "shown" if ws & _SHOWN else "all"
    return recap_kind(head.strip() + "?")


def recap_topic(question: str) -> Optional[tuple[str, str]]:
    """(kind, subject) for "What did they say about the Osprey launch?", "Tell me everything about Bluebell",
    "What was shown regarding the budget?", "When was Rampart discussed?", "When did they talk about Rampart?": a
    recap of what was said / shown about one subject, not one fact.
    None for other questions ("What is the Osprey budget?", "What did Maria say about the budget?": Maria is a
    subject of her own, so that one is a question about her)."""
    rest, _ = split_time_filter(question or "", 1e9)
    m = _WHEN_NAMED.match(rest)
    if m and content(m.group(1)):
        return _head_kind("when " + m.group(2)), m.group(1)
    m = _ABOUT.search(rest)
    if not m or not content(m.group(1)):
        return None
    kind = _head_kind(rest[:m.start()])
    return (kind, m.group(1)) if kind else None


def _mentions(text: str, subject: set, names: set) -> bool:
    """Does text name the subject: one of its content stems, or a word that sounds like one of its names (a
    recognizer's spelling of a name it did not know)?"""
    if subject & stems(text):
        return True
    ws = words(text)
    return any(sounds_like(n, w) for n in names for w in ws)


def _units(memory, kind: str) -> set:
    """What a memory tells of the asked kind: its sentences, its screen's first line, its tags."""
    ev = getattr(memory, "evidence", None) or {}
    out: set = set()
    if kind in ("said", "all"):
        out |= {("said", s.lower()) for s in _said(ev)}
    if kind in ("shown", "all"):
        out |= {("shown", x) for x in screen_lines(ev)[:1]}
    if ev.get("tags") and (kind == "seen" or (kind == "all" and not out)):
        out.add(("seen", ev["tags"]))
    return out


_BULLET = re.compile(r"^[\s·•*-]+")


def screen_lines(ev: dict) -> list[str]:
    """The screen's lines without bullets (first line: its title)."""
    return [_BULLET.sub("", x) for x in ocr_lines(ev.get("ocr", "")) if re.search(r"[A-Za-z0-9]", x)]


def _said(ev: dict) -> list[str]:
    return [_BULLET.sub("", s) for s in sentences(ev.get("asr", "")) if re.search(r"[A-Za-z0-9]", s)]


def pick_moments(memories: Sequence, k: int = 5, kind: str = "all") -> list:
    """Memories of one window (any order) -> the few that tell the most of it, in time order: greedily the one
    adding the most sentences / screens / tags (of the asked kind) not yet told, the farthest from those already
    chosen on a tie, up to max(k, 12); when fewer
    than k tell anything new, the rest are spread evenly over the window (a model reading the clips themselves
    still sees the whole stretch)."""
    ms = sorted(memories, key=lambda m: (m.stream, m.t0))
    units = [_units(m, kind) for m in ms]
    mid = [(m.t0 + m.t1) / 2 for m in ms]
    centre = (min(mid) + max(mid)) / 2 if ms else 0.0
    told: set = set()
    chosen: list[int] = []

    def key(i: int) -> tuple:  # most new things told; then farthest from the moments chosen (first: the centre)
        away = min(abs(mid[i] - mid[j]) for j in chosen) if chosen else -abs(mid[i] - centre)
        return len(units[i] - told), away, -i

    while len(chosen) < max(k, 12):
        left = [i for i in range(len(ms)) if i not in chosen]
        best = max(left, key=key, default=None)
        if best is None or not units[best] - told:
            break
        chosen.append(best)
        told |= units[best]
    if len(chosen) < k:
        rest = [i for i in range(len(ms)) if i not in chosen]
        chosen += _spread(rest, min(k - len(chosen), len(rest)))
    return [ms[i] for i in sorted(chosen)]


def _spread(items: Sequence, k: int) -> list:
    """k of the items, evenly spaced, each the middle of its share (k=1 of a window: its middle)."""
    if k <= 0:
        return []
    step = len(items) / k
    return [items[int((i + 0.5) * step)] for i in range(k)]


def recap_lines(views: Sequence, kind: str = "all", subject: str = "") -> list[str]:
    """One line per moment that adds something: the sentences not said in an earlier moment, a slide or screen
    whose first line changed, tags when the question asks what was seen (or nothing else is known). With a
    subject, only the sentences and screen lines that name it (a screen whose title names it: its first lines)."""
    keys = stems(subject) if subject else set()
    names = {w.lower() for w in re.findall(r"\b[A-Z][a-z]{3,}\b", subject)}
    said_before: set = set()
    screen_before = None
    out = []
    for v in sorted(views, key=lambda v: (v.stream, v.t0)):
        ev = v.evidence or {}
        parts = []
        if kind in ("said", "all"):
            new = [s for s in _said(ev) if s.lower() not in said_before
                   and (not subject or _mentions(s, keys, names))]
            said_before.update(s.lower() for s in new)
            if new:
                parts.append("Said: “" + " ".join(new) + "”")
        if kind in ("shown", "all"):
            lines = screen_lines(ev)
            if lines and subject and not _mentions(lines[0], keys, names):
                lines = [x for x in lines[1:] if _mentions(x, keys, names)]
            if lines and lines[0] != screen_before:
                screen_before = lines[0]
                parts.append("On screen: “" + " · ".join(lines[:4]) + "”")
        if ev.get("tags") and not subject and (kind == "seen" or (kind == "all" and not parts)):
            parts.append(f"Looks like: {ev['tags']}")
        if parts:
            out.append(f"{fmt_span(v.t0, v.t1)} " + " ".join(parts))
    return out


def recap_text(views: Sequence, kind: str = "all", subject: str = "") -> str:
    """The answer to an open question about a window or a subject: what was said / shown / seen, moment by
    moment. "" when a subject is named nowhere in the views (the caller answers as for any question: a refusal)."""
    lines = recap_lines(views, kind, subject)
    if not lines and subject:
        return ""
    if not lines:
        what = {"said": "nothing was said", "shown": "no screen text was read",
                "seen": "nothing was recognised"}.get(kind, "nothing was said, shown or recognised")
        return f"In that stretch {what} that I recorded."
    if subject:
        return f"About {subject.rstrip('?.! ')}:\n" + "\n".join("- " + x for x in lines)
    t0, t1 = min(v.t0 for v in views), max(v.t1 for v in views)
    return f"Between {fmt_ts(t0)} and {fmt_ts(t1)}:\n" + "\n".join("- " + x for x in lines)  # a Markdown list
