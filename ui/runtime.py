"""What the UI drives: one writable bank, one model profile, and one ingest pipeline per running source.

Nothing here knows Gradio. The pipelines are stream/pipeline.py's IngestPipeline running in their own
background threads; asking goes through models/ask.py (the same code as `app.py ask`). The Gradio layer
(ui/app.py) only calls these methods and polls `status()`.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

log = logging.getLogger("vigil.ui")

DEFAULT_SETTINGS = {"model": "lite", "reducer": "pool2d", "budget": 32, "clip_seconds": 2.0, "fps": 1.0}
SETTINGS_KEY = "ui.settings"
MEETINGS_KEY = "ui.meetings"
DEFAULT_MAX_UPLOAD = 1024 * 1024 * 1024  # 1 GiB
# Containers accepted from users, by the demuxer FFmpeg detects from the bytes (not the file name).
VIDEO_FORMATS = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "mpegts", "mpeg", "flv",
                 "ogg", "asf", "h264", "hevc", "mjpeg", "m4v", "nut", "mxf", "gif", "yuv4mpegpipe"}
MEDIA_EXTS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".mpg", ".mpeg", ".flv", ".ogv",
              ".wmv", ".asf", ".3gp", ".y4m", ".gif", ".mxf", ".h264", ".264", ".hevc", ".265"}


class UIError(RuntimeError):
    """A user-facing error from a UI action (one line)."""


# ---- media checks --------------------------------------------------------------------------------

def resolve_media_path(media_dir: str, name: str) -> str:
    """A server path chosen by the user -> its real path, only if it is a regular file inside media_dir.

    Relative names are taken inside media_dir; absolute ones must already point inside it. Symlinks are
    resolved first, so a link out of the directory is refused like `../`.
    """
    if not name or not str(name).strip():
        raise UIError("choose a file from the media directory")
    name = str(name).strip()
    if "\x00" in name:
        raise UIError("invalid file name")
    root = os.path.realpath(media_dir)
    cand = os.path.realpath(name if os.path.isabs(name) else os.path.join(root, name))
    if os.path.commonpath([root, cand]) != root or cand == root:
        raise UIError(f"{name!r} is outside the media directory; only files under {root} can be replayed")
    if not os.path.isfile(cand):
        raise UIError(f"no such file in the media directory: {name!r}")
    return cand


def list_media(media_dir: str, limit: int = 500) -> list[str]:
    """Video files under media_dir (relative paths, sorted), skipping hidden entries and symlinks out of it."""
    root = os.path.realpath(media_dir)
    out: list[str] = []
    if not os.path.isdir(root):
        return out
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        for f in sorted(files):
            if f.startswith(".") or os.path.splitext(f)[1].lower() not in MEDIA_EXTS:
                continue
            rel = os.path.relpath(os.path.join(d, f), root)
            try:
                resolve_media_path(root, rel)
            except UIError:
                continue
            out.append(rel)
            if len(out) >= limit:
                return out
    return out


def probe_video(path: str) -> dict:
    """Check a file by its content: FFmpeg must recognise a video container we accept, with a video stream."""
    import av

    av.logging.set_level(None)
    try:
        size = os.path.getsize(path)
    except OSError:
        raise UIError("the uploaded file is missing") from None
    if size == 0:
        raise UIError("the file is empty")
    try:
        with av.open(path, mode="r", timeout=10.0) as c:
            fmts = set(c.format.name.split(","))
            if not fmts & VIDEO_FORMATS:
                raise UIError(f"not a supported video (detected {c.format.name!r} content)")
            if not c.streams.video:
                raise UIError("the file has no video stream")
            dur = c.duration / 1e6 if c.duration else None
            return {"format": c.format.name, "duration": dur, "size": size}
    except UIError:
        raise
    except Exception as e:  # noqa: BLE001  (any decoder complaint: not a video we can read)
        why = getattr(e, "strerror", None) or type(e).__name__  # never echo server paths back
        raise UIError(f"not a readable video ({why})") from None


def safe_stream_id(s: str, default: str) -> str:
    s = (s or "").strip() or default
    s = re.sub(r"[\x00-\x1f]", "", s)[:120]
    return s or default


# ---- sources -------------------------------------------------------------------------------------

@dataclass
class Runner:
    """One running (or finished) source."""

    stream_id: str
    kind: str                      # "webcam" | "rtsp" | "file"
    label: str                     # what the user gave (URL / relative media path)
    pipeline: object
    source: object
    media_path: Optional[str] = None
    meeting: bool = False
    realtime: bool = False
    started: float = field(default_factory=time.time)
    received: int = 0              # webcam: frames that arrived from the browser
    sampler: object = None
    t_offset: float = 0.0          # live: media time at which this run continues its stream (0 for a new stream)
    _rate: tuple = (0.0, 0)
    fps_received: float = 0.0

    def stats(self) -> dict:
        s = self.pipeline.stats
        d = {"stream": self.stream_id, "kind": self.kind + (" (meeting)" if self.meeting else ""),
             "state": s.state, "frames_in": s.frames_in, "fps_in": round(s.fps_in, 1), "fps_out": round(s.fps_out, 1),
             "dropped": s.dropped, "memories": s.memories, "t": round(s.last_t, 1), "error": s.error or "",
             "notes": "; ".join(s.notes)}
        if self.kind == "webcam":
            now = time.monotonic()
            t0, n0 = self._rate
            if now - t0 >= 1.0:
                self.fps_received = (self.received - n0) / (now - t0) if t0 else 0.0
                self._rate = (now, self.received)
            d["frames_in"] = self.received
            d["fps_in"] = round(self.fps_received, 1)
        return d

    @property
    def running(self) -> bool:
        return self.pipeline.running


class Controller:
    """The UI's engine room. Thread-safe; one per process (one writer per bank)."""

    def __init__(self, bank_dir: str, media_dir: str, *, model: Optional[str] = None, device: Optional[str] = None,
                 trust_remote_code: bool = False, max_upload_bytes: int = DEFAULT_MAX_UPLOAD, profile=None):
        from memory.bank import MemoryBank

        self.bank = MemoryBank(bank_dir)
        self.media_dir = os.path.realpath(media_dir)
        os.makedirs(self.media_dir, exist_ok=True)
        self.device = device
        self.trust_remote_code = trust_remote_code
        self.max_upload_bytes = max_upload_bytes
        saved = self.bank.get_meta(SETTINGS_KEY, {}) or {}
        self.settings = {**DEFAULT_SETTINGS, **{k: v for k, v in saved.items() if k in DEFAULT_SETTINGS}}
        if model:  # an explicit --model wins over the saved one for this run
            self.settings["model"] = model
        self._profile = profile
        self._profile_model = self.settings["model"] if profile is not None else None
        self._profile_error: Optional[str] = None
        self._profile_lock = threading.Lock()
        self._lock = threading.RLock()
        self.runners: dict[str, Runner] = {}
        self._bytes_cache = (0.0, 0)

    # ---- models ----------------------------------------------------------------------------------

    def profile(self):
        """The loaded profile for the current settings (loaded once; reloaded when the model setting changes)."""
        with self._profile_lock:
            want = self.settings["model"] or "lite"
            if self._profile is None or self._profile_model != want:
                from models.base import ModelError
                from models.registry import load_profile

                try:
                    self._profile = load_profile(None if want == "lite" else want, device=self.device,
                                                 trust_remote_code=self.trust_remote_code)
                except (ModelError, OSError, ValueError) as e:
                    self._profile_error = str(e)
                    raise UIError(f"cannot load model {want!r}: {e}") from None
                self._profile_model = want
                self._profile_error = None
            return self._profile

    def warm_up(self) -> threading.Thread:
        """Load the profile in the background so the first action does not wait for it."""
        def run():
            try:
                self.profile()
            except UIError as e:
                log.warning("%s", e)

        t = threading.Thread(target=run, daemon=True, name="vigil-warmup")
        t.start()
        return t

    def _evidence_for(self, profile, stream_id: str, meeting: bool) -> list:
        """Evidence extractors for one stream. Extractors keep state across clips (ASR), so a profile that can
        make a fresh set per stream (`evidence_for(stream_id, meeting=)`) is asked for one."""
        make = getattr(profile, "evidence_for", None)
        if callable(make):
            try:
                return list(make(stream_id, meeting=meeting))
            except TypeError:
                return list(make(stream_id))
        if getattr(profile, "name", "") == "lite" and profile.evidence:
            # the lite extractors hold per-stream state (ASR audio, OCR dedup): a fresh set per stream.
            # Meeting mode adds OCR of slides; speech is transcribed whenever the source has audio.
            from models.evidence import lite_evidence

            return lite_evidence(profile.encoder, asr=True, ocr=meeting, tags=True)
        return list(profile.evidence or [])

    # ---- sources ---------------------------------------------------------------------------------

    def _config(self):
        from stream.pipeline import IngestConfig

        s = self.settings
        return IngestConfig(fps=float(s["fps"]), clip_seconds=float(s["clip_seconds"]), reducer=s["reducer"],
                            budget=int(s["budget"]))

    def _claim(self, stream_id: str) -> None:
        r = self.runners.get(stream_id)
        if r is not None and r.running:
            raise UIError(f"stream {stream_id!r} is already running; stop it first or choose another stream id")

    def _note_restart(self, runner: Runner, last_t: float) -> None:
        if runner.t_offset > 0:
            self.bank.note_restart(runner.stream_id, last_t, runner.t_offset)

    def _start(self, runner_kw: dict, source, stream_id: str, label: str) -> Runner:
        from stream.pipeline import IngestPipeline

        profile = self.profile()
        try:
            pipe = IngestPipeline(source, self.bank, profile.encoder, stream_id=stream_id, config=self._config(),
                                  evidence=self._evidence_for(profile, stream_id, runner_kw.get("meeting", False)),
                                  text_embedder=profile.text_embedder, key_encoder=profile.key_encoder,
                                  source_label=label)
        except Exception:
            close = getattr(source, "close", None)
            if close:
                close()
            raise
        runner = Runner(stream_id=stream_id, source=source, pipeline=pipe, label=label, **runner_kw)
        self.runners[stream_id] = runner
        if runner.meeting:
            meetings = set(self.bank.get_meta(MEETINGS_KEY, []) or [])
            meetings.add(stream_id)
            self.bank.set_meta(MEETINGS_KEY, sorted(meetings))
        pipe.start()
        return runner

    def start_file(self, name: str, *, stream_id: str = "", realtime: bool = False, start: float = 0.0,
                   meeting: bool = False) -> Runner:
        """Replay a file from the media directory (a relative name or a path inside it)."""
        from stream.sources import FileSource, SourceError

        path = resolve_media_path(self.media_dir, name)
        probe_video(path)
        sid = safe_stream_id(stream_id, os.path.basename(path))
        with self._lock:
            self._claim(sid)
            s = self.settings
            try:
                src = FileSource(path, fps=float(s["fps"]), realtime=bool(realtime), start=max(0.0, float(start or 0)),
                                 stream_id=sid)
            except SourceError as e:
                raise UIError(str(e)) from None
            return self._start(dict(kind="file", media_path=path, meeting=meeting, realtime=bool(realtime)), src, sid,
                               path)

    def accept_upload(self, tmp_path: str, orig_name: str = "") -> str:
        """An uploaded file: size cap, content check, then copied into <media>/uploads. Returns its media name."""
        if not tmp_path or not os.path.isfile(tmp_path):
            raise UIError("no file was uploaded")
        size = os.path.getsize(tmp_path)
        if size > self.max_upload_bytes:
            raise UIError(f"the upload is {size / 1e6:.1f} MB; the limit is {self.max_upload_bytes / 1e6:.0f} MB")
        info = probe_video(tmp_path)
        base = os.path.basename(orig_name or tmp_path)
        stem, ext = os.path.splitext(re.sub(r"[^A-Za-z0-9_.-]", "_", base))
        stem = stem.strip("._") or "upload"
        fmt_ext = {"mov": ".mp4", "matroska": ".mkv", "avi": ".avi", "mpegts": ".ts", "flv": ".flv", "ogg": ".ogv",
                   "yuv4mpegpipe": ".y4m"}
        ext = ext.lower() if ext.lower() in MEDIA_EXTS else next(
            (v for k, v in fmt_ext.items() if k in info["format"].split(",")), ".mp4")
        h = hashlib.sha256()
        with open(tmp_path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        dest_dir = os.path.join(self.media_dir, "uploads")
        os.makedirs(dest_dir, exist_ok=True)
        dest = os.path.join(dest_dir, f"{stem[:60]}-{h.hexdigest()[:8]}{ext}")
        if not os.path.exists(dest):
            shutil.copyfile(tmp_path, dest + ".part")
            os.replace(dest + ".part", dest)
        return os.path.relpath(dest, self.media_dir)

    def start_rtsp(self, url: str, *, stream_id: str = "", meeting: bool = False) -> Runner:
        from stream.sources import SourceError, open_source

        url = (url or "").strip()
        if not url.startswith(("rtsp://", "rtsps://")):
            raise UIError("enter an rtsp:// or rtsps:// URL")
        rest = url.split("://", 1)[1].split("@")[-1].split("?")[0]  # never show credentials in the stream id
        sid = safe_stream_id(stream_id, "rtsp:" + rest)
        with self._lock:
            self._claim(sid)
            try:
                src = open_source(url, fps=float(self.settings["fps"]), stream_id=sid)
            except SourceError as e:
                raise UIError(str(e)) from None
            last_t, off = self.bank.resume_point(sid)
            if off > 0:
                from stream.sources import ShiftedSource

                src = ShiftedSource(src, off)
            runner = self._start(dict(kind="rtsp", meeting=meeting, t_offset=off), src, sid, "rtsp://" + rest)
            self._note_restart(runner, last_t)
            return runner

    def start_webcam(self, stream_id: str = "webcam", *, meeting: bool = False) -> Runner:
        from stream.sources import PushSource, Sampler

        sid = safe_stream_id(stream_id, "webcam")
        with self._lock:
            r = self.runners.get(sid)
            if r is not None and r.running and r.kind == "webcam":
                return r
            self._claim(sid)
            last_t, off = self.bank.resume_point(sid)
            src = PushSource(keep=1, stream_id=sid)
            runner = self._start(dict(kind="webcam", meeting=meeting, t_offset=off), src, sid, "browser webcam")
            self._note_restart(runner, last_t)
            runner.sampler = Sampler(float(self.settings["fps"]))
            return runner

    def push_webcam(self, stream_id: str, frame: Optional[np.ndarray]) -> bool:
        """A frame from the browser. Counted always; handed to the pipeline at the sampling rate (keep-latest)."""
        if frame is None:
            return False
        r = self.runners.get(safe_stream_id(stream_id, "webcam"))
        if r is None or r.kind != "webcam" or not r.running:
            return False
        r.received += 1
        t = r.t_offset + time.monotonic() - r.source._t0  # the stream's clock goes on across stop/start
        if r.sampler is not None and not r.sampler.want(t):
            return True
        img = np.asarray(frame)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        r.source.push(np.ascontiguousarray(img[..., :3]).astype(np.uint8, copy=False), t)
        return True

    def stop(self, stream_id: str, wait: float = 20.0) -> Runner:
        with self._lock:
            r = self.runners.get(stream_id)
        if r is None:
            raise UIError(f"no source named {stream_id!r} was started here")
        r.pipeline.stop(wait=wait)
        return r

    def stop_all(self) -> None:
        for sid in list(self.runners):
            try:
                self.stop(sid, wait=10)
            except UIError:
                pass

    # ---- status ----------------------------------------------------------------------------------

    def status(self) -> list[dict]:
        with self._lock:
            runners = list(self.runners.values())
        return [r.stats() for r in runners]

    def running_ids(self) -> list[str]:
        return [sid for sid, r in list(self.runners.items()) if r.running]

    def latest_frame(self, stream_id: Optional[str] = None) -> Optional[np.ndarray]:
        r = self.runners.get(stream_id) if stream_id else None
        if r is None:
            live = [x for x in self.runners.values() if x.running] or list(self.runners.values())
            r = max(live, key=lambda x: x.started) if live else None
        return None if r is None else r.pipeline.latest_frame

    def bank_summary(self) -> dict:
        now = time.monotonic()
        t, b = self._bytes_cache
        if now - t > 5.0:
            b = self.bank.bytes_on_disk()
            self._bytes_cache = (now, b)
        return {"memories": self.bank.count(), "bytes": b, "streams": len(self.bank.streams())}

    def latest_clips(self, n: int = 8) -> list[dict]:
        return [self.clip_info(m) for m in self.bank.list(limit=n, newest_first=True)]

    def clip_info(self, m) -> dict:
        from models.ask import hms

        return {"id": m.id, "stream": m.stream, "t0": m.t0, "t1": m.t1, "thumbnail": self.bank.thumbnail_path(m.id),
                "caption": f"{m.stream} · {hms(m.t0)}–{hms(m.t1)}", "novelty": m.novelty, "evidence": m.evidence}

    @staticmethod
    def system() -> dict:
        import psutil
        import torch

        vm = psutil.virtual_memory()
        d = {"rss_mb": psutil.Process().memory_info().rss / 2**20, "ram_used_pct": vm.percent,
             "cpu_pct": psutil.cpu_percent(interval=None)}
        if torch.cuda.is_available():
            d["gpu_alloc_mb"] = torch.cuda.memory_allocated() / 2**20
            d["gpu_reserved_mb"] = torch.cuda.memory_reserved() / 2**20
            d["gpu_total_mb"] = torch.cuda.get_device_properties(0).total_memory / 2**20
        return d

    def streams(self) -> list[str]:
        ids = [s["stream"] for s in self.bank.streams()]
        for sid in self.runners:
            if sid not in ids:
                ids.append(sid)
        return ids

    def meetings(self) -> list[str]:
        return list(self.bank.get_meta(MEETINGS_KEY, []) or [])

    # ---- memories --------------------------------------------------------------------------------

    def memory(self, memory_id: int) -> dict:
        ms = self.bank.get([int(memory_id)])
        if not ms:
            raise UIError(f"memory {memory_id} is not in the bank")
        d = self.clip_info(ms[0])
        d["player"] = self.replay_path(ms[0].stream)
        return d

    def replay_path(self, stream_id: str) -> Optional[str]:
        """The media file a stream was replayed from, if it lies in the media dir (so the player may serve it)."""
        r = self.runners.get(stream_id)
        path = r.media_path if r is not None and r.kind == "file" else None
        if path is None:
            src = next((s["source"] for s in self.bank.streams() if s["stream"] == stream_id), None)
            if not src or "://" in src:
                return None
            path = src
        try:
            return resolve_media_path(self.media_dir, path)
        except UIError:
            return None

    def timeline(self, stream: Optional[str] = None, t_range: Optional[tuple[float, float]] = None,
                 limit: int = 5000) -> list[dict]:
        rows = []
        for m in self.bank.list(stream=stream or None, t_range=t_range, limit=limit):
            rows.append({"id": m.id, "stream": m.stream, "t0": round(m.t0, 2), "t1": round(m.t1, 2),
                         "novelty": float(f"{m.novelty:.3g}") if m.novelty is not None else 0.0,
                         "evidence": _short_evidence(m.evidence)})
        return rows

    # ---- ask / summarize -------------------------------------------------------------------------

    def ask(self, question: str, k: int = 5, streams: Optional[list[str]] = None, image=None, history=()):
        from models.ask import AskError, ask

        try:
            return ask(self.bank, self.profile(), question, k=int(k), image=image, streams=streams or None,
                       history=history)
        except AskError as e:
            raise UIError(str(e)) from None

    def summarize(self, stream: str, progress: Optional[Callable[[float, str], None]] = None) -> tuple[str, str]:
        """Minutes of one stream as Markdown; also written to <bank>/minutes/<stream>.md. Returns (markdown, path)."""
        if not stream:
            raise UIError("choose a stream to summarize")
        from models.base import ModelError
        from models.meeting import stream_minutes

        def cb(i, total, desc=""):
            if progress is not None:
                progress(min(1.0, i / max(1, total)), desc)

        try:
            md = stream_minutes(self.bank, self.profile(), stream, cb).to_markdown()
        except ModelError as e:
            raise UIError(str(e)) from None
        if progress is not None:
            progress(1.0, "done")
        out_dir = os.path.join(self.bank.path, "minutes")
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, re.sub(r"[^A-Za-z0-9_.-]", "_", stream)[:80] + ".md")
        with open(path, "w", encoding="utf-8") as f:
            f.write(md)
        return md, path

    # ---- settings --------------------------------------------------------------------------------

    def save_settings(self, **kw) -> dict:
        from reducers import REDUCERS

        s = dict(self.settings)
        for k, v in kw.items():
            if k in DEFAULT_SETTINGS and v is not None:
                s[k] = v
        s["model"] = (str(s["model"]).strip() or "lite")
        if s["reducer"] not in REDUCERS:
            raise UIError(f"unknown reducer {s['reducer']!r}")
        try:
            s["budget"] = int(s["budget"])
            s["clip_seconds"] = float(s["clip_seconds"])
            s["fps"] = float(s["fps"])
        except (TypeError, ValueError):
            raise UIError("budget, clip length and fps must be numbers") from None
        if s["budget"] <= 0 or s["clip_seconds"] <= 0 or s["fps"] <= 0:
            raise UIError("budget, clip length and fps must be > 0")
        self.settings = s
        self.bank.set_meta(SETTINGS_KEY, s)
        return s

    def close(self) -> None:
        self.stop_all()
        self.bank.close()


def _short_evidence(ev: dict, limit: int = 160) -> str:
    from memory.bank import evidence_text

    return evidence_text(ev or {}, limit)
