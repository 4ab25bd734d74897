"""Does the best line answer the question, or only share a word with it? The lite answerer with the bundled MiniLM on
hand-made memories (no media): lines that share a word with a question on a topic never mentioned are refused;
paraphrased questions about what was said or shown are answered with the fact."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models.answer.lite import NOT_FOUND, LiteAnswerer  # noqa: E402
from models.base import MemoryView  # noqa: E402
from models.text.relevance import asked_terms, word_coverage  # noqa: E402

SAID = ["Sorry, I won't unmute the microphone until the call starts.",
        "We booked the large workshop room for Tuesday afternoon.",
        "The Kappa project has reached 57 customers this quarter.",
        "Kim will send the contract draft before Thursday."]
SLIDE = "Delta Quarterly Review\nBudget: 12 million dollars\nNew office: Lisbon"


@pytest.fixture(scope="module")
def answerer():
    from models.text_embed import TextEmbedder

    return LiteAnswerer(llm=None, embedder=TextEmbedder())


@pytest.fixture(scope="module")
def memories():
    mems = [MemoryView(i, "m", 2.0 * i, 2.0 * i + 2, 0.5, evidence={"asr": s}) for i, s in enumerate(SAID)]
    mems.append(MemoryView(len(SAID), "m", 20.0, 22.0, 0.5, evidence={"ocr": SLIDE}))
    return mems


def test_asked_terms_and_coverage():
    assert asked_terms("How many clients does Delta have so far?") == ["clients", "far"]  # no name, no auxiliary
    assert asked_terms("Who won the football match last night?") == ["won", "football", "match", "last", "night"]
    assert word_coverage("Who won the football match last night?", "Sorry, I won't unmute") == 0.2
    assert word_coverage("Which room did they book?", "We booked the large workshop room") == 1.0


@pytest.mark.parametrize("question", ["Who won the football match last night?",
                                      "Which restaurant did they book for the dinner?",
                                      "What colour will the new logo be?",
                                      "How much rain fell in March?"])
def test_a_shared_word_is_no_answer(answerer, memories, question):
    out = "".join(answerer.answer(question, memories))
    assert out.startswith(NOT_FOUND) and answerer.last.weak, out


@pytest.mark.parametrize("question,fact", [("How many clients does Kappa have so far?", "57"),
                                           ("How much money has been set aside for Delta?", "12 million"),
                                           ("In which city will Delta open its new workplace?", "Lisbon"),
                                           ("Which room did they book on Tuesday?", "workshop room")])
def test_a_paraphrase_is_answered_with_the_fact(answerer, memories, question, fact):
    out = "".join(answerer.answer(question, memories))
    assert not answerer.last.weak and fact in out, out
