"""Cut sampled frames into clips of about `clip_seconds`, optionally at scene changes, with their audio.

Streaming object in the whisper_streaming style: insert(item) / process() -> ready clips / finish().
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .types import AudioChunk, Clip, Frame


def thumb_signature(image: np.ndarray, side: int = 16) -> np.ndarray:
    """A tiny grey thumbnail [side, side] float32 in [0, 1] for cheap change detection."""
    h, w = image.shape[:2]
    ys = np.linspace(0, h - 1, side).astype(int)
    xs = np.linspace(0, w - 1, side).astype(int)
    return image[ys][:, xs].mean(axis=2).astype(np.float32) / 255.0


class Clipper:
    """Groups frames into clips and aligns 16 kHz audio to each clip's [t0, t1).

    scene_cut: start a new clip when the picture changes by more than this (mean abs grey difference
    of 16×16 thumbnails, 0..1); None disables cuts. wait_audio: hold a clip until audio covers it (files).
    audio_only: no pictures will come; cut clips of `clip_seconds` on the audio clock (frames stay empty).
    """

    def __init__(self, clip_seconds: float = 2.0, scene_cut: Optional[float] = 0.25, change_threshold: float = 0.04,
                 wait_audio: bool = False, stream: str = "", min_frames: int = 1, audio_only: bool = False):
        if clip_seconds <= 0:
            raise ValueError(f"clip length must be > 0 seconds, got {clip_seconds}")
        self.clip_seconds = clip_seconds
        self.scene_cut = scene_cut
        self.change_threshold = change_threshold
        self.wait_audio = wait_audio
        self.stream = stream
        self.min_frames = min_frames
        self._frames: list[Frame] = []
        self._key: list[bool] = []
        self._prev_sig: Optional[np.ndarray] = None
        self._ready: list[Clip] = []
        self._audio = np.zeros(0, np.float32)
        self._audio_t0 = 0.0  # media time of self._audio[0]
        self._audio_tail: list[np.ndarray] = []   # chunks after self._audio, joined when a clip takes its audio
        self._tail_n = 0                          # (one copy per clip, not one of the whole buffer per chunk)
        self._audio_started = False
        self._count = 0
        self.audio_only = audio_only
        self._audio_clip_t0: Optional[float] = None  # audio-only: start of the open clip
        self.size_changes: list[tuple[float, tuple, tuple]] = []  # (t, old (h, w), new (h, w)), the latest few
        self._steps: list[float] = []  # the last few intervals between sampled frames

    @property
    def audio_end(self) -> float:
        return self._audio_t0 + (self._audio.size + self._tail_n) / 16000

    def insert(self, item) -> None:
        if isinstance(item, Frame):
            self._insert_frame(item)
        elif isinstance(item, AudioChunk):
            self._insert_audio(item)

    def _insert_frame(self, f: Frame) -> None:
        sig = thumb_signature(f.image)
        diff = 1.0 if self._prev_sig is None else float(np.abs(sig - self._prev_sig).mean())
        self._prev_sig = sig
        cut = self.scene_cut is not None and diff > self.scene_cut
        resized = bool(self._frames) and f.image.shape != self._frames[-1].image.shape
        if resized:  # a clip's frames are encoded as one stack: a new size starts a new clip
            self.size_changes.append((f.t, tuple(self._frames[-1].image.shape[:2]), tuple(f.image.shape[:2])))
            self.size_changes = self.size_changes[-8:]
        if self._frames and f.t > self._frames[-1].t:
            self._steps = (self._steps + [f.t - self._frames[-1].t])[-8:]
        # a clip closes at the first frame at most half a sampling step short of clip_seconds: at 1 fps a camera's
        # frame stamped 1.97 s after the clip's first still starts the next clip (else most clips would hold 3 s)
        slack = min(0.5 * float(np.median(self._steps)), 0.25 * self.clip_seconds) if self._steps else 0.0
        if self._frames and (cut or resized or f.t - self._frames[0].t >= self.clip_seconds - slack - 1e-6):
            self._close(end=f.t)
        self._frames.append(f)
        self._key.append(diff > self.change_threshold)

    def _insert_audio(self, a: AudioChunk) -> None:
        if not self._audio_started:
            self._audio_t0, self._audio_started = a.t, True
        gap = int(round((a.t - self.audio_end) * 16000))
        if gap > 0:  # missing audio becomes silence so sample index stays media time
            self._audio_tail.append(np.zeros(gap, np.float32))
            self._tail_n += gap
        self._audio_tail.append(np.asarray(a.samples, np.float32))
        self._tail_n += self._audio_tail[-1].size
        if self.audio_only:
            self._cut_audio_clips(final=False)

    def _cut_audio_clips(self, final: bool) -> None:
        t0 = self._audio_t0 if self._audio_clip_t0 is None else self._audio_clip_t0
        while self.audio_end - t0 >= self.clip_seconds - 1e-6 or (final and self.audio_end - t0 > 0.05):
            t1 = min(t0 + self.clip_seconds, self.audio_end)
            self._ready.append(Clip(frames=[], t0=t0, t1=t1, stream=self.stream, index=self._count))
            self._count += 1
            t0 = t1
        self._audio_clip_t0 = t0

    def _close(self, end: float) -> None:
        if len(self._frames) < self.min_frames:
            return
        frames, keys = self._frames, self._key
        self._frames, self._key = [], []
        t0 = frames[0].t
        t1 = max(end, frames[-1].t + 1e-3)
        t1 = min(t1, t0 + self.clip_seconds * 1.5) if end - frames[-1].t > self.clip_seconds else t1
        self._ready.append(Clip(frames=frames, t0=t0, t1=t1, stream=self.stream, keyframe=keys, index=self._count))
        self._count += 1

    def _attach_audio(self, clip: Clip) -> None:
        if not self._audio_started:
            return
        a = int(round((clip.t0 - self._audio_t0) * 16000))
        b = int(round((clip.t1 - self._audio_t0) * 16000))
        a, b = max(0, a), max(0, b)
        if self._audio_tail:
            self._audio = np.concatenate([self._audio, *self._audio_tail])
            self._audio_tail, self._tail_n = [], 0
        clip.audio = self._audio[a:b].copy()
        # audio before the next clip can go: keep memory bounded on long streams
        if a > 16000 * 30:
            drop = a - 16000 * 5
            self._audio = self._audio[drop:]
            self._audio_t0 += drop / 16000

    def process(self) -> list[Clip]:
        """Clips that are complete (and, with wait_audio, covered by audio)."""
        out = []
        while self._ready:
            clip = self._ready[0]
            if self.wait_audio and self.audio_end < clip.t1 - 1e-3 and len(self._ready) < 8:
                break
            self._ready.pop(0)
            self._attach_audio(clip)
            out.append(clip)
        return out

    def finish(self, end: Optional[float] = None) -> list[Clip]:
        """Close the open clip and release everything."""
        if self.audio_only and self._audio_started:
            self._cut_audio_clips(final=True)
        if self._frames:
            last = self._frames[-1].t
            self._close(end=end if end is not None and end > last else last + min(self.clip_seconds, 1.0 / 1.0) * 0.5)
        self.wait_audio = False
        return self.process()
