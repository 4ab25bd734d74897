"""What ask and summarize hand back: typed objects with a `to_dict()` in DESIGN.md's wire shapes.

An answer and the moments shown with it must agree. When the text is complete, every citation is labelled with
what it is to this answer (`label`, and `used` for the ones the answer relies on), and the list is best first:

    source      the answer states something from this moment (its time is stamped in the text)
    closest     the answer found nothing; this is one of the moments closest to the question, not a source
    looks_like  only the picture matched: this moment looks like what was asked (no speech or screen text says so)
    retrieved   the moments themselves are the answer (no answerer ran), or the answer names no time

and `Answer.kind` says which answer it was: "answer", "not_found", "visual", "moments" or "none".
"""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import Iterator, Optional

from .timefmt import span

KINDS = ("answer", "not_found", "visual", "moments", "none")
LABELS = ("source", "closest", "looks_like", "retrieved")
# how the faces head the moments shown under an answer of each kind
HEADINGS = {"answer": "Sources", "not_found": "Closest moments (not an answer)",
            "visual": "Moments that look most like it", "moments": "Retrieved moments", "none": "Moments"}

_STAMP_RE = re.compile(r"(\d{1,3}):(\d{2}):(\d{2})(?:\s*[–—-]\s*(\d{1,3}):(\d{2}):(\d{2}))?")
_NOT_FOUND_RE = re.compile(r"^\W*(?:i (?:could not|couldn't|cannot|can't|did not|didn't) find|no memory matches|"
                           r"i have no evidence|(?:it|this|that) is not (?:in|mentioned)|(?:the )?(?:notes|recording|"
                           r"video|memories) (?:do(?:es)? not|don't|doesn't) (?:say|mention|contain|show))", re.I)
_WORD_RE = re.compile(r"[a-z][a-z'-]+")
_STOP = set("""a an the and or of to in on at for with from by is are was were be been do does did what when where
who whom which how why there here this that these those it its any some someone something anyone anything
people person thing things time moment video recording see seen show shown hold holding have has had""".split())


def stamps(text: str) -> list[tuple[float, float]]:
    """The media times an answer names: [HH:MM:SS–HH:MM:SS] spans and single HH:MM:SS times, as [a, b) seconds."""
    out = []
    for m in _STAMP_RE.finditer(text or ""):
        g = [int(x) if x else None for x in m.groups()]
        a = g[0] * 3600 + g[1] * 60 + g[2]
        b = g[3] * 3600 + g[4] * 60 + g[5] if g[3] is not None else a
        out.append((float(a), float(b) + 1.0))  # the stamps are floored to the second
    return out


def content_words(text: str) -> set[str]:
    """Lower-case words worth matching (no stop words), with a plural's -s dropped."""
    out = set()
    for w in _WORD_RE.findall((text or "").lower()):
        if w in _STOP or len(w) < 3:
            continue
        out.add(w[:-1] if w.endswith("s") and not w.endswith("ss") else w)
    return out


def tags_of(citation_or_memory) -> str:
    ev = getattr(citation_or_memory, "evidence", None)
    if isinstance(ev, dict):
        return str(ev.get("tags") or "")
    m = re.search(r"Looks like: ([^|]*)", str((citation_or_memory or {}).get("evidence") or ""))
    return m.group(1).strip() if m else ""


def has_text_evidence(memory) -> bool:
    """Speech or on-screen text: what a text answerer reads (picture tags alone are not)."""
    ev = getattr(memory, "evidence", None) or {}
    return bool(str(ev.get("asr") or "").strip() or str(ev.get("ocr") or "").strip())


def visual_answer(memories_best_first, by_example: bool = False, stretch: bool = False) -> str:
    """The answer when only the picture matched: what was found, said as what it is. stretch: the moments are
    those of an asked window ("what happened in the last minute?"), in time order, not the best matches."""
    what = "the example picture" if by_example else "what you asked"
    lines = [f"No speech or on-screen text answers this, but these moments look most like {what} (best first):"]
    if stretch:
        memories_best_first = sorted(memories_best_first, key=lambda m: (m.stream, m.t0))
        lines = ["Nothing was said or shown as text in that stretch; these are its moments, in time order:"]
    for i, m in enumerate(memories_best_first, 1):
        tags = tags_of(m)
        lines.append(f"{i}. {span(m.t0, m.t1)} {m.stream}" + (f" — looks like {tags}" if tags else ""))
    return "\n".join(lines)


class Answer:
    """An answer being generated (models/ask.py's AnswerStream, timed).

    Iterate it for text pieces (the answerer runs as they are consumed; `close()` stops it). `citations` are ready
    at once, best first; each gets `label` and `used` when the text is complete (see the module docstring).
    `text`, `usage`, `answered` and `kind` fill in as it runs; `to_dict()` (after iterating, or `collect()`) is
    DESIGN.md's Answer: {"answer", "citations", "usage", "latency"}."""

    def __init__(self, stream, citations: list, *, load_ms: float, t_asked: float, question: str = "",
                 kind: Optional[str] = None):
        self._stream = stream
        self.citations = citations
        self.load_ms = load_ms
        self.question = question
        self._t_asked = t_asked
        self._t_ready = time.perf_counter()
        self._t_done: Optional[float] = None
        self._extra = ""
        self._kind = kind
        self._settled = False
        rank = {m.id: getattr(m, "rank", i) for i, m in enumerate(getattr(stream, "memories", None) or [])}
        self.citations.sort(key=lambda c: (rank.get(c["id"], len(rank)), -float(c.get("score") or 0)))
        for c in self.citations:
            c.setdefault("label", "retrieved")
            c.setdefault("used", False)

    def __iter__(self) -> Iterator[str]:
        for piece in self._stream:
            yield piece
        extra = self._settle()
        if extra:
            self._extra += extra
            yield extra
        self._t_done = time.perf_counter()

    def collect(self) -> "Answer":
        for _ in self:
            pass
        return self

    def close(self) -> None:
        self._stream.close()

    @property
    def text(self) -> str:
        return self._stream.text + self._extra

    @property
    def usage(self) -> dict:
        return self._stream.usage.as_dict()

    @property
    def answered(self) -> bool:
        """True when an answerer wrote the text (False: the list of retrieved or look-alike moments, or nothing)."""
        return bool(self._stream.answered)

    @property
    def kind(self) -> str:
        """"answer", "not_found", "visual", "moments" or "none" (final once the text is complete)."""
        if self._kind:
            return self._kind
        if not self.citations:
            return "none"
        return "answer" if self.answered else "moments"

    @property
    def heading(self) -> str:
        """How the faces head the moments shown with this answer."""
        if self.kind == "answer" and not any(c.get("label") == "source" for c in self.citations):
            return "Retrieved moments"
        return HEADINGS[self.kind]

    @property
    def shown(self) -> list:
        """The citations a face shows under the answer: the sources when the answer names its times, else all
        (each labelled as what it is)."""
        used = [c for c in self.citations if c.get("used")]
        return used if self.kind == "answer" and used else list(self.citations)

    def _settle(self) -> str:
        """Label the citations by what the finished text does with them; returns any text to add."""
        if self._settled:
            return ""
        self._settled = True
        cites = self.citations
        if not cites:
            self._kind = self._kind or "none"
            return ""
        if self._kind == "visual":
            for c in cites:
                c["label"], c["used"] = "looks_like", True
            return ""
        if not self.answered:
            self._kind = "moments"
            for c in cites:
                c["label"], c["used"] = "retrieved", True
            return ""
        text = self._stream.text
        named = stamps(text)

        def stamped(c) -> bool:
            return any(c["start"] < b and c["end"] > a for a, b in named)

        if _NOT_FOUND_RE.search(text.strip()):
            self._kind = "not_found"
            asked = content_words(self.question)
            alike = [c for c in cites if asked & content_words(tags_of(c))] if asked else []
            for c in cites:
                c["label"], c["used"] = ("looks_like", True) if c in alike else ("closest", stamped(c))
            if alike:
                return (" By the picture, " + ("this moment looks" if len(alike) == 1 else "these moments look")
                        + " like it: " + "; ".join(f"{span(c['start'], c['end'])} {c['stream']} (looks like "
                                                  f"{tags_of(c)})" for c in alike) + ".")
            return ""
        self._kind = "answer"
        if not named:  # an answer that names no time: what it used cannot be told, so none is called a source
            for c in cites:
                c["label"], c["used"] = "retrieved", True
            return ""
        for c in cites:
            c["used"] = stamped(c)
            c["label"] = "source" if c["used"] else "retrieved"
        return ""

    @property
    def latency(self) -> dict:
        end = self._t_done or time.perf_counter()
        first = self._stream.first_piece or end
        return {"load_ms": round(self.load_ms, 1), "retrieve_ms": round(self._stream.retrieve_ms, 1),
                "first_token_ms": round((first - self._t_ready) * 1000, 1),
                "total_ms": round((end - self._t_asked) * 1000 - self.load_ms, 1)}

    def to_dict(self) -> dict:
        return {"answer": self.text, "citations": self.citations, "usage": self.usage, "latency": self.latency}


@dataclass
class Summary:
    """Minutes of one stream: Markdown, the structured minutes (models.assistant.Minutes.to_dict()), and where
    the Markdown was saved (<bank>/minutes/<stream>.md; None for a read-only bank)."""

    stream: str
    markdown: str
    minutes: dict
    path: Optional[str] = None

    def to_dict(self) -> dict:
        return asdict(self)
