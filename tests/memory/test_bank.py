"""The bank on real FAISS, SQLite and files: search, windows, deletion, reopen, repair, crash safety."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from memory.bank import BankError, CarrierRecord, MemoryBank
from memory.retrieval import retrieve, rrf

D = 16


def carrier(m=4, d=8, seed=0):
    rng = np.random.default_rng(seed)
    pos = rng.integers(0, 5, (m, 3)).astype(np.int32)
    return CarrierRecord(rng.standard_normal((m, d)).astype(np.float16), pos, pos, pos + 1, np.ones(m, np.int32))


def fill(bank, stream="cam", n=10, seed=0, start=0.0):
    rng = np.random.default_rng(seed)
    keys = rng.standard_normal((n, D)).astype(np.float32)
    ids = []
    for i in range(n):
        ids.append(bank.add(stream=stream, t0=start + 2 * i, t1=start + 2 * i + 2, wall=time.time(),
                            carrier=carrier(seed=i), keys={"vis": keys[i]}, thumbnail=b"\xff\xd8jpeg",
                            evidence={"ocr": f"slide {i}"}))
    return ids, keys


def test_search_finds_the_exact_memory_and_honours_time_window(tmp_path):
    with MemoryBank(str(tmp_path)) as bank:
        ids, keys = fill(bank)
        hits = bank.search(keys[3], k=3, space="vis")
        assert hits[0][0] == ids[3] and hits[0][1] == pytest.approx(1.0, abs=1e-5)
        windowed = bank.search(keys[3], k=3, space="vis", t_range=(10.0, 20.0))
        assert windowed and all(10.0 < bank.get([i])[0].t1 and bank.get([i])[0].t0 < 20.0 for i, _ in windowed)
        assert ids[3] not in [i for i, _ in windowed]


def test_carrier_roundtrip_and_thumbnails(tmp_path):
    with MemoryBank(str(tmp_path)) as bank:
        ids, _ = fill(bank, n=3)
        c = bank.carrier(ids[1])
        ref = carrier(seed=1)
        assert np.array_equal(c.tokens, ref.tokens) and np.array_equal(c.pos, ref.pos)
        assert open(bank.thumbnail_path(ids[1]), "rb").read() == b"\xff\xd8jpeg"


def test_several_streams_reopen_and_keep_appending(tmp_path):
    with MemoryBank(str(tmp_path)) as bank:
        a, _ = fill(bank, "a", 5, seed=1)
    with MemoryBank(str(tmp_path)) as bank:
        b, kb = fill(bank, "b", 5, seed=2)
        assert set(a).isdisjoint(b) and bank.count() == 10
        only_b = bank.search(kb[0], k=10, space="vis", streams=["b"])
        assert {i for i, _ in only_b} == set(b)
        assert {s["stream"]: s["memories"] for s in bank.streams()} == {"a": 5, "b": 5}


def test_delete_by_stream_and_time_range(tmp_path):
    with MemoryBank(str(tmp_path)) as bank:
        a, ka = fill(bank, "a", 6, seed=1)
        b, _ = fill(bank, "b", 6, seed=2)
        assert bank.delete(stream="a", t_range=(0.0, 4.0)) == 2
        assert bank.delete(stream="b") == 6
        left = {m.id for m in bank.list()}
        assert left == set(a[2:])
        assert ka is not None and all(i in left for i, _ in bank.search(ka[0], k=10, space="vis"))
        assert bank.check()["ok"]
    with MemoryBank(str(tmp_path)) as bank:  # deletion persisted in all three stores
        assert bank.count() == 4 and bank.check()["ok"]


def test_repair_after_index_lag_orphan_bytes_and_thumbs(tmp_path):
    with MemoryBank(str(tmp_path), flush_every=10_000, flush_seconds=1e9) as bank:
        ids, keys = fill(bank, n=4)
        bank.flush()
        more, _ = fill(bank, n=3, seed=9, start=100)
        # simulate a crash: the index file was written before the last 3 adds, and a half-written memory
        bank._dirty.clear()
        bank.db.close()
        bank._lockfile.close()
        bank._lockfile = None
    with open(os.path.join(tmp_path, "shards", "000000.bin"), "ab") as f:
        f.write(b"\x00" * 1234)
    os.makedirs(tmp_path / "thumbs" / "cam", exist_ok=True)
    (tmp_path / "thumbs" / "cam" / "999.jpg").write_bytes(b"x")
    bank = MemoryBank(str(tmp_path))
    try:
        assert any("added 3" in r for r in bank.repairs)
        assert any("unacknowledged bytes" in r for r in bank.repairs)
        assert not (tmp_path / "thumbs" / "cam" / "999.jpg").exists()
        assert bank.check()["ok"] and bank.count() == 7
        assert bank.search(keys[2], k=1, space="vis")[0][0] == ids[2]
    finally:
        bank.close()


def test_index_extra_ids_are_removed_on_open(tmp_path):
    with MemoryBank(str(tmp_path)) as bank:
        ids, _ = fill(bank, n=4)
    db = sqlite3.connect(tmp_path / "bank.sqlite")
    db.execute("DELETE FROM keys WHERE memory_id=?", (ids[0],))
    db.execute("DELETE FROM memories WHERE id=?", (ids[0],))
    db.commit()
    db.close()
    with MemoryBank(str(tmp_path)) as bank:
        assert any("removed 1" in r for r in bank.repairs) and bank.check()["ok"]


def test_a_second_writer_is_refused_but_readers_are_not(tmp_path):
    with MemoryBank(str(tmp_path)) as bank:
        fill(bank, n=2)
        code = f"import sys; sys.path.insert(0, {os.getcwd()!r}); from memory.bank import MemoryBank; MemoryBank({str(tmp_path)!r})"
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert r.returncode != 0 and "being written by" in r.stderr
        with MemoryBank(str(tmp_path), readonly=True) as ro:
            assert ro.count() == 2


def test_readonly_open_of_missing_bank_is_a_clear_error(tmp_path):
    with pytest.raises(BankError, match="no memory bank"):
        MemoryBank(str(tmp_path / "nope"), readonly=True)


def test_rrf_prefers_items_ranked_well_in_both_lists():
    fused = rrf([[(1, 0.9), (2, 0.8), (3, 0.1)], [(2, 0.7), (3, 0.6), (1, 0.1)]])
    assert fused[0][0] == 2


def test_retrieve_fuses_spaces(tmp_path):
    with MemoryBank(str(tmp_path)) as bank:
        rng = np.random.default_rng(0)
        kv, kt = rng.standard_normal((5, D)), rng.standard_normal((5, 8))
        for i in range(5):
            bank.add(stream="s", t0=i, t1=i + 1, wall=0, carrier=None, keys={"vis": kv[i], "text:x": kt[i]})
        got = retrieve(bank, {"vis": kv[2], "text:x": kt[2], "absent": np.ones(3)}, k=2)
        assert got[0].t0 == 2 and got[0].score == pytest.approx(1.0, abs=1e-5)
