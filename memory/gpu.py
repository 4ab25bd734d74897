"""Key search on a GPU (torch on CUDA; faiss-gpu is not installable here): every searched key matrix (sealed
segments and the streams' tails) is held as an fp16 matrix on the device, scored with one matmul per matrix and one
top-k over all of them; the candidates are then rescored exactly from SQLite like the CPU path's, so both return the
same memories with the same (float32) scores.

Used automatically when an NVIDIA GPU is present and torch sees CUDA (VIGIL_GPU_SEARCH=0 turns it off; =1 skips the
check for an NVIDIA device node and asks torch directly). A segment's keys are read from SQLite (the source of truth) the first time it is searched;
a tail is copied again when it changed since its last search. Running out of GPU memory falls back to the CPU.
Segments are copied within the search when they are few; many (a large bank's first search: 10⁶ keys take ~20 s
to read from SQLite) are copied by a background thread (`prefetch`) while FAISS on the CPU answers.
"""
from __future__ import annotations

import os
import threading
from typing import Callable, Hashable, Optional

import numpy as np

Loader = Callable[[], tuple[np.ndarray, np.ndarray]]  # -> (ids [n] int64, keys [n, d] float32)


def wanted() -> Optional[str]:
    """The device to search on: "cuda" when the GPU path should be used, else None. torch is imported only when
    the machine has an NVIDIA device (a CPU-only bank open stays cheap)."""
    mode = os.environ.get("VIGIL_GPU_SEARCH", "auto").lower()
    if mode in ("0", "off", "no", "false"):
        return None
    if mode == "auto" and not (os.path.exists("/dev/nvidia0") or os.path.exists("/proc/driver/nvidia")):
        return None
    try:
        import torch
    except ImportError:
        return None
    return "cuda" if torch.cuda.is_available() else None


class DeviceKeys:
    """Key matrices on one torch device, cached by a name and a version (a tail's version moves when it changes)."""

    def __init__(self, device: str = "cuda"):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.lock = threading.Lock()
        self.cache: dict[Hashable, tuple[int, object, object]] = {}   # name -> (version, ids, keys)
        self._queue: list[tuple[Hashable, int, Loader]] = []           # matrices to copy in the background
        self._queued: set = set()
        self._loader: Optional[threading.Thread] = None
        self.failed = ""                                                # why a background copy failed

    def has(self, name: Hashable, version: int) -> bool:
        with self.lock:
            hit = self.cache.get(name)
        return hit is not None and hit[0] == version

    def prefetch(self, items: list[tuple[Hashable, int, Loader]]) -> None:
        """Copy these matrices to the device in a background thread (each once, in order)."""
        with self.lock:
            for name, version, load in items:
                if name not in self._queued and not (name in self.cache and self.cache[name][0] == version):
                    self._queued.add(name)
                    self._queue.append((name, version, load))
            if self._queue and (self._loader is None or not self._loader.is_alive()):
                self._loader = threading.Thread(target=self._load_queued, daemon=True, name="vigil-gpu-keys")
                self._loader.start()

    def _load_queued(self) -> None:
        while True:
            with self.lock:
                if not self._queue:
                    return
                name, version, load = self._queue.pop(0)
            try:
                self.matrix(name, version, load)
            except Exception as e:  # noqa: BLE001 - out of device memory, a closed bank: the CPU path serves
                self.failed = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
                with self.lock:
                    self._queue.clear()
                    self._queued.clear()
                return
            finally:
                with self.lock:
                    self._queued.discard(name)

    def loading(self) -> bool:
        with self.lock:
            return bool(self._queue or self._queued)

    def matrix(self, name: Hashable, version: int, load: Loader):
        with self.lock:
            hit = self.cache.get(name)
        if hit is not None and hit[0] == version:
            return hit[1], hit[2]
        ids, keys = load()
        t = self.torch
        ids_t = t.from_numpy(np.ascontiguousarray(ids, np.int64)).to(self.device)
        keys_t = t.from_numpy(np.ascontiguousarray(keys, np.float32)).to(self.device, self.dtype)
        with self.lock:
            self.cache[name] = (version, ids_t, keys_t)
        return ids_t, keys_t

    def drop(self, names) -> None:
        with self.lock:
            for n in names:
                self.cache.pop(n, None)

    def topk(self, q: np.ndarray, mats: list, want: int, allowed: Optional[np.ndarray]) -> list[tuple[int, float]]:
        """The `want` best (id, approximate cosine) over the matrices, only ids in `allowed` when given."""
        t = self.torch
        mats = [(i, k) for i, k in mats if i.numel()]
        if not mats or want <= 0:
            return []
        qt = t.from_numpy(np.ascontiguousarray(q, np.float32)).to(self.device, self.dtype)
        ids = t.cat([i for i, _ in mats])
        scores = t.cat([k @ qt for _, k in mats]).float()
        if allowed is not None:
            ok = t.isin(ids, t.from_numpy(np.asarray(allowed, np.int64)).to(self.device))
            scores = t.where(ok, scores, t.full_like(scores, -float("inf")))
        s, j = t.topk(scores, min(want, scores.numel()))
        keep = t.isfinite(s)
        return list(zip(ids[j[keep]].tolist(), s[keep].tolist()))
