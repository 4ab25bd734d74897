"""Which line answers: the lite answerer with the bundled MiniLM on hand-made memories (no media), and the ask path's
evidence rerank.

- A line that scores clearly higher keeps its place over a neighbour whose predicate is barely higher: "Where do the
  Osprey servers live?" is answered by "Osprey data is hosted in Lima", not by a plan to move Osprey to Oslo.
- "when" inside another question ("What does the caller press first when the menu starts?") does not make it ask
  for a date, so a line without one can answer it.
- The rerank counts a name the recognizer misspelt as the question's name, as the answerer does."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models.answer.lite import NOT_FOUND, LiteAnswerer  # noqa: E402
from models.base import MemoryView  # noqa: E402
from models.text.relevance import evidence_rerank, qtype  # noqa: E402


@pytest.fixture(scope="module")
def embedder():
    from models.text_embed import TextEmbedder

    return TextEmbedder()


def _said(i: int, t: float, text: str, ocr: str = "") -> MemoryView:
    ev = {"asr": text}
    if ocr:
        ev["ocr"] = ocr
    return MemoryView(i, "m", t, t + 2.0, 0.4, evidence=ev)


def test_when_inside_another_question_asks_no_date():
    assert qtype("When do we look at the budget again?") == "date"
    assert qtype("By when is the report due?") == "date"
    assert qtype("What does the caller press first when the menu starts?") == "other"
    assert qtype("What happens when the line is busy?") == "other"
    assert qtype("How many people came when it opened?") == "number"


def test_a_clearly_better_line_is_not_displaced_by_a_barely_higher_predicate(embedder):
    mems = [_said(0, 0.0, "Turning to the Osprey archive."),
            _said(1, 10.0, "The plan is to relocate Osprey to Oslo."),
            _said(2, 20.0, "Osprey data is hosted in Lima.")]
    q = "Where do the Osprey servers live?"
    text = "".join(LiteAnswerer(llm=None, embedder=embedder).answer(q, mems))
    assert "Lima" in text and "Oslo" not in text and not text.startswith(NOT_FOUND)
    # with every higher predicate winning (no margin, no tie: the rule before), the plan line was quoted; the line
    # model (models/answer/linepick.py), which has the last word on the first ten lines, still picks the host
    old = LiteAnswerer(llm=None, embedder=embedder, predicate_margin=0.0, tie_ratio=0.0).rank(q, mems)
    assert "Lima" in old[0].text


def test_an_absent_topic_is_still_refused(embedder):
    mems = [_said(0, 0.0, "Osprey records are stored in Lima."),
            _said(1, 10.0, "The plan is to relocate Osprey to Oslo next year.")]
    text = "".join(LiteAnswerer(llm=None, embedder=embedder).answer("Who won the chess tournament?", mems))
    assert text.startswith(NOT_FOUND)


def test_rerank_counts_a_misspelt_name_as_the_question_name():
    heard = _said(0, 0.0, "The margin on Arora is 40 percent.")
    other = _said(1, 10.0, "Let us look at the numbers.")
    q = "What share of Aurora sales is margin?"
    fused = evidence_rerank(q, [heard, other])
    assert fused[0] > fused[1]
    # the misspelt line scores as if it named Aurora
    named = evidence_rerank(q, [_said(0, 0.0, "The margin on Aurora is 40 percent."), other])
    assert fused[0] == pytest.approx(named[0], rel=1e-5)
