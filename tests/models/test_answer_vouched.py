"""A line the answer gate vouches for is answered even when its wording is far from the question's.

The memories are what the product kept of a dense-slide meeting (held-out split 13, dense style, now a seen split):
the recognizer's words as heard ("try the scope" for Kaleidoscope), the slide's OCR lines and the screen title.
The slide says "Depth: 84 metres" and "Tank: 78 litres" under a title on another topic ("Pest Control"), so the
whole question and the whole line are far apart in meaning (0.30): the meaning test alone refused both, and the
answer said it could not find them. Questions of an attribute the slide does not give stay refused.

An answer the gate is unsure of (under `hedge_sure`) says so before it, and still quotes its line and stamp (a quarter
of such answers were right on the seen splits); a sure answer is given plainly.
"""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models.answer.lite import NOT_FOUND, UNSURE, LiteAnswerer  # noqa: E402
from models.base import MemoryView  # noqa: E402

SLIDE = ("Kaleidoscope Pest Control\nTank: 78 litres\nCurator: Euphemia\nDepth: 84 metres\nChef: Lysander\n"
         "Note 1: Could you share your screen again?\nNote 2: Let's try to wrap up on time\n"
         "Note 3: Does anyone want a cup of tea?\nNote 4: Let's try to wrap up on time\n"
         "Note 5: Could you share your screen again?\nQuillfeather team standup · 5")
EVIDENCE = [
    (8.0, {"asr": "The dumpling shaft is 41 metres deep.", "screen": "Dumpling Carpet Stains"}),
    (10.0, {"asr": "The dumpling shaft is 41 metres deep. You see me again at work to touch up the wall.",
            "screen": "Dumpling Carpet Stains"}),
    (70.0, {"asr": "Periscope is delayed until March, and that is final.", "screen": "Periscope Postage Stamps"}),
    (80.0, {"asr": "Let's look at try the scope pest control now.", "ocr": SLIDE, "screen": "Kaleidoscope Pest Control"}),
    (86.0, {"asr": "The bread for try the scope is made in Tulsa.", "screen": "Kaleidoscope Pest Control"}),
]


@pytest.fixture(scope="module")
def answerer():
    from models.text_embed import TextEmbedder

    return LiteAnswerer(llm=None, embedder=TextEmbedder())


@pytest.fixture(scope="module")
def memories():
    return [MemoryView(i, "meeting", t, t + 2.0, 0.5, evidence=e) for i, (t, e) in enumerate(EVIDENCE)]


@pytest.mark.parametrize("question,line", [
    ("How far down does the Kaleidoscope shaft go?", "Depth: 84 metres"),  # not the other project's 41 m shaft
    ("How much liquid fits in the Kaleidoscope container?", "Tank: 78 litres"),
])
def test_a_vouched_line_is_answered(answerer, memories, question, line):
    out = "".join(answerer.answer(question, memories))
    assert not out.startswith(NOT_FOUND), out
    assert line in out and "[00:01:20–00:01:22]" in out, out
    tr = answerer.last
    assert tr.why_weak == "" and tr.gated and tr.sure >= answerer.min_sure_named
    assert tr.best.semantic < answerer.min_meaning  # the meaning test alone would refuse it
    assert answerer.vouched(question, tr.best)


@pytest.mark.parametrize("question", ["Who coaches the Kaleidoscope team?", "How many people work on Kaleidoscope?",
                                      "When does Kaleidoscope open?", "How tall is the Kaleidoscope tower?",
                                      "Who sponsors Kaleidoscope?", "What is the Kaleidoscope budget?"])
def test_an_attribute_the_slide_does_not_give_is_refused(answerer, memories, question):
    out = "".join(answerer.answer(question, memories))
    assert out.startswith(NOT_FOUND), out
    assert answerer.last.sure < answerer.min_sure_named and not answerer.vouched(question, answerer.last.best)


def test_one_line_is_never_vouched_for(answerer, memories):
    """With one line the gate has nothing to weigh it against (`line_first` needs two): no exemption."""
    one = [MemoryView(0, "meeting", 80.0, 82.0, 0.5, evidence={"ocr": "Kaleidoscope Pest Control\nDepth: 84 metres"})]
    "".join(answerer.answer("How far down does the Kaleidoscope shaft go?", one))
    assert len(answerer.last.ranked) == 1
    assert not answerer.last.gated and not answerer.vouched("How far down does the Kaleidoscope shaft go?",
                                                            answerer.last.best)


def test_an_unsure_answer_says_so_and_still_quotes_its_line(answerer, memories):
    # "looks after the collection" is the slide's "Curator", far in words: the gate gives it 0.16
    out = "".join(answerer.answer("Who looks after the Kaleidoscope collection?", memories))
    tr = answerer.last
    assert tr.gated and answerer.min_sure <= tr.sure < answerer.hedge_sure and tr.hedged, (tr.sure, out)
    assert out.startswith(UNSURE + " On screen at [00:01:20–00:01:22]: “") and "Curator: Euphemia" in out, out


@pytest.mark.parametrize("question, line", [
    ("How deep is the Dumpling shaft?", "The dumpling shaft is 41 metres deep."),
    ("What is the Kaleidoscope tank size?", "Tank: 78 litres"),
    ("Where is the Kaleidoscope bread made?", "made in Tulsa"),
])
def test_a_sure_answer_is_given_plainly(answerer, memories, question, line):
    out = "".join(answerer.answer(question, memories))
    tr = answerer.last
    assert tr.sure >= answerer.hedge_sure and not tr.hedged and line in out, (tr.sure, out)
    assert not out.startswith((UNSURE, NOT_FOUND)), out


def test_a_refusal_is_not_hedged(answerer, memories):
    out = "".join(answerer.answer("Who runs the Dumpling kitchen?", memories))
    assert out.startswith(NOT_FOUND) and UNSURE not in out and not answerer.last.hedged, out
