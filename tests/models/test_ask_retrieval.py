"""Retrieval in the one ask path, the same for every answerer: a time phrase becomes a window on each asked
stream's own clock; the evidence rerank applies to every profile (real FAISS + SQLite bank, bundled MiniLM)."""
from __future__ import annotations

import pytest

from memory.bank import MemoryBank
from models.ask import ask, time_windows
from models.base import Consumes
from models.registry import Profile
from models.text_embed import TextEmbedder


@pytest.fixture(scope="module")
def embedder():
    return TextEmbedder()


def _bank(path, embedder, spans):
    """spans: {stream: last second}; one memory every 60 s saying what happened when."""
    bank = MemoryBank(path)
    for stream, last in spans.items():
        for t in range(0, last, 60):
            text = f"the {stream} door opened at minute {t // 60}"
            bank.add(stream=stream, t0=t, t1=t + 60, wall=0.0, carrier=None,
                     keys={f"text:{embedder.space}": embedder.encode([text])[0]}, evidence={"asr": text})
    return bank


class _Recorder:
    """An answerer that declares text-only needs and records what the ask path hands it."""

    consumes = Consumes(carriers=False, evidence=True)

    def __init__(self):
        self.seen = []

    def answer(self, question, memories, history=(), usage=None):
        self.seen = list(memories)
        yield "ok"


def test_last_minutes_is_relative_to_each_asked_stream(tmp_path, embedder):
    bank = _bank(str(tmp_path / "b"), embedder, {"lobby": 1200, "dock": 300})
    try:
        assert time_windows("what happened in the last 5 minutes?", bank, ["dock"]) == {None: (0.0, 300.0)}
        assert time_windows("what happened in the last 5 minutes?", bank, ["lobby"]) == {None: (900.0, 1200.0)}
        both = time_windows("what happened in the last 5 minutes?", bank, None)
        assert both == {"lobby": (900.0, 1200.0), "dock": (0.0, 300.0)}
        rec = _Recorder()
        prof = Profile(name="t", encoder=None, answerer=rec, text_embedder=embedder)
        for streams, lo in ((["dock"], 0), (["lobby"], 900)):
            answer, cites = ask(bank, prof, "when did the door open in the last 5 minutes?", k=10, streams=streams)
            assert "".join(answer) == "ok" and cites
            assert all(c["stream"] == streams[0] and c["start"] >= lo - 1e-6 for c in cites), cites
            assert {v.memory_id for v in rec.seen} == {c["id"] for c in cites}
            assert all(v.carrier is None and v.evidence["asr"] for v in rec.seen)
        answer, cites = ask(bank, prof, "when did the door open in the last 5 minutes?", k=20)
        assert {c["stream"] for c in cites} == {"lobby", "dock"}
        assert all(c["start"] >= (900 if c["stream"] == "lobby" else 0) for c in cites)
        assert answer.usage.as_dict() == {"prompt_tokens": 0, "visual_tokens": 0, "completion_tokens": 0}
        assert all(c["tokens"] == 0 for c in cites)
    finally:
        bank.close()


def test_evidence_rerank_applies_without_the_lite_answerer(tmp_path, embedder):
    """The rerank belongs to retrieval: a profile whose answerer is not the lite one still gets the memory whose
    words answer the question first."""
    bank = _bank(str(tmp_path / "b"), embedder, {"cam": 600})
    try:
        rec = _Recorder()
        prof = Profile(name="t", encoder=None, answerer=rec, text_embedder=embedder)
        answer, cites = ask(bank, prof, "which door opened at minute 7?", k=1)
        "".join(answer)
        assert len(cites) == 1 and "minute 7" in cites[0]["evidence"], cites
    finally:
        bank.close()


class _Streams:
    """A bank stand-in that only answers streams() (and counts the calls)."""

    def __init__(self, last_ts):
        self.rows = [{"stream": f"s{i}", "last_t": t} for i, t in enumerate(last_ts)]
        self.calls = 0

    def streams(self):
        self.calls += 1
        return self.rows


@pytest.mark.parametrize("question", [
    "what happened?", "who came in through the side door", "how many cars passed", "what did she say about 12 items",
    "what happened in the last 5 minutes?", "what was shown at 12:30", "between 5 and 5 minutes",
    "after 10:00 who left", "before 0:00", "in the first half", "just now", "at the end", "the last hour"])
def test_time_windows_reads_the_bank_only_for_a_time_phrase(question):
    """A question naming no time is answered without scanning the bank's streams (a full scan of every memory row);
    with a time phrase the windows are those of the full path, on every clock (0, short, long, 10 h)."""
    from models.assistant import parse_time_filter

    clocks = [0.0, 30.0, 600.0, 36000.0]
    bank = _Streams(clocks)
    wins = time_windows(question, bank, None)
    full = {f"s{i}": w for i, t in enumerate(clocks) if (w := parse_time_filter(question, t)) is not None}
    if not full:
        assert wins == {} and bank.calls == 0
    else:
        assert bank.calls == 1
        assert wins == ({None: next(iter(full.values()))} if len(set(full.values())) == 1 and len(full) == 4 else full)


PAGES = [["Lynx Fleet Review", "Lynx vans recently serviced", "Lynx drivers on holiday", "Lynx is unavailable for comment"],
         ["Lynx Fleet Review", "Lynx recently hired two people", "Lynx team lunch on Friday"],
         ["Lynx Fleet Review", "Lynx budget: 3 million", "Lynx office recently moved to Leeds"],
         ["Lynx Fleet Review", "Lynx customers: 520", "Lynx app recently updated"],
         ["Lynx Fleet Review", "Downtime last month: 84 hours", "Next steering meeting: May 14"]]


def test_the_page_whose_one_line_answers_is_retrieved(tmp_path, embedder):
    """A shared document scrolled by: each page is one memory, and pages that share words with the question
    ("Lynx", "recently", "unavailable") outrank the one whose single line says what is asked in other words
    ("Downtime last month: 84 hours"); the line model, run over the whole candidate pool, puts that page first
    (models.ask._line_first)."""
    import models.ask as ask_mod
    from models.answer.lite import LiteAnswerer

    bank = MemoryBank(str(tmp_path / "doc"))
    try:
        for i, page in enumerate(PAGES):
            text = "\n".join(page)
            bank.add(stream="share", t0=10.0 * i, t1=10.0 * i + 10, wall=0.0, carrier=None,
                     keys={f"text:{embedder.space}": embedder.encode([text])[0]}, evidence={"ocr": text})
        prof = Profile(name="lite", encoder=None, answerer=LiteAnswerer(llm=None, embedder=embedder),
                       text_embedder=embedder)
        q = "How long was Lynx unavailable recently?"
        pieces, cites = ask(bank, prof, q, k=1)
        assert [c["start"] for c in cites] == [40.0] and "84 hours" in "".join(pieces)
        ask_mod.LINE_PICK = 0  # without it: a page that shares more words
        try:
            _, cites = ask(bank, prof, q, k=1)
            assert [c["start"] for c in cites] != [40.0]
        finally:
            ask_mod.LINE_PICK = 2
    finally:
        bank.close()
