"""The answerer's meaning model (all-mpnet-base-v2 from its PyPI packages, `models.text_embed.meaning_embedder`):
MiniLM scores every line, the meaning model judges the 12 best again (`LineRanker.refine`) on MiniLM's scale, and the
predicate is its; the bank's MiniLM stays the answerer's `embedder` (keys, minutes). Real models, hand-made memories."""
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models.answer.lite import NOT_FOUND, UNSURE, LiteAnswerer  # noqa: E402
from models.base import MemoryView  # noqa: E402
from models.text.relevance import meanings  # noqa: E402
from models.text_embed import TextEmbedder, meaning_embedder  # noqa: E402

LINES = ["Kettle runs 41 vans on its delivery rounds.", "Phone support for Kettle is run out of Verona.",
         "The Kettle sessions are held at Riverside.", "I'll send the slides afterwards.",
         "Benedict drew up the plans for Kettle.", "Kettle takes up 730 gigabytes on disk.",
         "Has everyone had lunch?", "Okay, next."] + [f"Item {i} of the agenda is the mail room." for i in range(10)]


@pytest.fixture(scope="module")
def minilm():
    return TextEmbedder()


@pytest.fixture(scope="module")
def answerer(minilm):
    assert meaning_embedder(minilm) is not minilm, "all-mpnet-base-v2 packages missing: pip install -r requirements.txt"
    return LiteAnswerer(llm=None, embedder=minilm)


@pytest.fixture(scope="module")
def memories():
    return [MemoryView(i, "m", 2.0 * i, 2.0 * i + 2, 0.5, evidence={"asr": s}) for i, s in enumerate(LINES)]


def test_two_models_each_in_its_place(answerer, minilm):
    assert answerer.embedder is minilm and answerer.rel.embedder is minilm
    assert answerer.meaning.space == "mpnet-base" and answerer.meaning is meaning_embedder(minilm)
    assert answerer.meaning.loaded.dim == 768 and answerer.meaning.loaded.calibration is not None


def test_the_best_lines_are_judged_by_the_meaning_model(answerer, minilm, memories):
    q = "How many vehicles does Kettle operate?"
    ranked = answerer.rank(q, memories)
    assert len(ranked) == len(LINES) and answerer.refine_n == 12
    top, rest = ranked[:12], ranked[12:]
    # the 12 best by MiniLM's relevance got the meaning model's cosines (the line model may reorder them after)
    by_score = sorted(ranked, key=lambda s: -s.score)
    want_sem, _ = meanings(answerer.meaning, q, by_score[:12])
    got = {s.text: s.semantic for s in ranked}
    np.testing.assert_allclose([got[s.text] for s in by_score[:12]], want_sem, atol=1e-5)
    mini_sem, _ = meanings(minilm, q, by_score[12:])
    np.testing.assert_allclose([got[s.text] for s in by_score[12:]], mini_sem, atol=1e-5)
    assert top[0].text == LINES[0] and len(rest) == len(LINES) - 12


@pytest.mark.parametrize("question,fact", [("How many vehicles does Kettle operate?", "41"),
                                           ("In which town are the Kettle helpline calls answered?", "Verona"),
                                           ("How much space does Kettle occupy?", "730")])
def test_paraphrases_are_answered_with_the_fact(answerer, memories, question, fact):
    out = "".join(answerer.answer(question, memories))
    assert not answerer.last.weak and fact in out, out


@pytest.mark.parametrize("question", ["Which orchestra played the overture?", "What is the Kettle staff turnover?"])
def test_what_no_line_says_is_refused(answerer, memories, question):
    out = "".join(answerer.answer(question, memories))
    assert out.startswith(NOT_FOUND) and answerer.last.weak, out


def test_a_person_who_did_something_else_is_at_most_an_unsure_answer(answerer, memories):
    """"Benedict drew up the plans for Kettle." names the subject and a person first: since a sentence may start
    with the person asked for (`relevance._named_start`), it passes the meaning tests for "who knitted" (predicate
    0.26), and the answer gate finds it unlikely (0.15): the answer says it is unsure before the quote. (Refusing
    such lines outright cost 3 right answers of 680 on the seen splits 10-16 and spared no wrong-attribute or absent
    answer: 79 of 280 and 6 of 1,050 either way.)"""
    out = "".join(answerer.answer("Who knitted the Kettle scarf?", memories))
    assert out.startswith(NOT_FOUND) or (out.startswith(UNSURE) and answerer.last.sure < answerer.hedge_sure), out
    assert "Benedict drew up the plans for Kettle." in out, out


def test_minilm_when_asked(minilm, monkeypatch):
    monkeypatch.setenv("VIGIL_MEANING", "minilm")
    a = LiteAnswerer(llm=None, embedder=minilm)
    assert a.meaning is minilm
