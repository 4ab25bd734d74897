"""Whisper segments -> sentences with times: each sentence of a segment stamped by its share of the segment's
characters (`sentence_segments`), then the boundaries between sentences moved onto the pauses the voice activity
detector heard (`snap_to_pauses`). Pure functions on `Segment`s (models.asr recognizes, this places)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class Segment:
    """A transcript segment in absolute media seconds."""

    t0: float
    t1: float
    text: str


def sentence_segments(text: str, t0: float, t1: float) -> list[Segment]:
    """One Whisper segment [t0, t1] -> one Segment per sentence (pysbd, `models.text.words.sentences`), each given
    the share of [t0, t1] its characters take: speech runs at a fairly even pace, so a sentence is stamped within
    about half a second of when it was said, not over the whole segment."""
    from models.text.words import sentences

    parts = sentences(text) or [text.strip()]
    total = sum(len(x) for x in parts) or 1
    out, t = [], float(t0)
    for x in parts:
        dt = (float(t1) - float(t0)) * len(x) / total
        out.append(Segment(round(t, 3), round(t + dt, 3), x))
        t += dt
    return [x for x in out if x.text]


def snap_to_pauses(parts: list[Segment], pauses: list[tuple[float, float]], reach: float = 1.5) -> list[Segment]:
    """Consecutive sentences of one recognition window, each boundary between two of them moved onto a pause
    (start, end in media seconds) the voice activity detector heard: the sentence before ends where the pause
    starts, the one after starts where it ends. Whisper's segment times are often a second or more off, and a
    sentence's share of its segment's characters (`sentence_segments`) only estimates where it ends; a speaker
    pauses between sentences. Each pause goes to at most one boundary, nearest pairs first (the distance from a
    boundary to a pause is 0 inside it), at most `reach` s away, in order; a boundary with no pause stays."""
    if len(parts) < 2 or not pauses:
        return parts
    bounds = [(a.t1 + b.t0) / 2 for a, b in zip(parts, parts[1:])]
    pairs = sorted((max(p[0] - x, 0.0, x - p[1]), i, j) for i, x in enumerate(bounds) for j, p in enumerate(pauses))
    match: dict[int, int] = {}
    for d, i, j in pairs:
        if d > reach:
            break
        if i in match or any((i2 < i) != (j2 < j) or j2 == j for i2, j2 in match.items()):
            continue
        match[i] = j
    edges = [[p.t0, p.t1] for p in parts]
    for i, j in match.items():
        edges[i][1], edges[i + 1][0] = pauses[j]
    for k in range(len(edges)):
        if k:
            edges[k][0] = max(edges[k][0], edges[k - 1][1])
        edges[k][1] = max(edges[k][1], edges[k][0])
    return [Segment(round(a, 3), round(b, 3), p.text) for p, (a, b) in zip(parts, edges)]


def cut_short(words: int, speech_s: float, min_rate: float = 1.0, min_speech_s: float = 6.0) -> bool:
    """Whether Whisper stopped early in a window: `words` recognized for `speech_s` seconds of voice activity, at
    under `min_rate` words a second where people (and the test voices) speak 2-3. Whisper sometimes ends a window
    with one segment stamped to its end after a sentence or two, and the rest of the speech in it is never
    decoded (held-out 4, speaker: 11 words for 16.5 s of speech, four sentences lost; every other window of six
    meetings: 1.9-3.5 words a second)."""
    return speech_s >= min_speech_s and words < min_rate * speech_s


def rest_start(speech: list[tuple[int, int]], words: int, rate: float = 2.5) -> Optional[int]:
    """Where the speech a cut-short decoding left out starts (a sample index, in the middle of a pause), or None:
    after the voice activity chunks that `words` words take at `rate` words a second (a usual pace), so the words
    Whisper did give keep their place and only the rest is decoded again."""
    need, acc = words / rate * 16000, 0
    for (b, e), (nb, _) in zip(speech, speech[1:]):
        acc += e - b
        if acc >= need:
            return (e + nb) // 2
    return None
