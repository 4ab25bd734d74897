"""Sources: recorded files (FileSource, in stream/files.py), RTSP cameras, local webcams and pushed frames.

Every source is iterable and yields Frame, AudioChunk and StreamEvent items in media-time order.
Decoding runs in the source's own reader thread; files hand items over through a blocking queue
(back-pressure), live sources through a drop-oldest queue (dropped frames are counted).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import platform
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Optional, Union

import numpy as np

from .decode import Sampler  # noqa: F401 (the samplers' one home is stream/decode.py; imported from here too)
from .queues import Closed, FrameQueue
from .types import AudioChunk, Frame, StreamEvent

if TYPE_CHECKING:
    from .files import FileSource

log = logging.getLogger("vigil.stream")

Item = Union[Frame, AudioChunk, StreamEvent]
AUDIO_RATE = 16000


class SourceError(RuntimeError):
    """A source cannot be opened or read; the message is one line for the user."""


def _av():
    import av

    av.logging.set_level(None)  # PyAV's logging bridge can deadlock beside other threads
    return av


_CRED_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/@]*)@")


def public_url(url: str) -> str:
    """A URL as messages show it: the password masked (`user:***@`), the query (tokens live there) cut."""
    url = str(url or "")
    if "://" not in url:
        return url
    base, q, _ = url.partition("?")
    base = _CRED_RE.sub(lambda m: m.group(1) + (m.group(2).split(":", 1)[0] + ":***@" if ":" in m.group(2)
                                                 else "***@"), base)
    return base + ("?…" if q else "")


def av_reason(err: BaseException) -> str:
    """The reason of a PyAV/OS error in words ("Connection refused"), without the URL or path it names (which may
    carry credentials, and which the message around it names already)."""
    why = getattr(err, "strerror", None)
    if not why:
        why = str(err)
        name = getattr(err, "filename", None)
        if name:
            why = why.replace(repr(name), "").replace(str(name), "")
        why = re.sub(r"^\[Errno -?\d+\]\s*", "", why).strip(" :;,")
    why = re.sub(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@'\"]*@", r"\1***@", str(why))  # credentials anywhere
    return " ".join(why.split()) or type(err).__name__


def describe_av_error(path: str, err: Exception) -> str:
    """A one-line reason for a PyAV open/decode failure."""
    return f"cannot read {public_url(path)!r}: {av_reason(err)}"


@dataclass
class SourceStats:
    frames_decoded: int = 0
    frames_out: int = 0
    dropped: int = 0
    reconnects: int = 0
    connected: bool = False
    last_error: str = ""    # live sources: why the last connection attempt failed (one line, no credentials)
    audio_errors: int = 0  # audio packets that failed to decode (a corrupt track degrades to gaps, never stops video)
    notes: list = field(default_factory=list)  # how the video degraded (corrupt stretches skipped, size changes)


class _ReaderThread:
    """Runs `produce(queue)` in a daemon thread; iteration drains the queue. Errors become SourceError."""

    def __init__(self, queue: FrameQueue):
        self.queue = queue
        self.error: Optional[BaseException] = None
        self.stop_event = threading.Event()
        self.thread: Optional[threading.Thread] = None

    def start(self, target) -> None:
        def run():
            try:
                target()
            except BaseException as e:  # surfaced to the consumer, never lost in a thread
                self.error = e
            finally:
                self.queue.close()

        self.thread = threading.Thread(target=run, daemon=True, name="vigil-reader")
        self.thread.start()

    def items(self, poll: float = 0.5) -> Iterator[Item]:
        while True:
            try:
                yield self.queue.get(timeout=poll)
            except TimeoutError:
                continue
            except Closed:
                break
        if self.error is not None:
            if isinstance(self.error, SourceError):
                raise self.error
            raise SourceError(str(self.error)) from self.error

    def stop(self, join: float = 5.0) -> None:
        self.stop_event.set()
        self.queue.close()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(join)


class LiveSource:
    """An RTSP camera or a local webcam: reader thread with watchdog, reconnects with backoff, drop-oldest queue.

    Media time t is seconds on the monotonic clock since the source started, so it keeps counting
    through reconnects (camera timestamps restart) and gaps show up as jumps in t, recorded as events.
    """

    live = True

    def __init__(self, url: str, *, fmt: Optional[str] = None, options: Optional[dict] = None,
                 fps: Optional[float] = None, open_timeout: float = 5.0, read_timeout: float = 5.0,
                 max_backoff: float = 10.0, first_connect_timeout: float = 10.0, queue_size: int = 8,
                 max_side: int = 1280, stream_id: str = ""):
        self.url = url
        self.label = public_url(url)  # what messages name: never the password
        self.fmt = fmt
        self.options = dict(options or {})
        self.fps = fps
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self.max_backoff = max_backoff
        self.first_connect_timeout = first_connect_timeout
        self.max_side = max_side
        self.stream_id = stream_id
        self.stats = SourceStats()
        self.has_audio = False
        self.duration = None
        self._reader = _ReaderThread(FrameQueue(queue_size, drop_oldest=True))
        self._t0 = time.monotonic()
        self._container = None
        self._probed = None
        self._lock = threading.Lock()
        self.last_packet = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def _open(self):
        av = _av()
        return av.open(self.url, format=self.fmt, options=self.options,
                       timeout=(self.open_timeout, self.read_timeout))

    def probe(self) -> None:
        """Connect once now (retrying until first_connect_timeout), so an unreachable camera fails before
        models load. The open container is reused by the reader."""
        av = _av()
        deadline = time.monotonic() + self.first_connect_timeout
        backoff = 0.5
        while True:
            try:
                self._probed = self._open()
                return
            except (av.FFmpegError, OSError) as e:
                self.stats.last_error = f"cannot connect to {self.label}: {av_reason(e)}"
                if time.monotonic() + backoff >= deadline:
                    raise SourceError(self.stats.last_error) from None
                time.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    def _produce(self) -> None:
        av = _av()
        q = self._reader.queue
        stop = self._reader.stop_event
        backoff = 0.5
        gap_start: Optional[float] = None
        ever_connected = False
        sampler = Sampler(self.fps) if self.fps else None
        while not stop.is_set():
            try:
                container, self._probed = (self._probed or self._open()), None
            except (av.FFmpegError, OSError) as e:
                self.stats.last_error = f"cannot connect to {self.label}: {av_reason(e)}"
                if not ever_connected and self.now() + min(backoff, self.max_backoff) >= self.first_connect_timeout:
                    raise SourceError(self.stats.last_error) from None
                if gap_start is None:
                    gap_start = self.now()
                    q.put(StreamEvent("disconnected", gap_start, time.time(), self.stats.last_error))
                if stop.wait(backoff):
                    break
                backoff = min(backoff * 2, self.max_backoff)
                continue
            with self._lock:
                self._container = container
            self.stats.connected = True
            self.stats.last_error = ""
            if gap_start is not None:
                self.stats.reconnects += 1
                q.put(StreamEvent("gap", gap_start, time.time(), f"{self.now() - gap_start:.1f}s without video"))
                gap_start = None
            q.put(StreamEvent("connected", self.now(), time.time(), self.label))
            ever_connected = True
            backoff = 0.5
            try:
                vs = container.streams.video[0]
                vs.thread_type = "SLICE"  # frame threading would add a frame of latency per thread
                vs.thread_count = 2
                for frame in container.decode(vs):
                    self.last_packet = time.monotonic()
                    if stop.is_set():
                        break
                    self.stats.frames_decoded += 1
                    t = self.now()
                    if sampler is not None and not sampler.want(t):
                        continue
                    w, h = frame.width, frame.height
                    s = min(1.0, self.max_side / max(w, h))
                    img = (frame.to_ndarray(format="rgb24", width=int(w * s) // 2 * 2, height=int(h * s) // 2 * 2)
                           if s < 1 else frame.to_ndarray(format="rgb24"))
                    q.put(Frame(img, t, time.time(), self.stream_id))
                    self.stats.frames_out += 1
                    self.stats.dropped = q.dropped
            except (av.FFmpegError, OSError, IndexError) as e:
                log.info("stream %s interrupted: %s", self.url, e)
            finally:
                self.stats.connected = False
                with self._lock:
                    self._container = None
                try:
                    container.close()  # sends TEARDOWN
                except Exception:
                    pass
            if not stop.is_set():
                gap_start = self.now()
                q.put(StreamEvent("disconnected", gap_start, time.time(), "stream ended or stalled"))

    def _watchdog(self) -> None:
        """PyAV's read timeout covers most stalls; this catches the rest by closing the input."""
        stop = self._reader.stop_event
        while not stop.wait(1.0):
            with self._lock:
                c = self._container
            if c is not None and time.monotonic() - self.last_packet > self.read_timeout * 3:
                log.warning("watchdog: %s silent for %.0fs, closing", self.url, time.monotonic() - self.last_packet)
                self.last_packet = time.monotonic()
                try:
                    c.close()
                except Exception:
                    pass

    def __iter__(self) -> Iterator[Item]:
        self._t0 = time.monotonic()
        self._reader.start(self._produce)
        threading.Thread(target=self._watchdog, daemon=True, name="vigil-watchdog").start()
        try:
            for item in self._reader.items():
                self.stats.dropped = self._reader.queue.dropped
                yield item
        finally:
            self.close()

    def close(self) -> None:
        self._reader.stop(join=self.read_timeout + 2)


class PushSource:
    """Frames pushed by the application (the UI's browser webcam). Keeps only the latest `keep` frames."""

    live = True
    has_audio = False
    duration = None

    def __init__(self, keep: int = 1, stream_id: str = ""):
        self.stream_id = stream_id
        self.stats = SourceStats(connected=True)
        self._queue = FrameQueue(keep, drop_oldest=True)
        self._t0 = time.monotonic()

    def push(self, image: np.ndarray, t: Optional[float] = None) -> None:
        """Add an RGB uint8 [H, W, 3] frame; t defaults to seconds since the source was created."""
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype != np.uint8:
            raise SourceError(f"pushed frame must be uint8 [H, W, 3], got {img.dtype} {img.shape}")
        self.stats.frames_decoded += 1
        self._queue.put(Frame(img[..., :3], time.monotonic() - self._t0 if t is None else t, time.time(), self.stream_id))
        self.stats.dropped = self._queue.dropped

    def close(self) -> None:
        self._queue.close()

    def __iter__(self) -> Iterator[Item]:
        while True:
            try:
                item = self._queue.get(timeout=0.5)
            except TimeoutError:
                continue
            except Closed:
                return
            self.stats.frames_out += 1
            yield item


class ShiftedSource:
    """A live source whose media times continue an existing stream: every item's t is moved by `offset`.

    LiveSource counts t from when it starts iterating, so a camera stopped and started again under the same
    stream id would restart at 0 and interleave its memories with the earlier ones. Everything else is the
    wrapped source's (stats, close, live, has_audio...)."""

    def __init__(self, inner, offset: float):
        self.inner = inner
        self.offset = float(offset)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __iter__(self):
        for item in self.inner:
            t = getattr(item, "t", None)
            if t is not None and dataclasses.is_dataclass(item):
                item = dataclasses.replace(item, t=t + self.offset)
            yield item


def webcam_url(spec: str) -> tuple[str, str, dict]:
    """`webcam:N` or a device path -> (url, format, options) for this OS."""
    idx = spec.split(":", 1)[1] if spec.startswith("webcam:") else spec
    system = platform.system()
    if system == "Darwin":
        return idx, "avfoundation", {"framerate": "30"}
    if system == "Windows":
        return (idx if idx.startswith("video=") else f"video={idx}"), "dshow", {}
    dev = idx if idx.startswith("/dev/") else f"/dev/video{idx}"
    return dev, "v4l2", {"input_format": "mjpeg", "framerate": "30"}


def open_source(spec: str, *, fps: Optional[float] = None, realtime: bool = False, start: float = 0.0,
                skim: bool = False, stream_id: str = "", connect_timeout: float = 10.0) -> Union[FileSource, LiveSource]:
    """A path, `rtsp://…` URL, `webcam:N` or /dev/videoN -> the matching source."""
    if spec.startswith(("rtsp://", "rtsps://")):
        return LiveSource(spec, options={"rtsp_transport": "tcp", "timeout": "5000000"}, fps=fps,
                          first_connect_timeout=connect_timeout, stream_id=stream_id)
    if spec.startswith("webcam:") or spec.startswith("/dev/video"):
        url, fmt, opts = webcam_url(spec)
        if fmt == "v4l2" and not os.path.exists(url):
            raise SourceError(f"no webcam at {url}")
        return LiveSource(url, fmt=fmt, options=opts, fps=fps, first_connect_timeout=connect_timeout, stream_id=stream_id)
    if "://" in spec:
        raise SourceError(f"unsupported source {spec!r}: use a file path, rtsp://… or webcam:N")
    from .files import FileSource

    return FileSource(spec, fps=fps, realtime=realtime, start=start, skim=skim, stream_id=stream_id)


def __getattr__(name: str):
    """FileSource and AudioConverter live in stream/files.py (which builds on this module's errors and reader)."""
    if name in ("FileSource", "AudioConverter"):
        from . import files

        return getattr(files, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
