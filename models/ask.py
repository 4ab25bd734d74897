"""The one ask path, shared by the CLI (`app.py ask`), the UI and every answerer profile:

    question ─▶ query keys ─▶ retrieval (key spaces fused, time window per asked stream, stream filter,
                              evidence rerank) ─▶ memory views (carriers / evidence / the slide on screen, as the
                              answerer's `consumes` declares) ─▶ answerer ─▶ streamed text + citations + usage

    answer, citations = ask(bank, profile, "what was on the whiteboard?", k=5)
    for piece in answer:      # text as it is generated (one piece when there is no answerer)
        print(piece, end="")
    citations                 # [{"id", "stream", "start", "end", "score", "evidence", "thumbnail", "tokens"}], time order
    answer.usage              # {"prompt_tokens", "visual_tokens", "completion_tokens"}; visual = Σ citations' tokens

Without an answerer (or without a question, i.e. a query by example image) the answer lists the retrieved
moments (`moments_answer`). Errors the user can fix (a bank ingested with another model, nothing to search)
raise AskError with one line before anything is generated.
"""
from __future__ import annotations

import os
import time
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np

from engine.timefmt import hms  # noqa: F401  (the one time format; re-exported for callers)

from .base import Consumes, MemoryView, Usage

TEXT_ONLY = Consumes(carriers=False, evidence=True)


class AskError(RuntimeError):
    """The question cannot be asked of this bank (one line for the user)."""


def moments_answer(memories) -> str:
    """The answer when no answerer runs: the retrieved moments with times, streams, scores and evidence."""
    if not memories:
        return "No matching moments in the bank."
    lines = [f"Retrieved {len(memories)} moment(s):"]
    for i, m in enumerate(memories, 1):
        said = m.citation()["evidence"]
        ev = f" — {said}" if said else ""
        lines.append(f"{i}. [{hms(m.t0)}–{hms(m.t1)}] {m.stream} (score {m.score:.2f}){ev}")
    return "\n".join(lines)


class AnswerStream:
    """An iterator over answer text pieces. After (or during) iteration:

    text:         everything yielded so far
    memories:     the retrieved memories (time order), the ones the citations name
    citations:    the citation dicts; their "tokens" are filled as soon as the answerer has placed its prompt
    usage:        Usage (prompt, visual, completion tokens; `usage.as_dict()` for JSON)
    retrieve_ms:  time spent building query keys, searching and loading what the answerer reads
    first_piece:  perf_counter() of the first piece (None before it)
    answered:     True when an answerer produced the text (False: the moments list or a refusal)
    """

    def __init__(self, pieces: Iterator[str], memories: list, retrieve_ms: float, answered: bool,
                 citations: Optional[list] = None, usage: Optional[Usage] = None):
        self._pieces = pieces
        self.memories = memories
        self.retrieve_ms = retrieve_ms
        self.answered = answered
        self.citations = citations if citations is not None else []
        self.usage = usage or Usage()
        self.text = ""
        self.first_piece: Optional[float] = None

    def __iter__(self) -> "AnswerStream":
        return self

    def __next__(self) -> str:
        try:
            piece = next(self._pieces)
        except StopIteration:
            self._sync()
            raise
        if self.first_piece is None:
            self.first_piece = time.perf_counter()
            self._sync()
        self.text += piece
        return piece

    def _sync(self) -> None:
        """Copy the answerer's placement (carrier tokens per memory) into the citations."""
        placed = self.usage.placed
        for c in self.citations:
            c["tokens"] = int(placed.get(c["id"], 0))
        self.usage.visual_tokens = sum(c["tokens"] for c in self.citations)

    def close(self) -> None:
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()


def consumes_of(profile) -> Consumes:
    """What the profile's answerer reads (a text-only default for answerers that declare nothing)."""
    return getattr(profile.answerer, "consumes", None) or TEXT_ONLY


def check_carriers(bank, profile, streams: Optional[Sequence[str]] = None) -> None:
    """A carrier-reading answerer must match the space and width the bank's clips were stored in."""
    need = consumes_of(profile)
    if profile.answerer is None or not need.carriers:
        return
    have = bank.carrier_spaces(streams)
    if not have or any(sp == need.space and d == need.width for sp, d in have):
        return
    sides = ", ".join(f"{sp or '?'} ({d}-d)" for sp, d in sorted(have))
    raise AskError(f"this bank's clips were stored as {sides} carrier tokens, but the answerer "
                   f"{getattr(profile, 'name', '')!r} takes {need.space} ({need.width}-d): ask with the --model "
                   "the bank was ingested with, or ingest again with this one")


def screen_title(bank, memory, window_s: float = 900.0) -> str:
    """What the screen showed during memory: the headings ingest stored with it (evidence["screen"]: the title,
    the document section in view, also one whose heading scrolled out), else (a bank stored without them) the
    title (first OCR line) of the slide last read in memory's stream at or before it, within window_s."""
    from .assistant import ocr_lines

    own = str((memory.evidence or {}).get("screen") or "")
    if own.strip():
        return own
    for m in reversed(bank.list(stream=memory.stream, t_range=(memory.t0 - window_s, memory.t0 + 1e-3))):
        if m.t0 <= memory.t0 + 1e-6:
            lines = ocr_lines((m.evidence or {}).get("ocr") or "")
            if lines:
                return lines[0]
    return ""


def memory_views(bank, profile, memories) -> list[MemoryView]:
    """Retrieved memories as the answerer reads them: exactly what its `consumes` declares. Carriers are loaded
    from the bank's shards and converted to tensors here (memory.carriers.to_carrier), only for memories stored in
    the answerer's own space; the slide on screen goes in evidence["screen"] (speech is about the slide shown)."""
    from memory.carriers import to_carrier

    need = consumes_of(profile)
    wanted = [m.id for m in memories if need.carriers and m.m and m.space == need.space and m.d == need.width]
    records = bank.carriers(wanted) if wanted else {}
    views = []
    for m in memories:
        ev = dict(m.evidence) if need.evidence else {}
        if need.screen:
            ev["screen"] = screen_title(bank, m)
        views.append(MemoryView(m.id, m.stream, m.t0, m.t1, m.score, to_carrier(records.get(m.id)), ev,
                                thumb_path(bank, m), getattr(m, "steps", None)))
    return views


def thumb_path(bank, m) -> Optional[str]:
    """Absolute path of a retrieved memory's thumbnail (from its row: no lookup per memory)."""
    return os.path.join(bank.path, m.thumb) if getattr(m, "thumb", None) else None


def citations_of(bank, memories) -> list[dict]:
    """Citation dicts with absolute thumbnail paths (DESIGN.md's Answer contract); tokens 0 until placed."""
    return [{**m.citation(), "thumbnail": thumb_path(bank, m), "tokens": 0} for m in memories]


def time_windows(question: str, bank, streams: Optional[Sequence[str]],
                 now: Optional[float] = None) -> dict[Optional[str], tuple]:
    """A time phrase in the question ("in the last 5 minutes", "at 12:30") as a window per asked stream, each
    relative to that stream's own clock: {stream: (t_lo, t_hi)}, or {None: window} when it is the same for all.
    Empty when the question names no time. now: the moment the question is asked on the streams' clocks (default:
    each stream's newest memory)."""
    from .assistant import parse_time_filter

    # most questions name no time: then the bank is not read (streams() scans every memory row, ~8 ms over 10 h).
    # A window only narrows as a stream's clock shrinks, so none at a clock of 1e9 s (nor at 0, where empty
    # windows are kept) means none at any clock
    if parse_time_filter(question, 1e9) is None and parse_time_filter(question, 0.0) is None:
        return {}

    def clock(s: dict) -> float:
        last = s.get("last_t") or 0.0
        return last if now is None else min(last, float(now))

    rows = [s for s in bank.streams() if not streams or s["stream"] in set(streams)]
    wins = {s["stream"]: parse_time_filter(question, clock(s)) for s in rows}
    wins = {s: w for s, w in wins.items() if w is not None}
    if not wins:
        return {}
    if len(set(wins.values())) == 1 and len(wins) == len(rows):
        return {None: next(iter(wins.values()))}
    return wins


def retrieve_for(bank, profile, question: str = "", k: int = 5, image: Optional[np.ndarray] = None,
                 streams: Optional[Iterable[str]] = None, t_range: Optional[tuple[float, float]] = None,
                 until: Optional[float] = None) -> list:
    """Retrieved memories in (stream, t0) order, the same for every answerer: query keys in every space the bank
    and the profile share, fused; a time phrase in the question becomes a window per asked stream (unless t_range
    is given); a question reranks a pool of candidates by how well their text evidence answers it.
    until: a question asked at that moment of the streams sees only memories that ended by then (t1 <= until),
    as a viewer of the live stream would; time phrases count back from it.
    Raises AskError when the bank cannot be searched this way."""
    from memory.retrieval import retrieve

    from .answer import overview
    from .assistant import evidence_rerank

    if not question and image is None:
        raise AskError("ask needs a question or an example image")
    streams = list(streams) if streams else None
    k = overview.pool(question, k) if image is None else k  # "what did they say about X?": every moment naming X
    windows = ({None: t_range} if t_range is not None else
               (time_windows(question, bank, streams, now=until) if question else {}))
    phrased = bool(windows)  # a window the caller or the question named (not only `until`)
    if until is not None:
        # windows overlap-match (t1 > lo and t0 < hi): cap them at `until`, then drop the clips running past it
        until = float(until)
        windows = {s: (w[0], min(w[1], until)) for s, w in windows.items()} or {None: (float("-inf"), until)}
    # questions that a whole stretch answers, not its k most similar memories (no search, so they work on any
    # bank, a camera's without words too): the slide sequence ("what was the last slide?"), the meeting's outcomes
    # ("what decisions were made?") and an open question about a named window ("what happened in the last minute?")
    whole = overview.kind_of(question, phrased) if image is None else None
    if whole:
        listed = [m for s, w in (windows or {None: None}).items() for m in bank.list(stream=s, t_range=w)
                  if (not streams or m.stream in streams) and (until is None or m.t1 <= until)]
        memories = overview.moments(whole, listed, k, profile.text_embedder)
        if memories or whole[0] != "deck":  # no slides read: the usual retrieval, and the answer says so
            for i, m in enumerate(memories):
                m.rank = i
            return memories
    keys = profile.query_keys(question or None, image)
    spaces = bank.key_spaces()
    usable = {s: v for s, v in keys.items() if s in spaces}
    if not usable:
        if not spaces:
            if bank.count():
                return []  # memories with nothing to search (no picture, no transcript): an honest empty answer
            raise AskError("the bank holds no searchable memories yet: ingest something first")
        img_space = getattr(profile.key_encoder or profile.encoder, "key_space", None)
        if question and image is None and img_space and set(spaces) <= {img_space}:
            raise AskError("nothing in this bank can be found by words yet: its memories hold no speech, on-screen "
                           "text or recognised objects; search with an example picture instead (--image, or the "
                           "UI's \"search with the current frame\")")
        hint = ("; pass the --retrieval model it was ingested with" if any(sp.startswith(("siglip", "clip"))
                                                                          for sp in spaces) else "")
        mine = ", ".join(sorted(keys)) or "none"
        raise AskError(f"this bank cannot be searched with this query (the bank's key spaces: {', '.join(spaces)}; "
                       f"this query's: {mine}); query by an example image, or use the model the bank was "
                       f"ingested with{hint}")
    # a pool of candidates for the evidence rerank, only where there is text evidence to rerank by
    pool = max(4 * k, 32) if question and any(sp.startswith("text:") for sp in spaces) else k
    if until is not None:  # the clips straddling `until` (at most one per stream) are dropped: ask for that many more
        pool += sum(1 for m in bank.list(t_range=(until, until)) if not streams or m.stream in streams)
    if not windows:
        memories = retrieve(bank, usable, text=question or None, k=pool, streams=streams)
    elif None in windows:
        memories = retrieve(bank, usable, text=question or None, k=pool, t_range=windows[None], streams=streams)
    else:  # each stream's own window ("the last 5 minutes" of that camera)
        memories = [m for s, w in windows.items() for m in retrieve(bank, usable, text=question or None, k=pool, t_range=w, streams=[s])]
        memories.sort(key=lambda m: -m.score)
    if until is not None:
        memories = [m for m in memories if m.t1 <= until]
    if question and any(m.evidence for m in memories):
        # dense keys find candidates; relevance of their words orders them, so a slide line that names the asked-for
        # thing beats a similar-sounding sentence about something else
        fused = evidence_rerank(question, memories)
        order = sorted(range(len(memories)), key=lambda i: -fused[i])
        memories = [memories[i] for i in order]
        if LINE_PICK and getattr(profile, "text_embedder", None) is not None:
            memories = _line_first(question, memories, profile.text_embedder, LINE_PICK)
    memories = memories[:k]
    for i, m in enumerate(memories):
        m.rank = i  # retrieval rank (0 = best); the list itself is returned in time order
    memories.sort(key=lambda m: (m.stream, m.t0))
    return memories


# the memories holding the lines the lite answerer's line model ranks first over the whole pool go first: on the
# seen meeting splits (45 banks, 865 facts) recall@5 789 -> 800 (scrolled documents 184 -> 188, speech 99 -> 105),
# EM 624 -> 626, wrong-attribute questions answered 260 -> 245 of 504, absent topics refused 1314 -> 1313 of 1320;
# the first 3 lines' memories: recall@5 2 lower than the first 2
LINE_PICK = 2


def _line_first(question: str, memories: list, embedder, n: int) -> list:
    """The memories holding the `n` lines the lite answerer's line model (models/answer/linepick.py) ranks first
    over the whole pool go first: a scrolled page whose one line answers is otherwise outranked by pages that share
    more words with the question. Names are matched as heard (misspelt or no common word), not by capitalized
    stand-ins, which would pull another name's lines up."""
    from models.answer.lite import LiteAnswerer
    from models.base import MemoryView

    views = [MemoryView(m.id, m.stream, m.t0, m.t1, float(m.score), None, m.evidence) for m in memories]
    ranked = LiteAnswerer(llm=None, embedder=embedder, stand_ins=False).rank(question, views)
    first: list[int] = []
    for s in ranked:
        if s.memory_id not in first:
            first.append(s.memory_id)
        if len(first) >= n:
            break
    lead = [m for i in first for m in memories if m.id == i]
    return lead + [m for m in memories if m.id not in first]


def ask(bank, profile, question: str, k: int = 5, image: Optional[np.ndarray] = None,
        streams: Optional[Sequence[str]] = None, history: Sequence[dict] = (),
        t_range: Optional[tuple[float, float]] = None, until: Optional[float] = None,
        **answer_opts) -> tuple[AnswerStream, list[dict]]:
    """Retrieve the top-k memories for a question (and/or an example image) and stream an answer.
    until: ask as of that media second: only memories that ended by then are retrieved (see retrieve_for).

    Returns (answer, citations): answer is an AnswerStream of text pieces (with .usage); citations are ready
    before the first piece (their "tokens" are set once the answerer has built its prompt). Raises AskError for a
    query the bank cannot serve. Retrieval and loading happen before returning; the answerer runs lazily as
    pieces are consumed, and closing the stream stops it.
    """
    t0 = time.perf_counter()
    streams = list(streams) if streams else None
    check_carriers(bank, profile, streams)
    memories = retrieve_for(bank, profile, question, k=k, image=image, streams=streams, t_range=t_range,
                            until=until)
    citations = citations_of(bank, memories)
    usage = Usage()
    if not memories:
        windowed = t_range is not None or until is not None
        why = ("No memory matches that" + (" in that time window." if windowed else ".") if bank.key_spaces() else
               f"I have no evidence to answer from: the {bank.count()} memories of this bank hold no pictures, "
               "transcript or on-screen text.")
        return AnswerStream(iter([why]), [], (time.perf_counter() - t0) * 1000, False, citations, usage), citations
    if profile.answerer is not None and question:
        views = memory_views(bank, profile, memories)
        retrieve_ms = (time.perf_counter() - t0) * 1000
        pieces = iter(profile.answerer.answer(question, views, list(history), usage=usage, **answer_opts))
        return AnswerStream(pieces, memories, retrieve_ms, True, citations, usage), citations
    return (AnswerStream(iter([moments_answer(memories)]), memories, (time.perf_counter() - t0) * 1000, False,
                         citations, usage), citations)
