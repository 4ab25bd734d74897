"""What a scrolled screen shows, kept across strip reads (models.screenview.ScreenView through OcrEvidence).

A shared document whose section is longer than the window: its heading scrolls out of view long before its last
lines come in. Encoded with PyAV and ingested through the lite pipeline (OCR evidence), the deep line is stored
under its own heading and found by a question naming the section; the clips shown while only the section's body
is on screen say so in evidence["screen"] (what their speech is about), the speech recognizer's context for them
names the section, and the ask path gives that to the answerer."""
from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FPS, SECONDS, SIZE = 2, 60, (1280, 720)
LONG = [f"Checklist item {k}: verified" for k in range(1, 22)] + ["Reviewer: Odile", "Sign-off week: 14"]
BLOCKS = [("Kestrel Staffing", ["Analysts: 41", "Open roles: 7", "Notes follow below.", "Nothing else."]),
          ("Marlin Budget", LONG),
          ("Tern Rollout", ["Sites live: 58", "Pilot city: Oslo", "Next steps agreed.", "No blockers."])]


def _doc():
    from tests.fixtures.styles import render_document

    return render_document("doc", BLOCKS, SIZE[0])


def _offset(t: float, doc: np.ndarray) -> int:
    """A steady scroll from the top to the end of the document over the recording."""
    return int(min(doc.shape[0] - (SIZE[1] - 60), t / SECONDS * (doc.shape[0] - (SIZE[1] - 60))))


@pytest.fixture(scope="module")
def scrolled(tmp_path_factory):
    """The scrolled document as an MP4 (H.264 via PyAV), ingested with OCR evidence into a bank."""
    from memory.bank import MemoryBank
    from models.evidence import lite_evidence
    from models.registry import load_profile
    from stream.pipeline import IngestConfig, IngestPipeline
    from stream.sources import open_source
    from tests.fixtures.meeting import mux
    from tests.fixtures.styles import window

    root = tmp_path_factory.mktemp("scrollview")
    doc = _doc()
    path = str(root / "doc.mp4")
    mux(path, SECONDS, lambda t: window(doc, _offset(t, doc), "Shared document", SIZE), None, SIZE, FPS)
    profile = load_profile(None)
    extractors = lite_evidence(profile.encoder, asr=False, tags=False)
    bank = MemoryBank(str(root / "bank"))
    stats = IngestPipeline(open_source(path, fps=1.0, stream_id="doc"), bank, profile.encoder, stream_id="doc",
                           config=IngestConfig(), evidence=extractors, text_embedder=profile.text_embedder,
                           source_label=path).run()
    assert stats.error in (None, ""), stats.error
    bank.close()
    bank = MemoryBank(str(root / "bank"), readonly=True)
    yield SimpleNamespace(bank=bank, profile=profile, ocr=extractors[0], doc=doc)
    bank.close()


def _heading_out(doc) -> tuple[float, float]:
    """(when Marlin's heading has left the window, when Tern's heading comes in): only Marlin's body is shown."""
    head_y = 40 + 60 + 40 * len(BLOCKS[0][1]) + 10
    tern_y = head_y + 60 + 40 * len(LONG) + 10
    span = doc.shape[0] - (SIZE[1] - 60)
    return (head_y + 40) / span * SECONDS, (tern_y - (SIZE[1] - 60)) / span * SECONDS


def test_a_line_below_a_scrolled_out_heading_is_stored_under_it_and_found(scrolled):
    from models.answer.lite import LiteAnswerer
    from models.ask import ask
    from models.base import MemoryView
    from models.text.relevance import snippets

    mems = scrolled.bank.list()
    out, tern_in = _heading_out(scrolled.doc)
    deep = [m for m in mems if "Reviewer: Odile" in (m.evidence or {}).get("ocr", "")]
    assert deep and all(m.t0 >= out for m in deep), [(m.t0, m.evidence) for m in mems]  # read after it left
    lines = [s.text for s in snippets([MemoryView(m.id, m.stream, m.t0, m.t1, 0.0, None, m.evidence) for m in deep])]
    assert "Marlin Budget — Reviewer: Odile" in lines, lines
    scrolled.profile.answerer = LiteAnswerer(llm=None, embedder=scrolled.profile.text_embedder)
    pieces, _ = ask(scrolled.bank, scrolled.profile, "Who is the reviewer of the Marlin budget?", k=5)
    assert "Odile" in "".join(pieces)


def test_clips_showing_only_a_sections_body_name_its_heading(scrolled):
    from models.ask import screen_title

    out, tern_in = _heading_out(scrolled.doc)
    shown = [m for m in scrolled.bank.list() if out + 1 <= m.t0 and m.t1 <= tern_in - 1]
    assert len(shown) >= 4
    for m in shown:  # the heading is off screen, its section is what the screen shows
        heads = m.evidence["screen"].splitlines()
        assert heads[0] == "Shared document" and "Marlin Budget" in heads, (m.t0, heads)
        assert "Kestrel Staffing" not in heads and "Tern Rollout" not in heads, (m.t0, heads)
        assert screen_title(scrolled.bank, m) == m.evidence["screen"]
    # the speech recognizer's context then names the section, though no read since showed its heading: the
    # title and the headings in view (the lines' names go to it as hotwords)
    ctx = scrolled.ocr.screen_text(out + 2, tern_in - 2).splitlines()
    assert ctx[:2] == ["Shared document", "Marlin Budget"] and set(ctx) <= {"Shared document", "Marlin Budget",
                                                                            "Tern Rollout"}, ctx
    assert "Odile" in scrolled.ocr.names_seen()


def test_the_view_moves_with_the_scroll_and_keeps_a_fixed_title_bar():
    """ScreenView alone: a fixed bar stays, lines carried out of the moving rows leave, a strip line belongs to
    the heading above it on screen, and text scrolled back in at the top keeps the section it was read under."""
    from models.ocr import OcrLine
    from models.screen import Read
    from models.screenview import ScreenView

    def at(text, y):
        return OcrLine(text, (10.0, float(y), 300.0, float(y + 24)), 1.0)

    v = ScreenView()
    v.whole([at("Shared document", 10), at("Alpha Plan", 80), at("Owner: Ana", 120), at("Beta Plan", 200),
             at("Owner: Bo", 240)])
    assert v.headings() == ["Shared document", "Alpha Plan", "Beta Plan"]
    secs = v.scrolled(Read(600, 720, "scroll", dy=100, moving=(60, 720)), [at("Budget: 9 euros", 660)])
    assert secs == ["Beta Plan"]                        # under the heading above it on screen
    assert v.headings() == ["Shared document", "Beta Plan"]  # Alpha's lines left under the bar
    assert v.body() == ["Owner: Bo", "Budget: 9 euros"]
    secs = v.scrolled(Read(60, 200, "scroll", dy=-100, moving=(60, 720)), [at("Owner: Ana", 120)])
    assert secs == ["Alpha Plan"]                       # scrolled back in at the top: the section it had
    assert v.headings()[:2] == ["Shared document", "Alpha Plan"]
