"""On-screen text from keyframes with RapidOCR (PP-OCRv4 ONNX models bundled in rapidocr-onnxruntime).

- SlideReader.read(rgb) -> lines top-to-bottom (boxes on one row joined left-to-right).
- OcrGate decides whether a frame needs OCR: only when the picture changed (the reducers' temporal-redundancy
  signal, passed as Clip.keyframe), with a cheap thumbnail-difference fallback when no flag is given and a
  periodic refresh so slowly built-up slides are not missed.
- OcrDeduper returns only the lines that are new compared with the previous slide (fuzzy match that tolerates
  OCR typos but never a changed number), and keeps the current slide title.
- ScreenWatcher decides what of a frame to read: nothing (the text did not change), the strip a scroll revealed,
  or the whole screen (a new slide, even one of the same template: it compares a 1/4-scale grey picture with the
  last one read, pixel by pixel, so a changed line of text trips it where a whole-picture mean would not).
"""
from __future__ import annotations

import difflib
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models.base import ModelError  # noqa: E402

log = logging.getLogger(__name__)


@dataclass
class OcrLine:
    text: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    score: float

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


class SlideReader:
    """RapidOCR with settings for slides: detector input limited to `max_side` px on the long side, no angle
    classifier (slides are upright), lines below `min_score` dropped."""

    def __init__(self, max_side: int = 960, min_score: float = 0.5, threads: int = 0):
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as e:  # pragma: no cover
            raise ModelError("OCR package missing: pip install rapidocr-onnxruntime") from e
        kw = dict(use_cls=False, det_limit_side_len=max_side, det_limit_type="max", print_verbose=False)
        if threads:
            kw.update(intra_op_num_threads=threads)
        try:
            self.engine = RapidOCR(**kw)
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"could not load the OCR models: {e}".splitlines()[0]) from e
        self.min_score = min_score
        self.reason = ""
        self.calls = 0
        self.seconds = 0.0
        self._lock = threading.Lock()  # onnxruntime sessions are thread-safe, but keep stats consistent

    def read_lines(self, rgb: np.ndarray) -> list[OcrLine]:
        """OCR one RGB uint8 image -> rows of text, top to bottom. Never raises on bad input."""
        img = _as_rgb(rgb)
        if img is None:
            self.reason = "not an image"
            return []
        start = time.perf_counter()
        try:
            res, _ = self.engine(img[:, :, ::-1].copy(), use_cls=False)  # RapidOCR takes BGR like cv2
        except Exception as e:  # noqa: BLE001
            self.reason = f"OCR failed: {e}".splitlines()[0]
            log.warning("ocr failed: %s", e)
            return []
        finally:
            with self._lock:
                self.calls += 1
                self.seconds += time.perf_counter() - start
        boxes = []
        for box, text, score in res or []:
            text = str(text).strip()
            if not text or float(score) < self.min_score:
                continue
            pts = np.asarray(box, dtype=np.float32)
            boxes.append(OcrLine(text, (float(pts[:, 0].min()), float(pts[:, 1].min()),
                                        float(pts[:, 0].max()), float(pts[:, 1].max())), float(score)))
        self.reason = "" if boxes else "no text found"
        return _rows(boxes)

    def read(self, rgb: np.ndarray) -> list[str]:
        """OCR one RGB uint8 image -> text lines ordered top-to-bottom."""
        return [ln.text for ln in self.read_lines(rgb)]

    @property
    def seconds_per_call(self) -> float:
        return self.seconds / self.calls if self.calls else 0.0


def _as_rgb(rgb) -> Optional[np.ndarray]:
    try:
        a = np.asarray(rgb)
    except Exception:  # noqa: BLE001
        return None
    if a.ndim == 2:
        a = np.stack([a] * 3, -1)
    if a.ndim != 3 or a.shape[0] < 8 or a.shape[1] < 8 or a.shape[2] not in (3, 4):
        return None
    a = a[:, :, :3]
    if a.dtype != np.uint8:
        a = np.clip(a * (255 if a.dtype.kind == "f" and a.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a)


def _rows(lines: list[OcrLine]) -> list[OcrLine]:
    """Group boxes whose vertical centres are within half a line height into rows; join each row left-to-right."""
    lines = sorted(lines, key=lambda b: (b.box[1] + b.box[3]) / 2)
    rows: list[list[OcrLine]] = []
    for b in lines:
        cy = (b.box[1] + b.box[3]) / 2
        if rows:
            last = rows[-1]
            lcy = np.mean([(x.box[1] + x.box[3]) / 2 for x in last])
            if abs(cy - lcy) < 0.5 * min(b.height, np.mean([x.height for x in last])):
                last.append(b)
                continue
        rows.append([b])
    out = []
    for r in rows:
        r.sort(key=lambda b: b.box[0])
        out.append(OcrLine(" ".join(b.text for b in r),
                           (min(b.box[0] for b in r), min(b.box[1] for b in r), max(b.box[2] for b in r),
                            max(b.box[3] for b in r)), float(min(b.score for b in r))))
    return out


def title_of(lines: Sequence[OcrLine], image_height: Optional[float] = None) -> str:
    """The slide title: the tallest row in the top 35% of the picture (else the first row)."""
    if not lines:
        return ""
    h = image_height or max(ln.box[3] for ln in lines)
    top = [ln for ln in lines if ln.box[1] < 0.35 * h] or list(lines[:1])
    return max(top, key=lambda ln: ln.height).text


class OcrGate:
    """Whether a frame needs OCR.

    needs_ocr(t, changed=flag)   changed: the keyframe flag from the reducers' redundancy signal (Clip.keyframe).
    needs_ocr(t, image=rgb)      no flag: compare a 32×18 grey thumbnail with the last OCR'd frame.
    A frame is also OCR'd when `refresh_s` passed since the last OCR (slides built up bullet by bullet).
    Call `done(t, image)` after running OCR.
    """

    def __init__(self, refresh_s: float = 30.0, diff_threshold: float = 6.0):
        self.refresh_s = refresh_s
        self.diff_threshold = diff_threshold
        self.last_t: Optional[float] = None
        self._thumb: Optional[np.ndarray] = None
        self.skipped = 0
        self.ran = 0

    @staticmethod
    def _thumbnail(rgb: np.ndarray) -> np.ndarray:
        a = np.asarray(rgb, dtype=np.float32)
        if a.ndim == 3:
            a = a[..., :3].mean(-1)
        H, W = a.shape
        ys = (np.arange(18) * H / 18).astype(int)
        xs = (np.arange(32) * W / 32).astype(int)
        return a[np.ix_(ys, xs)]

    def needs_ocr(self, t: float, changed: Optional[bool] = None, image: Optional[np.ndarray] = None) -> bool:
        if self.last_t is None or t - self.last_t >= self.refresh_s or t < self.last_t:
            go = True
        elif changed is not None:
            go = bool(changed)
        elif image is not None and self._thumb is not None:
            go = float(np.abs(self._thumbnail(image) - self._thumb).mean()) > self.diff_threshold
        else:
            go = image is not None
        if not go:
            self.skipped += 1
        return go

    def done(self, t: float, image: Optional[np.ndarray] = None) -> None:
        self.ran += 1
        self.last_t = t
        if image is not None:
            self._thumb = self._thumbnail(image)


def _norm_line(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", s.lower()).strip()


class OcrDeduper:
    """Keeps the previous slide's lines; `update(lines)` returns only lines not on it (fuzzy, ratio ≥ `sim`).

    `title` is the first line of the latest slide whose text changed; `title_changed` says whether the last
    update brought a new title (a section boundary for summaries)."""

    def __init__(self, sim: float = 0.85):
        self.sim = sim
        self.prev: list[str] = []
        self.title = ""
        self.title_changed = False

    def _seen(self, line: str, pool: Sequence[str]) -> bool:
        n = _norm_line(line)
        if not n:
            return True
        digits = re.findall(r"\d+", n)
        for p in pool:
            if n == p:
                return True
            # fuzzy only when the numbers agree: "Engineers: 72" is new after "Engineers: 67"
            if re.findall(r"\d+", p) == digits and difflib.SequenceMatcher(None, n, p).ratio() >= self.sim:
                return True
        return False

    def update(self, lines: Sequence[str]) -> list[str]:
        pool = [_norm_line(p) for p in self.prev]
        new = [ln for ln in lines if not self._seen(ln, pool)]
        self.title_changed = False
        if lines:
            t = lines[0]
            if not self.title or not self._seen(t, [_norm_line(self.title)]):
                self.title_changed = True
                self.title = t
            self.prev = list(lines)
        return new

    def reset(self) -> None:
        self.prev, self.title, self.title_changed = [], "", False


def _grey_small(rgb: np.ndarray, scale: int = 4) -> np.ndarray:
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


@dataclass
class Read:
    """What to OCR in a frame: region (y0, y1) in full-resolution rows (the whole frame for a new screen), why."""

    y0: int
    y1: int
    kind: str  # "screen" | "scroll"


class ScreenWatcher:
    """Which part of a frame shows text not read yet.

    decide(image, t) -> Read or None. Compares a 1/4-scale grey picture with the last one read: fewer than
    `min_changed_px` pixels that moved by more than `pixel_threshold` grey levels is the same screen (video noise,
    a cursor). A change that is the old picture shifted up or down is a scroll: only the revealed strip is read
    (from the blank row above it, so no line is cut). Anything else is a new screen, read whole.
    Cost stays bounded: at most one read per `min_interval_s` (a change waits; the next read covers it), and a
    screen where the last read found no text (camera footage) is re-read only after a back-off that doubles up to
    `max_backoff_s`. `pending_since` is when the change now waiting was first seen, so its text can be stamped from
    the moment it appeared. Call `done(image, t, found_text)` after reading.
    """

    def __init__(self, scale: int = 4, pixel_threshold: float = 24.0, min_changed_px: int = 12,
                 min_interval_s: float = 2.0, max_backoff_s: float = 30.0, scroll_residual: float = 4.0):
        self.scale = scale
        self.pixel_threshold = pixel_threshold
        self.min_changed_px = min_changed_px
        self.min_interval_s = min_interval_s
        self.max_backoff_s = max_backoff_s
        self.scroll_residual = scroll_residual
        self.ref: Optional[np.ndarray] = None
        self.ref_full: Optional[np.ndarray] = None  # full-resolution rows, every 4th column: sub-cell shifts
        self.last_t: Optional[float] = None
        self.backoff = 0.0
        self.pending_since: Optional[float] = None
        self.reads = {"screen": 0, "scroll": 0}
        self.skipped = 0

    @staticmethod
    def _rows_full(rgb: np.ndarray) -> np.ndarray:
        a = np.asarray(rgb)[:, ::4]
        return (a[..., :3].astype(np.float32).mean(-1) if a.ndim == 3 else a.astype(np.float32))

    def _shift(self, ref: np.ndarray, cur: np.ndarray, mask: np.ndarray, full_ref: Optional[np.ndarray],
               full_cur: np.ndarray) -> Optional[tuple[int, int, int]]:
        """(dy, lo, hi) in full-resolution rows: rows lo..hi (those that changed; a fixed title bar or footer does
        not) moved up (dy > 0) or down (dy < 0) by dy, when cur is ref shifted there (what changed in place is
        explained by the shift); else None. Coarse search on the 1/4-scale pictures, then the exact shift on
        full-resolution rows (a scroll is rarely a multiple of 4 pixels)."""
        rows = np.flatnonzero(mask.any(1))
        changed = int(mask.sum())
        if changed < 0.01 * ref.size or rows.size < 8 or full_ref is None or full_ref.shape != full_cur.shape:
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
        if best[0] > 0.1 * before or best[2] < 1.0:
            return None
        return best[1], lo, hi

    @staticmethod
    def _blank_above(g: np.ndarray, y: int, limit: int) -> int:
        """The nearest row at or above y (at most `limit` rows up) with no ink: a gap between lines of text."""
        y = max(0, y)
        rows = g.max(1) - g.min(1)
        for yy in range(min(y, g.shape[0] - 1), max(-1, y - limit - 1), -1):
            if rows[yy] < 12:
                return yy
        return max(0, y - limit)

    def decide(self, image: np.ndarray, t: float) -> Optional[Read]:
        g = _grey_small(image, self.scale)
        H = int(np.asarray(image).shape[0])
        if self.ref is None or self.ref.shape != g.shape or self.last_t is None or t < self.last_t:
            return Read(0, H, "screen")
        if int((np.abs(g - self.ref) > self.pixel_threshold).sum()) < self.min_changed_px:
            self.pending_since = None
            return None
        if self.pending_since is None:
            self.pending_since = t
        wait = max(self.min_interval_s, self.backoff)
        if t - self.last_t < wait - 1e-6:
            self.skipped += 1
            return None
        mask = np.abs(g - self.ref) > self.pixel_threshold
        sh = self._shift(self.ref, g, mask, self.ref_full, self._rows_full(image))
        if sh is not None:
            dy, lo, hi = sh
            if abs(dy) < H // 15 and t - self.last_t < 3 * self.min_interval_s - 1e-6:
                self.skipped += 1  # less than a line of new text yet: wait for more (the shift accumulates)
                return None
            line = max(16, H // 12)  # room for a line that was cut at the edge the last time
            gf = self._rows_full(image)
            if dy > 0:  # content moved up: new rows at the bottom of the moving part
                y0 = self._blank_above(gf, hi - dy - line, line)
                return Read(y0, H if hi >= H - 4 else hi, "scroll")
            return Read(lo, min(hi, lo - dy + line), "scroll")
        return Read(0, H, "screen")

    def done(self, image: np.ndarray, t: float, read: Read, found_text: bool, new_lines: int = 99) -> None:
        """After a read: found_text, whether it found any; new_lines, how many lines were not on screen before.
        A screen that keeps changing without new text (camera footage; a moving picture beside a caption) is read
        less and less often: the wait doubles, up to max_backoff_s without text, up to 4 × min_interval_s with
        text."""
        self.ref = _grey_small(image, self.scale)
        self.ref_full = self._rows_full(image)
        self.last_t = t
        self.pending_since = None
        self.reads[read.kind] = self.reads.get(read.kind, 0) + 1
        if read.kind == "screen":
            if not found_text:
                self.backoff = min(self.max_backoff_s, max(self.min_interval_s, 2 * self.backoff))
            elif new_lines < 2:
                self.backoff = min(4 * self.min_interval_s, max(self.min_interval_s, 2 * self.backoff))
            else:
                self.backoff = 0.0


def crop_lines(reader, image: np.ndarray, read: Read) -> list[str]:
    """OCR the rows read.y0:read.y1 of image; a line cut by the bottom of the frame is left for the next read."""
    a = np.asarray(image)
    crop = a[read.y0:read.y1] if (read.y0, read.y1) != (0, a.shape[0]) else a
    if not hasattr(reader, "read_lines"):
        return reader.read(crop)
    lines = reader.read_lines(crop)
    h = crop.shape[0]
    cut_top = read.y0 == 0   # a frame edge can cut a line in half; a strip's own edge is on a blank row
    cut_bottom = read.y1 >= a.shape[0]
    return [ln.text for ln in lines if not ((cut_bottom and ln.box[3] >= h - 2) or (cut_top and ln.box[1] <= 1))]
