"""Memory probe for `bench/soak.py --probe` (never imported by the app: the bench puts this folder first on the
served process's PYTHONPATH, and Python imports `sitecustomize` at start-up).

Active only when VIGIL_SOAK_PROBE names a file. A daemon thread appends one JSON line to it every
VIGIL_SOAK_PROBE_EVERY seconds (default 30) with where the process's resident memory lives:
- rss and /proc/self/smaps grouped: the main heap ([heap]), glibc thread arenas (anonymous mappings inside a
  64 MiB-aligned reservation), thread stacks (8 MiB + guard), other anonymous mappings (large mmapped blocks:
  torch/numpy buffers, FAISS), and file-backed pages;
- glibc's mallinfo2 (arena bytes, in use, free but kept, mmapped), the number of arenas and of threads;
- Python objects alive by type (the 15 types that grew most since the first sample after VIGIL_SOAK_PROBE_WARMUP s);
- with VIGIL_SOAK_TRACEMALLOC=N (frames), tracemalloc's traced bytes and the 20 allocation sites that grew most
  since that same baseline snapshot;
- with VIGIL_SOAK_TRIM=1, malloc_trim(0) is called after each sample and the RSS it gave back is recorded.
"""
from __future__ import annotations

import collections
import ctypes
import gc
import json
import os
import threading
import time

_PATH = os.environ.get("VIGIL_SOAK_PROBE")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]


def _libc():
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    return libc


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))


def _smaps() -> dict[str, int]:
    """Resident kB by kind of mapping."""
    out: dict[str, int] = collections.Counter()
    kind, size = "other", 0
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                size = (hi - lo) // 1024
                name = head[5] if len(head) > 5 else ""
                if name == "[heap]":
                    kind = "heap"
                elif name.startswith("[stack"):
                    kind = "stacks"
                elif name:
                    kind = "file"
                elif lo % (64 << 20) == 0 and size <= 65536:
                    kind = "arenas"          # glibc's non-main arenas start 64 MiB-aligned
                elif size in (8192, 8196, 8188):
                    kind = "stacks"          # pthread stacks (8 MiB default)
                else:
                    kind = "anon_other"
            elif head[0] == "Rss:":
                out[kind] += int(head[1])
    return dict(out)


def _arenas(libc) -> int:
    """The number of malloc arenas (glibc's malloc_info XML has one <heap nr=...> per arena)."""
    path = f"/tmp/vigil-soak-probe-{os.getpid()}.xml"
    fp = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    with open(path) as f:
        n = f.read().count("<heap nr=")
    os.remove(path)
    return n


def _types() -> collections.Counter:
    return collections.Counter(type(o).__name__ for o in gc.get_objects())


def _run(every: float, warmup: float, nframes: int, trim: bool) -> None:
    import tracemalloc

    libc = _libc()
    t0 = time.time()
    base_types = base_snap = None
    while True:
        time.sleep(every)
        t = time.time() - t0
        mi = libc.mallinfo2()
        row = dict(t=round(t), rss_kb=_rss_kb(), smaps_kb=_smaps(), arenas=_arenas(libc),
                   threads=threading.active_count(),
                   native_threads=len(os.listdir("/proc/self/task")),
                   malloc_mb={k: round(getattr(mi, k) / 2**20, 1) for k in ("arena", "uordblks", "fordblks",
                                                                            "hblkhd", "keepcost")})
        types = _types()
        row["py_objects"] = sum(types.values())
        if t >= warmup and base_types is None:
            base_types = types
        if base_types is not None:
            grew = types - base_types
            row["py_types_grown"] = grew.most_common(15)
        if nframes and tracemalloc.is_tracing():
            cur, peak = tracemalloc.get_traced_memory()
            row["traced_mb"] = round(cur / 2**20, 1)
            if t >= warmup:
                snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
                if base_snap is None:
                    base_snap = snap
                else:
                    diffs = snap.compare_to(base_snap, "traceback" if nframes > 1 else "lineno")[:20]
                    row["traced_top_diffs"] = [
                        dict(kb=round(d.size_diff / 1024, 1), n=d.count_diff,
                             where=[f"{fr.filename.split('site-packages/')[-1]}:{fr.lineno}" for fr in
                                    d.traceback[:nframes]]) for d in diffs]
        if trim:
            before, t1 = _rss_kb(), time.perf_counter()
            libc.malloc_trim(0)
            row["trim_ms"] = round(1000 * (time.perf_counter() - t1), 1)
            row["trim_gave_back_kb"] = before - _rss_kb()
        with open(_PATH, "a") as f:
            f.write(json.dumps(row) + "\n")


def _start() -> None:
    nframes = int(os.environ.get("VIGIL_SOAK_TRACEMALLOC", "0") or 0)
    if nframes:
        import tracemalloc
        tracemalloc.start(nframes)
    th = threading.Thread(target=_run, name="vigil-soak-probe", daemon=True,
                          args=(float(os.environ.get("VIGIL_SOAK_PROBE_EVERY", "30")),
                                float(os.environ.get("VIGIL_SOAK_PROBE_WARMUP", "60")), nframes,
                                os.environ.get("VIGIL_SOAK_TRIM") == "1"))
    th.start()


if _PATH:
    _start()
