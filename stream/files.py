"""Recorded files: FileSource decodes a video (or audio-only) file with PyAV, in its own reader thread.

Non-realtime reading of an indexed file (MP4/MOV/MKV) decodes keyframe-aligned segments in worker threads
(stream/decode.py, stream/keyframes.py) and reads the audio in a thread of its own; realtime replay, files without
an index and machines of few cores use one frame-threaded decoder. Items reach the consumer in media-time order
through a bounded queue (back-pressure: a file drops nothing).
"""
from __future__ import annotations

import os
import threading
import time
from typing import Iterator, Optional

import numpy as np

from .decode import DecodeOptions, ParallelDecoder, Sampler, SizeWatch, decode_workers, to_rgb
from .keyframes import (GopTail, index_keyframes, key_delay, key_times, keyframes_cover, plan_segments, pts_seconds,
                        segment_span, skip_rule)
from .queues import Closed, FrameQueue
from .sources import (AUDIO_RATE, Item, SourceError, SourceStats, _av, _ReaderThread, describe_av_error, log,
                      public_url)
from .types import AudioChunk, Frame, StreamEvent


class AudioConverter:
    """Any PyAV audio frame -> 16 kHz mono float32 chunks with media time."""

    def __init__(self, t_offset: float):
        av = _av()
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        self.t_offset = t_offset
        self.next_t: Optional[float] = None

    def convert(self, frame) -> Optional[AudioChunk]:
        if frame.time is None:
            return None
        out = self.resampler.resample(frame)
        return self._chunk(out, frame.time - self.t_offset)

    def flush(self) -> Optional[AudioChunk]:
        return self._chunk(self.resampler.resample(None), None)

    def _chunk(self, frames, t: Optional[float]) -> Optional[AudioChunk]:
        arrays = [f.to_ndarray().reshape(-1) for f in frames]
        if not arrays:
            return None
        samples = np.concatenate(arrays).astype(np.float32)
        if self.next_t is None:
            self.next_t = max(0.0, t or 0.0)
        chunk = AudioChunk(samples=samples, t=self.next_t)
        self.next_t += samples.size / AUDIO_RATE  # resampler output is contiguous: count samples, not pts
        return chunk


class FileSource:
    """A recorded video file decoded with PyAV.

    start:    media seconds to start from (keyframe seek, then decode forward and drop earlier frames)
    fps:      when set, only frames the sampler keeps are converted to RGB (the expensive part)
    realtime: pace output to the media clock instead of as fast as possible
    skim:     decode keyframes only (fast, coarse)
    max_side: downscale converted frames so the longer side is at most this
    workers:  decoder threads for non-realtime reading of an indexed file (MP4/MOV/MKV): keyframe-aligned segments
              decoded at once, frames handed out in order (stream/decode.py); None: $VIGIL_DECODE_WORKERS or the
              cores (at most 16); 1: one decoder
    exact:    decode every frame (no skipping of non-reference frames or of everything but keyframes when the
              sampling allows it: see stream/decode.py), so the kept frames are exactly those of a full decode
    """

    live = False

    def __init__(self, path: str, *, start: float = 0.0, fps: Optional[float] = None, realtime: bool = False,
                 audio: bool = True, threads: int = 2, skim: bool = False, max_side: int = 1280,
                 queue_size: int = 64, stream_id: str = "", workers: Optional[int] = None, exact: bool = False):
        self.path = path
        try:
            self.workers = decode_workers(workers)
        except ValueError as e:
            raise SourceError(str(e)) from None
        self.exact = exact
        self.start = max(0.0, float(start))
        self.fps = fps
        self.realtime = realtime
        self.audio = audio
        self.threads = threads
        self.skim = skim
        self.max_side = max_side
        self.stream_id = stream_id
        self.stats = SourceStats()
        self._reader = _ReaderThread(FrameQueue(queue_size, drop_oldest=False))
        self._close_lock = threading.Lock()
        self.container = None
        self._probe()

    def _probe(self) -> None:
        """Open the file now, so a bad path fails before any work starts."""
        av = _av()
        if not os.path.exists(self.path):
            raise SourceError(f"no such file: {self.path!r}")
        if os.path.isdir(self.path):
            raise SourceError(f"{self.path!r} is a directory, not a video file")
        if os.path.getsize(self.path) == 0:
            raise SourceError(f"{self.path!r} is empty (0 bytes)")
        try:
            self.container = av.open(self.path, mode="r", timeout=10.0)
        except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
            raise SourceError(describe_av_error(self.path, e)) from None
        self.audio_only = not self.container.streams.video and bool(self.audio and self.container.streams.audio)
        if not self.container.streams.video and not self.audio_only:
            kinds = ", ".join(sorted({s.type for s in self.container.streams})) or "nothing"
            self.container.close()
            raise SourceError(f"{self.path!r} has no video or audio stream (it contains {kinds})")
        # audio-only recordings (a call, a podcast) become transcript-only memories on the audio clock
        vs = self.container.streams.audio[0] if self.audio_only else self.container.streams.video[0]
        self.has_audio = bool(self.audio and self.container.streams.audio)
        self.t_offset = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
        if vs.duration is not None:
            self.duration = float(vs.duration * vs.time_base)
        elif self.container.duration:
            self.duration = self.container.duration / 1_000_000
        else:
            self.duration = None

    def skip_audio(self) -> None:
        """Do not decode the audio track: nothing listens (a profile without speech recognition). Before reading
        starts; a file without video keeps its audio (it is all there is)."""
        if not self.audio_only and self._reader.thread is None:
            self.audio, self.has_audio = False, False

    def _convert(self, frame) -> np.ndarray:
        return to_rgb(frame, self.max_side)

    def _plan(self, vs) -> tuple[str, list]:
        """The decoder's skip setting and, when the file can be split, its segments (else [])."""
        keys = index_keyframes(vs)
        rate = float(vs.average_rate or vs.guessed_rate or 0) or None
        self._key_delay = key_delay(self.path) if keys and not self.realtime else 0
        times = key_times(keys, vs.time_base, self._key_delay, self.t_offset)
        cover = not self.exact and keyframes_cover(times, self.fps, self.start, self.duration)
        # GOP tails without a kept frame are not decoded (stream/keyframes.py GopTail); not in exact or realtime mode
        self._key_times = tuple(times) if self.fps and not (self.exact or self.realtime or self.skim) else ()
        skip = "DEFAULT" if self.realtime and not self.skim else skip_rule(self.fps, rate, cover, self.skim, self.exact)
        if self.realtime or self.workers < 2 or len(keys) < 2:
            return skip, []
        seek = int((self.start + self.t_offset) / vs.time_base) if self.start > 0 else None
        segs = plan_segments(keys, vs.time_base, self.t_offset, self.start, seek,
                             segment_span(self.duration, self.start, self.workers, self.fps, rate))
        return skip, (segs if len(segs) > 1 else [])

    def _note(self, text: str, t: float) -> None:
        """A way the video degraded: kept for the stream's notes and recorded as an event."""
        self.stats.notes.append(text)
        self._reader.queue.put(StreamEvent("error", t, time.time(), text))

    def _produce(self) -> None:
        if self.audio_only:
            return self._produce_audio_only()
        av = _av()
        c = self.container
        vs = c.streams.video[0]
        skip, segments = self._plan(vs)
        if segments:
            return self._produce_parallel(segments, skip)
        vs.thread_type = "AUTO"  # frame threading: several times faster for files
        vs.thread_count = self.threads  # explicit: unbounded threads have deadlocked beside torch
        vs.codec_context.skip_frame = skip
        sizes = SizeWatch()
        streams = [vs]
        aconv = None
        if self.has_audio:
            as_ = c.streams.audio[0]
            streams.append(as_)
            aconv = AudioConverter(self.t_offset)
        if self.start > 0:
            c.seek(int((self.start + self.t_offset) / vs.time_base), stream=vs, backward=True, any_frame=False)
        sampler = Sampler(self.fps, anchor=self.start) if self.fps else None
        tail = GopTail(list(self._key_times), sampler) if sampler is not None and self._key_times else None
        self._tail = tail
        q, tb = self._reader.queue, vs.time_base
        wall0 = time.time()
        pace0: Optional[float] = None
        stop = self._reader.stop_event
        try:
            for packet in c.demux(*streams):
                if stop.is_set():
                    break
                if packet.stream.type == "audio":
                    self._audio_packet(packet, aconv, q)
                    continue
                if tail is not None and tail.skip_packet(packet, tb, self.t_offset):
                    continue
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    continue  # one broken packet: skip it, keep the rest
                for frame in frames:
                    if frame.pts is None:
                        continue
                    t = pts_seconds(frame.pts, tb) - self.t_offset  # as the parallel decoder times it
                    if t < self.start - 1e-6:
                        continue
                    self.stats.frames_decoded += 1
                    keep = sampler is None or sampler.want(t)
                    if tail is not None:
                        tail.after(t)
                    if not keep:
                        continue
                    if self.realtime:
                        if pace0 is None:
                            pace0 = time.monotonic() - (t - self.start)
                        delay = pace0 + (t - self.start) - time.monotonic()
                        if delay > 0 and stop.wait(delay):
                            return
                    img = self._convert(frame)
                    note = sizes.see(img, t)
                    if note:
                        self._note(note, t)
                    if not q.put(Frame(img, t, wall0 + (t - self.start) if not self.realtime else time.time(), self.stream_id)):
                        return
                    self.stats.frames_out += 1
        except av.FFmpegError as e:
            if self.stats.frames_out == 0:
                raise SourceError(describe_av_error(self.path, e)) from None
            q.put(StreamEvent("error", self.stats.frames_out and t or 0.0, time.time(), f"decoding stopped early: {e}"))
        if aconv is not None:
            chunk = aconv.flush()
            if chunk is not None:
                q.put(chunk)
        if self.stats.frames_out == 0 and not stop.is_set():
            raise SourceError(f"{self.path!r} contains no decodable video frames")
        q.put(StreamEvent("eof", 0.0, time.time()))

    def _produce_parallel(self, segments: list, skip: str) -> None:
        """Video from keyframe-aligned segments decoded at once (stream/decode.py), audio from its own reader;
        items in media-time order through the bounded queue."""
        opts = DecodeOptions(self.path, self.t_offset, self.start, self.fps, self.max_side, skip=skip,
                             threads=max(1, (os.cpu_count() or 1) // self.workers), workers=self.workers,
                             key_delay=self._key_delay, key_times=self._key_times)
        q, stop = self._reader.queue, self._reader.stop_event
        dec = ParallelDecoder(opts, segments, stop)
        audio = _AudioFeed(self, stop) if self.has_audio else None
        sizes, wall0, t = SizeWatch(), time.time(), self.start
        try:
            for item in dec.frames():
                if isinstance(item, str):
                    self._note(item, t)
                    continue
                t, img = item
                for chunk in (audio.until(t) if audio else ()):
                    q.put(chunk)
                note = sizes.see(img, t)
                if note:
                    self._note(note, t)
                if not q.put(Frame(img, t, wall0 + (t - self.start), self.stream_id)):
                    return
                self.stats.frames_out += 1
                self.stats.frames_decoded = dec.decoded
            for chunk in (audio.until(float("inf")) if audio else ()):
                q.put(chunk)
        except RuntimeError as e:  # every decoder thread failed
            if self.stats.frames_out == 0:
                raise SourceError(f"cannot decode {self.path!r}: {e}") from None
            self._note(f"decoding stopped early: {e}", t)
        finally:
            dec.close()
            if audio is not None:
                audio.close()
        self.stats.frames_decoded = dec.decoded
        if self.stats.frames_out == 0 and not stop.is_set():
            raise SourceError(f"{self.path!r} contains no decodable video frames")
        q.put(StreamEvent("eof", 0.0, time.time()))

    def _audio_packet(self, packet, aconv: "AudioConverter", q: FrameQueue) -> None:
        """Decode one audio packet into chunks; a corrupt one is counted and skipped (the clip loses its sound only)."""
        av = _av()
        try:
            for frame in packet.decode():
                if frame.time is None or float(frame.time) - self.t_offset < self.start - 1e-6:
                    continue
                chunk = aconv.convert(frame)
                if chunk is not None:
                    q.put(chunk)
        except (av.FFmpegError, ValueError):
            self.stats.audio_errors += 1

    def _produce_audio_only(self) -> None:
        """Audio chunks on the media clock (paced in realtime mode); no frames."""
        av = _av()
        c = self.container
        as_ = c.streams.audio[0]
        if self.start > 0:
            c.seek(int((self.start + self.t_offset) / as_.time_base), stream=as_, backward=True, any_frame=False)
        aconv = AudioConverter(self.t_offset)
        q, stop = self._reader.queue, self._reader.stop_event
        pace0: Optional[float] = None
        chunks = 0
        t = 0.0
        try:
            for packet in c.demux(as_):
                if stop.is_set():
                    break
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    continue
                for frame in frames:
                    chunk = aconv.convert(frame)
                    if chunk is None or chunk.t + chunk.samples.size / 16000 <= self.start:
                        continue
                    t = chunk.t
                    if self.realtime:
                        pace0 = time.monotonic() - (t - self.start) if pace0 is None else pace0
                        delay = pace0 + (t - self.start) - time.monotonic()
                        if delay > 0 and stop.wait(delay):
                            return
                    if not q.put(chunk):
                        return
                    chunks += 1
        except av.FFmpegError as e:
            if chunks == 0:
                raise SourceError(describe_av_error(self.path, e)) from None
            q.put(StreamEvent("error", t, time.time(), f"decoding stopped early: {e}"))
        chunk = aconv.flush()
        if chunk is not None:
            q.put(chunk)
            chunks += 1
        if chunks == 0 and not stop.is_set():
            raise SourceError(f"{self.path!r} contains no decodable audio")
        q.put(StreamEvent("eof", 0.0, time.time()))

    def __iter__(self) -> Iterator[Item]:
        self._reader.start(self._produce)
        try:
            yield from self._reader.items()
        finally:
            self.close()

    def close(self) -> None:
        """Stop reading and free the file. Safe from any thread, any number of times (a signal handler and the
        consumer's own cleanup may race here): the container is taken once, and never freed under a reader
        that is still decoding after the join timeout (it is freed with that thread instead)."""
        self._reader.stop()
        with self._close_lock:
            container, self.container = self.container, None
        reader = self._reader.thread
        if container is None or (reader is not None and reader.is_alive() and reader is not threading.current_thread()):
            return
        try:
            container.close()
        except Exception:  # closing a half-read container must not mask the real error
            pass


class _AudioFeed:
    """A file's audio track read in its own thread and container (parallel video decoding), handed out in order
    up to a media time. Its queue is bounded: the reader waits for the consumer (files drop nothing)."""

    def __init__(self, src: FileSource, stop: threading.Event):
        self.src, self._outer = src, stop
        self.queue = FrameQueue(256, drop_oldest=False)
        self.pending: Optional[AudioChunk] = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="vigil-audio")
        self.thread.start()

    def _run(self) -> None:
        av, c = _av(), None
        try:
            c = av.open(self.src.path, mode="r")
            as_ = c.streams.audio[0]
            if self.src.start > 0:
                c.seek(int((self.src.start + self.src.t_offset) / as_.time_base), stream=as_, backward=True,
                       any_frame=False)
            aconv = AudioConverter(self.src.t_offset)
            for packet in c.demux(as_):
                if self._stop.is_set():
                    return
                self.src._audio_packet(packet, aconv, self.queue)
            chunk = aconv.flush()
            if chunk is not None:
                self.queue.put(chunk)
        except Exception as e:  # the video goes on; the transcript has a gap from here
            self.src.stats.audio_errors += 1
            log.info("audio of %s stopped early: %s", public_url(self.src.path), e)
        finally:
            self.queue.close()
            if c is not None:
                c.close()  # only this thread ever used it

    def until(self, t: float) -> Iterator[AudioChunk]:
        """Chunks that start at or before media time t."""
        while True:
            if self.pending is None:
                try:
                    self.pending = self.queue.get(timeout=0.5)
                except TimeoutError:
                    if self._outer.is_set():
                        return
                    continue
                except Closed:
                    return
            if self.pending.t > t:
                return
            chunk, self.pending = self.pending, None
            yield chunk

    def close(self, join: float = 10.0) -> None:
        self._stop.set()
        self.queue.close()
        if self.thread is not threading.current_thread():
            self.thread.join(join)


