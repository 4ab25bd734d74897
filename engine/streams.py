"""Running streams: one ingest pipeline each, in its own thread, and what the faces show about them."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Optional

STATES = ("starting", "running", "finished", "stopped", "error")


@dataclass
class StreamInfo:
    """A stream as the CLI, the UI and the API see it (plain data; `to_dict()` for JSON).

    stream, source, state, frames_in, memories, last_t, error: the API contract's fields.
    kind: rtsp | webcam | push | file; source: the public label (no credentials);
    t_offset: a live stream restarted under a known id continues its clock from there (0 for a new stream)."""

    stream: str
    source: str
    state: str = "starting"
    frames_in: int = 0
    memories: int = 0
    last_t: float = 0.0
    error: Optional[str] = None
    kind: str = "file"
    meeting: bool = False
    realtime: bool = False
    frames_sampled: int = 0
    dropped: int = 0
    reconnects: int = 0
    connected: bool = False
    fps_in: float = 0.0
    fps_out: float = 0.0
    t_offset: float = 0.0
    audio_only: bool = False
    duration: Optional[float] = None   # media seconds this run will cover (files; None for live sources)
    notes: list = field(default_factory=list)
    started: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class StreamRun:
    """One started source and its pipeline (the engine's bookkeeping; faces read `info()`)."""

    def __init__(self, stream_id: str, kind: str, label: str, source, pipeline, *, media_path: Optional[str] = None,
                 meeting: bool = False, realtime: bool = False, t_offset: float = 0.0, sampler=None):
        self.stream_id = stream_id
        self.kind = kind
        self.label = label
        self.source = source
        self.pipeline = pipeline
        self.media_path = media_path
        self.meeting = meeting
        self.realtime = realtime
        self.t_offset = t_offset
        self.sampler = sampler         # push sources: frames handed on at the sampling rate
        self.started = time.time()
        self.received = 0              # push sources: frames that arrived from the application
        self._rate = (0.0, 0)
        self.fps_received = 0.0

    @property
    def duration(self) -> Optional[float]:
        if getattr(self.source, "live", False):
            return None
        total = getattr(self.source, "duration", None)
        limit = self.pipeline.cfg.duration
        if limit and (total is None or limit < total):
            return float(limit) if total is not None else None
        return total

    @property
    def running(self) -> bool:
        return self.pipeline.running

    def info(self) -> StreamInfo:
        s = self.pipeline.stats
        d = StreamInfo(stream=self.stream_id, source=self.label, state=s.state, frames_in=s.frames_in,
                       memories=s.memories, last_t=round(s.last_t, 3), error=s.error or None, kind=self.kind,
                       meeting=self.meeting, realtime=self.realtime, frames_sampled=s.frames_sampled,
                       dropped=s.dropped, reconnects=s.reconnects, connected=s.connected, fps_in=round(s.fps_in, 1),
                       fps_out=round(s.fps_out, 1), t_offset=self.t_offset, audio_only=self.pipeline.audio_only,
                       duration=self.duration, notes=list(s.notes), started=self.started)
        if self.kind == "push":
            now = time.monotonic()
            t0, n0 = self._rate
            if now - t0 >= 1.0:
                self.fps_received = (self.received - n0) / (now - t0) if t0 else 0.0
                self._rate = (now, self.received)
            d.frames_in = self.received
            d.fps_in = round(self.fps_received, 1)
        return d
