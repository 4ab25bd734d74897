"""Text evidence for each clip in the lite profile: speech (ASR), slide text (OCR of changed keyframes), visual tags.

Extractors follow the pipeline's EvidenceExtractor protocol: __call__(clip, grid) -> {"asr"|"ocr"|"tags": str}.
ASR lags (it commits text at pauses), so it also implements stored(memory_id, clip) and late() -> [(id, evidence)],
which the pipeline uses to attach transcript text to memories already stored.
"""
from __future__ import annotations

import logging
from typing import Optional

from .text.words import is_heading

log = logging.getLogger("vigil.evidence")


class AsrEvidence:
    """Streams each clip's 16 kHz audio into a Transcriber; segments go to the memories they overlap."""

    def __init__(self, transcriber):
        self.asr = transcriber
        self._clips: list[tuple[int, float, float]] = []  # (memory id, t0, t1) of recent clips
        self._text: dict[int, list[str]] = {}
        self._segments: list = []  # recognized, not yet given to stored memories
        self.reason = ""
        self.audio_seconds = 0.0   # audio received
        self.segments = 0          # transcript segments committed

    def fresh(self) -> "AsrEvidence":
        """The extractor for another stream: the same speech model, no state."""
        return AsrEvidence(self.asr.fresh())

    def __call__(self, clip, grid) -> dict:
        if clip.audio is not None and clip.audio.size:
            self.audio_seconds += clip.audio.size / 16000
            self.asr.insert(clip.audio, clip.t0)
            # transcribe at the clips' pace, however the pipeline batches its commits: called once per batch,
            # the recognizer would see many seconds at once and commit one long segment stamped over all of them
            self._segments += self.asr.process()
        return {}

    def notes(self) -> list[str]:
        """Why the memories have no transcript, if they have none."""
        if self.audio_seconds == 0:
            return ["no audio track: memories have no transcript"]
        if self.segments == 0:
            return [f"no transcript: {self.asr.reason or 'no speech detected'}"]
        return []

    def stored(self, memory_id: int, clip) -> None:
        self._clips.append((memory_id, clip.t0, clip.t1))
        self._clips = self._clips[-600:]
        live = {mid for mid, _, _ in self._clips}
        if len(self._text) > 2 * len(live):  # bounded on endless streams
            self._text = {mid: v for mid, v in self._text.items() if mid in live}

    def _assign(self, segments) -> list[tuple[int, dict]]:
        touched = set()
        self.segments += sum(1 for seg in segments if seg.text.strip())
        for seg in segments:
            for mid, t0, t1 in self._clips:
                if seg.t1 > t0 and seg.t0 < t1 and seg.text.strip():
                    self._text.setdefault(mid, [])
                    if seg.text.strip() not in self._text[mid]:
                        self._text[mid].append(seg.text.strip())
                        touched.add(mid)
        self.reason = getattr(self.asr, "reason", "")
        return [(mid, {"asr": " ".join(self._text[mid])}) for mid in sorted(touched)]

    def late(self) -> list[tuple[int, dict]]:
        """Text recognized since the last call, for the memories stored by now (the pipeline calls this after
        `stored()` of every clip whose audio was given to __call__)."""
        segs, self._segments = self._segments, []
        return self._assign(segs)

    def finish(self) -> list[tuple[int, dict]]:
        segs, self._segments = self._segments, []
        return self._assign(segs + list(self.asr.finish()))


class OcrEvidence:
    """Every screen is read: a ScreenWatcher finds frames whose text changed (a new slide, also one of the same
    template; a scrolled document, of which only the revealed strip is read) at a bounded number of reads; repeated
    lines are kept once (OcrDeduper). Evidence is one line per text row, the screen's title (its first row) first,
    newline-separated, on the memory of the clip where the text first appeared (a read that had to wait for the
    rate limit hands its text to that earlier memory through `late()`).

    What the whole screen shows is kept across the strip reads (models.screenview.ScreenView): a scrolled line is
    stored under the heading above it on screen, the speech recognizer's context is the whole view, and every clip
    gets "screen" evidence: the title, the section the view starts in (its heading may have scrolled out) and the
    headings in view while the clip was shown (what the speech then is about; the ask path's evidence["screen"])."""

    def __init__(self, reader, gate=None, deduper=None):
        from .ocr import OcrDeduper
        from .screen import ScreenWatcher
        from .screenview import ScreenView

        self.reader = reader
        self.gate = gate or ScreenWatcher()
        self.dedup = deduper or OcrDeduper()
        self.calls = 0
        self._clips: list[tuple[int, float, float]] = []  # (memory id, t0, t1) of recent clips
        self._text: dict[int, list[str]] = {}              # what this extractor gave each recent memory
        self._late: list[tuple[float, list[str]]] = []     # (first seen, lines) for a memory already stored
        self.heading = ""                                  # the last section heading read (documents)
        self.view = ScreenView()                           # the lines on screen now, with their sections
        self.screens: list[tuple] = []                     # (since, body, headings, sectioned) of the view at reads
        self._given: dict[float, list[str]] = {}           # clip t0 -> lines given to it, until it is stored
        self._seen_clips: list[tuple[float, float]] = []   # (t0, t1) of recent clips, stored or not yet
        self._last_lines: list[tuple[str, float]] = []     # (text, top row) of the lines the last read found
        self._title_rows: tuple[float, float] = (0.0, -1.0)  # rows of the screen's title at the last whole read
        self.names: list[str] = []                         # names read on screen so far, the latest last (bounded)

    def fresh(self) -> "OcrEvidence":
        """The extractor for another stream: the same OCR reader, a new gate and deduper."""
        return OcrEvidence(self.reader)

    def _read(self, frame) -> list[tuple[float, list[str]]]:
        """The lines a frame brings that were not read before, in groups stamped with when they came into view."""
        from .ocr import screen_names
        from .screen import Read, read_region

        read = self.gate.decide(frame.image, frame.t)
        if read is None:
            return []
        if read.kind == "band" and read.y0 <= self._title_rows[1] and read.y1 >= self._title_rows[0]:
            read = Read(0, int(frame.image.shape[0]), "screen")  # the title changed: a new slide
        since = self.gate.pending_since if self.gate.pending_since is not None else frame.t
        boxed = hasattr(self.reader, "read_lines")
        found = read_region(self.reader, frame.image, read) if boxed else None
        lines = [ln.text for ln in found] if boxed else _plain_read(self.reader, frame.image, read)
        self.calls += 1
        last, self._last_lines = self._last_lines, [(ln.text, ln.box[1]) for ln in found or []]
        placed = found if found is not None else _rows_of(lines, read)
        sections: list[str] = []
        if read.kind == "screen":
            self.view.whole(placed)
        elif read.kind == "scroll":
            sections = self.view.scrolled(read, placed)
        else:
            sections = self.view.edited(read, placed)
        if self.view.lines:  # also a strip that found nothing new: the rest of the view moved
            self.screens = (self.screens + [(since, self.view.body(), self.view.headings(),
                                             self.view.sectioned())])[-32:]
        if lines:
            new = screen_names(lines)
            self.names = ([n for n in self.names if n not in new] + new)[-64:]
        if read.kind != "screen":
            return self._scrolled(frame, read, since, lines, found, last, dict(zip(lines, sections)))
        if found:
            self._title_rows = (found[0].box[1], found[0].box[3])
        fresh = self.dedup.update(lines)
        self.gate.done(frame.image, frame.t, read, bool(lines), new_lines=len(fresh))
        heads = [ln for ln in lines[1:] if is_heading(ln)]
        self.heading = heads[-1] if heads else ""
        if fresh and lines and lines[0] not in fresh:
            fresh = [lines[0]] + fresh  # keep the slide's title first: it names the section and the topic
        return [(since, fresh)] if fresh else []

    def _read_before(self, line, dy: int, last: list[tuple[str, float]]) -> bool:
        """Whether the last read had this line where the scroll (dy rows up) has taken it: the same words at
        the same place, within half a line."""
        n = _norm(line.text)
        for text, top in last:
            if abs(top - dy - line.box[1]) < 0.5 * line.height and self.dedup._seen(line.text, [_norm(text)]):
                return True
        return not n

    def _scrolled(self, frame, read, since: float, lines: list[str], found, last,
                  sections: dict[str, str]) -> list[tuple[float, list[str]]]:
        """A scroll strip: a line is new unless the last read had it where the scroll took it, so a line whose
        words stand elsewhere in the document too ("Status: done" under two headings) is read again there; each
        line is stamped when it came into view. A band (an edit in place): the lines not on screen before, from
        when the change was seen. Each group keeps the screen's title and the document section it is in first
        (`sections`: each line's, from the view: the heading above it on screen, also one that scrolled out)."""
        from .screen import came_into_view

        self.gate.done(frame.image, frame.t, read, bool(lines))
        if found is None or read.kind == "band":  # no positions, or an edit in place: the lines not read before
            pool = [_norm(p) for p in self.dedup.prev]
            lines = [ln for ln in lines if not self.dedup._seen(ln, pool)]
            stamps = [since if read.kind == "band" else frame.t] * len(lines)
        else:
            found = [ln for ln in found if not self._read_before(ln, read.dy, last)]
            lines = [ln.text for ln in found]
            stamps = [came_into_view(read, ln.box, frame.t) for ln in found]
        self.dedup.prev = (self.dedup.prev + lines)[-40:]  # about a screenful, for a whole-screen read to come
        groups: list[tuple[float, list[str]]] = []
        for ln, t in zip(lines, stamps):
            section = sections.get(ln, self.heading)
            if groups and groups[-1][0] == t and (is_heading(ln) or section in groups[-1][1]):
                groups[-1][1].append(ln)
            else:
                head = [] if is_heading(ln) or not section else [section]
                groups.append((t, head + [ln]))
            if is_heading(ln):
                self.heading = ln
        title = self.dedup.title
        return [(t, ([title] if title and title not in g else []) + g) for t, g in groups]

    def names_seen(self) -> list[str]:
        """The names read on screen in this stream so far, the most recent last (at most 64)."""
        return list(self.names)

    def screen_text(self, t0: float, t1: float) -> str:
        """The text on screen during [t0, t1] (the view at the last read at or before t0 and at every read after it
        up to t1): a slide's title then its lines; of a document, its title and the headings of the sections in
        view (the section the view starts in first, though its heading scrolled out), each once: they name what
        is talked about, while a screenful of lines would make a long prompt that costs the recognizer time (the
        names in the lines reach it as hotwords, `names_seen`)."""
        reads = list(self.screens)
        views = [v for t, *v in reads if t <= t0][-1:] + [v for t, *v in reads if t0 < t <= t1]
        if any(doc for _, _, doc in views):
            return "\n".join(dict.fromkeys(h for _, hs, _ in views for h in hs))
        return "\n".join(ln for b, hs, _ in views for ln in hs + b)

    def __call__(self, clip, grid) -> dict:
        new: list[str] = []
        self._seen_clips = (self._seen_clips + [(clip.t0, clip.t1)])[-64:]
        shown: list[str] = [] if clip.frames else self.view.headings()  # the view at each frame, once read
        for frame in clip.frames:
            for since, fresh in self._read(frame):
                if since < clip.t0 - 1e-6 and any(t0 <= since < t1 for t0, t1 in self._seen_clips):
                    self._late.append((since, fresh))  # appeared in an earlier clip: stamp it from there
                    continue
                new += [x for x in fresh if x not in new]
            shown += [h for h in self.view.headings() if h not in shown]
        out = {"screen": "\n".join(shown)} if shown else {}
        if new:  # per clip: the pipeline extracts a whole batch of clips before it stores them
            self._given[clip.t0] = new
            out["ocr"] = "\n".join(new)
        return out

    def stored(self, memory_id: int, clip) -> None:
        self._clips = (self._clips + [(memory_id, clip.t0, clip.t1)])[-64:]
        given = self._given.pop(clip.t0, None)
        self._given = {t: v for t, v in self._given.items() if t > clip.t0 - 600}  # clips never stored (bounded)
        if given:  # what late() adds to this memory joins these lines, never replaces them
            self._text[memory_id] = list(given)

    def late(self) -> list[tuple[int, dict]]:
        """Lines that came into view in a clip stored before they were read, for that memory; a line whose clip
        is not stored yet (the pipeline stores a batch of clips at a time) waits for the next call."""
        out: dict[int, list[str]] = {}
        waiting = []
        last = self._clips[-1][2] if self._clips else float("-inf")
        for since, lines in self._late:
            mid = next((m for m, t0, t1 in self._clips if t0 <= since < t1), None)
            if mid is None:
                if since >= last - 1e-6:
                    waiting.append((since, lines))
                continue
            have = self._text.setdefault(mid, [])
            have += [x for x in lines if x not in have]
            out[mid] = have
        self._late = waiting
        live = {m for m, _, _ in self._clips}
        self._text = {m: v for m, v in self._text.items() if m in live}
        return [(mid, {"ocr": "\n".join(v)}) for mid, v in out.items()]


def _plain_read(reader, image, read) -> list[str]:
    """A reader that gives text only (no boxes): the rows read, as they are."""
    import numpy as np

    a = np.asarray(image)
    return reader.read(a[read.y0:read.y1] if (read.y0, read.y1) != (0, a.shape[0]) else a)


def _rows_of(lines: list[str], read) -> list:
    """A reader's lines without boxes, placed one under another over the rows read (for the screen view)."""
    from .ocr import OcrLine

    step = (read.y1 - read.y0) / max(1, len(lines))
    return [OcrLine(x, (0.0, read.y0 + i * step, 1.0, read.y0 + (i + 0.8) * step), 1.0) for i, x in enumerate(lines)]


def _norm(s: str) -> str:
    from .ocr import _norm_line

    return _norm_line(s)


class TagEvidence:
    """ImageNet top labels of the encoder's classifier (EfficientNet-Lite0 keeps its last logits), only those at
    least `min_prob` sure (models.tags.MIN_TAG_PROB, calibrated): otherwise the memory has no tags."""

    def __init__(self, encoder, k: int = 3, min_prob: Optional[float] = None):
        from .tags import MIN_TAG_PROB

        self.encoder = encoder
        self.k = k
        self.min_prob = MIN_TAG_PROB if min_prob is None else min_prob

    def fresh(self) -> "TagEvidence":
        return TagEvidence(self.encoder, self.k, self.min_prob)

    def __call__(self, clip, grid) -> dict:
        from .tags import tags_text, top_tags

        logits = grid.logits if (grid is not None and clip.frames) else None  # the clip's own (no picture, no tags)
        tags = top_tags(logits, k=self.k, min_prob=self.min_prob) if logits is not None else []
        return {"tags": tags_text(tags)} if tags else {}


def link(extractors: list) -> list:
    """Connect one stream's extractors: the speech model is prompted with the OCR's words on screen and the
    names read on screen earlier in the stream."""
    ocr = next((e for e in extractors if isinstance(e, OcrEvidence)), None)
    for e in extractors:
        if isinstance(e, AsrEvidence) and ocr is not None:
            e.asr.context = ocr.screen_text
            e.asr.vocabulary = ocr.names_seen
    return extractors


def fresh_evidence(extractors: list) -> list:
    """The extractors for another stream: fresh state around the same loaded models, linked to each other."""
    return link([e.fresh() if hasattr(e, "fresh") else e for e in extractors])


def lite_evidence(encoder, asr: bool = True, ocr: bool = True, tags: bool = True) -> list:
    """The lite profile's extractors; a part that cannot load is skipped with a warning, never fatal."""
    out: list = []
    if tags:
        out.append(TagEvidence(encoder))
    if ocr:
        try:
            from .ocr import SlideReader

            out.append(OcrEvidence(SlideReader()))
        except Exception as e:  # noqa: BLE001
            log.warning("OCR disabled: %s", e)
    if asr:
        try:
            from .asr import Transcriber

            out.append(AsrEvidence(Transcriber()))
        except Exception as e:  # noqa: BLE001
            log.warning("speech recognition disabled: %s", e)
    return link(out)
