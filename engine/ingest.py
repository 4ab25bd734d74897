"""The streams part of the Engine: starting sources (files, cameras, pushed frames) with the one set of ingest
rules, stopping them, and what the faces read about them. Mixed into engine.core.Engine."""
from __future__ import annotations

import time
from typing import Optional

from . import media as media_rules
from . import profiles, sources
from .errors import EngineError, as_engine_errors
from .streams import StreamInfo, StreamRun

MEETINGS_KEY = "ui.meetings"    # streams marked as meetings


class StreamsMixin:
    """Needs: bank, readonly, media_dir, settings, profile(), _lock, _runs."""

    # ---- streams ---------------------------------------------------------------------------------

    def ingest_config(self, scene_cut: bool = True, duration: Optional[float] = None, **overrides):
        """The IngestConfig a stream starts with: the bank's settings, then any non-None override
        (fps, clip_seconds, reducer, budget); scene_cut False never cuts clips at scene changes."""
        from stream.pipeline import IngestConfig

        s = {**self.settings, **{k: v for k, v in overrides.items() if v is not None}}
        try:
            return IngestConfig(fps=float(s["fps"]), clip_seconds=float(s["clip_seconds"]), reducer=str(s["reducer"]),
                                budget=int(s["budget"]), duration=duration, scene_cut=0.25 if scene_cut else None)
        except (TypeError, ValueError):
            raise EngineError("fps, clip length and budget must be numbers") from None

    def start(self, source: str, *, stream: Optional[str] = None, realtime: bool = False, start: float = 0.0,
              meeting: bool = False, skim: bool = False, duration: Optional[float] = None,
              fps: Optional[float] = None, clip_seconds: Optional[float] = None, reducer: Optional[str] = None,
              budget: Optional[int] = None, scene_cut: bool = True, connect_timeout: float = 10.0,
              probe: bool = False) -> StreamInfo:
        """Start ingesting a source in the background: a file (a name in the media directory when the engine has
        one), rtsp://…, webcam:N, or "push" (frames given with push_frame). Returns its StreamInfo at once.
        probe: connect to a live source before loading any model (an unreachable camera fails now)."""
        if self.readonly:
            raise EngineError("this bank is open read-only", "conflict")
        kind = sources.kind_of(source)
        sid = sources.stream_id_for(source, stream)
        if kind == "push":
            with self._lock:
                r = self._runs.get(sid)
                if r is not None and r.running and r.kind == "push":
                    return r.info()
        with as_engine_errors():
            from reducers import get_reducer

            cfg = self.ingest_config(fps=fps, clip_seconds=clip_seconds, reducer=reducer, budget=budget,
                                     duration=duration, scene_cut=scene_cut)
            get_reducer(cfg.reducer)  # an unknown name fails before anything heavy starts
        if cfg.fps <= 0 or cfg.clip_seconds <= 0 or cfg.budget <= 0:
            raise EngineError("fps, clip length and budget must be > 0")
        path = None
        if kind == "file":
            path = source
            if self.media_dir:
                path = media_rules.resolve_media_path(self.media_dir, source)
                media_rules.probe_video(path)
        self._claim(sid)
        src = self._open(kind, source, path, sid, cfg.fps, realtime, start, skim, connect_timeout, probe)
        return self._start_opened(kind, src, sid, cfg, meeting=meeting, realtime=realtime,
                                  label=sources.public_source(path if kind == "file" else source), media_path=path)

    def start_source(self, source, *, stream: str, config=None, label: str = "", meeting: bool = False) -> StreamInfo:
        """Start an already opened source object (stream/sources.py: FileSource, LiveSource, PushSource…) with the
        same rules as start(): fresh evidence extractors, a live stream's clock continued. config: an IngestConfig
        (default: the bank's settings)."""
        if self.readonly:
            raise EngineError("this bank is open read-only", "conflict")
        kind = "push" if hasattr(source, "push") else ("rtsp" if getattr(source, "live", False) else "file")
        sid = sources.safe_stream_id(stream, "stream")
        self._claim(sid)
        return self._start_opened(kind, source, sid, config or self.ingest_config(), meeting=meeting,
                                  label=sources.public_source(label) if label else "",
                                  media_path=getattr(source, "path", None) if kind == "file" else None)

    def _start_opened(self, kind, src, sid, cfg, *, meeting=False, realtime=False, label="", media_path=None):
        try:
            profile = self.profile()
            with self._lock, as_engine_errors():
                self._claim(sid)
                return self._launch(kind, src, sid, media_path, cfg, profile, meeting, realtime, label).info()
        except BaseException:
            close = getattr(src, "close", None)
            if close is not None:
                close()
            raise

    def _claim(self, sid: str) -> None:
        with self._lock:
            r = self._runs.get(sid)
            if r is not None and r.running:
                raise EngineError(f"stream {sid!r} is already running; stop it first or choose another stream id",
                                  "conflict")

    def _open(self, kind, source, path, sid, fps, realtime, start, skim, connect_timeout, probe):
        with as_engine_errors():
            from stream.sources import PushSource, open_source

            if kind == "push":
                return PushSource(keep=1, stream_id=sid)
            src = open_source(path if kind == "file" else source, fps=fps, realtime=bool(realtime),
                              start=max(0.0, float(start or 0)), skim=skim, stream_id=sid,
                              connect_timeout=connect_timeout)
            if probe and hasattr(src, "probe"):
                try:
                    src.probe()
                except BaseException:
                    src.close()
                    raise
            return src

    def _launch(self, kind, src, sid, path, cfg, profile, meeting, realtime, label) -> StreamRun:
        from stream.pipeline import IngestPipeline

        last_t = offset = 0.0
        if kind != "file":  # a live stream started again under its id goes on with that stream's clock
            last_t, offset = self.bank.resume_point(sid)
            if offset > 0 and kind != "push":  # pushed frames get the offset in push_frame
                from stream.sources import ShiftedSource

                src = ShiftedSource(src, offset)
        pipe = IngestPipeline(src, self.bank, profile.encoder, stream_id=sid, config=cfg,
                              evidence=profiles.evidence_for(profile, sid), text_embedder=profile.text_embedder,
                              key_encoder=profile.key_encoder, source_label=label)
        self._watch_pipeline(pipe, sid, path if kind == "file" else None)  # watches check every new memory
        sampler = None
        if kind == "push":
            from stream.sources import Sampler

            sampler = Sampler(cfg.fps)
        run = StreamRun(sid, kind, label, src, pipe, media_path=path,
                        meeting=bool(meeting), realtime=bool(realtime), t_offset=offset, sampler=sampler)
        if offset > 0:
            self.bank.note_restart(sid, last_t, offset)
        self._runs[sid] = run
        if meeting:
            marked = set(self.bank.get_meta(MEETINGS_KEY, []) or [])
            self.bank.set_meta(MEETINGS_KEY, sorted(marked | {sid}))
        pipe.start()
        return run

    def push_frame(self, stream: str, image) -> bool:
        """A frame for a "push" stream (RGB uint8 [H, W, 3]; grey or RGBA are converted). Counted always; handed
        on at the sampling rate, keeping only the latest. False when no such push stream is running."""
        if image is None:
            return False
        import numpy as np

        r = self._runs.get(sources.safe_stream_id(stream, "webcam"))
        if r is None or r.kind != "push" or not r.running:
            return False
        r.received += 1
        t = r.t_offset + time.monotonic() - r.source._t0  # the stream's clock goes on across stop/start
        if r.sampler is not None and not r.sampler.want(t):
            return True
        img = np.asarray(image)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        r.source.push(np.ascontiguousarray(img[..., :3]).astype(np.uint8, copy=False), t)
        return True

    def handle(self, stream: str) -> StreamRun:
        """The bookkeeping of a stream started here (its source and pipeline objects), for tools and tests."""
        return self._run(stream)

    def _run(self, stream: str) -> StreamRun:
        with self._lock:
            r = self._runs.get(stream)
        if r is None:
            raise EngineError(f"no stream {stream!r} was started here", "not_found")
        return r

    def stop(self, stream: str, wait: float = 20.0) -> StreamInfo:
        """Stop a stream: it stores the clip in progress and flushes; its memories stay."""
        r = self._run(stream)
        r.pipeline.stop(wait=wait)
        return r.info()

    def wait(self, stream: str, timeout: Optional[float] = None) -> StreamInfo:
        """Wait up to timeout seconds (None: until it ends) for a stream's ingestion to end; its StreamInfo."""
        r = self._run(stream)
        t = r.pipeline._thread
        if t is not None:
            t.join(timeout)
        return r.info()

    def stop_all(self, wait: float = 10.0) -> None:
        with self._lock:
            runs = list(self._runs.values())
        for r in runs:
            r.pipeline.stop(wait=wait)

    def stream(self, stream: str) -> StreamInfo:
        return self._run(stream).info()

    def streams(self) -> list[StreamInfo]:
        """The streams started by this engine (running or ended), in start order."""
        with self._lock:
            runs = list(self._runs.values())
        return [r.info() for r in runs]

    def running(self) -> list[str]:
        with self._lock:
            return [sid for sid, r in self._runs.items() if r.running]

    def started(self) -> list[str]:
        with self._lock:
            return list(self._runs)

    def stream_ids(self) -> list[str]:
        """Every stream id known: the bank's, then those started here and not stored yet."""
        ids = [s["stream"] for s in self.bank.streams()]
        return ids + [sid for sid in self.started() if sid not in ids]

    def meetings(self) -> list[str]:
        return list(self.bank.get_meta(MEETINGS_KEY, []) or [])

    def latest_frame(self, stream: Optional[str] = None):
        """The last frame a stream sampled (the newest running stream's when None), or None."""
        with self._lock:
            r = self._runs.get(stream) if stream else None
            if r is None:
                live = [x for x in self._runs.values() if x.running] or list(self._runs.values())
                r = max(live, key=lambda x: x.started) if live else None
        return None if r is None else r.pipeline.latest_frame
