"""Which line answers, and whether any does: the lite answerer's line model and answer gate
(models/answer/linepick.py), who/where typing by first names and places (models/text/gazetteer.py) and names the
recognizer wrote as another word (models.text.words.misheard, models.text.phonetic), with the bundled MiniLM on hand-made memories (no
media). Each case is one the rules before it got wrong on a seen split."""
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models.answer.linepick import FEATURES, WEIGHTS, line_odds, sure  # noqa: E402
from models.answer.lite import NOT_FOUND, LiteAnswerer  # noqa: E402
from models.base import MemoryView  # noqa: E402
from models.text.words import misheard, write_in  # noqa: E402


@pytest.fixture(scope="module")
def answerer():
    from models.text_embed import TextEmbedder

    return LiteAnswerer(llm=None, embedder=TextEmbedder())


def _mems(slide: str, said=()):
    out = [MemoryView(0, "m", 0.0, 2.0, 0.5, evidence={"ocr": slide})]
    return out + [MemoryView(i + 1, "m", 4.0 + 4 * i, 8.0 + 4 * i, 0.5, evidence={"asr": s}) for i, s in enumerate(said)]


def test_the_model_is_the_shape_it_says():
    assert len(WEIGHTS) == len(FEATURES)
    x = np.zeros((2, len(FEATURES)), np.float32)
    x[0, FEATURES.index("asked")] = 0.6
    assert line_odds(x).shape == (2,) and line_odds(x)[0] > line_odds(x)[1]
    assert 0.0 < sure([0.0, 0.3, 0.5, 0.4, 1.0, 2.0]) < 1.0


PRICING = "Willow Pricing Study\nChurn rate: 58%\nCurrency exposure: 64%\nHeadcount: 86"


def test_the_line_that_says_what_is_asked_goes_first_though_another_scores_higher(answerer):
    q = "How much of the Willow revenue depends on exchange rates?"
    out = "".join(answerer.answer(q, _mems(PRICING, ["Now for Willow Pricing Study."])))
    assert not answerer.last.weak and "64%" in out and "58%" not in out, out


COACHING = "Avalanche Newsletter Plans\nTest lab: Uppsala\nCoach: Cordelia\nTrainees enrolled: 68"


@pytest.mark.parametrize("question,fact,other", [
    ("Who teaches the people working on Avalanche?", "Cordelia", "Uppsala"),
    ("In which town does the Avalanche testing happen?", "Uppsala", "Cordelia")])
def test_who_wants_a_person_and_where_a_place(answerer, question, fact, other):
    out = "".join(answerer.answer(question, _mems(COACHING)))
    assert not answerer.last.weak and fact in out and other not in out, out


def test_a_value_of_the_asked_kind_about_the_subject_answers_in_other_words(answerer):
    out = "".join(answerer.answer("When does the Mistral effort begin?",
                                  _mems("Mistral Payroll Changes\nKickoff: December 4\nUser satisfaction: 96%")))
    assert not answerer.last.weak and "December 4" in out, out


def test_a_line_about_the_subject_that_says_something_else_is_refused(answerer):
    mems = _mems("Geyser Team Offsite\nDefect rate: 59%\nRetail stores: 37", ["The plan is to relocate Geyser to Geneva."])
    out = "".join(answerer.answer("Who teaches the people working on Geyser?", mems))
    assert out.startswith(NOT_FOUND), out
    out = "".join(answerer.answer("How many shops sell Geyser?", mems))
    assert not answerer.last.weak and "37" in out, out


@pytest.mark.parametrize("name,text,heard", [
    ("buttercup", "Murdercup parcel must ship with crossway.\nOver to murder cup now.", ["murder cup", "murdercup"]),
    ("driftwood", "The drift one all holds 31 people.", ["drift one"]),
    ("walrus", "Wallless parcel must ship with Northgate.", ["wallless"]),
    ("pelican", "The Falcon Usprint migration finishes on October 9.", []),  # "the falcon": alike only in sound
    ("pebble", "The panel all holds 32 people.", []),  # a common word is itself
    ("peru", "I was paid by the bureau in Lima.", []),
    # common words that sound like the name (pronunciation dictionary)
    ("granite", "planet is headquartered in Manila.", ["planet"]),
    ("lynx", "The links launch on August 2.", ["links"]),
    ("thistle", "The fissile app has been installed 86,000 times.", ["fissile"]),
    ("cedar", "Each see the unit sells for 91 euros.", ["see the"]),
    ("aurora", "Laura is the new lead.", []),  # a first name is someone, not a mishearing
    ("pebble", "Most people liked it.", []),  # among the commonest words: said for itself
])
def test_a_name_heard_as_another_word(name, text, heard):
    assert misheard(name, text) == heard


def test_a_name_heard_as_a_common_word_answers(answerer):
    mems = [MemoryView(0, "m", 0.0, 4.0, 0.5, evidence={"asr": "Trident is headquartered in Athens."}),
            MemoryView(1, "m", 4.0, 8.0, 0.5, evidence={"asr": "planet is headquartered in Manila."})]
    out = "".join(answerer.answer("In which city is the Granite head office?", mems))
    assert not answerer.last.weak and "Manila" in out and "Athens" not in out, out


def test_a_city_heard_as_other_words_is_named(answerer):
    mems = [MemoryView(0, "m", 0.0, 4.0, 0.5, evidence={"asr": "Samples for Mosaic are analyzed in to lose."}),
            MemoryView(1, "m", 4.0, 8.0, 0.5, evidence={"asr": "Each month 65,000 people look at the Tortoise site."})]
    out = "".join(answerer.answer("In which town does the Mosaic testing happen?", mems))
    assert not answerer.last.weak and "in to lose" in out and "sounds like Toulouse" in out, out
    out = "".join(answerer.answer("How many people look at the Tortoise site each month?", mems))
    assert "65,000" in out and "sounds like" not in out, out


def test_a_misheard_name_is_written_in_and_answered(answerer):
    assert write_in("Over to murder cup now.", {"murder cup": "buttercup"}) == "Over to Buttercup now."
    mems = [MemoryView(0, "m", 0.0, 4.0, 0.5, evidence={"asr": "Murdercup parcel must ship with crossway."}),
            MemoryView(1, "m", 4.0, 8.0, 0.5, evidence={"asr": "Each month 65,000 people look at the Tortoise site."})]
    out = "".join(answerer.answer("Which delivery firm carries the Buttercup packages?", mems))
    assert not answerer.last.weak and "crossway" in out.lower(), out
