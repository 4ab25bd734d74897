"""The streams part of the Engine: starting sources (files, cameras, pushed frames) with the one set of ingest
rules, stopping them, and what the faces read about them. Mixed into engine.core.Engine."""
from __future__ import annotations

import os
import time
from typing import Optional

from . import media as media_rules
from . import profiles, sources
from .errors import EngineError, as_engine_errors
from .streams import StreamInfo, StreamRun
from .timefmt import hms

MEETINGS_KEY = "ui.meetings"    # streams marked as meetings
FILE_KEY = "file:{}"            # per stream: the file it was ingested from {"path", "size", "mtime"}
SETTING_NAMES = {"reducer": "reducer", "budget": "budget", "clip_seconds": "clip length", "fps": "fps"}


def covered_runs(spans, gap: float) -> list[tuple[float, float]]:
    """A stream's memory spans merged into the stretches of media time it covers (gaps up to `gap` bridged)."""
    out: list[list[float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def resume_plan(spans, start: float, end: Optional[float], gap: float) -> tuple[float, Optional[float]]:
    """Where a file run asked for [start, end) goes on given what is stored: (from, to). It skips the stored
    stretch `start` falls in and stops where the next stored stretch begins; from >= to means nothing is left."""
    runs = covered_runs(spans, gap)
    pos = float(start)
    for a, b in runs:
        if a <= pos + gap and b > pos:
            pos = b
    nxt = [a for a, _ in runs if a > pos + 1e-6]
    stop = min([x for x in (end, nxt[0] if nxt else None) if x is not None], default=None)
    return pos, stop


def file_stamp(path: str) -> dict:
    st = os.stat(path)
    return {"path": os.path.realpath(path), "size": st.st_size, "mtime": round(st.st_mtime, 3)}


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
              probe: bool = False, replace: bool = False) -> StreamInfo:
        """Start ingesting a source in the background: a file (a name in the media directory when the engine has
        one), rtsp://…, webcam:N, or "push" (frames given with push_frame). Returns its StreamInfo at once.
        probe: connect to a live source before loading any model (an unreachable camera fails now).

        A file never gives a stream duplicate memories: when the stream holds the same file already, the run
        resumes after what is stored (an interrupted run goes on where it stopped; info.action "resumed"), or
        does nothing when the stream covers the file ("skipped", state "finished"); replace=True forgets what the
        stream holds first ("replaced"). A stream that holds another source, another version of the file, or
        was stored with other settings is refused (kind "conflict"). start must lie inside the file."""
        try:
            return self._start(source, stream=stream, realtime=realtime, start=start, meeting=meeting, skim=skim,
                               duration=duration, fps=fps, clip_seconds=clip_seconds, reducer=reducer,
                               budget=budget, scene_cut=scene_cut, connect_timeout=connect_timeout, probe=probe,
                               replace=replace)
        except EngineError as e:
            text = self.scrub(str(e))
            if text == str(e):
                raise
            raise EngineError(text, e.kind) from None

    def scrub(self, text: str) -> str:
        """A message without the server's media directory (the UI's and the API's engines name files by their
        name in it); the CLI's engine, which has none, leaves its user's paths as they are."""
        if not text or not self.media_dir:
            return text
        return text.replace(self.media_dir + os.sep, "").replace(self.media_dir, "the media directory")

    def _start(self, source, *, stream, realtime, start, meeting, skim, duration, fps, clip_seconds, reducer,
               budget, scene_cut, connect_timeout, probe, replace) -> StreamInfo:
        if self.readonly:
            raise EngineError("this bank is open read-only", "conflict")
        kind = sources.kind_of(source)
        sid = sources.stream_id_for(source, stream)
        try:
            start = float(start or 0.0)
        except (TypeError, ValueError):
            raise EngineError(f"start must be a number of seconds, got {start!r}") from None
        if start < 0 or start != start:
            raise EngineError(f"start must be 0 s or later, got {start:g} s")
        if start > 0 and kind != "file":
            raise EngineError("a start time applies to files only")
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
        label = sources.public_source(path if kind == "file" else source)
        if replace:
            self._check_not_running(sid)
        elif kind == "file":
            self._check_same_source(sid, path, label, cfg)
        src = self._open(kind, source, path, sid, cfg.fps, realtime, start, skim, connect_timeout, probe)
        action, resumed_from = ("replaced" if replace and self._holds(sid) else "started"), None
        if kind == "file":
            try:
                action, resumed_from = self._plan_file(src, sid, path, start, cfg, replace, action)
            except BaseException:
                src.close()
                raise
            if action == "skipped":
                src.close()
                return self._skipped(sid, label, cfg)
        if replace and (self._holds(sid) or any(x["stream"] == sid for x in self.bank.streams())):
            self.forget(sid)
        if kind == "file":
            self.bank.set_meta(FILE_KEY.format(sid), file_stamp(path))
        return self._start_opened(kind, src, sid, cfg, meeting=meeting, realtime=realtime, label=label,
                                  media_path=path, action=action, resumed_from=resumed_from)

    # ---- what a stream already holds -----------------------------------------------------------

    def _holds(self, sid: str) -> int:
        """How many memories the bank holds for this stream."""
        return next((int(s["memories"]) for s in self.bank.streams() if s["stream"] == sid), 0)

    def _check_not_running(self, sid: str) -> None:
        with self._lock:
            r = self._runs.get(sid)
        if r is not None and r.running:
            raise EngineError(f"stream {sid!r} is running; stop it first", "conflict")

    def _check_same_source(self, sid: str, path: str, label: str, cfg) -> None:
        """A file goes on in a stream only if that stream holds this very file, stored with these settings."""
        row = next((s for s in self.bank.streams() if s["stream"] == sid), None)
        if row is None or not row["memories"]:
            return
        hint = "choose another stream id, or replace what it holds"
        if (row["source"] or "") != label:
            other = row["source"] or "another source"
            other = other if "://" in other else os.path.basename(other)
            raise EngineError(f"stream {sid!r} already holds {other!r}; {hint}", "conflict")
        stamp = self.bank.get_meta(FILE_KEY.format(sid))
        if stamp and os.path.isfile(path) and (stamp.get("size"), stamp.get("mtime")) != \
                (file_stamp(path)["size"], file_stamp(path)["mtime"]):
            raise EngineError(f"{os.path.basename(path)!r} changed since stream {sid!r} stored it; {hint}",
                              "conflict")
        stored = self.bank.stream_settings(sid)
        want = {"reducer": cfg.reducer, "budget": cfg.budget, "clip_seconds": cfg.clip_seconds, "fps": cfg.fps}
        differ = [k for k, v in want.items() if k in stored and str(stored[k]) != str(v)
                  and not (isinstance(v, float) and abs(float(stored[k]) - v) < 1e-9)]
        if differ:
            have = ", ".join(f"{SETTING_NAMES[k]} {stored[k]}" for k in differ)
            asked = ", ".join(f"{SETTING_NAMES[k]} {want[k]}" for k in differ)
            raise EngineError(f"stream {sid!r} was stored with {have} (asked: {asked}); ingest it with the same "
                              f"settings to continue it, or {hint}", "conflict")

    def _plan_file(self, src, sid: str, path: str, start: float, cfg, replace: bool, action: str):
        """(action, resumed_from) for a file run, after checking start against the file's length; moves the
        source's start to the resume point and caps the run where stored memories begin again."""
        total = getattr(src, "duration", None)
        name = os.path.basename(path)
        if total is not None and start >= total - 1e-3:
            raise EngineError(f"start {hms(start)} is past the end of {name!r} (it is {hms(total)} long)")
        end = total if cfg.duration is None else min(start + cfg.duration, total or float("inf"))
        if replace:
            return action, None
        spans = self.bank.spans(sid)
        if not spans:
            return action, None
        gap = max(0.5, 1.0 / cfg.fps) + 0.05
        pos, stop = resume_plan(spans, start, end, gap)
        if stop is not None and pos >= stop - 0.25:
            return "skipped", None
        src.start = pos
        cfg.duration = None if stop is None or (total is not None and stop >= total - 1e-3) else stop - pos
        return "resumed", pos

    def _skipped(self, sid: str, label: str, cfg) -> StreamInfo:
        runs = covered_runs(self.bank.spans(sid), max(0.5, 1.0 / cfg.fps) + 0.05)
        span = ", ".join(f"{hms(a)}–{hms(b)}" for a, b in runs[:3]) + (" …" if len(runs) > 3 else "")
        n = self._holds(sid)
        return StreamInfo(stream=sid, source=label, state="finished", memories=n, last_t=runs[-1][1] if runs else 0.0,
                          kind="file", action="skipped", progress=1.0, eta_s=0.0, started=time.time(),
                          settings=self._stored_settings(sid),
                          notes=[f"already stored: {sid!r} covers {span} of this file ({n} memories); nothing to "
                                 "add (replace it to store it again)"])

    def _stored_settings(self, sid: str) -> dict:
        st = self.bank.stream_settings(sid)
        return {k: st[k] for k in SETTING_NAMES if k in st}

    def forget(self, stream: str, start: Optional[float] = None, end: Optional[float] = None) -> dict:
        """Remove a stream from the bank (or only its memories overlapping [start, end] of media time), reclaiming
        disk: its memories, keys, thumbnails and, for a whole stream, its carrier shards, events and marks.
        A running stream must be stopped first. Returns {"stream", "deleted", "freed_bytes", "whole"}."""
        if self.readonly:
            raise EngineError("this bank is open read-only", "conflict")
        sid = str(stream or "").strip()
        if not sid:
            raise EngineError("choose a stream to remove")
        known = {s["stream"] for s in self.bank.streams()}
        with self._lock:
            started = sid in self._runs
        if sid not in known and not started:
            raise EngineError(f"unknown stream {sid!r}", "not_found")
        self._check_not_running(sid)
        whole = start is None and end is None
        before = self.bank.bytes_on_disk()
        with as_engine_errors():
            if whole:
                n = self.bank.drop_stream(sid)
                for key in (FILE_KEY.format(sid), f"summary_source:{sid}"):
                    if self.bank.get_meta(key) is not None:
                        self.bank.set_meta(key, None)
                marked = self.meetings()
                if sid in marked:
                    self.bank.set_meta(MEETINGS_KEY, [m for m in marked if m != sid])
                with self._lock:
                    self._runs.pop(sid, None)
            else:
                try:
                    lo = float(start) if start is not None else 0.0
                    hi = float(end) if end is not None else 1e12
                except (TypeError, ValueError):
                    raise EngineError("start and end must be numbers of seconds") from None
                if lo < 0 or hi <= lo:
                    raise EngineError("the time range to remove needs 0 <= start < end")
                n = self.bank.delete(stream=sid, t_range=(lo, hi))
        self._bytes_cache = (0.0, 0)
        return {"stream": sid, "deleted": n, "freed_bytes": max(0, before - self.bank.bytes_on_disk()),
                "whole": whole}

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

    def _start_opened(self, kind, src, sid, cfg, *, meeting=False, realtime=False, label="", media_path=None,
                      action="started", resumed_from=None):
        try:
            profile = self.profile()
            with self._lock, as_engine_errors():
                self._claim(sid)
                run = self._launch(kind, src, sid, media_path, cfg, profile, meeting, realtime, label)
                run.action = "resumed" if action == "started" and run.t_offset > 0 else action
                run.resumed_from = resumed_from if resumed_from is not None else (run.t_offset or None)
                return run.info()
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
        from stream.batcher import worker_for
        from stream.pipeline import IngestPipeline

        last_t = offset = 0.0
        if kind != "file":  # a live stream started again under its id goes on with that stream's clock
            last_t, offset = self.bank.resume_point(sid)
            if offset > 0 and kind != "push":  # pushed frames get the offset in push_frame
                from stream.sources import ShiftedSource

                src = ShiftedSource(src, offset)
        pipe = IngestPipeline(src, self.bank, profile.encoder, stream_id=sid, config=cfg,
                              evidence=profiles.evidence_for(profile, sid), text_embedder=profile.text_embedder,
                              key_encoder=profile.key_encoder, source_label=label,
                              worker=worker_for(profile.encoder))  # one encoder worker per device: all streams
        self._watch_pipeline(pipe, sid, path if kind == "file" else None)  # watches check every new memory
        sampler = None
        if kind == "push":
            from stream.sources import Sampler

            sampler = Sampler(cfg.fps)
        run = StreamRun(sid, kind, label, src, pipe, media_path=path, meeting=bool(meeting), realtime=bool(realtime),
                        t_offset=offset, sampler=sampler, prior_memories=self._holds(sid), scrub=self.scrub)
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
