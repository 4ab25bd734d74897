"""One encoder worker per device: frames of every running stream, batched, through the vision tower once per batch.

A pipeline submits one clip's frames and gets a future of that clip's TokenGrid; it consumes its futures in the
order it submitted them, so each stream's reducer, clipper and evidence state stay its own and in order while the
GPU sees batches built from all streams. A batch closes when it holds `max_frames` frames, or `linger` (live, 10 ms)
or `file_linger` (files, 0.25 s: a batch costs a fixed ~60 ms on the H200 beside 16 decoder threads, so a file that
comes in slowly is better encoded in fewer, fuller batches) after a request came in; live requests go first, and while live streams run every batch is kept to what the
device encodes in `live_batch_s` (0.2 s), so a live frame waits for at most the batch in progress plus its own
(target ≤ 0.5 s). A GPU out-of-memory error splits the batch in halves and
retries them (and later batches stay that small); it is counted and noted.

On the CPU (the lite EfficientNet path) there is nothing to batch for: each clip is encoded as it is submitted, on
one thread of the worker's own (`vigil-encode`), while the pipeline's store thread reads the screen and embeds the
text of the clips before it (encoded lazily in the store thread instead, a dense-slide meeting took 22.4 s in place
of 20.5 s on 2 cores).

Frames of one request must share one size; requests of another size go into another batch. Encoders with a
temporal patch (Qwen: 2 frames per time step) get each clip padded to whole steps by repeating its last frame,
which is what the encoder does to an odd clip on its own, so batched grids equal unbatched ones.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch

from reducers.base import TokenGrid

log = logging.getLogger("vigil.encoder")

GRID_FIELDS = ("tokens", "saliency", "frame_keys", "logits")


def is_oom(err: BaseException) -> bool:
    """A device out-of-memory error (torch's class, or the RuntimeError older kernels raise)."""
    return isinstance(err, torch.OutOfMemoryError) or \
        (isinstance(err, RuntimeError) and "out of memory" in str(err).lower())


def wants_batching(encoder) -> bool:
    """Batch across streams on CUDA encoders; VIGIL_BATCH=0/1 forces it off/on. A lazy encoder (the lite profile's)
    is never loaded just to be asked: its device is not in its own attributes, so it passes through."""
    force = os.environ.get("VIGIL_BATCH", "")
    if force in ("0", "1"):
        return force == "1"
    dev = vars(encoder).get("device") if hasattr(encoder, "__dict__") else None
    return isinstance(dev, torch.device) and dev.type == "cuda"


def cat_grids(grids: Sequence[TokenGrid]) -> TokenGrid:
    """TokenGrids of one space and grid size, concatenated along time."""
    if len(grids) == 1:
        return grids[0]
    first = grids[0]
    parts = {}
    for name in GRID_FIELDS:
        xs = [getattr(g, name) for g in grids]
        parts[name] = None if any(x is None for x in xs) else torch.cat([x.to(xs[0].device) for x in xs], 0)
    return TokenGrid(hw=first.hw, space=first.space, **parts)


def slice_grid(grid: TokenGrid, a: int, b: int) -> TokenGrid:
    """Time steps [a, b) of a grid."""
    return TokenGrid(hw=grid.hw, space=grid.space,
                     **{n: None if getattr(grid, n) is None else getattr(grid, n)[a:b] for n in GRID_FIELDS})


def pad_to_steps(frames, patch: int):
    """Frames (a list, or a [T, H, W, 3] tensor) padded to whole `patch`-frame time steps by repeating the last."""
    extra = (-len(frames)) % patch
    if not extra:
        return frames
    if isinstance(frames, torch.Tensor):
        return torch.cat([frames, frames[-1:].expand(extra, *frames.shape[1:])])
    return frames + [frames[-1]] * extra


def join(parts: list):
    """Requests' frames as one batch: tensors concatenated on their device, lists chained."""
    if isinstance(parts[0], torch.Tensor):
        return torch.cat(parts) if len(parts) > 1 else parts[0]
    return [f for p in parts for f in p]


@dataclass
class _Request:
    frames: object               # a list of arrays, or a uint8 [T, H, W, 3] tensor already on the device
    steps: int
    live: bool
    t: float
    future: Future
    shape: tuple
    ready: object = None         # a CUDA event recorded after the frames' upload (on the submitter's stream)


@dataclass
class WorkerStats:
    batches: int = 0
    frames: int = 0              # frames encoded (with step padding)
    requests: int = 0
    largest: int = 0
    oom_splits: int = 0
    busy_s: float = 0.0          # seconds spent in encode calls
    gpu_s: float = 0.0           # of which the device worked on its stream (CUDA events)
    live_waits: deque = field(default_factory=lambda: deque(maxlen=20000))   # submit -> tokens, live requests
    file_waits: deque = field(default_factory=lambda: deque(maxlen=20000))
    notes: list = field(default_factory=list)

    def add(self, frames: int, requests: int) -> None:
        """Count one encoded batch."""
        self.batches, self.frames, self.requests = self.batches + 1, self.frames + frames, self.requests + requests
        self.largest = max(self.largest, frames)

    def summary(self) -> dict:
        def q(xs, p):
            xs = sorted(xs)
            return round(xs[min(len(xs) - 1, int(p * len(xs)))], 3) if xs else None
        return {"batches": self.batches, "frames": self.frames, "requests": self.requests, "largest": self.largest,
                "mean_batch": round(self.frames / max(1, self.batches), 1), "oom_splits": self.oom_splits,
                "busy_s": round(self.busy_s, 2), "gpu_s": round(self.gpu_s, 2), "live_wait_p50": q(self.live_waits, 0.5),
                "live_wait_max": q(self.live_waits, 1.0), "file_wait_p50": q(self.file_waits, 0.5),
                "file_wait_max": q(self.file_waits, 1.0)}


class EncoderWorker:
    """Batches encode requests of every stream for one encoder (see the module docstring)."""

    LIVE_HOLD_S = 5.0   # a live request seen this recently keeps batches small enough for it

    def __init__(self, encoder, *, batch: Optional[bool] = None, max_frames: int = 128, live_frames: int = 64,
                 linger: float = 0.01, file_linger: float = 0.25, live_batch_s: float = 0.2):
        self.encoder = encoder
        self.batching = wants_batching(encoder) if batch is None else bool(batch)
        # (the pass-through never asks: a lazy encoder would load on the question)
        self.patch = max(1, int(getattr(encoder, "temporal_patch", 1) or 1)) if self.batching else 1
        # an encoder that takes frames as a device tensor gets each clip uploaded by its submitter's thread, so the
        # worker's thread only launches the tower (no host copies between batches)
        dev = vars(encoder).get("device") if self.batching and hasattr(encoder, "__dict__") else None
        self.upload = dev if isinstance(dev, torch.device) and dev.type == "cuda" and \
            getattr(encoder, "accepts_tensors", False) else None
        # the tower runs on a CUDA stream of its own: the pipelines' small reducer kernels and copies (on the default
        # stream) then never queue behind a whole batch, nor a batch behind them. The grids it hands out are
        # complete (encode ends with a device-to-host copy of the keys, which waits for this stream).
        self.cuda_stream = torch.cuda.Stream(device=dev) if isinstance(dev, torch.device) and dev.type == "cuda" \
            else None
        self.max_frames = max(self.patch, int(max_frames))
        self.live_frames = max(self.patch, int(live_frames))
        self.linger = float(linger)            # a live request waits at most this long for others to join it
        self.file_linger = max(self.linger, float(file_linger))   # a file's: fuller batches, fewer fixed costs
        self.live_batch_s = float(live_batch_s)
        self._rate = 0.0               # frames/s of recent batches (EMA), to size batches while live streams run
        self._live_seen = -1e9
        self.stats = WorkerStats()
        self._pending: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._cpu: Optional[ThreadPoolExecutor] = None   # the pass-through's thread (no batching)
        self._closed = False
        self.compiled = False
        if self.batching and os.environ.get("VIGIL_COMPILE", "") == "1":
            self.compile()
        # uploads go on a stream of their own: on the default stream a pageable copy would also wait for whatever
        # else is queued there
        self.upload_stream = torch.cuda.Stream(device=dev) if self.upload is not None else None
        # the tower as CUDA graphs at a few batch sizes (one launch per batch), VIGIL_CUDA_GRAPHS=1: off by default,
        # as measured on the H200 it did not pay (bench/RESULTS.md, issue 14)
        use = getattr(encoder, "use_graphs", None) if self.cuda_stream is not None else None
        self.graphs = bool(use is not None and os.environ.get("VIGIL_CUDA_GRAPHS", "0") == "1" and use())

    def compile(self) -> bool:
        """torch.compile the encoder's vision path where it has one (LLaVA-OV's lean tower); errors fall back to
        eager. The attention-saliency hook is switched off first: traced, its Python loop over the batch pins every
        batch size to a compilation of its own (reducers that rank by saliency then use their own fallback, and a
        note says so). True when compiled."""
        fn = getattr(self.encoder, "compile", None)
        if fn is None or self.compiled:
            return self.compiled
        import torch._dynamo

        torch._dynamo.config.suppress_errors = True   # a graph that cannot compile runs eagerly
        if getattr(self.encoder, "want_saliency", False):
            self.encoder.want_saliency = False
            self.stats.notes.append("compiled encoder (VIGIL_COMPILE=1): no attention saliency; reducers that rank "
                                    "tokens by it use their fallback")
        fn(dynamic=True)
        self.compiled = True
        return True

    def warm_up(self, frames: int = 8, side: int = 384) -> float:
        """Encode grey frames at two batch sizes (a compiled encoder compiles now, not on a live stream's first
        clip; the second size makes its batch dimension dynamic, so later sizes reuse it); returns the seconds."""
        t = time.monotonic()
        for n in (frames, frames // 2 + self.patch):
            self.encode([np.full((side, side, 3), 128, np.uint8)] * max(self.patch, n))
        capture = getattr(self.encoder, "capture_graphs", None)
        if self.graphs and capture is not None:
            with torch.cuda.stream(self.cuda_stream):
                capture()
        return time.monotonic() - t

    @property
    def inflight_frames(self) -> int:
        """How many frames a pipeline may have submitted and not consumed: enough for full batches behind the one
        running when batching; some clips on the pass-through (frames wait in memory)."""
        return 4 * self.max_frames if self.batching else 32

    def submit(self, frames: Sequence[np.ndarray], *, live: bool = False):
        """A future of these frames' TokenGrid (`.result()`, `.done()`)."""
        frames = list(frames)
        if not frames:
            raise ValueError("submit() got no frames")
        if not self.batching:
            return self._ahead().submit(self._encode_one, frames)
        fut: Future = Future()
        shape = tuple(np.shape(frames[0]))
        n = len(frames)
        ready = None
        if self.upload is not None:
            with torch.cuda.stream(self.upload_stream):
                frames = self._to_device(frames, shape)
                ready = torch.cuda.Event()
                ready.record()   # the worker's stream waits for it
        req = _Request(frames, -(-n // self.patch), bool(live), time.monotonic(), fut, shape, ready)
        with self._cond:
            if self._closed:
                raise RuntimeError("the encoder worker is closed")
            if live:
                self._live_seen = req.t
            self._pending.append(req)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="vigil-encoder")
                self._thread.start()
            self._cond.notify_all()
        return fut

    def _ahead(self) -> ThreadPoolExecutor:
        """The pass-through's one thread (started on the first clip)."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the encoder worker is closed")
            if self._cpu is None:
                self._cpu = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigil-encode")
            return self._cpu

    def _encode_one(self, frames: list) -> TokenGrid:
        t = time.monotonic()
        grid = self.encoder.encode(frames)
        self.stats.busy_s += time.monotonic() - t
        self.stats.add(len(frames), 1)
        return grid

    def _to_device(self, frames: list, shape: tuple) -> torch.Tensor:
        """One clip's uint8 frames in one device tensor, copied frame by frame (no host-side stack)."""
        x = torch.empty((len(frames), *shape), dtype=torch.uint8, device=self.upload)
        for i, f in enumerate(frames):
            x[i].copy_(torch.from_numpy(np.ascontiguousarray(f)))
        return x

    def encode(self, frames: Sequence[np.ndarray]) -> TokenGrid:
        """Encoder protocol through the worker (one request, waited for)."""
        return self.submit(frames).result()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(10)
        if self._cpu is not None:
            self._cpu.shutdown(wait=False, cancel_futures=True)

    # ---- the worker thread ---------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            self._run(batch)

    def _cap(self) -> int:
        """Frames per batch: max_frames, or while live streams run, what the device encodes in `live_batch_s`
        (live_frames until a rate is known), so a live clip waits for at most two such batches."""
        if time.monotonic() - self._live_seen > self.LIVE_HOLD_S:
            return self.max_frames
        want = int(self._rate * self.live_batch_s) if self._rate else self.live_frames
        return max(self.patch, min(self.max_frames, want))

    def _ready(self) -> bool:
        """A batch is due: enough frames, or the oldest request lingered long enough, or closing."""
        if self._closed:
            return True
        if sum(r.steps for r in self._pending) * self.patch >= self._cap():
            return True
        return time.monotonic() >= self._due()

    def _due(self) -> float:
        """When the pending requests' batch is due: the earliest of their lingers' ends."""
        return min(r.t + (self.linger if r.live else self.file_linger) for r in self._pending)

    def _take(self) -> Optional[list[_Request]]:
        """The next batch: live requests first, then the oldest, all of one frame size, up to the cap."""
        with self._cond:
            while True:
                if not self._pending:
                    if self._closed:
                        return None
                    self._cond.wait()
                    continue
                if self._ready():
                    break
                self._cond.wait(max(1e-3, self._due() - time.monotonic()))
            order = sorted(self._pending, key=lambda r: (not r.live, r.t))
            cap = self._cap()
            shape, batch, n = order[0].shape, [], 0
            for r in order:
                if r.shape != shape:
                    continue
                if batch and n + r.steps * self.patch > cap:
                    break
                batch.append(r)
                n += r.steps * self.patch
            taken = {id(r) for r in batch}
            self._pending = deque(r for r in self._pending if id(r) not in taken)
            return batch

    def _run(self, batch: list[_Request]) -> None:
        t0 = time.monotonic()
        try:
            if self.cuda_stream is not None:
                with torch.cuda.stream(self.cuda_stream):
                    for r in batch:
                        if r.ready is not None:
                            self.cuda_stream.wait_event(r.ready)
                            r.frames.record_stream(self.cuda_stream)  # not reused by the submitter's stream too soon
                    ev = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    ev[0].record()
                    grid = self._encode(join([pad_to_steps(r.frames, self.patch) for r in batch]))
                    ev[1].record()
                    ev[1].synchronize()
                    self.stats.gpu_s += ev[0].elapsed_time(ev[1]) / 1e3
            else:
                grid = self._encode(join([pad_to_steps(r.frames, self.patch) for r in batch]))
        except BaseException as e:  # noqa: BLE001 - handed to every waiting pipeline
            for r in batch:
                r.future.set_exception(e)
            return
        finally:
            self.stats.busy_s += time.monotonic() - t0
        n_frames = sum(r.steps for r in batch) * self.patch
        dt = time.monotonic() - t0
        if n_frames >= 8 and dt > 0:
            r = n_frames / dt
            self._rate = r if not self._rate else 0.8 * self._rate + 0.2 * r
        s = self.stats
        s.add(n_frames, len(batch))
        off, now = 0, time.monotonic()
        for r in batch:
            r.future.set_result(slice_grid(grid, off, off + r.steps))
            off += r.steps
            (s.live_waits if r.live else s.file_waits).append(now - r.t)

    def _encode(self, frames: list) -> TokenGrid:
        """Encode, splitting in halves (whole time steps) and retrying when the device runs out of memory."""
        try:
            return self.encoder.encode(frames)
        except BaseException as e:
            if not is_oom(e) or len(frames) <= self.patch:
                raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = max(self.patch, (len(frames) // 2) // self.patch * self.patch)
        self.stats.oom_splits += 1
        self.max_frames = max(self.patch, min(self.max_frames, half))
        self.live_frames = min(self.live_frames, self.max_frames)
        self._rate = 0.0
        note = f"the GPU ran out of memory on a batch of {len(frames)} frames: split and retried " \
               f"(batches now ≤ {self.max_frames} frames)"
        log.warning(note)
        self.stats.notes = [n for n in self.stats.notes if not n.startswith("the GPU ran out")] + [note]
        return cat_grids([self._encode(frames[:half]), self._encode(frames[half:])])


_WORKERS: dict[int, EncoderWorker] = {}
_LOCK = threading.Lock()


def worker_for(encoder) -> EncoderWorker:
    """The one worker of an encoder (a loaded profile's encoder is shared by every stream and engine of the
    process, so its device gets one worker)."""
    with _LOCK:
        w = _WORKERS.get(id(encoder))
        if w is None or w.encoder is not encoder:
            w = _WORKERS[id(encoder)] = EncoderWorker(encoder)
        return w
