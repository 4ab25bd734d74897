"""What of a frame to OCR, and when its text came into view.

- ScreenWatcher.decide(image, t) -> Read or None: nothing (the text did not change), the strip a scroll revealed,
  or the whole screen (a new slide, even one of the same template: it compares a 1/4-scale grey picture with the
  last one read, pixel by pixel, so a changed line of text trips it where a whole-picture mean would not).
- read_region(reader, image, read) -> the complete lines of the region read, in the frame's coordinates: a line
  that an edge of the region cuts (ink on the edge row) is left for the next read, when all of it is in view.
- came_into_view(read, line, t) -> when a scrolled-in line was first wholly on screen: the first frame seen since
  the last read at which the scroll (taken as steady between two reads) had brought all of it in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

INK = 12  # grey levels between a row's (or column's) darkest and lightest pixel that count as ink, not paper


def grey_small(rgb: np.ndarray, scale: int = 4) -> np.ndarray:
    """Grey picture at 1/scale (area average), float32."""
    a = np.asarray(rgb)
    H, W = (a.shape[0] // scale) * scale, (a.shape[1] // scale) * scale
    try:
        import cv2

        g = cv2.cvtColor(np.ascontiguousarray(a[..., :3]), cv2.COLOR_RGB2GRAY) if a.ndim == 3 else a
        return cv2.resize(g[:H, :W], (W // scale, H // scale), interpolation=cv2.INTER_AREA).astype(np.float32)
    except ImportError:  # pragma: no cover - opencv comes with rapidocr
        g = a[..., :3].astype(np.float32).mean(-1) if a.ndim == 3 else a.astype(np.float32)
        return g[:H, :W].reshape(H // scale, scale, W // scale, scale).mean((1, 3))


def rows_full(rgb: np.ndarray) -> np.ndarray:
    """Grey full-resolution rows, every 4th column (exact vertical shifts, ink rows)."""
    a = np.asarray(rgb)[:, ::4]
    return a[..., :3].astype(np.float32).mean(-1) if a.ndim == 3 else a.astype(np.float32)


def ink_rows(g: np.ndarray) -> np.ndarray:
    """Per row of a grey picture, whether it holds ink (its darkest and lightest pixels differ)."""
    return (g.max(1) - g.min(1)) >= INK if g.size else np.zeros(g.shape[0], bool)


@dataclass
class Read:
    """What to OCR in a frame: rows y0:y1 in full resolution (the whole frame for a new screen), why, and for a
    scroll the rows the content moved (dy > 0: up, new text enters at the bottom) since the last read at `since`,
    with the times of the frames seen in between (when each new line came into view) and the rows that moved
    (`moving`: lo, hi; a fixed title bar or footer outside them did not)."""

    y0: int
    y1: int
    kind: str  # "screen" | "scroll" | "band" (the rows of an edit in place)
    dy: int = 0
    since: Optional[float] = None
    frames: tuple = ()
    moving: Optional[tuple[int, int]] = None


class ScreenWatcher:
    """Which part of a frame shows text not read yet.

    decide(image, t) -> Read or None. Compares a 1/4-scale grey picture with the last one read: fewer than
    `min_changed_px` pixels that moved by more than `pixel_threshold` grey levels is the same screen (video noise,
    a cursor). A change that is the old picture shifted up or down is a scroll: the strip from a line above the
    old edge (a line the last read missed or found cut is read again) to the edge the text comes in at is read.
    A change of a line or two (fewer than 8 rows of the small picture: a line added or edited in place) is read
    in the band of rows around it; anything else is a new screen, read whole.
    Cost stays bounded: at most one read per `min_interval_s` (a change waits; the next read covers it), a scroll
    waits until `scroll_rows` of the height (about two lines of document text) are new or `scroll_wait_s` passed
    (each line is still stamped from when it came into view), and a screen where the last read found no text (camera
    footage) is re-read only after a back-off that doubles up to `max_backoff_s`. `pending_since` is when the
    change now waiting was first seen, so a new screen's text is stamped from the moment it appeared. Call
    `done(image, t, read, found_text)` after reading.
    """

    def __init__(self, scale: int = 4, pixel_threshold: float = 24.0, min_changed_px: int = 12,
                 min_interval_s: float = 2.0, max_backoff_s: float = 30.0, scroll_rows: float = 1 / 8,
                 scroll_wait_s: float = 10.0):
        self.scale = scale
        self.pixel_threshold = pixel_threshold
        self.min_changed_px = min_changed_px
        self.min_interval_s = min_interval_s
        self.max_backoff_s = max_backoff_s
        self.scroll_rows = scroll_rows
        self.scroll_wait_s = scroll_wait_s
        self.ref: Optional[np.ndarray] = None
        self.ref_full: Optional[np.ndarray] = None
        self.last_t: Optional[float] = None
        self.backoff = 0.0
        self.pending_since: Optional[float] = None
        self.seen: list[float] = []  # times of the frames looked at since the last read
        self.reads = {"screen": 0, "scroll": 0}
        self.skipped = 0

    def _shift(self, ref: np.ndarray, cur: np.ndarray, mask: np.ndarray, full_ref: Optional[np.ndarray],
               full_cur: np.ndarray) -> Optional[tuple[int, int, int]]:
        """(dy, lo, hi) in full-resolution rows: rows lo..hi (those that changed; a fixed title bar or footer does
        not) moved up (dy > 0) or down (dy < 0) by dy, when cur is ref shifted there (what changed in place is
        explained by the shift); else None. Coarse search on the 1/4-scale pictures, then the exact shift on
        full-resolution rows (a scroll is rarely a multiple of 4 pixels)."""
        rows = np.flatnonzero(mask.any(1))
        if rows.size < 8 or full_ref is None or full_ref.shape != full_cur.shape:
            return None  # a few changed characters: an edit in place
        sc = self.scale
        lo, hi = int(rows[0]) * sc, min(full_cur.shape[0], (int(rows[-1]) + 1) * sc)
        rb, cb = full_ref[lo:hi], full_cur[lo:hi]
        h = hi - lo
        r, c = ref[lo // sc:hi // sc], cur[lo // sc:hi // sc]
        hc = r.shape[0]
        errs = []
        for dy in range(-(hc * 3) // 4, (hc * 3) // 4 + 1):
            if dy == 0:
                continue
            a = r[dy:] if dy > 0 else r[:dy]
            b = c[: hc - dy] if dy > 0 else c[-dy:]
            errs.append((float(np.abs(a - b).mean()), dy))
        cands = sorted({d for _, d0 in sorted(errs)[:6] for d in range(d0 * sc - sc + 1, d0 * sc + sc)} - {0})
        best = None
        for dy in cands:
            if abs(dy) >= h:
                continue
            a = rb[dy:] if dy > 0 else rb[:dy]
            b = cb[: h - dy] if dy > 0 else cb[-dy:]
            moved = float((np.abs(a - b) > self.pixel_threshold).mean())
            if best is None or moved < best[0]:
                best = (moved, dy, float(np.std(a)))
        if best is None:
            return None
        before = float((np.abs(rb - cb) > self.pixel_threshold).mean())
        if best[0] > 0.2 * before or best[2] < 1.0:  # what scrolls under a fixed bar is left unexplained
            return None
        return best[1], lo, hi

    @staticmethod
    def _blank_above(g: np.ndarray, y: int, limit: int) -> int:
        """The nearest row at or above y (at most `limit` rows up) with no ink: a gap between lines of text."""
        y = max(0, min(y, g.shape[0] - 1))
        ink = ink_rows(g)
        for yy in range(y, max(-1, y - limit - 1), -1):
            if not ink[yy]:
                return yy
        return max(0, y - limit)

    @staticmethod
    def _blank_below(g: np.ndarray, y: int, limit: int) -> int:
        """The nearest row at or below y (at most `limit` rows down) with no ink."""
        y = max(0, min(y, g.shape[0] - 1))
        ink = ink_rows(g)
        for yy in range(y, min(g.shape[0], y + limit + 1)):
            if not ink[yy]:
                return yy + 1
        return min(g.shape[0], y + limit)

    def decide(self, image: np.ndarray, t: float) -> Optional[Read]:
        g = grey_small(image, self.scale)
        H = int(np.asarray(image).shape[0])
        if self.ref is None or self.ref.shape != g.shape or self.last_t is None or t < self.last_t:
            return Read(0, H, "screen")
        self.seen.append(t)
        mask = np.abs(g - self.ref) > self.pixel_threshold
        if int(mask.sum()) < self.min_changed_px:
            self.pending_since = None
            return None
        if self.pending_since is None:
            self.pending_since = t
        wait = max(self.min_interval_s, self.backoff)
        if t - self.last_t < wait - 1e-6:
            self.skipped += 1
            return None
        gf = rows_full(image)
        sh = self._shift(self.ref, g, mask, self.ref_full, gf)
        line = max(16, H // 12)  # how far a line cut at an edge can reach
        if sh is None:
            rows = np.flatnonzero(mask.any(1))
            lo, hi = int(rows[0]) * self.scale, (int(rows[-1]) + 1) * self.scale
            if rows.size >= 8:  # more than a line or two changed, not by a scroll: a new screen
                return Read(0, H, "screen")
            # an edit in place (a line added or changed): the rows around it, from blank row to blank row
            return Read(self._blank_above(gf, lo - 1, line), self._blank_below(gf, hi, line), "band")
        dy, lo, hi = sh
        if abs(dy) < self.scroll_rows * H and t - self.last_t < self.scroll_wait_s - 1e-6:
            self.skipped += 1  # less than a line of new text yet: wait for more (the shift accumulates)
            return None
        frames = tuple(self.seen)
        if dy > 0:  # content moved up: new text at the bottom of the moving part, from the first line not read
            y0 = self._blank_above(gf, hi - dy - line, line)  # a line above the old edge: read twice, kept once
            return Read(max(lo, y0), hi, "scroll", dy, self.last_t, frames, (lo, hi))
        return Read(lo, min(hi, self._blank_below(gf, lo - dy + line, line)), "scroll", dy, self.last_t, frames,
                    (lo, hi))

    def done(self, image: np.ndarray, t: float, read: Read, found_text: bool, new_lines: int = 99) -> None:
        """After a read: found_text, whether it found any; new_lines, how many lines were not on screen before.
        A screen that keeps changing without new text (camera footage; a moving picture beside a caption) is read
        less and less often: the wait doubles, up to max_backoff_s without text, up to 4 × min_interval_s with
        text."""
        self.ref = grey_small(image, self.scale)
        self.ref_full = rows_full(image)
        self.last_t = t
        self.pending_since = None
        self.seen = []
        self.reads[read.kind] = self.reads.get(read.kind, 0) + 1
        if read.kind == "screen":
            if not found_text:
                self.backoff = min(self.max_backoff_s, max(self.min_interval_s, 2 * self.backoff))
            elif new_lines < 2:
                self.backoff = min(4 * self.min_interval_s, max(self.min_interval_s, 2 * self.backoff))
            else:
                self.backoff = 0.0


def read_region(reader, image: np.ndarray, read: Read) -> list:
    """OCR the rows read.y0:read.y1 of image -> OcrLines (boxes in the frame's coordinates), top to bottom. A line
    that an edge of the region cuts (the row at that edge holds ink) is left out: the next read has all of it."""
    from .ocr import OcrLine

    a = np.asarray(image)
    H = a.shape[0]
    crop = a[read.y0:read.y1] if (read.y0, read.y1) != (0, H) else a
    lines = reader.read_lines(crop)
    ink = ink_rows(rows_full(crop))
    h = crop.shape[0]
    cut_top, cut_bottom = bool(ink[:2].any()), bool(ink[-2:].any())
    out = []
    for ln in lines:
        if (cut_bottom and ln.box[3] >= h - 0.3 * ln.height) or (cut_top and ln.box[1] <= 0.3 * ln.height):
            continue
        x_0, y_0, x_1, y_1 = ln.box
        out.append(OcrLine(ln.text, (x_0, y_0 + read.y0, x_1, y_1 + read.y0), ln.score))
    return out


def came_into_view(read: Read, box: Sequence[float], t: float, edge: Optional[int] = None) -> float:
    """When a line read at t in a scroll strip was first wholly on screen: the scroll is taken as steady since the
    last read (read.dy rows in t - read.since seconds); the answer is the first frame seen since then at which
    the line's far edge had passed the strip's edge the text comes in at. A whole-screen read: t itself."""
    if read.kind != "scroll" or not read.dy or read.since is None or t <= read.since:
        return t
    speed = abs(read.dy) / (t - read.since)  # rows per second
    room = (edge if edge is not None else read.y1) - box[3] if read.dy > 0 else box[1] - read.y0
    est = t - max(0.0, room) / speed
    return next((f for f in sorted(read.frames) + [t] if f >= est - 1e-6), t)
