"""Key search on a torch device (memory.gpu) returns what the FAISS CPU path returns: same ids, same exact scores,
with stream filters, time windows, deletions and a key replaced by late evidence. Runs on CUDA when the machine has
it, and always on torch's CPU device (the same code path)."""
import threading
import time

import numpy as np
import pytest

from memory import segments as seg_mod
from memory.bank import MemoryBank

torch = pytest.importorskip("torch")
D = 32
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def build(path, n=150, streams=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((12, D)).astype(np.float32)
    keys = centres[rng.integers(0, 12, n)] + 0.3 * rng.standard_normal((n, D)).astype(np.float32)
    with MemoryBank(path) as bank:
        ids = bank.add_many([dict(stream=f"cam{i % streams}", t0=2.0 * i, t1=2.0 * i + 2, wall=time.time(), carrier=None,
                                  keys={"vis": keys[i]}) for i in range(n)])
        bank.compact()
    return ids, keys


@pytest.mark.parametrize("device", DEVICES)
def test_device_search_equals_the_cpu_path(tmp_path, monkeypatch, device):
    monkeypatch.setattr(seg_mod, "SEAL_AT", 16)
    monkeypatch.setattr(seg_mod, "ANN_MIN", 10_000)  # Flat segments: the CPU path is exact, so results must agree
    ids, keys = build(str(tmp_path))
    with MemoryBank(str(tmp_path)) as bank:
        assert len(bank.keys.segments["vis"]) >= 3 and bank.keys.tail_size("vis", "cam0") > 0
        bank.delete(t_range=(40.0, 60.0))                       # tombstones inside sealed segments
        late = np.random.default_rng(9).standard_normal(D).astype(np.float32)
        bank.set_evidence(ids[7], {"asr": "late"}, keys={"vis": late})  # a sealed key replaced: the tail holds the new one
        queries = [keys[i] for i in range(0, len(keys), 9)] + [late]
        filters = [{}, {"streams": ["cam1"]}, {"t_range": (100.0, 180.0)}, {"streams": ["cam0", "cam2"], "t_range": (0, 90)}]

        def run():
            return [bank.search(q, k=7, space="vis", **f) for q in queries for f in filters]

        bank.keys.use_device(None)
        cpu = run()
        bank.keys.use_device(device)
        dev = run()
        assert bank.keys.device is not None and any(n[0] == "seg" for n in bank.keys.device.cache)  # it ran there
        alive = {m.id: m for m in bank.list()}
    unit = {i: k / np.linalg.norm(k) for i, k in zip(ids, keys)}
    unit[ids[7]] = late / np.linalg.norm(late)
    for a, b in zip(cpu, dev):
        assert [i for i, _ in a] == [i for i, _ in b]
        assert np.allclose([s for _, s in a], [s for _, s in b], atol=1e-6)
    for (q, f), got in zip([(q, f) for q in queries for f in filters], dev):  # and both equal brute force
        qn = q / np.linalg.norm(q)
        pool = [i for i, m in alive.items() if (not f.get("streams") or m.stream in f["streams"]) and
                (not f.get("t_range") or (m.t1 > f["t_range"][0] and m.t0 < f["t_range"][1]))]
        want = sorted(pool, key=lambda i: (-float(unit[i] @ qn), i))[:7]
        assert [i for i, _ in got] == want
    assert dev[-len(filters)][0][0] == ids[7]  # the late key is what is searched, not the sealed old one


def test_a_device_that_fails_falls_back_to_the_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(seg_mod, "SEAL_AT", 16)
    ids, keys = build(str(tmp_path), n=40)
    with MemoryBank(str(tmp_path), readonly=True) as bank:
        bank.keys.use_device("cpu")

        def oom(*a, **k):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

        monkeypatch.setattr(bank.keys.device, "topk", oom)
        assert bank.search(keys[5], k=1, space="vis")[0][0] == ids[5]
        assert bank.keys.device is None and any("GPU search failed" in r for r in bank.keys.repairs)


def test_a_large_bank_is_searched_on_the_cpu_while_its_keys_go_to_the_device(tmp_path, monkeypatch):
    """Over DEVICE_SYNC_ROWS segment keys (a 10⁶ bank's first search would read ~20 s of keys from SQLite), the
    first searches are FAISS's on the CPU while a background thread copies the segments; then the device serves,
    with the same results."""
    monkeypatch.setattr(seg_mod, "SEAL_AT", 16)
    monkeypatch.setattr(seg_mod, "ANN_MIN", 10_000)
    monkeypatch.setattr(seg_mod, "DEVICE_SYNC_ROWS", 10)
    ids, keys = build(str(tmp_path))
    with MemoryBank(str(tmp_path), readonly=True) as bank:
        bank.keys.use_device(None)
        want = [bank.search(keys[i], k=5, space="vis") for i in (3, 50, 120)]
        bank.keys.use_device("cpu")
        dev = bank.keys.device
        loads = []
        orig = dev.matrix
        def copy(name, version, load):   # a copy to the device (not a cache hit): who made it
            if not dev.has(name, version):
                loads.append((name, threading.current_thread().name))
            return orig(name, version, load)

        monkeypatch.setattr(dev, "matrix", copy)
        first = bank.search(keys[3], k=5, space="vis")
        assert first == want[0]
        deadline = time.monotonic() + 20
        while dev.loading() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not dev.loading() and {n[0] for n, _ in loads} == {"seg"} and len(loads) >= 3
        assert {t for _, t in loads} == {"vigil-gpu-keys"}            # copied by the background thread
        n_before = len(loads)
        got = [bank.search(keys[i], k=5, space="vis") for i in (3, 50, 120)]
        assert [[i for i, _ in g] for g in got] == [[i for i, _ in w] for w in want]
        assert all(np.allclose([s for _, s in g], [s for _, s in w], atol=1e-6) for g, w in zip(got, want))
        assert not any(n[0] == "seg" for n, _ in loads[n_before:])           # segments served from the device now
        assert any(n[0] == "tail" for n, _ in loads[n_before:])              # and the tails copied within the search
