"""Parallel decoding of recorded files: keyframe-aligned segments decoded at once, handed out in order.

Splitting and skipping: stream/keyframes.py (segments of whole GOPs from the container's index).

Sampling. `Sampler` keeps the first frame of each slot of 1/fps seconds, a pure function of a frame's time and its
predecessor's, so a worker decides every frame of its segment exactly except the first, whose predecessor lies in
the segment before: the worker converts that one too and the merger, which sees the segments in order, decides.
Only kept frames are converted to RGB, straight at the output size: the frames and times are the serial decoder's.

Order and memory. Workers take segments in order, at most `window` segments ahead of the merger (back-pressure:
a worker waits rather than run ahead), and buffer only the frames they keep, together at most `buffer_bytes`
(`VIGIL_DECODE_BUFFER_MB`, default 1024; the segment being merged is never held back, so a long GOP of large
frames still goes through); the merger hands them out through
the caller's bounded queue, so a file drops nothing. Each worker opens, uses and closes its own container; `close()`
stops and joins every worker, so no container is freed under a decoding thread.

Bad data. Packets that fail to decode are skipped and counted; a segment whose data runs out before its end (a
damaged sample table, say) or that fails outright is noted and decoding goes on with the next segment.
"""
from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import numpy as np

from .keyframes import GopTail, Segment, pts_seconds

log = logging.getLogger("vigil.decode")

WORKERS_ENV = "VIGIL_DECODE_WORKERS"
MAX_WORKERS = 16
MIN_PARALLEL_CORES = 4   # on fewer cores (the 2-core VM) one frame-threaded decoder is as fast and the encoder needs them


def decode_workers(requested: Optional[int] = None) -> int:
    """Decoder threads for a file: `requested`, else $VIGIL_DECODE_WORKERS, else the cores (at most MAX_WORKERS;
    below MIN_PARALLEL_CORES one decoder, whose own frame threads already use them)."""
    if requested is None:
        env = os.environ.get(WORKERS_ENV, "").strip()
        if env:
            try:
                requested = int(env)
            except ValueError:
                raise ValueError(f"{WORKERS_ENV} must be a whole number of decoder threads, got {env!r}") from None
        else:
            cores = os.cpu_count() or 1
            requested = min(cores, MAX_WORKERS) if cores >= MIN_PARALLEL_CORES else 1
    return max(1, int(requested))


class Sampler:
    """Keeps frames at a target rate by media time: time is cut into slots of 1/fps from `anchor` (the first frame's
    time when None) and a frame passes when it is the first of its slot. A long gap releases one frame, not a burst."""

    def __init__(self, fps: float, anchor: Optional[float] = None):
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.period = 1.0 / fps
        self.anchor = anchor
        self.prev: Optional[int] = None  # slot of the previous frame

    def slot(self, t: float) -> int:
        return math.floor((t - self.anchor + 1e-6) / self.period)

    def want(self, t: float) -> bool:
        if self.anchor is None:
            self.anchor = t
        s = self.slot(t)
        keep = self.prev is None or s > self.prev
        self.prev = s
        return keep


def out_size(w: int, h: int, max_side: int) -> Optional[tuple[int, int]]:
    """(width, height) a frame is converted at so its longer side is at most max_side (even); None: as it is."""
    s = min(1.0, max_side / max(w, h))
    return (int(w * s) // 2 * 2, int(h * s) // 2 * 2) if s < 1.0 else None


def to_rgb(frame, max_side: int, reformatter=None) -> np.ndarray:
    """A decoded PyAV frame -> RGB uint8 [H, W, 3] at its output size. A worker passes its own reformatter
    (one scaling thread, its conversion context reused)."""
    size = out_size(frame.width, frame.height, max_side)
    kw = {"width": size[0], "height": size[1]} if size else {}
    if reformatter is None:
        return frame.to_ndarray(format="rgb24", **kw)
    return reformatter.reformat(frame, format="rgb24", threads=1, **kw).to_ndarray()


class SizeWatch:
    """Notes a change of frame size (the decoder re-initialises; later frames keep their own size)."""

    def __init__(self):
        self.shape: Optional[tuple] = None
        self.notes: list[str] = []

    def see(self, img: np.ndarray, t: float) -> Optional[str]:
        shape, note = img.shape[:2], None
        if self.shape is not None and shape != self.shape and len(self.notes) < 4:
            note = (f"frame size changed from {self.shape[1]}x{self.shape[0]} to {shape[1]}x{shape[0]} at {t:.1f} s: "
                    f"later frames keep the new size")
            self.notes.append(note)
        self.shape = shape
        return note


# ---- decoding -------------------------------------------------------------------------------------------------


@dataclass
class DecodeOptions:
    path: str
    t_offset: float
    start: float
    fps: Optional[float]
    max_side: int
    skip: str = "DEFAULT"
    threads: int = 1          # decoder threads per worker
    workers: int = 2
    window: int = 0           # segments decoded ahead of the merger; 0: workers + 2
    key_delay: int = 0        # a keyframe's pts - dts (stream time base): the index gives dts, seeking wants pts
    key_times: tuple = ()     # keyframes' media seconds (presentation): GOP tails without kept frames are skipped
    buffer_bytes: int = field(default_factory=lambda: int(float(os.environ.get("VIGIL_DECODE_BUFFER_MB", "1024"))
                                                          * 2 ** 20))  # kept frames held ahead of the merger


@dataclass
class _Out:
    """One segment's result: kept frames (t, image, first) as they come, then done."""
    items: list = field(default_factory=list)
    done: bool = False
    decoded: int = 0
    first_t: Optional[float] = None
    last_t: Optional[float] = None
    bad_packets: int = 0
    skipped: int = 0         # packets of GOP tails not decoded
    late_keys: int = 0       # keyframes later than the index said (GopTail turned itself off)
    error: str = ""          # why it stopped early ("" when it reached its end)


class _Stopped(Exception):
    pass


class _Missed(Exception):
    """The seek landed after the segment's keyframe."""


START = -1 << 62  # a seek target: the file's first keyframe


def segment_frames(c, vs, seg: Segment, out: _Out, stop: Callable[[], bool], target: Optional[int],
                   tail: Optional[GopTail] = None, t_offset: float = 0.0) -> Iterator:
    """Decoded frames of one segment in presentation order, after seeking to `target` (None: no seek, the
    container is fresh); packets `tail` says hold no kept frame are not decoded. Raises _Missed when the segment's
    keyframe packet is not where the seek led."""
    import av

    if target is not None:
        c.seek(max(target, 0) if target != START else 0, stream=vs, backward=True, any_frame=False)
    begun, lo, hi, held = seg.pos < 0, None, None, None

    def decode(packet):
        try:
            frames = vs.codec_context.decode(packet)
        except av.error.InvalidDataError:
            out.bad_packets += 1  # one broken packet: skip it, keep the rest
            return
        for f in frames:
            if f.pts is not None and (lo is None or f.pts >= lo) and (hi is None or f.pts < hi):
                yield f

    ended = False
    for packet in c.demux(vs):
        if stop():
            raise _Stopped()
        if packet.size == 0:
            ended = True
            break
        if not begun:
            if packet.pos != seg.pos:
                if packet.pos > seg.pos and target != START:
                    raise _Missed()
                continue
            begun, lo = True, packet.pts
        if hi is None and seg.end_pos >= 0 and packet.pos == seg.end_pos:
            hi, held = packet.pts, packet  # the next segment's keyframe: ours only if leading pictures follow it
            continue
        if hi is not None:
            if packet.pts is None or packet.pts >= hi:
                break
            if held is not None:  # an open GOP: its leading pictures are ours and need that keyframe
                yield from decode(held)
                held = None
        if tail is not None and tail.skip_packet(packet, vs.time_base, t_offset):
            continue
        yield from decode(packet)
    else:
        ended = True
    if not begun:
        raise _Missed()
    if ended and seg.end_pos >= 0 and hi is None:
        out.error = "the data ran out before the next keyframe"
    yield from decode(None)  # drain the decoder (a seek flushes it for the next segment)


class ParallelDecoder:
    """Decodes `segments` of one video file in worker threads; `frames()` yields (t, rgb) in order."""

    def __init__(self, opts: DecodeOptions, segments: list[Segment], stop: Optional[threading.Event] = None):
        self.opts, self.segments = opts, segments
        self._outer = stop or threading.Event()  # the caller's stop (FileSource.close)
        self._stop = threading.Event()
        self.window = opts.window or opts.workers + 2
        self._outs = [_Out() for _ in segments]
        self._cond = threading.Condition()
        self._next = 0     # next segment a worker takes
        self._merged = 0   # segments the merger has finished
        self._buffered = 0  # bytes of kept frames held in segments not yet freed
        self.decoded = 0   # frames decoded in segments merged so far
        self.skipped = 0   # packets of GOP tails not decoded, in segments merged so far
        self.late_keys = 0
        self.notes: list[str] = []
        self._damage: Optional[tuple[float, str]] = None  # (where, why) of failed segments not said yet
        self._bad: list = [0, None, None]                  # packets skipped: count, first and last segment time
        self.worker_error: Optional[BaseException] = None
        self._threads = [threading.Thread(target=self._work, daemon=True, name=f"vigil-decode-{i}")
                         for i in range(min(opts.workers, len(segments)))]

    # ---- workers ----

    def _stopped(self) -> bool:
        return self._stop.is_set() or self._outer.is_set()

    def _take(self) -> Optional[int]:
        with self._cond:
            while not self._stopped() and self._next < len(self.segments) and self._next >= self._merged + self.window:
                self._cond.wait(0.5)
            if self._stopped() or self._next >= len(self.segments):
                return None
            self._next += 1
            return self._next - 1

    def _work(self) -> None:
        import av
        from av.video.reformatter import VideoReformatter

        c = None
        try:
            c = av.open(self.opts.path, mode="r")
            vs = c.streams.video[0]
            vs.thread_type, vs.thread_count = "AUTO", self.opts.threads
            vs.codec_context.skip_frame = self.opts.skip
            reformatter = VideoReformatter()
            while (k := self._take()) is not None:
                self._run(c, vs, k, reformatter)
        except BaseException as e:  # surfaced by the merger, never lost in a thread
            self.worker_error = e
        finally:
            with self._cond:
                self._cond.notify_all()
            if c is not None:
                c.close()  # only this thread ever used it

    def _targets(self, seg: Segment) -> list:
        """Where to seek for a segment: its keyframe's pts (the index gives decode times; `key_delay` is the
        first keyframe's pts - dts), its decode time, the file's start."""
        if seg.pos < 0:
            return [seg.seek]
        return [seg.seek + self.opts.key_delay, seg.seek, START] if self.opts.key_delay else [seg.seek, START]

    def _run(self, c, vs, k: int, reformatter) -> None:
        seg, out, o = self.segments[k], self._outs[k], self.opts
        sampler = Sampler(o.fps, anchor=o.start) if o.fps else None
        first, tb = True, vs.time_base
        try:
            for target in self._targets(seg):
                tail = GopTail(list(o.key_times), sampler) if sampler is not None and o.key_times else None
                try:
                    for f in segment_frames(c, vs, seg, out, self._stopped, target, tail, o.t_offset):
                        t = pts_seconds(f.pts, tb) - o.t_offset  # the stream's time base: a drained frame has none
                        if t < o.start - 1e-6:
                            continue
                        out.decoded += 1
                        out.last_t = t
                        if out.first_t is None:
                            out.first_t = t
                        keep = sampler is None or sampler.want(t)
                        if tail is not None:
                            tail.after(t)
                        if keep:
                            item = (t, to_rgb(f, o.max_side, reformatter), first)
                            with self._cond:
                                while k > self._merged and self._buffered > o.buffer_bytes and not self._stopped():
                                    self._cond.wait(0.5)  # the merger frees a segment, then this one goes on
                                out.items.append(item)
                                self._buffered += item[1].nbytes
                                self._cond.notify_all()
                        first = False
                    if tail is not None:
                        out.skipped, out.late_keys = tail.skipped, tail.late_keys
                    break
                except _Missed:
                    log.debug("segment %d: its keyframe is not where seeking to %s led", k, target)
            else:
                out.error = "its keyframe cannot be read"
        except _Stopped:
            pass
        except Exception as e:  # this segment only: the next one goes on
            out.error = f"{type(e).__name__}: {e}"
        finally:
            with self._cond:
                out.done = True
                self._cond.notify_all()

    # ---- merger ----

    def _wait(self, out: _Out, have: int) -> bool:
        """Until the segment has more than `have` items or is done; False when stopped."""
        with self._cond:
            while not (len(out.items) > have or out.done or self._stopped()):
                if not any(t.is_alive() for t in self._threads):
                    err = self.worker_error
                    raise RuntimeError(f"the decoder threads stopped: {err}" if err else "the decoder threads stopped")
                self._cond.wait(0.5)
            return not self._stopped()

    def frames(self) -> Iterator:
        """(t, rgb) of the kept frames in order, and a line (str) for each segment that degraded."""
        for t in self._threads:
            t.start()
        o = self.opts
        probe = Sampler(o.fps, anchor=o.start) if o.fps else None
        prev_slot: Optional[int] = None
        for k, (seg, out) in enumerate(zip(self.segments, self._outs)):
            i = 0
            while self._wait(out, i):
                with self._cond:
                    batch, done = out.items[i:], out.done
                i += len(batch)
                for t, img, first in batch:
                    if first and probe is not None and prev_slot is not None and probe.slot(t) <= prev_slot:
                        continue  # the segment's first frame shares a slot with the previous segment's last
                    yield t, img
                if done and i == len(out.items):
                    break
            if self._stopped():
                return
            if out.last_t is not None and probe is not None:
                prev_slot = probe.slot(out.last_t)
            self.decoded += out.decoded
            self.skipped += out.skipped
            self.late_keys += out.late_keys
            yield from self._note(seg, out)
            with self._cond:
                self._buffered -= sum(img.nbytes for _, img, _ in out.items)
                self._outs[k] = _Out(done=True)  # free its frames
                self._merged = k + 1
                self._cond.notify_all()
        yield from self._note(None, None)

    def _note(self, seg: Optional[Segment], out: Optional[_Out]) -> list[str]:
        """Lines for the video that could not be decoded: consecutive failed segments make one line, given when
        decoding resumes (or at the end); skipped packets are counted and said at the end."""
        notes = []
        if out is not None and out.bad_packets:
            self._bad[0] += out.bad_packets
            self._bad[1] = seg.t0 if self._bad[1] is None else self._bad[1]
            self._bad[2] = out.last_t if out.last_t is not None else seg.t0
        if out is not None and out.error:
            if self._damage is None:
                self._damage = (out.last_t if out.last_t is not None else seg.t0, out.error)
            return notes
        if self._damage is not None:
            (t0, why), self._damage = self._damage, None
            span = f"{t0:.1f}–{out.first_t if out.first_t is not None else seg.t0:.1f} s" if out else f"after {t0:.1f} s"
            notes.append(f"video {span} could not be decoded ({why}): skipped, decoding went on")
        if out is None and self._bad[0]:
            notes.append(f"{self._bad[0]} corrupt video packets skipped (between {self._bad[1]:.1f} and "
                         f"{self._bad[2]:.1f} s)")
        self.notes += notes
        return notes

    def close(self, join: float = 10.0) -> None:
        """Stop the workers and wait for them (each closes its own container)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            if t.is_alive() and t is not threading.current_thread():
                t.join(join)

    @property
    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)
