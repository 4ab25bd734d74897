"""Minutes' sections on hand-made memories (no media): a scrolled document's headings become sections and titles
under a window title that never changes, run-together OCR words come apart, slides still cut at their titles, and
a talk without slides is cut where its topic changes (bundled MiniLM)."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models.base import MemoryView  # noqa: E402
from models.minutes import segment_sections, summarize  # noqa: E402

WINDOW = "Kestrel weekly sync — shared document"


def _mem(i, t0, ocr="", asr=""):
    return MemoryView(i, "m", t0, t0 + 2, 0.0, evidence={"ocr": ocr, "asr": asr})


def _scroll():
    shown = [("Harbor Expansion\nBerth count: 14\nDredging starts in May", "We are looking at the harbor berths."),
             ("", "The harbor work goes on."),
             ("Harbor Expansion\nCrane order: 3", ""),
             ("Vendor Selection", "Next, the vendors for the crane."),
             ("Vendor Selection\nShortlist: Norrik, Halden", ""),
             ("", "Norrik offered the lower price."),
             ("TrainingSchedule\nFirst course: June 3", "Now the training schedule."),
             ("Training Schedule\nTrainers: 4", "")]
    return [_mem(i, 2.0 * i, f"{WINDOW}\n{o}" if o else WINDOW, a) for i, (o, a) in enumerate(shown)]


def test_document_headings_are_sections_under_a_window_title():
    secs = segment_sections(_scroll())
    assert [t for t, _ in secs] == ["Harbor Expansion", "Vendor Selection", "Training Schedule"]
    assert [items[0].t0 for _, items in secs] == [0.0, 6.0, 12.0]
    mn = summarize(_scroll())
    assert [s.title for s in mn.sections] == ["Harbor Expansion", "Vendor Selection", "Training Schedule"]
    bullets = " ".join(b.text for s in mn.sections for b in s.bullets)
    assert "Shortlist: Norrik, Halden" in bullets and WINDOW not in bullets  # the window title is no content


def test_two_headings_in_one_screen_are_two_sections():
    mems = [_mem(0, 0.0, f"{WINDOW}\nBudget Outlook\nReserve: 2 million\nRisk Register\nFlood risk: high"),
            _mem(1, 2.0, f"{WINDOW}\nRisk Register\nFire risk: low"), _mem(2, 4.0, f"{WINDOW}\nClosing Notes")]
    assert [t for t, _ in segment_sections(mems)] == ["Budget Outlook", "Risk Register", "Closing Notes"]


def test_slides_still_cut_at_their_titles():
    mems = [_mem(0, 0.0, "Quarter Plan\nGoal: 12 stores\nFooter"), _mem(1, 2.0, "Quarter Plan\nGoal: 12 stores\nFooter"),
            _mem(2, 4.0, "Store Design\nColours: green\nFooter"), _mem(3, 6.0, "Store Design\nColours: green\nFooter"),
            _mem(4, 8.0, "Staffing\nHires: 30\nFooter")]
    assert [t for t, _ in segment_sections(mems)] == ["Quarter Plan", "Store Design", "Staffing"]


TOPICS = [["The bakery opens its second oven on Monday.", "Bread output will double with the second oven.",
           "The bakers asked for a new flour supplier.", "Croissants sell out before nine every morning.",
           "We will bake more rye loaves for the weekend market."],
          ["Our delivery vans need new winter tyres.", "Two van drivers are leaving in March.",
           "Fuel costs for the vans rose again this month.", "The northern delivery route takes too long.",
           "We could rent an electric van for the city routes."],
          ["The shop website crashed during the sale.", "Online orders should show the pickup time.",
           "Customers want to pay by phone on the website.", "The website needs a page for catering orders.",
           "We will test the new checkout page next week."]]


def test_a_talk_without_slides_is_cut_where_its_topic_changes():
    from models.text_embed import TextEmbedder

    mems, t = [], 0.0
    for topic in TOPICS:  # 20 s per topic: five sentences of 4 s, each over two 2-s clips
        for s in topic:
            mems += [_mem(len(mems), t, asr=s), _mem(len(mems) + 1, t + 2, asr=s)]
            t += 4
    secs = segment_sections(mems, embedder=TextEmbedder())
    starts = [items[0].t0 for _, items in secs]
    assert len(secs) == 3 and all(abs(a - b) <= 4 for a, b in zip(starts, [0.0, 20.0, 40.0])), starts


@pytest.mark.parametrize("joined,vocab,expect", [("FalconBudget Review", {"falcon", "budget"}, "Falcon Budget Review"),
                                                 ("McKinley Report", {"kinley"}, "McKinley Report")])
def test_run_together_words_come_apart_only_when_both_are_words_of_the_meeting(joined, vocab, expect):
    from models.minutes.segment import _respace

    assert _respace(joined, vocab) == expect


@pytest.mark.parametrize("said,owners", [("The Kestrel Project will hire 40 welders.", []),
                                         ("The project will hire 40 welders.", []),
                                         ("Action item. Nadia will book the crane before Friday.", ["Nadia"]),
                                         ("Action Item, Omar will send the shortlist.", ["Omar"]),
                                         ("Action item Vera will call the insurer", ["Vera"]),  # ASR: no stops
                                         ("Action Item Vera will call the insurer", ["Vera"]),
                                         ("The harbor plan is done. Ivo will update the budget.", ["Ivo"])])
def test_an_action_owner_is_a_person_not_a_things_name(said, owners):
    from models.minutes.extract import extract_actions

    assert [a.owner for a in extract_actions(said, 0, 2)] == owners
