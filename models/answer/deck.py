"""Questions about the slides as a whole: "What was the first slide?", "What was on the last slide?", "How many
slides were shown?", "List the slide titles.". No single line of evidence answers them; the slide sequence does.

    deck_question("What was the last slide?")   -> "last"
    deck_question("How many slides were there?")  -> "count"
    deck_question("What is the budget?")          -> None
    deck_moments(memories)                        -> the first memory of each slide, in time order
    deck_text(views, "list")                      -> "6 slides were shown:\n1. [00:00:00–00:00:20] Snowdrop ..."

Slides are the minutes' sections cut at slide changes (models/minutes/segment.py, without topic shifts: no
embedding, milliseconds); a recording with no slide text has none.
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

from models.text.timephrase import fmt_span

_SLIDE = r"(?:slides?|slide titles?|presentation pages?)"
_RULES = [
    ("count", re.compile(rf"\bhow many\s+(?:\w+\s+)?{_SLIDE}", re.I)),
    ("first", re.compile(rf"\b(?:first|opening|initial)\s+{_SLIDE}", re.I)),
    ("last", re.compile(rf"\b(?:last|final|closing)\s+{_SLIDE}", re.I)),
    ("list", re.compile(r"\b(?:list|which|what|name|all)\b.*\b(?:slides|slide titles|titles of the slides)\b", re.I)),
]


# what a question about the deck may hold besides its slide words ("Which slides mentioned the budget?" is about
# the budget)
_ALLOWED = {"list", "slide", "slides", "title", "titles", "shown", "show", "showed", "presented", "present", "name",
            "names", "deck", "presentation", "pages", "page", "meeting", "recording", "video", "used", "displayed",
            "display", "first", "last", "final", "opening", "closing", "initial", "many", "number", "total", "say",
            "said", "says", "text", "contain", "contained", "read", "written", "screen", "tell", "did", "does",
            "went", "came", "saw", "seen", "order", "sequence", "giving", "given"}


def deck_question(question: str) -> Optional[str]:
    """"first" / "last" / "count" / "list" for a question about the slide sequence, else None."""
    from models.text.timephrase import split_time_filter
    from models.text.words import content

    q = split_time_filter(question or "", 1e9)[0]  # "... in the last minute": the window is retrieval's
    if set(content(q)) - _ALLOWED:
        return None
    for kind, pat in _RULES:
        if pat.search(q):
            return kind
    return None


def _slides(memories: Sequence) -> list[tuple[str, list]]:
    """(title, memories) per slide, per stream, in time order; a slide shown again is listed once, where it was
    first shown (a scrolled document's heading is read in several clips)."""
    from models.minutes.segment import segment_sections

    out: dict = {}
    for stream in dict.fromkeys(m.stream for m in memories):
        ms = sorted((m for m in memories if m.stream == stream), key=lambda m: m.t0)
        by_span = {(m.t0, m.t1): m for m in ms}
        for title, items in segment_sections(ms, embedder=None):
            got = [by_span[(it.t0, it.t1)] for it in items if (it.t0, it.t1) in by_span]
            if title and got:
                have = out.setdefault((stream, title), [])
                have.extend(m for m in got if all(m is not x for x in have))
    return [(title, ms) for (_, title), ms in out.items()]


def deck_moments(memories: Sequence, limit: int = 60) -> list:
    """The memory that shows each slide first, in time order, at most limit (first and last questions get them
    all too: a window's title bar is told from a slide's title only across several memories)."""
    firsts = [next((m for m in ms if (getattr(m, "evidence", None) or {}).get("ocr")), ms[0])
              for _, ms in _slides(memories)]
    unique = list({id(m): m for m in firsts}.values())
    return sorted(unique, key=lambda m: (m.stream, m.t0))[:limit]


def _body(view, title: str) -> str:
    from .recap import screen_lines

    return " · ".join([x for x in screen_lines(view.evidence or {}) if x != title][:5])


def deck_text(views: Sequence, kind: str) -> str:
    """The answer from the memories deck_moments chose."""
    slides = _slides(views)
    if not slides:
        return "No slides were read in this recording (no on-screen text changed like a slide deck)."
    if kind in ("first", "last"):
        title, ms = slides[0] if kind == "first" else slides[-1]
        body = _body(ms[0], title)
        return (f"The {kind} slide was “{title}” {fmt_span(ms[0].t0, ms[-1].t1)}" + (f": {body}" if body else "."))
    head = f"{len(slides)} slide{'s' if len(slides) != 1 else ''} {'was' if len(slides) == 1 else 'were'} shown"
    if kind == "count":
        return head + ": " + "; ".join(f"“{t}” {fmt_span(ms[0].t0, ms[-1].t1)}" for t, ms in slides) + "."
    return head + ":\n" + "\n".join(f"{i}. {fmt_span(ms[0].t0, ms[-1].t1)} {t}" for i, (t, ms) in enumerate(slides, 1))
