"""RapidOCR on rendered slides; the change gate and the slide-text deduper."""
import numpy as np
import pytest

from models.ocr import OcrDeduper, OcrGate, SlideReader, title_of
from tests.fixtures.meeting import render_slide


@pytest.fixture(scope="module")
def reader():
    return SlideReader()


def test_reads_slide_top_to_bottom(reader):
    img = render_slide("Falcon Budget Review", ["Budget: 35 million dollars", "Launch date: June 4", "Team lead: Maria"])
    lines = reader.read(img)
    assert lines[0] == "Falcon Budget Review"
    joined = "\n".join(lines)
    for t in ("Budget: 35 million dollars", "Launch date: June 4", "Team lead: Maria"):
        assert t in joined
    assert lines.index("Launch date: June 4") < lines.index("Team lead: Maria")
    assert title_of(reader.read_lines(img), img.shape[0]) == "Falcon Budget Review"
    assert reader.seconds_per_call > 0


def test_small_slide_and_bad_input(reader):
    img = render_slide("Orion Roadmap", ["New office: Berlin"], size=(640, 360))
    assert "Orion Roadmap" in reader.read(img)
    assert reader.read(np.full((200, 300, 3), 255, np.uint8)) == [] and reader.reason == "no text found"
    assert reader.read(np.zeros((2, 2), np.uint8)) == [] and reader.reason == "not an image"
    assert reader.read(None) == []


def test_gate():
    g = OcrGate(refresh_s=30)
    a = render_slide("A", ["x"], size=(320, 180))
    b = render_slide("B title here", ["different bullet text"], size=(320, 180), seed=2)
    assert g.needs_ocr(0.0, changed=False)  # first frame always
    g.done(0.0, a)
    assert not g.needs_ocr(2.0, changed=False)
    assert g.needs_ocr(4.0, changed=True)
    assert not g.needs_ocr(4.0, image=a)  # no flag: thumbnail difference
    assert g.needs_ocr(4.0, image=b)
    assert g.needs_ocr(31.0, changed=False)  # periodic refresh
    assert g.skipped == 2


def test_deduper():
    d = OcrDeduper()
    s1 = ["Falcon Budget", "Budget: 35 million", "Lead: Maria"]
    assert d.update(s1) == s1 and d.title_changed and d.title == "Falcon Budget"
    assert d.update(["Falcon Budget", "Budget: 35 milion", "Lead: Maria", "Launch: June 4"]) == ["Launch: June 4"]
    assert not d.title_changed
    assert d.update(["Orion Roadmap", "Lead: Maria"]) == ["Orion Roadmap"] and d.title_changed


def test_deduper_keeps_a_changed_number():
    d = OcrDeduper()
    d.update(["Tiger Operations", "Engineers: 67", "Footer · slide 2"])
    # the same label with another number is a new fact (fuzzy matching alone would call it a repeat)
    assert d.update(["Orion Risks", "Engineers: 72", "Footer · slide 3"]) == ["Orion Risks", "Engineers: 72",
                                                                             "Footer · slide 3"]
    assert d.update(["Orion Risks", "Engineers: 72", "Footer - slide 3"]) == []  # an OCR wobble is not


def test_ocr_evidence_keeps_the_title_first():
    from types import SimpleNamespace

    from models.evidence import OcrEvidence

    class Reader:
        def __init__(self, pages):
            self.pages = iter(pages)

        def read(self, image):
            return next(self.pages)

    img = np.zeros((32, 32, 3), np.uint8)
    ev = OcrEvidence(Reader([["Falcon Budget", "Budget: 35 million"], ["Falcon Budget", "Budget: 35 million",
                                                                       "Lead: Maria"]]))
    clip = lambda t: SimpleNamespace(frames=[SimpleNamespace(t=t, image=img)], keyframe=[True])  # noqa: E731
    assert ev(clip(0.0), None) == {"ocr": "Falcon Budget\nBudget: 35 million"}
    # a bullet added to the same slide: the new line, under its slide's title (the topic), one per line
    assert ev(clip(2.0), None) == {"ocr": "Falcon Budget\nLead: Maria"}
