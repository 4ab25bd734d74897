"""Questions about the slide sequence ("What was the last slide?", "How many slides were shown?") are answered from
the slides the bank read, in order, through the one ask path (real FAISS + SQLite, bundled MiniLM)."""
from __future__ import annotations

import pytest

from models.answer.deck import deck_question


@pytest.mark.parametrize("question,kind", [
    ("What was the first slide?", "first"),
    ("What was on the last slide?", "last"),
    ("What was the title of the last slide?", "last"),
    ("How many slides were shown?", "count"),
    ("How many slides did the presentation have?", "count"),
    ("List the slide titles.", "list"),
    ("What slides were shown in the meeting?", "list"),
    ("Which slides mentioned the budget?", None),  # a question about the budget
    ("What did the slide say about revenue?", None),
    ("What is the budget?", None),
    ("List the slides shown in the last minute.", "list"),
])
def test_deck_question(question, kind):
    assert deck_question(question) == kind


TITLES = ["Budget Review", "Hiring Plan", "Office Move", "Risk Register"]


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    """A deck of 4 slides, 30 s each (a footer on every slide, speech over them), and a speaker-only bank."""
    from memory.bank import MemoryBank
    from models.text_embed import TextEmbedder

    emb = TextEmbedder()
    root = tmp_path_factory.mktemp("deck")
    deck, talk = MemoryBank(str(root / "deck")), MemoryBank(str(root / "talk"))
    for t in range(0, 120, 10):
        title = TITLES[t // 30]
        ev = {"asr": f"We are still on {title.lower()} at second {t}.",
              "ocr": f"{title}\nItem {t // 30 + 1}: {7 * (t // 30 + 1)} people\nAcme weekly review · {t // 30 + 1}"}
        key = {f"text:{emb.space}": emb.encode([ev["asr"] + " " + ev["ocr"]])[0]}
        deck.add(stream="deck", t0=t, t1=t + 10, wall=0.0, carrier=None, keys=key, evidence=ev)
        talk.add(stream="talk", t0=t, t1=t + 10, wall=0.0, carrier=None, keys=key, evidence={"asr": ev["asr"]})
    yield deck, talk, emb
    deck.close()
    talk.close()


def _lite(emb):
    from models.answer.lite import LiteAnswerer
    from models.registry import Profile

    return Profile(name="lite", encoder=None, answerer=LiteAnswerer(llm=None, embedder=emb), text_embedder=emb)


def _ask(bank, emb, q):
    from models.ask import ask

    answer, cites = ask(bank, _lite(emb), q, k=5)
    return "".join(answer), cites


def test_first_last_and_every_slide_in_order(banks):
    deck, _, emb = banks
    text, cites = _ask(deck, emb, "What was the first slide?")
    assert text.startswith("The first slide was “Budget Review” [00:00:00–00:00:10]") and "7 people" in text, text
    text, _ = _ask(deck, emb, "What was on the last slide?")
    assert text.startswith("The last slide was “Risk Register” [00:01:30–00:01:40]") and "28 people" in text, text
    text, cites = _ask(deck, emb, "How many slides were shown?")
    assert text.startswith("4 slides were shown") and all(t in text for t in TITLES), text
    text, cites = _ask(deck, emb, "List the slide titles.")
    assert [ln.split("] ", 1)[1] for ln in text.splitlines()[1:]] == TITLES, text
    assert [c["start"] for c in cites] == [0.0, 30.0, 60.0, 90.0]
    # within a window: only its slides
    text, _ = _ask(deck, emb, "List the slides shown in the last minute.")
    assert text.startswith("2 slides were shown") and "Office Move" in text and "Risk Register" in text, text
    assert "Budget Review" not in text


def test_a_recording_without_slides_says_so(banks):
    _, talk, emb = banks
    text, _ = _ask(talk, emb, "What was the last slide?")
    assert text.startswith("No slides were read"), text
