"""A poor man's sampling profiler for benchmarks: where each thread of this process spends its time.

Every `interval` seconds it reads every thread's current frame (sys._current_frames) and counts, per thread group
(the thread's name without its number), the innermost frame and the innermost frame inside this repository. A
thread blocked in C (a lock, a CUDA sync, FFmpeg) shows the Python line that called it. No ptrace, no extra package.

    with StackSampler() as s:
        work()
    s.summary(top=8)   # {group: {"samples": n, "top": [[share, "file:line func"], ...], "repo_top": [...]}}
"""
from __future__ import annotations

import os
import re
import sys
import threading
from collections import Counter, defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _where(f) -> str:
    return f"{os.path.relpath(f.f_code.co_filename, ROOT) if f.f_code.co_filename.startswith(ROOT) else os.path.basename(f.f_code.co_filename)}:{f.f_lineno} {f.f_code.co_name}"


class StackSampler(threading.Thread):
    def __init__(self, interval: float = 0.005):
        super().__init__(daemon=True, name="stack-sampler")
        self.interval = interval
        self.top: dict[str, Counter] = defaultdict(Counter)
        self.repo: dict[str, Counter] = defaultdict(Counter)
        self.samples: Counter = Counter()
        self._halt = threading.Event()

    def run(self) -> None:
        me = threading.get_ident()
        while not self._halt.wait(self.interval):
            names = {t.ident: re.sub(r"[-_ ]?\d+$", "", t.name) for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                g = names.get(ident, "?")
                self.samples[g] += 1
                self.top[g][_where(frame)] += 1
                f = frame
                while f is not None and not (f.f_code.co_filename.startswith(ROOT) and "/bench/" not in f.f_code.co_filename):
                    f = f.f_back
                if f is not None:
                    self.repo[g][_where(f)] += 1

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self._halt.set()
        self.join(2)

    def summary(self, top: int = 8) -> dict:
        out = {}
        for g, n in self.samples.most_common():
            out[g] = {"samples": n,
                      "top": [[round(c / n, 3), w] for w, c in self.top[g].most_common(top)],
                      "repo_top": [[round(c / n, 3), w] for w, c in self.repo[g].most_common(top)]}
        return out
