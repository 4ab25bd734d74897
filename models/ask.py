"""Ask the bank a question: retrieve -> answer (streamed) -> citations. Shared by the CLI (`app.py ask`) and the UI.

    pieces, citations = ask(bank, profile, "what was on the whiteboard?", k=5)
    for piece in pieces:      # text as it is generated (one piece when there is no answerer)
        print(piece, end="")
    citations                 # [{"id", "stream", "start", "end", "score", "evidence", "thumbnail"}] in time order

Without an answerer (or without a question, i.e. a query by example image) the answer lists the retrieved
moments (`moments_answer`). `pieces` also carries timings and the retrieved memories for callers that
report latency (`--json`).
"""
from __future__ import annotations

import time
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np

from .base import MemoryView


class AskError(RuntimeError):
    """The question cannot be asked of this bank (one line for the user)."""


def hms(t: float) -> str:
    """Seconds -> HH:MM:SS (media time)."""
    t = max(0.0, float(t))
    return f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{int(t % 60):02d}"


def moments_answer(memories) -> str:
    """The answer when no answerer runs: the retrieved moments with times, streams, scores and evidence."""
    if not memories:
        return "No matching moments in the bank."
    lines = [f"Retrieved {len(memories)} moment(s):"]
    for i, m in enumerate(memories, 1):
        ev = f" — {m.citation()['evidence']}" if m.evidence else ""
        lines.append(f"{i}. [{hms(m.t0)}–{hms(m.t1)}] {m.stream} (score {m.score:.2f}){ev}")
    return "\n".join(lines)


class AnswerStream:
    """An iterator over answer text pieces. After (or during) iteration:

    text:         everything yielded so far
    memories:     the retrieved memories (time order), the ones the citations name
    retrieve_ms:  time spent building query keys and searching
    first_piece:  perf_counter() of the first piece (None before it)
    answered:     True when an answerer produced the text (False: the moments list)
    """

    def __init__(self, pieces: Iterator[str], memories: list, retrieve_ms: float, answered: bool):
        self._pieces = pieces
        self.memories = memories
        self.retrieve_ms = retrieve_ms
        self.answered = answered
        self.text = ""
        self.first_piece: Optional[float] = None

    def __iter__(self) -> "AnswerStream":
        return self

    def __next__(self) -> str:
        piece = next(self._pieces)
        if self.first_piece is None:
            self.first_piece = time.perf_counter()
        self.text += piece
        return piece

    def close(self) -> None:
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()


def screen_title(bank, memory, window_s: float = 900.0) -> str:
    """The title (first OCR line) of the slide last read in memory's stream at or before it, within window_s."""
    from .assistant import ocr_lines

    for m in reversed(bank.list(stream=memory.stream, t_range=(memory.t0 - window_s, memory.t0 + 1e-3))):
        if m.t0 <= memory.t0 + 1e-6:
            lines = ocr_lines((m.evidence or {}).get("ocr") or "")
            if lines:
                return lines[0]
    return ""


def memory_views(bank, profile, memories) -> list[MemoryView]:
    """Retrieved memories as the answerer sees them (carriers loaded only when it takes them; the slide on screen
    as evidence["screen"] when it asks for it: speech is about the slide shown while it is said)."""
    wants = bool(getattr(profile.answerer, "wants_carriers", False))
    screen = bool(getattr(profile.answerer, "wants_screen", False))
    return [MemoryView(m.id, m.stream, m.t0, m.t1, m.score, bank.carrier(m.id) if wants else None,
                       {**m.evidence, "screen": screen_title(bank, m)} if screen else m.evidence,
                       bank.thumbnail_path(m.id)) for m in memories]


def citations_of(bank, memories) -> list[dict]:
    """Citation dicts with absolute thumbnail paths (DESIGN.md's Answer contract)."""
    return [{**m.citation(), "thumbnail": bank.thumbnail_path(m.id)} for m in memories]


def retrieve_for(bank, profile, question: str = "", k: int = 5, image: Optional[np.ndarray] = None,
                 streams: Optional[Iterable[str]] = None, t_range: Optional[tuple[float, float]] = None) -> list:
    """Retrieved memories in (stream, t0) order. Raises AskError when the bank cannot be searched this way."""
    from memory.retrieval import retrieve

    if not question and image is None:
        raise AskError("ask needs a question or an example image")
    keys = profile.query_keys(question or None, image)
    spaces = bank.key_spaces()
    usable = {s: v for s, v in keys.items() if s in spaces}
    if not usable:
        if not spaces:
            if bank.count():
                return []  # memories with nothing to search (no picture, no transcript): an honest empty answer
            raise AskError("the bank holds no searchable memories yet: ingest something first")
        hint = ("; pass the --retrieval model it was ingested with" if any(sp.startswith(("siglip", "clip"))
                                                                          for sp in spaces) else "")
        raise AskError(f"this bank cannot be searched with this query (its key spaces: {', '.join(spaces)}); "
                       f"query by an example image, or use the model the bank was ingested with{hint}")
    if t_range is None and question:
        parse = getattr(profile.answerer, "time_filter", None)
        if parse is not None:
            t_range = parse(question, bank)
    rerank = getattr(profile.answerer, "rerank", None) if question else None
    pool = max(4 * k, 32) if rerank is not None else k
    memories = retrieve(bank, usable, k=pool, t_range=t_range, streams=list(streams) if streams else None)
    if rerank is not None and len(memories) > k:
        # dense keys find candidates; the answerer's own relevance (words of the evidence) orders them, so a slide
        # line that names the asked-for thing beats a similar-sounding sentence about something else
        fused = rerank(question, memories)
        order = sorted(range(len(memories)), key=lambda i: -fused[i])
        memories = [memories[i] for i in order[:k]]
    for i, m in enumerate(memories):
        m.rank = i  # retrieval rank (0 = best); the list itself is returned in time order
    memories.sort(key=lambda m: (m.stream, m.t0))
    return memories


def ask(bank, profile, question: str, k: int = 5, image: Optional[np.ndarray] = None,
        streams: Optional[Sequence[str]] = None, history: Sequence[dict] = (),
        t_range: Optional[tuple[float, float]] = None) -> tuple[AnswerStream, list[dict]]:
    """Retrieve the top-k memories for a question (and/or an example image) and stream an answer.

    Returns (pieces, citations): pieces is an AnswerStream of text pieces; citations are ready before the
    first piece. Raises AskError for a query the bank cannot serve. Retrieval happens before returning;
    the answerer runs lazily as pieces are consumed.
    """
    t0 = time.perf_counter()
    memories = retrieve_for(bank, profile, question, k=k, image=image, streams=streams, t_range=t_range)
    retrieve_ms = (time.perf_counter() - t0) * 1000
    citations = citations_of(bank, memories)
    if not memories:
        why = ("No memory matches that" + (" in that time window." if t_range else ".") if bank.key_spaces() else
               f"I have no evidence to answer from: the {bank.count()} memories of this bank hold no pictures, "
               "transcript or on-screen text.")
        return AnswerStream(iter([why]), [], retrieve_ms, answered=False), []
    if profile.answerer is not None and question:
        bind = getattr(profile.answerer, "bind", None)
        if bind is not None:  # e.g. the lite answerer takes the profile's text embedder for relevance
            bind(profile)
        views = memory_views(bank, profile, memories)
        pieces = iter(profile.answerer.answer(question, views, list(history)))
        return AnswerStream(pieces, memories, retrieve_ms, answered=True), citations
    return AnswerStream(iter([moments_answer(memories)]), memories, retrieve_ms, answered=False), citations
