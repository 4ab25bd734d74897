"""Keep a long-running process's native heap from holding freed memory (glibc only; a no-op elsewhere).

Traced in the soak (bench/soak.py --probe, bench/RESULTS.md): with 4 live streams and 8 askers the memory glibc's
malloc had in use stayed flat (~530 MB) while the memory it had freed but kept resident grew (190 -> 355 MB in
6 minutes): the server's many threads (uvicorn's worker pool, decoders, encoder, watches) each get a malloc arena,
freed frames and tensors leave holes in them, and glibc only returns an arena's top to the system. Two settings
fix that, applied once per process:
- at most VIGIL_MALLOC_ARENAS (default 2) arenas, set before the worker threads exist;
- malloc_trim(0) every VIGIL_MALLOC_TRIM_S seconds (default 30; 0 turns both off) from one daemon thread, which
  hands the free pages inside the arenas back to the system (a few milliseconds per call).
"""
from __future__ import annotations

import ctypes
import logging
import os
import threading
from typing import Callable, Optional

M_ARENA_MAX = -8  # mallopt parameter (malloc.h)

_started: Optional[threading.Thread] = None
_start_lock = threading.Lock()


def _glibc() -> Optional[ctypes.CDLL]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        return libc
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to do
        return None


def settings(env: Optional[dict] = None) -> tuple[int, float]:
    """(max arenas, trim interval in seconds) from the environment; (0, 0.0) turns the keeper off."""
    env = os.environ if env is None else env
    try:
        every = float(env.get("VIGIL_MALLOC_TRIM_S", "30"))
        arenas = int(env.get("VIGIL_MALLOC_ARENAS", "2"))
    except ValueError:
        logging.getLogger("vigil.heap").warning("VIGIL_MALLOC_TRIM_S / VIGIL_MALLOC_ARENAS must be numbers: off")
        return 0, 0.0
    return (max(arenas, 0), max(every, 0.0)) if every > 0 else (0, 0.0)


def trim_forever(trim: Callable[[int], int], every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        trim(0)


def start(env: Optional[dict] = None, stop: Optional[threading.Event] = None) -> Optional[threading.Thread]:
    """Once per process: cap the arenas and start the trimming thread (None where glibc is absent or it is off)."""
    global _started
    arenas, every = settings(env)
    libc = _glibc() if every else None
    if libc is None:
        return None
    with _start_lock:
        if _started is None or not _started.is_alive():
            if arenas:
                libc.mallopt(M_ARENA_MAX, arenas)
            _started = threading.Thread(target=trim_forever, args=(libc.malloc_trim, every, stop or threading.Event()),
                                        daemon=True, name="vigil-malloc-trim")
            _started.start()
        return _started
