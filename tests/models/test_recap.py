"""Open questions about a stretch of time ("What happened in the last minute?") get a recap of that window, moment
by moment, from the one ask path; questions about something keep the extractive path."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from models.answer.recap import pick_moments, recap_kind, recap_lines, recap_text


@pytest.mark.parametrize("question,kind", [
    ("What happened in the last minute?", "all"),
    ("What was said at 1:30?", "said"),
    ("What was on the screen at the start?", "shown"),
    ("What did they talk about in the first 30 seconds?", "said"),
    ("What was discussed between 1:00 and 1:20?", "said"),
    ("Summarize the first 20 seconds.", "all"),
    ("What did the camera see just now?", "seen"),
    ("What is happening?", "all"),
    ("Tell me what happened at the end", "all"),
    ("What did Maria say in the last minute?", None),
    ("What was the budget in the first half?", None),
    ("How many people were there in the last minute?", None),
    ("Who spoke at the end?", None),
    ("What is happening in the kitchen?", None),
    ("What is the budget?", None),
])
def test_recap_kind(question, kind):
    assert recap_kind(question) == kind


def _m(t0, asr="", ocr="", tags="", stream="cam"):
    ev = {k: v for k, v in (("asr", asr), ("ocr", ocr), ("tags", tags)) if v}
    return SimpleNamespace(stream=stream, t0=float(t0), t1=float(t0) + 2.0, evidence=ev)


def test_pick_moments_keeps_one_per_run_of_the_same_evidence_in_time_order():
    ms = [_m(4, "We moved the launch."), _m(0, "Hello all."), _m(2, "Hello all."), _m(6, "We moved the launch."),
          _m(8, ocr="Budget Review\nTotal: 4 million")]
    got = pick_moments(ms, k=8)
    assert [m.t0 for m in got] == [0.0, 4.0, 8.0]


def test_pick_moments_spreads_over_the_window_and_k1_is_its_middle():
    ms = [_m(t, f"sentence number {t}.") for t in range(0, 40, 2)]
    got = pick_moments(ms, k=4)
    assert [m.t0 for m in got] == sorted(m.t0 for m in got) and len(got) == 4
    assert got[0].t0 < 10 and got[-1].t0 >= 30
    assert [m.t0 for m in pick_moments(ms[:3], k=1)] == [2.0]
    # memories with evidence come before empty ones
    mixed = [_m(0), _m(2, "The door opened."), _m(4), _m(6)]
    assert pick_moments(mixed, k=1)[0].t0 == 2.0


def test_recap_text_says_each_sentence_once_and_each_screen_change():
    views = [_m(60, "Walter will audit the invoices by Friday."),
             _m(62, "Walter will audit the invoices by Friday. We retire the Rampart prototype.",
                ocr="Rampart Review\nStatus: retired"),
             _m(64, ocr="Rampart Review\nStatus: retired", tags="website"),
             _m(66, "Sorry, I was on mute.", ocr="Next Steps")]
    text = recap_text(views, "all")
    assert text.startswith("Between 00:01:00 and 00:01:08:")
    assert text.count("Walter will audit the invoices by Friday.") == 1
    assert "We retire the Rampart prototype." in text and "Sorry, I was on mute." in text
    assert text.count("Rampart Review") == 1 and "Next Steps" in text
    assert "[00:01:02–00:01:04]" in text
    said = recap_lines(views, "said")
    assert len(said) == 3 and not any("On screen" in x for x in said)
    shown = recap_lines(views, "shown")
    assert [x.split("]")[0] + "]" for x in shown] == ["[00:01:02–00:01:04]", "[00:01:06–00:01:08]"]
    assert "website" in recap_text(views, "seen")
    assert recap_text([_m(0)], "said") == "In that stretch nothing was said that I recorded."
