""""What decisions were made?" / "What are the action items?" are answered by the minutes' extraction over the
asked stretch, through the one ask path (real FAISS + SQLite, bundled MiniLM), citing where each was said."""
from __future__ import annotations

import pytest

from models.answer.outcomes import outcome_question


@pytest.mark.parametrize("question,kind", [
    ("What decisions were made?", "decisions"),
    ("What did we decide in the last ten minutes?", "decisions"),
    ("What are the action items?", "actions"),
    ("What are the next steps?", "actions"),
    ("Who has to do what?", "actions"),
    ("List the to-dos from the meeting.", "actions"),
    ("What did they decide about the launch?", None),  # a question about the launch
    ("Who agreed to book the venue?", None),
    ("What is the budget?", None),
])
def test_outcome_question(question, kind):
    assert outcome_question(question) == kind


SAID = ["Good morning and welcome everyone.", "The budget for the year is twelve million dollars.",
        "After a long debate we decided to move the product launch to June.", "Sales were flat in the north.",
        "Maria will send the signed contract to the legal team by Friday.", "The printer on floor two is broken.",
        "The board agreed to close the Leeds office at the end of the year.",
        "Tom needs to book the conference venue before Monday.", "Thanks all, see you next week."]


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    from memory.bank import MemoryBank
    from models.text_embed import TextEmbedder

    emb = TextEmbedder()
    b = MemoryBank(str(tmp_path_factory.mktemp("outcomes") / "bank"))
    for i, text in enumerate(SAID):
        b.add(stream="meeting", t0=10.0 * i, t1=10.0 * i + 10, wall=0.0, carrier=None,
              keys={f"text:{emb.space}": emb.encode([text])[0]}, evidence={"asr": text})
    yield b, emb
    b.close()


def _ask(bank, emb, q):
    from models.answer.lite import LiteAnswerer
    from models.ask import ask
    from models.registry import Profile

    prof = Profile(name="lite", encoder=None, answerer=LiteAnswerer(llm=None, embedder=emb), text_embedder=emb)
    answer, cites = ask(bank, prof, q, k=5)
    return "".join(answer), cites


def test_decisions_and_action_items_come_from_the_minutes_with_their_moments(bank):
    b, emb = bank
    text, cites = _ask(b, emb, "What decisions were made?")
    assert text.startswith("Decisions:"), text
    assert "move the product launch to June" in text and "close the Leeds office" in text, text
    assert "twelve million" not in text and "printer" not in text and "Maria" not in text, text
    assert {c["start"] for c in cites} == {20.0, 60.0}
    text, cites = _ask(b, emb, "What are the action items?")
    assert text.startswith("Action items:"), text
    assert "- [00:00:40–00:00:50] Maria: send the signed contract to the legal team by Friday" in text, text
    assert "Tom: book the conference venue before Monday" in text and "Leeds" not in text, text
    assert {c["start"] for c in cites} == {40.0, 70.0}


def test_outcomes_of_a_window_only(bank):
    b, emb = bank
    text, cites = _ask(b, emb, "What did we decide in the first 40 seconds?")
    assert "launch to June" in text and "Leeds" not in text, text
    assert all(c["start"] < 40.0 for c in cites)


def test_the_extraction_of_the_same_moments_is_made_once(bank, monkeypatch):
    import importlib
    import sys

    importlib.import_module("models.minutes.summarize")
    summarize_mod = sys.modules["models.minutes.summarize"]  # the package re-exports the function by that name
    b, emb = bank
    calls = []
    real = summarize_mod.summarize
    monkeypatch.setattr(summarize_mod, "summarize", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    first, _ = _ask(b, emb, "What were the action items in the first minute?")
    n = len(calls)
    again, _ = _ask(b, emb, "What were the action items in the first minute?")
    assert again == first and "Maria" in first and n >= 1 and len(calls) == n, (first, calls)
