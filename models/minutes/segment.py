"""Where minutes' sections start: slide changes, a scrolled document's headings, and shifts of topic in speech.

- Slides: the first OCR line of a memory is its slide's title; a new title (beyond OCR typos) starts a section.
- Window chrome: a first line that stays the same on most memories with text (a window or app title over a shared
  document) is no slide title; the section titles are then the heading-like lines under it (`is_heading`: short,
  title-cased, standalone), each starting a section where it appears, in reading order.
- Speech without slides: embedding change points (TextTiling's depth scores over the bundled MiniLM): the
  similarity of the window_s of transcript before each clip to the window_s after it; a clip whose similarity
  lies deep below the peaks on both sides (depth above mean - std/2 of all depths, and similarity below
  shift_threshold) starts a section, at least min_len_s after the last one.
"""
from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from models.base import MemoryView
from models.text.words import is_heading, ocr_lines, words

log = logging.getLogger(__name__)


@dataclass
class _Item:
    t0: float
    t1: float
    asr: str
    ocr: list[str]
    title: str


def _same_title(a: str, b: str) -> bool:
    """Equal up to OCR typos; titles whose numbers differ ("Q1 Review" / "Q2 Review") are different."""
    na, nb = " ".join(words(a)), " ".join(words(b))
    if na == nb:
        return True
    return re.findall(r"\d+", na) == re.findall(r"\d+", nb) and difflib.SequenceMatcher(None, na, nb).ratio() >= 0.8


def _chrome(firsts: Sequence[str], share: float = 0.8, min_items: int = 3) -> str:
    """The first OCR line that stays on screen throughout (a window title), or ''."""
    if len(firsts) < min_items:
        return ""
    top = max(set(firsts), key=firsts.count)
    return top if sum(_same_title(f, top) for f in firsts) >= share * len(firsts) else ""


def _split_headings(it: _Item, chrome: str) -> list[_Item]:
    """A memory under window chrome as one item per document heading it shows (same times): lines before the first
    heading continue the section on screen (title ''); its speech goes with the first part."""
    base = [chrome] if chrome else []
    lines = it.ocr[1:] if it.ocr and _same_title(it.ocr[0], chrome) else it.ocr
    parts = [_Item(it.t0, it.t1, "", list(base), "")]
    for ln in lines:
        if is_heading(ln):
            parts.append(_Item(it.t0, it.t1, "", base + [ln], ln))
        else:
            parts[-1].ocr.append(ln)
    if len(parts) > 1 and len(parts[0].ocr) == len(base):  # nothing before the first heading
        parts = parts[1:]
    parts[0].asr = it.asr
    return parts


def _items(memories: Sequence[MemoryView]) -> list[_Item]:
    items = []
    for m in sorted(memories, key=lambda m: (m.t0, m.t1)):
        ev = m.evidence or {}
        lines = ocr_lines(ev.get("ocr") or "")
        asr = ev.get("asr") or ""
        if isinstance(asr, (list, tuple)):
            asr = " ".join(map(str, asr))
        items.append(_Item(m.t0, m.t1, str(asr).strip(), lines, lines[0] if lines else ""))
    chrome = _chrome([it.ocr[0] for it in items if it.ocr])
    if not chrome or not any(is_heading(ln) for it in items for ln in it.ocr[1:]):
        return items
    return [p for it in items for p in (_split_headings(it, chrome) if it.ocr else [it])]


def _topic_shifts(items: list[_Item], embedder, window_s: float, threshold: float) -> set[int]:
    """Indices of items where the transcript's topic shifts (see the module doc)."""
    if embedder is None:
        return set()
    spoken = [i for i, it in enumerate(items) if it.asr]
    if len(spoken) < 4:
        return set()
    cand, texts_l, texts_r = [], [], []
    first, last = items[spoken[0]].t0, items[spoken[-1]].t1
    for j in spoken:
        t = items[j].t0
        if t - window_s < first or t + window_s > last:  # a window cut short by either end compares too little
            continue
        left = " ".join(dict.fromkeys(items[i].asr for i in spoken if t - window_s <= items[i].t0 < t))
        right = " ".join(dict.fromkeys(items[i].asr for i in spoken if t <= items[i].t0 < t + window_s))
        if left and right:
            cand.append(j)
            texts_l.append(left)
            texts_r.append(right)
    if len(cand) < 3:
        return set()
    try:
        vl = np.asarray(embedder.encode(texts_l))
        vr = np.asarray(embedder.encode(texts_r))
    except Exception as e:  # noqa: BLE001
        log.warning("embedder failed in summarize: %s", e)
        return set()
    sims = np.sum(vl * vr, axis=1)
    depth = np.zeros_like(sims)
    for k in range(len(sims)):  # TextTiling's depth: how far below the highest similarity on either side
        depth[k] = sims[: k + 1].max() - sims[k] + sims[k:].max() - sims[k]
    cut = depth.mean() - depth.std() / 2
    out = set()
    for k, j in enumerate(cand):
        lo = sims[max(0, k - 2): k + 3].min()
        if sims[k] < threshold and depth[k] > cut and sims[k] <= lo + 1e-6:
            out.add(j)
    return out


_JOINED = re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)+\b")


def _respace(title: str, vocab: set[str]) -> str:
    """Words OCR ran together ("FalconBudget Review") apart again when each part is a word of the meeting's
    evidence elsewhere ("Falcon", "budget" were said)."""
    def split(m: re.Match) -> str:
        parts = re.findall(r"[A-Z][a-z]+", m.group(0))
        return " ".join(parts) if all(p.lower() in vocab for p in parts) else m.group(0)

    return _JOINED.sub(split, title)


def _best_title(variants: Sequence[str], vocab: set[str]) -> str:
    """Of one title's OCR variants, the one with the most words (OCR drops spaces far more often than it adds),
    with run-together words apart again (`_respace`)."""
    if not variants:
        return ""
    return _respace(max(variants, key=lambda v: (len(v.split()), -variants.index(v))), vocab)


def segment_sections(memories: Sequence[MemoryView], embedder=None, max_len_s: float = 600.0,
                     shift_threshold: float = 0.4, window_s: Optional[float] = None,
                     min_topic_s: Optional[float] = None) -> list[tuple[str, list[_Item]]]:
    """Split memories (time order) into (title, items) sections at slide changes, a document's headings, topic
    shifts in speech and max_len_s. A slide title counts as changed when it differs beyond OCR typos.
    Topic shifts compare windows of window_s (default: a fifteenth of the recording, 8 to 45 s) and keep sections
    of at least min_topic_s (default: two windows), so a 2-minute talk can have 20-s topics and an hour-long
    meeting is not cut every few sentences. Set on the dev split's speaker-only meeting (20-s topics: all 5
    changes found within 5 s; windows of 45 s found none, windows of 20 s 1-4)."""
    items = _items(memories)
    if not items:
        return []
    span = items[-1].t1 - items[0].t0
    window_s = window_s if window_s is not None else min(45.0, max(8.0, span / 15))
    min_topic_s = min_topic_s if min_topic_s is not None else 2 * window_s
    vocab = {w.lower() for it in items for w in re.findall(r"[A-Za-z]+", " ".join([it.asr] + it.ocr))}
    has_slides = any(it.title for it in items)
    shifts = _topic_shifts(items, embedder, window_s=window_s, threshold=shift_threshold) if not has_slides \
        else set()
    sections: list[tuple[str, list[_Item]]] = []
    cur: list[_Item] = []
    variants: list[str] = []
    for i, it in enumerate(items):
        boundary, new_title = False, None
        if it.title and not (variants and _same_title(it.title, variants[0])):
            boundary, new_title = bool(cur), it.title
        elif cur and i in shifts and it.t0 - cur[0].t0 >= min_topic_s:
            boundary, new_title = True, ""
        elif cur and it.t1 - cur[0].t0 > max_len_s:
            boundary = True
        if boundary and cur:
            sections.append((_best_title(variants, vocab), cur))
            cur = []
            variants = [] if new_title is not None else variants
        if new_title:
            variants = [new_title]
        elif it.title and variants and _same_title(it.title, variants[0]) and it.title not in variants:
            variants.append(it.title)
        cur.append(it)
    if cur:
        sections.append((_best_title(variants, vocab), cur))
    return sections
