"""What flows through ingestion: frames, audio chunks and stream events from a source; clips to the encoder."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass
class Frame:
    """One decoded picture. image: [H, W, 3] uint8 RGB; t: media seconds from stream start; wall: unix time."""

    image: np.ndarray
    t: float
    wall: float
    stream: str = ""


@dataclass
class AudioChunk:
    """Decoded audio, already 16 kHz mono float32 in [-1, 1]; t: media seconds of the first sample."""

    samples: np.ndarray
    t: float
    rate: int = 16000


@dataclass
class StreamEvent:
    """Something that happened to a source: kind in {"connected", "gap", "reconnect", "eof", "error", "dropped"}."""

    kind: str
    t: float
    wall: float
    detail: str = ""


@dataclass
class Clip:
    """Sampled frames of [t0, t1), with their audio (16 kHz mono float32) when the source has audio.

    keyframe: per frame, True where the picture changed from the previous sampled frame (scene cut or first frame).
    """

    frames: list[Frame]
    t0: float
    t1: float
    stream: str = ""
    audio: Optional[np.ndarray] = None
    keyframe: list[bool] = field(default_factory=list)
    index: int = 0

    @property
    def wall(self) -> float:
        return self.frames[0].wall if self.frames else 0.0
