"""Answers and the moments shown with them agree (engine/answers.py): labels from what the finished text does,
best first; one time format; the resume plan of a file a stream holds already. No models are loaded here."""
from __future__ import annotations

import types

import pytest

from engine.answers import Answer, stamps, visual_answer
from engine.ingest import covered_runs, resume_plan
from engine.timefmt import duration, hms, span


class FakeStream:
    """models.ask.AnswerStream's surface: pieces, text, memories (with rank), answered, usage."""

    def __init__(self, pieces, memories, answered=True):
        self._pieces, self.memories, self.answered = iter(pieces), memories, answered
        self.text, self.first_piece, self.retrieve_ms = "", None, 1.0
        self.usage = types.SimpleNamespace(as_dict=lambda: {})

    def __iter__(self):
        return self

    def __next__(self):
        p = next(self._pieces)
        self.text += p
        return p

    def close(self):
        pass


def mem(i, t0, t1, rank, tags=""):
    return types.SimpleNamespace(id=i, stream="cam", t0=t0, t1=t1, rank=rank, evidence={"tags": tags} if tags else {})


def cite(m, score):
    ev = f"Looks like: {m.evidence['tags']}" if m.evidence else ""
    return {"id": m.id, "stream": m.stream, "start": m.t0, "end": m.t1, "score": score, "evidence": ev,
            "thumbnail": None, "tokens": 0}


def make(text, tags=("", "", ""), answered=True, question="what was said about the budget?", kind=None):
    ms = [mem(1, 0.0, 2.0, 2, tags[0]), mem(2, 2.0, 4.0, 0, tags[1]), mem(3, 4.0, 6.0, 1, tags[2])]
    cites = [cite(m, s) for m, s in zip(ms, (0.2, 0.9, 0.5))]
    return Answer(FakeStream([text], ms, answered), cites, load_ms=0, t_asked=0, question=question, kind=kind)


def test_one_time_format():
    assert hms(0) == "00:00:00" and hms(3725.9) == "01:02:05" and hms(-3) == "00:00:00"
    assert span(3725, 3731) == "[01:02:05–01:02:11]"
    from models.text.timephrase import fmt_span, fmt_ts

    assert fmt_ts(59.99) == hms(59.99) == "00:00:59" and fmt_span(1, 2) == span(1, 2)
    assert duration(42) == "42 s" and duration(185) == "3 min 05 s"


def test_stamps_are_read_back():
    assert stamps("At [00:00:02–00:00:04] and 00:01:00.") == [(2.0, 5.0), (60.0, 61.0)]


def test_citations_are_best_first_and_only_stamped_ones_are_sources():
    a = make("Said at [00:00:02–00:00:03]: “the budget is 5”")
    assert [c["id"] for c in a.citations] == [2, 3, 1]  # best first, before anything is generated
    a.collect()
    assert a.kind == "answer" and a.heading == "Sources"
    assert [(c["id"], c["label"], c["used"]) for c in a.citations] == [
        (2, "source", True), (3, "retrieved", False), (1, "retrieved", False)]
    assert [c["id"] for c in a.shown] == [2]


def test_an_unsure_answer_is_an_answer_with_its_source():
    from models.answer.lite import UNSURE

    a = make(UNSURE + " Said at [00:00:02–00:00:03]: “the budget is 5”").collect()
    assert a.kind == "answer" and a.heading == "Sources" and [c["id"] for c in a.shown] == [2]


def test_a_not_found_answer_shows_closest_moments_not_sources():
    a = make("I could not find this in the recording. The closest moment is [00:00:04–00:00:06]: “hello”").collect()
    assert a.kind == "not_found" and a.heading.startswith("Closest moments")
    assert {c["label"] for c in a.citations} == {"closest"}
    assert [c["id"] for c in a.citations if c["used"]] == [3] and len(a.shown) == 3


def test_a_not_found_answer_names_what_looks_like_it():
    a = make("I could not find this in the recording.", tags=("", "cup, coffee mug", "keyboard"),
             question="When did someone hold a cup?")
    text = "".join(a)
    assert "By the picture, this moment looks like it: [00:00:02–00:00:04] cam (looks like cup, coffee mug)." in text
    assert a.text == text
    labels = {c["id"]: c["label"] for c in a.citations}
    assert labels == {2: "looks_like", 3: "closest", 1: "closest"}


def test_visual_and_moments_answers():
    ms = [mem(2, 2.0, 4.0, 0, "cup, coffee mug"), mem(1, 0.0, 2.0, 1)]
    text = visual_answer(ms)
    assert text.startswith("No speech or on-screen text answers this, but these moments look most like what you asked")
    assert "1. [00:00:02–00:00:04] cam — looks like cup, coffee mug" in text and "2. [00:00:00–00:00:02] cam" in text
    a = make(text, answered=False, kind="visual").collect()
    assert a.kind == "visual" and {c["label"] for c in a.citations} == {"looks_like"} and not a.answered
    b = make("Retrieved 3 moment(s): …", answered=False).collect()
    assert b.kind == "moments" and all(c["used"] and c["label"] == "retrieved" for c in b.citations)


def test_an_answer_without_times_calls_nothing_a_source():
    a = make("The budget is five million.").collect()
    assert a.kind == "answer" and a.heading == "Retrieved moments"
    assert {c["label"] for c in a.citations} == {"retrieved"}


@pytest.mark.parametrize("spans,start,end,want", [
    ([], 0, 12, (0, 12)),                                          # nothing stored: from the start
    ([(0, 2), (2, 4), (4, 6.5)], 0, 12, (6.5, 12)),                # interrupted: go on after it
    ([(0, 2), (2, 4), (4, 12)], 0, 12, (12, 12)),                  # covered: nothing left
    ([(0, 2), (2, 4), (10, 12)], 0, 12, (4, 10)),                  # a hole: fill it, stop where memories begin
    ([(0, 2), (2, 4), (10, 12)], 11, 12, (12, 12)),                # a start inside what is stored
    ([(0, 2)], 5, 12, (5, 12)),                                    # a start after it
])
def test_resume_plan(spans, start, end, want):
    assert resume_plan(spans, start, end, gap=1.05) == want
    assert covered_runs([(0, 2), (2.5, 4), (9, 10)], 1.05) == [(0, 4), (9, 10)]


def test_a_stretch_without_words_is_listed_in_time_order():
    from engine.core import _asks_a_stretch

    ms = [mem(2, 2.0, 4.0, 0, "cup, coffee mug"), mem(1, 0.0, 2.0, 1)]
    text = visual_answer(ms, stretch=True)
    assert text.startswith("Nothing was said or shown as text in that stretch; these are its moments, in time order:")
    assert text.index("[00:00:00–00:00:02]") < text.index("[00:00:02–00:00:04]")
    assert _asks_a_stretch("What happened in the last minute?", None)
    assert _asks_a_stretch("What happened?", (0.0, 60.0))
    assert not _asks_a_stretch("What happened?", None)
    assert not _asks_a_stretch("When did someone hold a cup in the last minute?", None)
