"""Running streams: one ingest pipeline each, in its own thread, and what the faces show about them."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Optional

STATES = ("starting", "connecting", "running", "finished", "stopped", "error")
# connecting: a camera that has not delivered its first frame yet (its notes say why while it retries)
ACTIONS = ("started", "resumed", "replaced", "skipped")
# what start() did with a file the stream already held: a new stream, resumed after what was stored, stored
# afresh (replace=True), or nothing (the stream covers the file already)


@dataclass
class StreamInfo:
    """A stream as the CLI, the UI and the API see it (plain data; `to_dict()` for JSON).

    stream, source, state, frames_in, memories, last_t, error: the API contract's fields (memories: all the
    stream holds in the bank, new_memories: stored by this run).
    kind: rtsp | webcam | push | file; source: the public label (no credentials);
    t_offset: a live stream restarted under a known id continues its clock from there (0 for a new stream).
    progress, eta_s: a file's share done (0..1) and the seconds left at the current speed (None for live sources).
    action, resumed_from: what start() did with what the stream held (ACTIONS), and where a resumed file went on.
    settings: what the stream is stored with: reducer, budget (carrier tokens per clip), clip_seconds, fps."""

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
    duration: Optional[float] = None   # media seconds this run covers (files: start/resume to end; None live)
    notes: list = field(default_factory=list)
    started: float = 0.0
    new_memories: int = 0
    progress: Optional[float] = None
    eta_s: Optional[float] = None
    action: str = "started"
    resumed_from: Optional[float] = None
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class StreamRun:
    """One started source and its pipeline (the engine's bookkeeping; faces read `info()`)."""

    def __init__(self, stream_id: str, kind: str, label: str, source, pipeline, *, media_path: Optional[str] = None,
                 meeting: bool = False, realtime: bool = False, t_offset: float = 0.0, sampler=None,
                 prior_memories: int = 0, action: str = "started", resumed_from: Optional[float] = None,
                 scrub=None):
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
        self.prior_memories = prior_memories  # what the stream held before this run
        self.action = action
        self.resumed_from = resumed_from
        self.scrub = scrub or (lambda text: text)  # messages without server paths (the engine's rule)
        self._t_mono = time.monotonic()

    @property
    def t_begin(self) -> float:
        """Media time this run starts at (a file's start or resume point)."""
        return float(getattr(self.source, "start", 0.0) or 0.0)

    @property
    def t_end(self) -> Optional[float]:
        """Media time this run ends at (files), or None."""
        if getattr(self.source, "live", False):
            return None
        total = getattr(self.source, "duration", None)
        limit = self.pipeline.cfg.duration
        if limit:
            end = self.t_begin + float(limit)
            return min(end, total) if total is not None else end
        return total

    def _progress(self, s) -> tuple[Optional[float], Optional[float]]:
        end = self.t_end
        if end is None or end <= self.t_begin:
            return None, None
        if s.state == "finished":
            return 1.0, 0.0
        done = min(1.0, max(0.0, (s.last_t - self.t_begin) / (end - self.t_begin)))
        elapsed = time.monotonic() - self._t_mono
        if s.state not in ("starting", "running") or elapsed < 1.0 or s.last_t <= self.t_begin:
            return done, None
        speed = (s.last_t - self.t_begin) / elapsed  # media seconds per second, so far
        return done, max(0.0, (end - s.last_t) / speed)

    @property
    def duration(self) -> Optional[float]:
        """Media seconds this run covers (from its start or resume point to its end), None for live sources."""
        end = self.t_end
        return None if end is None else max(0.0, end - self.t_begin)

    @property
    def running(self) -> bool:
        return self.pipeline.running

    @property
    def settings(self) -> dict:
        c = self.pipeline.cfg
        return {"reducer": c.reducer, "budget": c.budget, "clip_seconds": c.clip_seconds, "fps": c.fps}

    def info(self) -> StreamInfo:
        s = self.pipeline.stats
        state, notes = s.state, [self.scrub(n) for n in s.notes]
        src = getattr(self.source, "stats", None)
        if self.kind in ("rtsp", "webcam") and state == "running" and not s.connected and s.frames_in == 0 \
                and not s.memories:
            state = "connecting"  # not "running" before the camera has sent anything
            why = getattr(src, "last_error", "")
            if why:
                notes.insert(0, f"retrying: {why}")
        if self.kind == "push" and state == "running" and self.received == 0 and not s.memories:
            state = "connecting"  # a browser webcam before its first frame
            notes.insert(0, "waiting for frames from the browser (press Record on the camera)")
        progress, eta = self._progress(s)
        d = StreamInfo(stream=self.stream_id, source=self.label, state=state, frames_in=s.frames_in,
                       memories=self.prior_memories + s.memories, last_t=round(s.last_t, 3),
                       error=self.scrub(s.error) if s.error else None, kind=self.kind,
                       meeting=self.meeting, realtime=self.realtime, frames_sampled=s.frames_sampled,
                       dropped=s.dropped, reconnects=s.reconnects, connected=s.connected, fps_in=round(s.fps_in, 1),
                       fps_out=round(s.fps_out, 1), t_offset=self.t_offset, audio_only=self.pipeline.audio_only,
                       duration=self.duration, notes=notes, started=self.started, new_memories=s.memories,
                       progress=None if progress is None else round(progress, 3),
                       eta_s=None if eta is None else round(eta, 1), action=self.action,
                       resumed_from=self.resumed_from, settings=self.settings)
        if self.kind == "push":
            now = time.monotonic()
            t0, n0 = self._rate
            if now - t0 >= 1.0:
                self.fps_received = (self.received - n0) / (now - t0) if t0 else 0.0
                self._rate = (now, self.received)
            d.frames_in = self.received
            d.fps_in = round(self.fps_received, 1)
        return d
