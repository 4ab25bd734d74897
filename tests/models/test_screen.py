"""A scrolled document read through OcrEvidence with the real RapidOCR reader: every line once where it stands
(also a line whose words stand in another section too), each stamped in the clip where it came whole into view;
the strip reads' timing model (models.screen.came_into_view)."""
from types import SimpleNamespace

import pytest

from models.screen import Read, came_into_view

BAR, VIEW_H, PITCH = 60, 660, 40  # tests.fixtures.styles.window: title bar, document rows shown, line pitch


@pytest.fixture(scope="module")
def reader():
    from models.ocr import SlideReader

    return SlideReader()


def _doc_rows(blocks):
    """The document row of each line (tests.fixtures.styles.render_document's layout)."""
    rows, y = [], 40
    for head, lines in blocks:
        rows.append((head, y))
        y += 60
        for ln in lines:
            rows.append((ln, y))
            y += PITCH
        y += 10
    return rows


def test_scrolled_lines_are_read_where_they_stand_and_stamped_when_whole(reader):
    from models.evidence import OcrEvidence
    from tests.fixtures.styles import render_document, window

    blocks = [("Kestrel Staffing", ["Analysts: 41", "Status: done", "Open roles: 7", "Notes follow below."]),
              ("Marlin Budget", ["Spend to date: 23 euros", "Reviewer: Odile", "Status: done", "No blockers."]),
              ("Tern Rollout", ["Sites live: 58", "Status: done", "Pilot city: Oslo", "Next steps agreed."]),
              ("Wren Hiring", ["Offers made: 12", "Status: done", "Start month: April", "Nothing else."])]
    doc = render_document("doc", blocks)
    speed = 11  # document rows per second, sampled at 1 frame a second into 2-s clips
    ev = OcrEvidence(reader)
    got: dict[float, list[str]] = {}
    for c in range(0, 64, 2):
        frames = [SimpleNamespace(t=float(t), image=window(doc, speed * t, "Shared document")) for t in (c, c + 1)]
        clip = SimpleNamespace(frames=frames, keyframe=[False, False], t0=float(c), t1=float(c + 2))
        out = ev(clip, None)
        ev.stored(c, SimpleNamespace(t0=clip.t0, t1=clip.t1))
        if out.get("ocr"):
            got[clip.t0] = out["ocr"].splitlines()
        for mid, late in ev.late():
            got[float(mid)] = late["ocr"].splitlines()
    assert ev.gate.reads["scroll"] >= 3 and ev.calls <= 16  # strips, a few lines each, not a read per frame
    for head, lines in blocks:
        for ln in lines:  # read once under its own heading, even "Status: done" standing in every section
            at = [t for t, ls in got.items() if ln in ls and head in ls]
            assert len(at) == 1, (head, ln, got)
    for text, y in _doc_rows(blocks):
        whole = max(0.0, (y + 30 - VIEW_H) / speed)  # the first second the line is wholly in view
        if whole <= 1.0 or text.startswith("Status"):
            continue  # on the first screen (read whole at 0 s); the repeated lines are checked above
        t0 = min(t for t, ls in got.items() if text in ls)
        assert t0 <= whole + 1.0 and t0 + 2.0 >= whole - 1.0, (text, whole, t0)


def test_came_into_view_takes_the_scroll_as_steady_between_reads():
    read = Read(600, 720, "scroll", dy=40, since=10.0, frames=(11.0, 12.0, 13.0, 14.0))
    assert came_into_view(read, (0, 640, 300, 690), 14.0) == 11.0   # 30 rows in at 10 rows/s: whole since 11 s
    assert came_into_view(read, (0, 668, 300, 715), 14.0) == 14.0   # only just in: this frame
    assert came_into_view(read, (0, 560, 300, 600), 14.0) == 11.0   # never earlier than the first frame after
    down = Read(60, 200, "scroll", dy=-40, since=10.0, frames=(11.0, 12.0, 13.0, 14.0))
    assert came_into_view(down, (0, 80, 300, 110), 14.0) == 12.0    # scrolling up the page: text enters at the top
    assert came_into_view(Read(0, 720, "screen"), (0, 10, 300, 40), 14.0) == 14.0
