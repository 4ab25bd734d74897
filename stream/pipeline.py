"""The ingest pipeline of one stream: Source -> Clipper -> Encoder -> Reducer -> MemoryBank.

It knows models only through their protocols (models/base.py) and reducers only by name.
Run it in the caller's thread (`run()`) or in the background (`start()` / `stop()`).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from memory.bank import MemoryBank, encode_jpeg
from memory.carriers import to_record
from memory.textkeys import key_texts
from reducers import get_reducer

from .batcher import EncoderWorker, worker_for
from .clipper import Clipper
from .queues import Closed, FrameQueue
from .sources import SourceError
from .types import AudioChunk, Clip, Frame, StreamEvent

log = logging.getLogger("vigil.pipeline")


_END = object()   # the reader's last item for the store thread
# thumbnails (a resize and a JPEG each, ~5 ms a 720p frame) are made beside the store thread: PIL releases the GIL
_THUMBS = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2), thread_name_prefix="vigil-thumb")


def text_keys(embedder, evidences: list[dict]) -> list[dict[str, np.ndarray]]:
    """Each evidence dict's text keys (memory.textkeys: the whole and each part), embedded in one call."""
    texts = [key_texts(ev) for ev in evidences]
    flat = [(i, f"{prefix}:{embedder.space}", t) for i, kt in enumerate(texts) for prefix, t in kt.items()]
    out: list[dict[str, np.ndarray]] = [{} for _ in evidences]
    if flat:
        for (i, space, _), v in zip(flat, embedder.encode([t for *_, t in flat])):
            out[i][space] = v
    return out


class Inflight:
    """Frames a stream has submitted and not stored yet, bounded (a clip larger than the bound still goes alone)."""

    def __init__(self, limit: int):
        self.limit, self.n = max(1, limit), 0
        self._cond = threading.Condition()

    def acquire(self, n: int, abandon: Callable[[], bool]) -> bool:
        with self._cond:
            while self.n > 0 and self.n + n > self.limit:
                if abandon():
                    return False
                self._cond.wait(0.5)
            self.n += n
            return True

    def release(self, n: int) -> None:
        with self._cond:
            self.n = max(0, self.n - n)
            self._cond.notify_all()


class EvidenceExtractor(Protocol):
    """Text evidence for a clip: returns any of {"asr", "ocr", "tags"} and "screen" (what the screen showed: its
    title and headings; context for the clip's speech, not quoted). May keep state across clips."""

    def __call__(self, clip: Clip, grid: Any) -> dict: ...


@dataclass
class IngestConfig:
    fps: float = 1.0
    clip_seconds: float = 2.0
    reducer: str = "pool2d"
    budget: int = 32
    scene_cut: Optional[float] = 0.25
    duration: Optional[float] = None  # stop after this many media seconds
    carrier_dtype: str = "float16"     # stored carrier tokens: float16 (half the disk) or float32 (bit-exact)


@dataclass
class IngestStats:
    frames_in: int = 0
    frames_sampled: int = 0
    dropped: int = 0
    clips: int = 0
    memories: int = 0
    last_t: float = 0.0
    started: float = field(default_factory=time.time)
    state: str = "starting"
    error: Optional[str] = None
    reconnects: int = 0
    connected: bool = False
    fps_in: float = 0.0
    fps_out: float = 0.0
    latest_memory: Optional[int] = None
    notes: list = field(default_factory=list)  # how the stream degraded (no audio, no speech, corrupt audio ...)

    def as_dict(self) -> dict:
        return asdict(self)


class IngestPipeline:
    """One stream's ingestion. Everything it stores is acknowledged by the bank before it counts it.

    Two threads: the reader (`run()`: source -> clipper -> submit each clip's frames to the encoder worker, which
    batches them with other streams' frames) and the store thread (in submission order: tokens -> reducer ->
    evidence -> records, stored with group commit: one `bank.add_many` per batch of clips, closed at
    `commit_max` clips, after `commit_wait` seconds, or as soon as nothing more is ready). A memory is acknowledged
    when its batch commits; evidence attachment, watches and alerts (`on_clip`) run after that commit."""

    def __init__(self, source, bank: MemoryBank, encoder, *, stream_id: str, config: IngestConfig = IngestConfig(),
                 evidence: Optional[list[EvidenceExtractor]] = None, text_embedder=None, key_encoder=None,
                 source_label: str = "", on_clip: Optional[Callable[[int, Clip], None]] = None,
                 worker: Optional[EncoderWorker] = None, commit_max: int = 64, commit_wait: float = 0.5):
        self.source = source
        self.bank = bank
        self.encoder = encoder
        self.worker = worker if worker is not None else worker_for(encoder)
        self.key_encoder = key_encoder
        self.stream_id = stream_id
        self.cfg = config
        self.evidence = evidence or []
        self.text_embedder = text_embedder
        self.reduce = get_reducer(config.reducer)
        self.stats = IngestStats()
        self.on_clip = on_clip
        self.on_evidence: Optional[Callable[[int, dict], None]] = None  # late evidence attached to a memory
        self.latest_frame: Optional[np.ndarray] = None
        self.commit_max, self.commit_wait = max(1, int(commit_max)), float(commit_wait)
        self.commits = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._state = None  # reducer state across clips
        self._prev_key: Optional[torch.Tensor] = None
        self._live = bool(getattr(source, "live", False) or getattr(source, "realtime", False))
        self._inflight = Inflight(self.worker.inflight_frames)
        self._store_error: Optional[BaseException] = None
        self.audio_only = bool(getattr(source, "audio_only", False))
        if self.audio_only and not any(hasattr(ex, "asr") for ex in self.evidence):
            raise SourceError(f"{source_label or stream_id!r} has no video stream, and this profile has no speech "
                              "recognition to make transcript-only memories (use the default lite profile)")
        if not self._live:  # a file: speech recognition in full windows (throughput; nobody waits on a sentence)
            for ex in self.evidence:
                if callable(getattr(getattr(ex, "asr", None), "for_files", None)):
                    ex.asr.for_files()
        if not self.audio_only and not any(hasattr(ex, "asr") for ex in self.evidence):
            skip = getattr(source, "skip_audio", None)   # no speech recognition: a file's audio is not decoded
            if callable(skip):                            # (an hour of AAC is 170k packets through Python)
                skip()
        self.clipper = Clipper(config.clip_seconds, scene_cut=config.scene_cut,
                               wait_audio=bool(getattr(source, "has_audio", False)) and not getattr(source, "live", False),
                               stream=stream_id, audio_only=self.audio_only)
        bank.add_stream(stream_id, source_label, {"fps": config.fps, "clip_seconds": config.clip_seconds,
                                                  "reducer": config.reducer, "budget": config.budget,
                                                  "encoder": getattr(encoder, "space", "")})

    # ---- control -----------------------------------------------------------------------------

    def start(self) -> "IngestPipeline":
        self._thread = threading.Thread(target=self._run_safe, daemon=True, name=f"vigil-ingest-{self.stream_id}")
        self._thread.start()
        return self

    def stop(self, wait: float = 15.0) -> None:
        """Stop reading, store the clip in progress, flush the bank."""
        self._stop.set()
        close = getattr(self.source, "close", None)
        if close is not None:
            close()
        if self._thread is not None:
            self._thread.join(wait)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run_safe(self) -> None:
        try:
            self.run()
        except Exception as e:  # background: keep the reason for the UI instead of dying silently
            self.stats.state, self.stats.error = "error", str(e)
            log.debug("ingest %s failed", self.stream_id, exc_info=True)

    # ---- the reader ----------------------------------------------------------------------------

    def run(self) -> IngestStats:
        self.stats.state = "running"
        self._queue = FrameQueue(1 << 16, drop_oldest=False)   # bounded by frames in flight (Inflight), not here
        store = threading.Thread(target=self._store_loop, daemon=True, name=f"vigil-store-{self.stream_id}")
        store.start()
        t_first: Optional[float] = None
        rate_t, rate_in, rate_out = time.monotonic(), 0, 0
        try:
            for item in self.source:
                if self._stop.is_set() or self._store_error is not None:
                    break
                if isinstance(item, StreamEvent):
                    self._on_event(item)
                    continue
                if isinstance(item, Frame):
                    if t_first is None:
                        t_first = item.t
                    if self.cfg.duration is not None and item.t - t_first >= self.cfg.duration:
                        break
                    self.stats.frames_sampled += 1
                    self.stats.last_t = item.t
                    self.latest_frame = item.image
                elif isinstance(item, AudioChunk) and self.audio_only:  # the audio clock drives progress
                    t_first = item.t if t_first is None else t_first
                    if self.cfg.duration is not None and item.t - t_first >= self.cfg.duration:
                        break
                    self.stats.last_t = item.t + item.samples.size / item.rate
                self.clipper.insert(item)
                for clip in self.clipper.process():
                    self._submit(clip)
                src = getattr(self.source, "stats", None)
                if src is not None:
                    self.stats.frames_in = src.frames_decoded
                    self.stats.dropped = src.dropped
                    self.stats.reconnects = src.reconnects
                    self.stats.connected = src.connected
                now = time.monotonic()
                if now - rate_t >= 1.0:
                    self.stats.fps_in = (self.stats.frames_in - rate_in) / (now - rate_t)
                    self.stats.fps_out = (self.stats.frames_sampled - rate_out) / (now - rate_t)
                    rate_t, rate_in, rate_out = now, self.stats.frames_in, self.stats.frames_sampled
        finally:
            try:
                # a file read to its end: the last clip runs to the file's end; a stopped one ends at its last
                # frame, so a later run resumes right after what was stored
                end = None if getattr(self.source, "live", False) or self._stop.is_set() else \
                    getattr(self.source, "duration", None)
                if self.cfg.duration is not None and t_first is not None:
                    end = min(end or 1e18, t_first + self.cfg.duration)
                if self._store_error is None:
                    for clip in self.clipper.finish(end=end):
                        self._submit(clip)
            finally:
                self._queue.put(_END)
                store.join()
            if self._store_error is not None:
                raise self._store_error
            self.bank.flush(force=True)
            self.stats.notes = self._notes(final=True)
            if self.stats.state == "running":
                self.stats.state = "stopped" if self._stop.is_set() else "finished"
        return self.stats

    def _submit(self, clip: Clip) -> None:
        """Hand a clip's frames to the encoder worker and queue it for the store thread (waits while this stream
        has too many frames in flight: files apply back-pressure, live sources drop at their own queue)."""
        n = len(clip.frames)
        if not self._inflight.acquire(n, lambda: self._store_error is not None):
            return
        fut = self.worker.submit([f.image for f in clip.frames], live=self._live) if n else None
        self._queue.put((clip, fut, time.monotonic()))

    # ---- the store thread ----------------------------------------------------------------------

    def _store_loop(self) -> None:
        buf: list[tuple[dict, Clip]] = []
        t_buf = 0.0
        try:
            while True:
                try:
                    item = self._queue.get(None if not buf else max(0.0, t_buf + self.commit_wait - time.monotonic()))
                except TimeoutError:
                    buf = self._commit(buf)
                    continue
                if item is _END:
                    break
                clip, fut, _ = item
                if buf and fut is not None and not fut.done():
                    buf = self._commit(buf)   # what is ready does not wait for the next batch's tokens
                rec = self._record(clip, fut)
                self._inflight.release(len(clip.frames))
                if not buf:
                    t_buf = time.monotonic()
                buf.append((rec, clip))
                if len(buf) >= self.commit_max or time.monotonic() - t_buf >= self.commit_wait or not len(self._queue):
                    buf = self._commit(buf)
            buf = self._commit(buf)
            # streaming extractors (ASR) may hold text for the last clips
            self._attach([x for ex in self.evidence if hasattr(ex, "finish") for x in ex.finish()])
        except BaseException as e:  # noqa: BLE001 - raised again by run() in the reader's thread
            self._store_error = e
            self._inflight.release(1 << 30)
            while True:  # release a reader blocked on submit
                try:
                    self._queue.get(0)
                except (TimeoutError, Closed):
                    break

    def _record(self, clip: Clip, fut) -> dict:
        """One clip's memory as bank.add_many's dict (its text key is added at commit, batched)."""
        evidence: dict = {}
        if fut is None:  # a clip with no pictures (audio-only source): evidence and text key only
            for ex in self.evidence:
                evidence.update({k: v for k, v in ex(clip, None).items() if v})
            return dict(stream=self.stream_id, t0=clip.t0, t1=clip.t1, wall=clip.wall or time.time(), carrier=None,
                        keys={}, reducer="", budget=0, space="", evidence=evidence)
        grid = fut.result()
        images = [f.image for f in clip.frames]
        grid.times = torch.tensor([f.t for f in clip.frames])
        carrier, self._state = self.reduce(grid, self.cfg.budget, state=self._state)
        carrier = carrier.time_order()
        keys: dict[str, np.ndarray] = {}
        fk = self.key_encoder.encode_images(images) if self.key_encoder is not None else grid.frame_keys
        key_space = getattr(self.key_encoder or self.encoder, "key_space", getattr(self.encoder, "space", "visual"))
        clip_key = None
        if fk is not None:
            clip_key = F.normalize(F.normalize(fk.float(), dim=-1).mean(0), dim=0).cpu()
            keys[key_space] = clip_key.numpy()
        novelty = None
        if clip_key is not None:
            novelty = 1.0 if self._prev_key is None else float(1 - torch.dot(clip_key, self._prev_key))
            self._prev_key = clip_key
        for ex in self.evidence:
            evidence.update({k: v for k, v in ex(clip, grid).items() if v})
        return dict(stream=self.stream_id, t0=clip.t0, t1=clip.t1, wall=clip.wall, carrier=to_record(
            carrier, self.cfg.carrier_dtype), keys=keys, reducer=self.cfg.reducer, budget=self.cfg.budget,
            space=getattr(self.encoder, "space", ""), thumbnail=_THUMBS.submit(encode_jpeg, images[len(images) // 2]),
            novelty=novelty, evidence=evidence, steps=int(grid.T))

    def _commit(self, buf: list[tuple[dict, Clip]]) -> list:
        """Store a batch of clips in one transaction; then count them and run what follows a stored memory."""
        if not buf:
            return []
        self._text_keys([r for r, _ in buf])
        for r, _ in buf:
            if r.get("thumbnail") is not None and not isinstance(r["thumbnail"], bytes):
                r["thumbnail"] = r["thumbnail"].result()
        ids = self.bank.add_many([r for r, _ in buf])
        self.commits += 1
        for mid, (_, clip) in zip(ids, buf):
            self.stats.clips += 1
            self.stats.memories += 1
            self.stats.latest_memory = mid
            for ex in self.evidence:  # lagging extractors (ASR) learn every id before handing back late text
                if hasattr(ex, "stored"):
                    ex.stored(mid, clip)
        self._attach([x for ex in self.evidence for x in (ex.late() if hasattr(ex, "late") else [])])
        self.stats.notes = self._notes()  # live notes for the UI (final ones at the end of run())
        if self.on_clip is not None:
            for mid, (_, clip) in zip(ids, buf):
                self.on_clip(mid, clip)
        return []

    def _text_keys(self, records: list[dict]) -> None:
        """The text keys of every record with text evidence, embedded in one call."""
        if self.text_embedder is None:
            return
        for r, keys in zip(records, text_keys(self.text_embedder, [r["evidence"] for r in records])):
            r["keys"].update(keys)

    # speech recognition lags the clips: "no speech" is only said of a running stream after this much audio
    SPEECH_NOTE_AFTER_S = 60.0

    def _notes(self, final: bool = False) -> list[str]:
        """One line per way this stream degraded, for the CLI and the UI. Nothing is said about the memories'
        evidence before there are memories (a stream that failed to start has no transcript to explain), and a
        running stream is not said to lack speech before its speech recognition had a minute of audio."""
        notes = ["no video stream: stored transcript-only memories"] if self.audio_only else []
        notes += self.worker.stats.notes
        src_notes = list(getattr(getattr(self.source, "stats", None), "notes", None) or [])
        notes += src_notes  # how the video degraded: stretches that could not be decoded, size changes
        if self.clipper.size_changes and not any(n.startswith("frame size changed") for n in src_notes):
            t, a, b = self.clipper.size_changes[-1]
            notes.append(f"the picture changed size ({a[1]}x{a[0]} to {b[1]}x{b[0]} at {t:.1f} s): a new clip starts "
                         "at each change")
        bad_audio = getattr(getattr(self.source, "stats", None), "audio_errors", 0)
        if bad_audio:
            notes.append(f"{bad_audio} audio packets could not be decoded (corrupt audio track): the transcript has gaps")
        if self.stats.memories == 0:
            return notes
        for ex in self.evidence:
            for n in getattr(ex, "notes", lambda: [])():
                if bad_audio and n.startswith("no audio track"):
                    continue  # there is one; it is corrupt
                if not final and n.startswith("no transcript") and \
                        getattr(ex, "audio_seconds", 0) < self.SPEECH_NOTE_AFTER_S:
                    continue  # too early to tell
                notes.append(n)
        return notes

    def _on_event(self, ev: StreamEvent) -> None:
        if ev.kind in ("gap", "disconnected", "error", "connected"):
            self.bank.add_event(self.stream_id, ev.kind, ev.t, ev.wall, ev.detail)

    def _attach(self, late: list[tuple[int, dict]]) -> None:
        """Evidence that came after its memories were stored (speech recognized later, a slide read late), with
        the memories' new text keys (the whole and each part) embedded in one call."""
        merged: dict[int, dict] = {}
        for mid, ev in late:
            merged.setdefault(mid, {}).update(ev)
        keys: dict[int, dict] = {}
        if self.text_embedder is not None and merged:
            have = {m.id: m.evidence for m in self.bank.get(list(merged))}
            mids = [mid for mid in merged if mid in have]
            new = text_keys(self.text_embedder, [{**have[mid], **merged[mid]} for mid in mids])
            keys = {mid: k for mid, k in zip(mids, new) if k}
        for mid, ev in merged.items():
            self.bank.set_evidence(mid, ev, keys.get(mid))
            if self.on_evidence is not None:
                self.on_evidence(mid, ev)
