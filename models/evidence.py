"""Text evidence for each clip in the lite profile: speech (ASR), slide text (OCR of changed keyframes), visual tags.

Extractors follow the pipeline's EvidenceExtractor protocol: __call__(clip, grid) -> {"asr"|"ocr"|"tags": str}.
ASR lags (it commits text at pauses), so it also implements stored(memory_id, clip) and late() -> [(id, evidence)],
which the pipeline uses to attach transcript text to memories already stored.
"""
from __future__ import annotations

import logging

log = logging.getLogger("vigil.evidence")


class AsrEvidence:
    """Streams each clip's 16 kHz audio into a Transcriber; segments go to the memories they overlap."""

    def __init__(self, transcriber):
        self.asr = transcriber
        self._clips: list[tuple[int, float, float]] = []  # (memory id, t0, t1) of recent clips
        self._text: dict[int, list[str]] = {}
        self.reason = ""
        self.audio_seconds = 0.0   # audio received
        self.segments = 0          # transcript segments committed

    def __call__(self, clip, grid) -> dict:
        if clip.audio is not None and clip.audio.size:
            self.audio_seconds += clip.audio.size / 16000
            self.asr.insert(clip.audio, clip.t0)
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
        return self._assign(self.asr.process())

    def finish(self) -> list[tuple[int, dict]]:
        return self._assign(self.asr.finish())


class OcrEvidence:
    """OCR only frames whose picture changed (the clip's keyframe flags + a pixel gate); repeated slide text is kept
    once. Evidence is one line per text row, the slide's title (its first row) first, newline-separated."""

    def __init__(self, reader, gate=None, deduper=None):
        from .ocr import OcrDeduper, OcrGate

        self.reader = reader
        self.gate = gate or OcrGate()
        self.dedup = deduper or OcrDeduper()
        self.calls = 0

    def __call__(self, clip, grid) -> dict:
        new: list[str] = []
        for frame, changed in zip(clip.frames, clip.keyframe or [True] * len(clip.frames)):
            if not self.gate.needs_ocr(frame.t, changed, frame.image):
                continue
            lines = self.reader.read(frame.image)
            self.calls += 1
            self.gate.done(frame.t, frame.image)
            fresh = self.dedup.update(lines)
            if fresh and lines and lines[0] not in fresh and lines[0] not in new:
                fresh = [lines[0]] + fresh  # keep the slide's title first: it names the section and the topic
            new += [x for x in fresh if x not in new]
        return {"ocr": "\n".join(new)} if new else {}


class TagEvidence:
    """ImageNet top labels of the encoder's classifier (EfficientNet-Lite0 keeps its last logits)."""

    def __init__(self, encoder, k: int = 3):
        self.encoder = encoder
        self.k = k

    def __call__(self, clip, grid) -> dict:
        from .tags import tags_text, top_tags

        logits = grid.logits if (grid is not None and clip.frames) else None  # the clip's own (no picture, no tags)
        return {"tags": tags_text(top_tags(logits, k=self.k))} if logits is not None else {}


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
    return out
