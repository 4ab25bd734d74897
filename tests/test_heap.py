"""engine/heap.py: freed native memory of a long-running process goes back to the system (glibc)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from engine import heap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
glibc = pytest.mark.skipif(heap._glibc() is None, reason="glibc's malloc_trim is needed")

# A worker thread (its own malloc arena) fills ~200 MB with 4 KiB blocks and frees all but every 64th: the
# arena keeps the freed pages resident until something trims it. RSS in MB after the free and 1.5 s later.
CHILD = """
import json, os, threading, time
from engine import heap
heap.start()
def rss():
    with open("/proc/self/status") as f:
        return next(int(x.split()[1]) for x in f if x.startswith("VmRSS:")) / 1024
kept = []
def work():
    blocks = [bytearray(4096) for _ in range(50000)]
    kept.extend(blocks[::64])
    del blocks
t = threading.Thread(target=work); t.start(); t.join()
after_free = rss()
time.sleep(1.5)
print(json.dumps([after_free, rss()]))
"""


def child(env: dict) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return tuple(json.loads(out.strip().splitlines()[-1]))


def test_settings_defaults_off_and_bad_values():
    assert heap.settings({}) == (2, 30.0)
    assert heap.settings({"VIGIL_MALLOC_TRIM_S": "5", "VIGIL_MALLOC_ARENAS": "4"}) == (4, 5.0)
    assert heap.settings({"VIGIL_MALLOC_TRIM_S": "0"}) == (0, 0.0)
    assert heap.settings({"VIGIL_MALLOC_TRIM_S": "soon"}) == (0, 0.0)
    assert heap.settings({"VIGIL_MALLOC_ARENAS": "-3"}) == (0, 30.0)


def test_trim_forever_trims_every_interval_until_stopped():
    calls, stop = [], threading.Event()
    t = threading.Thread(target=heap.trim_forever, args=(lambda pad: calls.append(pad) or 1, 0.05, stop))
    t.start()
    threading.Event().wait(0.4)
    stop.set()
    t.join(2)
    assert not t.is_alive() and 3 <= len(calls) <= 9 and set(calls) == {0}


@glibc
def test_start_is_once_per_process_and_off_when_asked():
    assert heap.start({"VIGIL_MALLOC_TRIM_S": "0"}) is None
    a = heap.start()
    assert a is not None and a.is_alive() and a.daemon and heap.start() is a


@glibc
def test_freed_memory_goes_back_to_the_system():
    kept_free, kept_later = child({"VIGIL_MALLOC_TRIM_S": "0"})
    free, later = child({"VIGIL_MALLOC_TRIM_S": "0.2"})
    assert kept_later > 150 and kept_later - kept_free > -20   # untrimmed: the holes stay resident
    assert later < kept_later - 120                              # trimmed: the holes went back
