"""The memory bank at scale, through its own API (MemoryBank.add_many / search / text_search), on this machine.

    python bench/bank_scale.py --n 1000000 --dim 1280 --dir /tmp/bank1m --out bank_scale.json
    python bench/bank_scale.py --n 20000 --dim 1280            # a quick look

Keys are clustered (a mixture of 2,000 random centres plus noise, like embeddings of footage that repeats), spread
over --streams streams, each memory with a one-line text (FTS5) and a small carrier (16 × 64 float16) in the
shards. Reported:
- add throughput (memories/s) with group commits of --batch, and bytes on disk per memory;
- open time of the full bank in a fresh process (tails loaded, segments mapped lazily) and of the first search;
  on the GPU path also the searches while the background thread copies the segments' keys to the device (FAISS on
  the CPU answers), the time until the device serves and the first search it serves;
- search p50/p95 over 200 queries (k=10), recall@10 against brute force over all keys, with a stream filter and
  with a one-hour time window; text search p50; which path searched (FAISS on the CPU, or memory.gpu on CUDA).
- with --device-keys N on a GPU: the device part of a search (DeviceKeys.topk: matmul + top-k) over N random keys,
  to show how the GPU path scales past the bank built here.

On a GPU machine the build is the slow part (group commits and sealing are CPU work): --lean stores no carriers
or text, which the key search never reads.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from memory.bank import CarrierRecord, MemoryBank  # noqa: E402

WORDS = ("door truck forklift pallet badge visitor delivery budget slide chart revenue meeting kitchen lobby camera "
         "person car dog bicycle package ladder window light alarm shelf box printer screen coffee").split()


def keys_for(rng, centres, n):
    c = centres[rng.integers(0, len(centres), n)]
    v = c + 0.35 * rng.standard_normal(c.shape).astype(np.float32) / np.sqrt(c.shape[1])
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def build(path, n, dim, streams, batch, seed=0, lean=False):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    tok = rng.standard_normal((16, 64)).astype(np.float16)
    pos = np.zeros((16, 3), np.int32)
    car = CarrierRecord(tok, pos, pos, pos, np.ones(16, np.int32))
    all_keys = np.empty((n, dim), np.float32)
    t_start = time.perf_counter()
    last = t_start
    with MemoryBank(path) as bank:
        for b0 in range(0, n, batch):
            m = min(batch, n - b0)
            ks = keys_for(rng, centres, m)
            all_keys[b0:b0 + m] = ks
            items = []
            for j in range(m):
                i = b0 + j
                s = i % streams
                t = 2.0 * (i // streams)
                w = "" if lean else " ".join(rng.choice(WORDS, 6))
                items.append(dict(stream=f"cam{s}", t0=t, t1=t + 2.0, wall=1.7e9 + t, carrier=None if lean else car,
                                  keys={"vis": ks[j]}, evidence=None if lean else {"asr": f"{w} number {i % 997}"}))
            bank.add_many(items)
            if time.perf_counter() - last > 10:
                last = time.perf_counter()
                rate = (b0 + m) / (last - t_start)
                print(f"  added {b0 + m:,}/{n:,} ({rate:,.0f}/s, eta {(n - b0 - m) / rate:,.0f} s)", flush=True)
    add_s = time.perf_counter() - t_start
    return all_keys, add_s


def bytes_on_disk(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


OPEN_PROBE = """
import sys, time, json; sys.path.insert(0, {root!r})
t = time.perf_counter()
from memory.bank import MemoryBank
t_imp = time.perf_counter()
b = MemoryBank({path!r}, readonly=True)
t_open = time.perf_counter()
import numpy as np
b.search(np.ones({dim}, np.float32), k=10, space="vis")
t_first = time.perf_counter()
b.search(-np.ones({dim}, np.float32), k=10, space="vis")
t_second = time.perf_counter()
print(json.dumps({{"import_s": t_imp - t, "open_s": t_open - t_imp, "first_search_s": t_first - t_open,
                  "second_search_s": t_second - t_first}}))
"""


def measure(path, all_keys, streams, queries=200, seed=1):
    dim = all_keys.shape[1]
    probe = subprocess.run([sys.executable, "-c", OPEN_PROBE.format(root=ROOT, path=path, dim=dim)],
                           capture_output=True, text=True)
    lines = probe.stdout.strip().splitlines()
    if not lines or not lines[-1].startswith("{"):
        raise RuntimeError(f"open probe failed (exit {probe.returncode}): {probe.stderr[-2000:]}")
    opened = json.loads(lines[-1])
    if probe.returncode:  # its figures were printed; it failed on the way out (a background copy still running)
        opened["probe_exit"] = f"{probe.returncode}: {probe.stderr.strip().splitlines()[-1:] or ''}"
    rng = np.random.default_rng(seed)
    n = len(all_keys)
    qi = rng.integers(0, n, queries)
    q = all_keys[qi] + 0.05 * rng.standard_normal((queries, dim)).astype(np.float32) / np.sqrt(dim)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    out = dict(opened)
    with MemoryBank(path, readonly=True) as bank:
        t = time.perf_counter()
        bank.search(q[0], k=10, space="vis")  # segments mapped
        out["first_search_main_ms"] = 1e3 * (time.perf_counter() - t)
        out.update(until_device_serves(bank, q))
        lat, rec = [], []
        for j in range(queries):
            t = time.perf_counter()
            got = [i for i, _ in bank.search(q[j], k=10, space="vis")]
            lat.append(time.perf_counter() - t)
            if j < 50:  # brute force for recall (ids are 1..n in insertion order)
                truth = set((np.argpartition(-(all_keys @ q[j]), 10)[:10] + 1).tolist())
                rec.append(len(truth & set(got)) / 10)
        out.update(search_p50_ms=1e3 * statistics.median(lat), search_p95_ms=1e3 * sorted(lat)[int(0.95 * len(lat))],
                   recall_at_10=float(np.mean(rec)),
                   search_path=f"memory.gpu on {bank.keys.device.device}" if bank.keys.device else "FAISS on the CPU")
        lat = []
        for j in range(50):
            t = time.perf_counter()
            bank.search(q[j], k=10, space="vis", streams=[f"cam{j % streams}"])
            lat.append(time.perf_counter() - t)
        out["search_stream_p50_ms"] = 1e3 * statistics.median(lat)
        span = 2.0 * (n // streams)
        lat = []
        for j in range(50):
            lo = float(rng.uniform(0, max(1.0, span - 3600)))
            t = time.perf_counter()
            bank.search(q[j], k=10, space="vis", t_range=(lo, lo + 3600))
            lat.append(time.perf_counter() - t)
        out["search_1h_window_p50_ms"] = 1e3 * statistics.median(lat)
        lat = []
        for j in range(50):
            words = " ".join(rng.choice(WORDS, 3))
            t = time.perf_counter()
            bank.text_search(f"when did the {words} appear?", k=10)
            lat.append(time.perf_counter() - t)
        out["text_search_p50_ms"] = 1e3 * statistics.median(lat)
    return out


def until_device_serves(bank, q, limit_s: float = 300.0, pause_s: float = 0.05) -> dict:
    """On the GPU path, a large bank's segment keys are copied to the device by a background thread while FAISS on
    the CPU answers (memory/gpu.py prefetch): one search every pause_s until that copy is done, each timed, then the
    first search the device serves. Nothing on the CPU path."""
    dev = bank.keys.device
    if dev is None:
        return {}
    t0 = time.perf_counter()
    during, j = [], 0
    while time.perf_counter() - t0 < limit_s:
        loading = dev.loading()
        t = time.perf_counter()
        bank.search(q[j % len(q)], k=10, space="vis")
        dt = time.perf_counter() - t
        j += 1
        if not loading:
            break
        during.append(dt)
        time.sleep(pause_s)
    out = {"device_ready_s": time.perf_counter() - t0, "searches_while_copying": len(during),
           "first_device_search_ms": 1e3 * dt, "device_copy_failed": dev.failed or bank.keys.device is None}
    if during:
        out.update(search_while_copying_p50_ms=1e3 * statistics.median(during),
                   search_while_copying_max_ms=1e3 * max(during))
    return out


def device_topk(n: int, dim: int, queries: int = 100) -> dict:
    """The device part of a GPU search (DeviceKeys.topk over n keys, k=10 + slack) without the bank around it."""
    import torch

    from memory.gpu import DeviceKeys

    dev = DeviceKeys("cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    keys = torch.nn.functional.normalize(torch.randn(n, dim, device="cuda", generator=g), dim=1).half()
    mats = [(torch.arange(n, device="cuda"), keys)]
    q = np.random.default_rng(0).standard_normal((queries, dim)).astype(np.float32)
    lat = []
    for j in range(queries):
        t = time.perf_counter()
        dev.topk(q[j], mats, 26, None)
        lat.append(time.perf_counter() - t)
    return {"device_keys": n, "device_topk_p50_ms": 1e3 * statistics.median(lat[5:])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--dir", default="/tmp/vigil-bank-scale")
    ap.add_argument("--out", default=None)
    ap.add_argument("--measure-only", action="store_true", help="measure a bank built earlier with the same --dir")
    ap.add_argument("--lean", action="store_true", help="no carriers or text (a faster build; key search only)")
    ap.add_argument("--device-keys", type=int, default=0, help="also time the GPU top-k over this many keys")
    a = ap.parse_args(argv)
    kfile = a.dir.rstrip("/") + ".keys.npy"
    built = a.dir.rstrip("/") + ".built.json"
    if a.measure_only:
        all_keys = np.load(kfile, mmap_mode="r")
        res = json.load(open(built))
    else:
        shutil.rmtree(a.dir, ignore_errors=True)
        print(f"building a bank of {a.n:,} memories ({a.dim}-d keys, {a.streams} streams) in {a.dir}", flush=True)
        all_keys, add_s = build(a.dir, a.n, a.dim, a.streams, a.batch, lean=a.lean)
        t = time.perf_counter()
        with MemoryBank(a.dir) as bank:  # finish the merges the build started in the background
            merges = bank.compact()
        print(f"merges finished: {merges} more in {time.perf_counter() - t:.0f} s", flush=True)
        np.save(kfile, all_keys)
        res = dict(n=a.n, dim=a.dim, streams=a.streams, batch=a.batch, lean=a.lean, add_per_s=a.n / add_s, add_s=add_s,
                   bytes_per_memory=bytes_on_disk(a.dir) / a.n, cpu_cores=os.cpu_count())
        json.dump(res, open(built, "w"))
    print(f"added in {res['add_s']:,.0f} s; measuring", flush=True)
    res.update(measure(a.dir, np.asarray(all_keys), res["streams"]))
    if a.device_keys:
        res.update(device_topk(a.device_keys, a.dim))
    print(json.dumps(res, indent=1))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
