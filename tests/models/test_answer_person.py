"""A "who" question is answered by a sentence that starts with the person's name.

Speech names people first ("Tabitha runs the Sombrero Reading Room."), where every sentence's first word is
capitalized. A sentence's first word was never taken for a name, so no such line held a person and the answerer
refused with a line naming someone else first. Now a first word counts when it is a known first name and none
of the commonest English words ("Will", "Mark", "June" start sentences for themselves).

The memories are what the product kept of a scrolled-document meeting (held-out split 16, scroll style, now a seen
split): the transcript and the screen as read, in the five memories retrieval returned.
"""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models.answer.lite import NOT_FOUND, LiteAnswerer  # noqa: E402
from models.base import MemoryView  # noqa: E402
from models.text import relevance  # noqa: E402
from models.text.relevance import type_bonus  # noqa: E402

DOC = "Copperfield morning roll call — shared document"
EVIDENCE = [
    (34.0, {"asr": "Leave it with Bianca, who will order Stapler Refills by Monday.",
            "ocr": f"{DOC}\nSombrero Bottle Opener",
            "screen": f"{DOC}\nBulldozer Felt Coasters\nDandelion Stapler Refills\nLemming Mouse Pads"}),
    (90.0, {"asr": "Let's get into Sombrero Bottle Opener.", "screen": f"{DOC}\nSombrero Bottle Opener"}),
    (92.0, {"asr": "Let's get into Sombrero Bottle Opener. Sombrero student graduated on October 18.",
            "screen": f"{DOC}\nSombrero Bottle Opener"}),
    (96.0, {"asr": "Sombrero student graduated on October 18. Tabitha runs the Sombrero Reading Room.",
            "screen": f"{DOC}\nSombrero Bottle Opener"}),
    (100.0, {"asr": "Tabitha runs the Sombrero Reading Room. Leave it with Tabitha, who will order Stapler Refills "
                    "by Tuesday.", "screen": f"{DOC}\nSombrero Bottle Opener\nCormorant Ice Trays"}),
]
QUESTION = "Who lends out volumes at Sombrero?"


@pytest.mark.parametrize("line,person", [
    ("Tabitha runs the Sombrero Reading Room.", True),
    ("The rollout is late. Augustin looks after the sick pets.", True),
    ("Leave it with Bianca, who will order refills.", True),      # a name inside the sentence, as before
    ("Will you send it by Monday?", False),                         # a first name that is a common word
    ("Mark the date. June is fine.", False),
    ("Leave it with the team.", False),
    ("Biranka looks after the sick pets.", False),                  # no known first name
])
def test_a_sentence_may_start_with_the_person_asked_for(line, person):
    assert type_bonus("person", line) == (1.0 if person else 0.0)


@pytest.fixture(scope="module")
def answerer():
    from models.text_embed import TextEmbedder

    return LiteAnswerer(llm=None, embedder=TextEmbedder())


@pytest.fixture()
def memories():
    return [MemoryView(i, "meeting", t, t + 2.0, 0.5, evidence=e) for i, (t, e) in enumerate(EVIDENCE)]


def test_who_is_answered_by_the_sentence_naming_them_first(answerer, memories):
    out = "".join(answerer.answer(QUESTION, memories))
    assert not out.startswith(NOT_FOUND), out
    assert "Tabitha runs the Sombrero Reading Room." in out, out
    assert answerer.last.best.text.startswith("Tabitha") and answerer.last.why_weak == ""


def test_without_the_first_word_the_answer_was_a_refusal(answerer, memories, monkeypatch):
    monkeypatch.setattr(relevance, "_named_start", lambda w: False)  # the rule before: no sentence starts with a name
    out = "".join(answerer.answer(QUESTION, memories))
    assert out.startswith(NOT_FOUND), out
