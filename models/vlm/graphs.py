"""A batch function run as CUDA graphs captured at a few batch sizes: one launch per batch instead of hundreds.

The vision tower's kernels are launched one by one from Python; beside a parallel decoder (16 threads that want the
GIL and the cores) each launch waits, and a batch cost a fixed ~60 ms on the H200 whatever its size. A graph
replays the whole tower with one call. Batches are padded up to the next captured size (rows of zeros, whose
outputs are dropped: the rows of a batch do not interact in a vision tower), larger ones run in chunks.

    g = GraphedBatches(fn, sizes=(8, 16, 32))      # fn: [B, *item] -> [B, *out] (or a tuple of such / None)
    y = g(x)                                        # x: [B, *item] on the device; y equals fn(x)

Graphs are captured on first use of a size (or all at once by `capture_all`), share one memory pool and one static
input buffer (each size reads its prefix), and run one at a time: a call waits on the device for the previous call's
replay and output copy, whichever stream either ran on. Outputs are copied out of the graph's static memory.
"""
from __future__ import annotations

import bisect
import threading
from typing import Callable, Optional, Sequence

import torch

DEFAULT_SIZES = (4, 8, 16, 24, 32, 48, 64, 96, 128)


class GraphedBatches:
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], sizes: Sequence[int] = DEFAULT_SIZES,
                 warmups: int = 2):
        self.fn = fn
        self.sizes = sorted({int(s) for s in sizes if int(s) > 0})
        if not self.sizes:
            raise ValueError("GraphedBatches needs at least one batch size")
        self.warmups = int(warmups)
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self._static: Optional[torch.Tensor] = None    # [max size, *item]
        self._pool = None
        self._last: Optional[torch.cuda.Event] = None  # recorded after the previous call's output copy
        self._lock = threading.Lock()
        self.replays = 0

    @property
    def captured(self) -> list[int]:
        return sorted(self._graphs)

    def reset(self) -> None:
        """Forget the captured graphs (the function changed): each size is captured again on its next use."""
        with self._lock:
            self._graphs.clear()

    def _size_for(self, n: int) -> int:
        return self.sizes[min(bisect.bisect_left(self.sizes, n), len(self.sizes) - 1)]

    def _ensure_input(self, x: torch.Tensor) -> torch.Tensor:
        shape = (self.sizes[-1], *x.shape[1:])
        s = self._static
        if s is None or tuple(s.shape) != shape or s.dtype != x.dtype or s.device != x.device:
            if s is not None:   # another item shape (not the case for a fixed-resolution tower): start over
                self._graphs.clear()
            self._static = torch.zeros(shape, dtype=x.dtype, device=x.device)
        return self._static

    def _capture(self, b: int) -> None:
        static = self._static[:b]
        side = torch.cuda.Stream(device=static.device)
        side.wait_stream(torch.cuda.current_stream(static.device))
        with torch.cuda.stream(side):   # warm-up runs (autotuning, lazy init) outside the capture
            for _ in range(self.warmups):
                self.fn(static)
        torch.cuda.current_stream(static.device).wait_stream(side)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g, pool=self._pool):
            out = self.fn(static)
        self._graphs[b] = (g, out)

    def capture_all(self, example: torch.Tensor) -> list[int]:
        """Capture every size now (largest first), for input rows shaped like `example`'s; returns the sizes."""
        with self._lock:
            self._ensure_input(example)
            for b in reversed(self.sizes):
                if b not in self._graphs:
                    self._capture(b)
        return self.captured

    def __call__(self, x: torch.Tensor):
        n, top = x.shape[0], self.sizes[-1]
        if n > top:
            return _cat([self(x[i:i + top]) for i in range(0, n, top)])
        with self._lock:
            stream = torch.cuda.current_stream(x.device)
            if self._last is not None:
                stream.wait_event(self._last)   # the previous replay (maybe on another stream) is done with the buffers
            static = self._ensure_input(x)
            b = self._size_for(n)
            if b not in self._graphs:
                self._capture(b)
            g, out = self._graphs[b]
            static[:n].copy_(x)
            if b > n:
                static[n:b].zero_()
            g.replay()
            y = _take(out, n)
            ev = torch.cuda.Event()
            ev.record(stream)
            self._last = ev
            self.replays += 1
            return y


def _take(out, n: int):
    """The first n rows of a graph's static output(s), copied out of its memory."""
    if isinstance(out, (tuple, list)):
        return type(out)(_take(o, n) for o in out)
    return None if out is None else out[:n].clone()


def _cat(parts: list):
    if isinstance(parts[0], (tuple, list)):
        return type(parts[0])(_cat([p[i] for p in parts]) for i in range(len(parts[0])))
    return None if parts[0] is None else torch.cat(parts)
