"""What a screen shows now, kept across partial reads: models.screen reads only the strip a scroll revealed (or the
rows an edit changed), so the rest of the screen is carried over from the reads before, moved with the scroll.

ScreenView holds the lines of text in view, each with its rows and the document section it stands in: the nearest
heading above it, remembered after that heading has scrolled out of view (the lines at the top of a scrolled
document still belong to it; a strip read at the bottom belongs to the heading above it on screen).

- whole(lines): a whole-screen read (a new slide or screen): the lines as read, the first one the screen's title;
- scrolled(read, lines): a strip read after a scroll: the lines in the rows that moved go with the content, those
  carried out of them leave the view, lines outside them (a fixed title bar) stay, and the strip's lines replace
  what stood where they stand; returns each strip line's section;
- edited(read, lines): an edit in place: the band's lines replace those in its rows;
- headings(): the title, the section the view starts in (its heading may have scrolled out) and the headings in
  view, top to bottom: what the screen is about;
- body(): the other lines in view, top to bottom.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence

from .text.words import is_heading

KNOWN_MAX = 512  # lines remembered with their section (a part scrolled back into view keeps its heading)


@dataclass
class ViewLine:
    """A line in view: its text, rows (y0, y1 in the frame), the heading of its section ("" unknown), whether it
    is the screen's title (read first on a whole screen) or a heading itself."""

    text: str
    y0: float
    y1: float
    section: str = ""
    title: bool = False
    heading: bool = False

    @property
    def height(self) -> float:
        return max(1.0, self.y1 - self.y0)


def _overlap(a: ViewLine, y0: float, y1: float) -> bool:
    """Whether more than half of the shorter of line a and rows y0:y1 overlap."""
    inter = min(a.y1, y1) - max(a.y0, y0)
    return inter > 0.5 * min(a.height, max(1.0, y1 - y0))


def _key(text: str) -> str:
    return " ".join(text.lower().split())


class ScreenView:
    """The lines on screen, updated by each read (see the module's docstring)."""

    def __init__(self) -> None:
        self.lines: list[ViewLine] = []
        self._known: dict[str, str] = {}  # line -> section it was read under

    def whole(self, lines: Sequence) -> None:
        """A whole screen read: OcrLines (text, box) top to bottom; the first is the title. A line above the first
        heading stands in no known section (the screen may start mid-document)."""
        self.lines = [ViewLine(ln.text, ln.box[1], ln.box[3], title=i == 0, heading=i > 0 and is_heading(ln.text))
                      for i, ln in enumerate(lines)]
        self._sections(set(range(len(self.lines))), recall=False)

    def scrolled(self, read, lines: Sequence) -> list[str]:
        """A scroll strip read (models.screen.Read with dy and the moving rows; without them every row moved):
        move the view, add the strip's OcrLines; returns the section of each strip line."""
        lo, hi = read.moving if read.moving is not None else (float("-inf"), float("inf"))
        kept = []
        for ln in self.lines:
            slack = 0.5 * ln.height
            if ln.y0 >= lo - slack and ln.y1 <= hi + slack:  # in the rows that moved: it moved with them
                ln = replace(ln, y0=ln.y0 - read.dy, y1=ln.y1 - read.dy)
                if ln.y0 < lo - 0.3 * ln.height or ln.y1 > hi + 0.3 * ln.height:
                    continue  # carried out of view (under a fixed bar, off an edge)
            kept.append(ln)
        return self._merge(kept, lines, recall=True)

    def edited(self, read, lines: Sequence) -> list[str]:
        """An edit in place (rows read.y0:read.y1 read again): its OcrLines replace the lines there."""
        kept = [ln for ln in self.lines if not _overlap(ln, read.y0, read.y1)]
        return self._merge(kept, lines, recall=False)

    def _merge(self, kept: list[ViewLine], lines: Sequence, recall: bool) -> list[str]:
        new = [ViewLine(ln.text, ln.box[1], ln.box[3], heading=is_heading(ln.text)) for ln in lines]
        kept = [k for k in kept if not any(_overlap(k, n.y0, n.y1) for n in new)]
        self.lines = sorted(kept + new, key=lambda ln: ln.y0)
        fresh = {i for i, ln in enumerate(self.lines) if any(ln is n for n in new)}
        self._sections(fresh, recall)
        return [ln.section for ln in new]

    def _sections(self, fresh: set[int], recall: bool) -> None:
        """Give the lines at indexes `fresh` their section: the heading above them in view (a heading is its own),
        else the section of the line above them; a fresh line with nothing above it in view (text scrolled in at
        the top), with recall, the section it was read under before."""
        cur: Optional[str] = None
        for i, ln in enumerate(self.lines):
            if ln.title:
                continue
            if ln.heading:
                ln.section = ln.text
            elif i in fresh:
                ln.section = cur if cur is not None else (self._known.get(_key(ln.text), "") if recall else "")
            cur = ln.section
            if ln.section:
                self._known.pop(_key(ln.text), None)
                self._known[_key(ln.text)] = ln.section
        while len(self._known) > KNOWN_MAX:
            self._known.pop(next(iter(self._known)))

    def headings(self) -> list[str]:
        """The title (while in view), the section the view starts in, and the headings in view, top to bottom,
        each once."""
        out: list[str] = [ln.text for ln in self.lines if ln.title][:1]
        body = [ln for ln in self.lines if not ln.title]
        if body and body[0].section:
            out.append(body[0].section)
        out += [ln.text for ln in body if ln.heading]
        return list(dict.fromkeys(out))

    def body(self) -> list[str]:
        """The lines in view that are neither the title nor a heading, top to bottom."""
        return [ln.text for ln in self.lines if not ln.title and not ln.heading]

    def sectioned(self) -> bool:
        """Whether the view shows a document's sections (a heading, or a section it starts in, below the title)."""
        return any(ln.section for ln in self.lines if not ln.title)
