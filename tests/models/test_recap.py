"""Open questions about a stretch of time ("What happened in the last minute?") get a recap of that window, moment
by moment, from the one ask path; questions about something keep the extractive path."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from models.answer.recap import pick_moments, recap_kind, recap_lines, recap_text, recap_topic


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


@pytest.mark.parametrize("question,expected", [
    ("What did they say about Rampart?", ("said", "Rampart")),
    ("Tell me everything about Bluebell.", ("all", "Bluebell")),
    ("What was shown regarding the budget?", ("shown", "budget")),
    ("What do we know about the Osprey launch?", ("all", "Osprey launch")),
    ("What did Maria say about the budget?", None),  # a question about Maria
    ("What is the Osprey budget?", None),
    ("How do you feel about Rampart?", None),
    ("When did the meeting talk about Rampart?", ("said", "Rampart")),
    ("When was Bluebell discussed?", ("said", "Bluebell")),
    ("When was the budget shown?", ("shown", "budget")),
    ("When did Maria talk about the budget?", None),
    ("When is the Snowdrop deadline?", None),
    ("When was the Osprey launch moved?", None),
])
def test_recap_topic(question, expected):
    assert recap_topic(question) == expected


def _m(t0, asr="", ocr="", tags="", stream="cam"):
    ev = {k: v for k, v in (("asr", asr), ("ocr", ocr), ("tags", tags)) if v}
    return SimpleNamespace(stream=stream, t0=float(t0), t1=float(t0) + 2.0, evidence=ev)


def test_pick_moments_keeps_the_moments_that_tell_something_new_in_time_order():
    ms = [_m(4, "We moved the launch."), _m(0, "Hello all."), _m(2, "Hello all."), _m(6, "We moved the launch."),
          _m(8, ocr="Budget Review\nTotal: 4 million")]
    assert [m.t0 for m in pick_moments(ms, k=3)] == [0.0, 4.0, 8.0]
    # "said" leaves the screen out: two moments tell everything said
    assert [m.t0 for m in pick_moments(ms, k=1, kind="said")] in ([0.0, 4.0], [2.0, 4.0], [0.0, 6.0], [2.0, 6.0])


def test_pick_moments_spreads_over_the_window():
    ms = [_m(t, f"Sentence number {t}.") for t in range(0, 60, 2)]
    got = pick_moments(ms, k=5)
    ts = [m.t0 for m in got]
    assert ts == sorted(ts) and len(got) == 12  # at most max(k, 12) moments
    assert ts[0] <= 6 and ts[-1] >= 52 and max(b - a for a, b in zip(ts, ts[1:])) <= 8
    # clips that tell nothing (a silent camera): spread evenly for a model that reads the clips, k=1 the middle
    quiet = [_m(t) for t in range(0, 60, 2)]
    assert [m.t0 for m in pick_moments(quiet, k=1)] == [30.0]
    assert len(pick_moments(quiet, k=4)) == 4
    # memories with evidence come before empty ones
    mixed = [_m(0), _m(2, "The door opened."), _m(4), _m(6)]
    assert [m.t0 for m in pick_moments(mixed, k=1)] == [2.0]


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


# ---------------------------------------------------------------- through the one ask path (real FAISS + SQLite)
@pytest.fixture(scope="module")
def meeting_bank(tmp_path_factory):
    """A 3-minute meeting: one sentence per 20-s clip, a slide every minute, in a real bank with MiniLM keys."""
    from memory.bank import MemoryBank
    from models.text_embed import TextEmbedder

    emb = TextEmbedder()
    bank = MemoryBank(str(tmp_path_factory.mktemp("recap") / "bank"))
    said = ["Welcome everyone to the review.", "The Osprey budget is twelve million.", "Maria will call the vendor.",
            "We moved the Osprey launch to June.", "The warehouse in Leeds is full.", "Tom asked about the audit.",
            "The audit starts on Monday.", "Priya owns the hiring plan.", "That is all for today."]
    slides = {0: "Osprey Budget\nTotal: 12 million", 3: "Warehouse Capacity\nLeeds: full", 6: "Audit Plan\nStart: Monday"}
    for i, text in enumerate(said):
        ev = {"asr": text, **({"ocr": slides[i]} if i in slides else {})}
        bank.add(stream="meeting", t0=20.0 * i, t1=20.0 * i + 20, wall=0.0, carrier=None,
                 keys={f"text:{emb.space}": emb.encode([text + " " + ev.get("ocr", "")])[0]}, evidence=ev)
    yield bank, emb, said
    bank.close()


def _lite(emb):
    from models.answer.lite import LiteAnswerer
    from models.registry import Profile

    return Profile(name="lite", encoder=None, answerer=LiteAnswerer(llm=None, embedder=emb), text_embedder=emb)


def test_what_happened_in_the_last_minute_recaps_exactly_that_minute(meeting_bank):
    from models.ask import ask

    bank, emb, said = meeting_bank
    answer, cites = ask(bank, _lite(emb), "What happened in the last minute?", k=5)
    text = "".join(answer)
    assert answer.answered and text.startswith("Between 00:02:00 and 00:03:00:"), text
    for s in said[6:]:
        assert s in text, (s, text)
    assert not any(s in text for s in said[:6]), text
    assert "Audit Plan" in text  # the slide shown in that minute
    assert [c["start"] for c in cites] == [120.0, 140.0, 160.0]


def test_what_was_on_screen_and_what_was_said_between_two_times(meeting_bank):
    from models.ask import ask

    bank, emb, said = meeting_bank
    answer, cites = ask(bank, _lite(emb), "What was on the screen between 0:50 and 2:10?", k=5)
    text = "".join(answer)
    assert "Warehouse Capacity" in text and "Audit Plan" in text and "Osprey Budget" not in text, text
    assert not any(s in text for s in said), text  # the screen only
    answer, cites = ask(bank, _lite(emb), "What was discussed between 1:00 and 1:40?", k=5)
    text = "".join(answer)
    assert said[3] in text and said[4] in text and said[2] not in text and said[5] not in text, text
    assert all(60.0 <= c["start"] < 100.0 for c in cites), cites


def test_a_question_about_something_keeps_the_extractive_path(meeting_bank):
    from models.ask import ask

    bank, emb, _ = meeting_bank
    answer, _ = ask(bank, _lite(emb), "When is the Osprey launch?", k=5)
    text = "".join(answer)
    assert "June" in text and not text.startswith("Between"), text
    answer, _ = ask(bank, _lite(emb), "Who will call the vendor in the first minute?", k=5)
    text = "".join(answer)
    assert "Maria" in text and not text.startswith("Between"), text


def test_what_was_said_about_a_subject_lists_every_line_that_names_it(meeting_bank):
    from models.answer.lite import NOT_FOUND
    from models.ask import ask

    bank, emb, said = meeting_bank
    answer, cites = ask(bank, _lite(emb), "What was said about the audit?", k=5)
    text = "".join(answer)
    assert text.startswith("About audit:") and said[5] in text and said[6] in text, text
    assert not any(s in text for i, s in enumerate(said) if i not in (5, 6)), text
    answer, _ = ask(bank, _lite(emb), "What do we know about the Osprey launch?", k=5)
    text = "".join(answer)
    assert said[1] in text and said[3] in text and "Osprey Budget" in text, text
    answer, _ = ask(bank, _lite(emb), "When was the audit discussed?", k=5)
    text = "".join(answer)
    assert "[00:01:40–00:02:00]" in text and "[00:02:00–00:02:20]" in text and said[6] in text, text
    # a subject nobody named is refused as any absent topic is
    answer, _ = ask(bank, _lite(emb), "What did they say about the wedding band?", k=5)
    assert "".join(answer).startswith(NOT_FOUND)


def test_a_camera_bank_without_words_still_recaps_a_window(tmp_path):
    """No speech, no screen text, no tags: nothing to search by words, but "the last minute" is a stretch of time:
    its moments go to the answerer (a VLM reads their pictures) instead of an error."""
    import numpy as np

    from memory.bank import MemoryBank
    from models.ask import ask
    from models.base import Consumes
    from models.registry import Profile

    class Recorder:
        consumes = Consumes(carriers=False, evidence=True)
        seen: list = []

        def answer(self, question, memories, history=(), usage=None):
            Recorder.seen = list(memories)
            yield "ok"

    bank = MemoryBank(str(tmp_path / "cam"))
    try:
        rng = np.random.default_rng(0)
        for t in range(0, 300, 10):
            v = rng.standard_normal(8).astype(np.float32)
            bank.add(stream="cam", t0=t, t1=t + 10, wall=0.0, carrier=None, keys={"img:test": v / np.linalg.norm(v)},
                     evidence={})
        prof = Profile(name="cam", encoder=None, answerer=Recorder())
        answer, cites = ask(bank, prof, "What happened in the last minute?", k=4)
        assert "".join(answer) == "ok"
        assert len(cites) == 4 and all(c["start"] >= 240.0 for c in cites), cites
        assert [v.t0 for v in Recorder.seen] == sorted(v.t0 for v in Recorder.seen)
    finally:
        bank.close()
