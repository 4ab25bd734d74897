"""An answer the gate is unsure of says so before it: the line and its stamp are still given (a quarter of such
answers were right on the seen splits), but the user is told it may not answer the question. The memories are the
product's of a seen dense-slide meeting (`test_answer_vouched`)."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models.answer.lite import NOT_FOUND, UNSURE, LiteAnswerer  # noqa: E402
from models.base import MemoryView  # noqa: E402
from tests.models.test_answer_vouched import EVIDENCE  # noqa: E402


@pytest.fixture(scope="module")
def answerer():
    from models.text_embed import TextEmbedder

    return LiteAnswerer(llm=None, embedder=TextEmbedder())


@pytest.fixture(scope="module")
def memories():
    return [MemoryView(i, "meeting", t, t + 2.0, 0.5, evidence=e) for i, (t, e) in enumerate(EVIDENCE)]


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
