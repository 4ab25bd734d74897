"""The bank on real FAISS, SQLite and files: search, windows, deletion, reopen, repair, crash safety."""
import os
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from memory import segments as seg_mod
from memory.bank import BankError, CarrierRecord, MemoryBank, redact
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


def test_repair_after_crash_orphan_bytes_segment_and_thumbs(tmp_path, monkeypatch):
    """A crash leaves unacknowledged shard bytes, a key segment written but never committed, an orphan thumbnail:
    reopening drops all three and serves every acknowledged memory."""
    monkeypatch.setattr(seg_mod, "SEAL_AT", 4)
    with MemoryBank(str(tmp_path)) as bank:
        ids, keys = fill(bank, n=7)
        bank._lockfile.close()
        bank._lockfile = None
    with open(os.path.join(tmp_path, "shards", "000000.bin"), "ab") as f:
        f.write(b"\x00" * 1234)
    orphan = tmp_path / "index" / "vis" / "cam" / "00000099.faiss"
    orphan.write_bytes(b"half a segment")
    os.makedirs(tmp_path / "thumbs" / "cam", exist_ok=True)
    (tmp_path / "thumbs" / "cam" / "999.jpg").write_bytes(b"x")
    bank = MemoryBank(str(tmp_path))
    try:
        assert any("unacknowledged bytes" in r for r in bank.repairs)
        assert any("unfinished key segment" in r for r in bank.repairs) and not orphan.exists()
        assert not (tmp_path / "thumbs" / "cam" / "999.jpg").exists()
        assert bank.check()["ok"] and bank.count() == 7
        for i in (2, 6):  # one sealed, one in the tail
            assert bank.search(keys[i], k=1, space="vis")[0][0] == ids[i]
    finally:
        bank.close()


def test_rows_deleted_behind_the_banks_back_are_not_served(tmp_path):
    with MemoryBank(str(tmp_path)) as bank:
        ids, keys = fill(bank, n=4)
    db = sqlite3.connect(tmp_path / "bank.sqlite")
    db.execute("DELETE FROM keys WHERE memory_id=?", (ids[0],))
    db.execute("DELETE FROM memories WHERE id=?", (ids[0],))
    db.commit()
    db.close()
    with MemoryBank(str(tmp_path)) as bank:
        assert bank.check()["ok"] and ids[0] not in [i for i, _ in bank.search(keys[0], k=4, space="vis")]


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


# ---- segments, retention, full-text search, readers, secrets ---------------------------------------------------

@pytest.mark.parametrize("seal_at,ann_min", [(8, 10_000), (64, 32)])  # exact (Flat) segments, then IVF segments
def test_sealed_segments_search_like_brute_force_and_reopen_cheaply(tmp_path, monkeypatch, seal_at, ann_min):
    monkeypatch.setattr(seg_mod, "SEAL_AT", seal_at)
    monkeypatch.setattr(seg_mod, "ANN_MIN", ann_min)
    n = 4 * seal_at + 3
    with MemoryBank(str(tmp_path)) as bank:
        ids, keys = fill(bank, n=n, seed=3)
        bank.compact()  # the background merger may already have merged the four sealed tails into one
        segs = bank._rd().execute("SELECT COUNT(*), SUM(n) FROM segments").fetchone()
        assert segs == (1, 4 * seal_at)
        assert bank.keys.tail_size("vis", "cam") == 3
        # every key once: in SQLite, and sealed keys are marked with their segment
        assert bank._rd().execute("SELECT COUNT(*) FROM keys WHERE seg IS NOT NULL").fetchone()[0] == 4 * seal_at
    unit = keys / np.linalg.norm(keys, axis=1, keepdims=True)
    with MemoryBank(str(tmp_path), readonly=True) as bank:
        assert bank.keys.tail_size("vis", "cam") == 3  # opening loads the tail only; segments open on first search
        assert all(s._index is None for s in bank.keys.segments["vis"])
        hits = 0
        for qi in range(0, n, 7):
            want = [ids[j] for j in np.argsort(-(unit @ unit[qi]))[:5]]
            got = [i for i, _ in bank.search(keys[qi], k=5, space="vis")]
            assert got[0] == ids[qi]
            hits += len(set(got) & set(want))
        assert hits / (5 * len(range(0, n, 7))) >= 0.9  # recall@5 against brute force (exact on Flat segments)
        win = bank.search(keys[1], k=5, space="vis", t_range=(20.0, 40.0))
        assert win and all(20.0 < bank.get([i])[0].t1 and bank.get([i])[0].t0 < 40.0 for i, _ in win)


def test_corrupt_segment_is_rebuilt_from_sqlite(tmp_path, monkeypatch):
    monkeypatch.setattr(seg_mod, "SEAL_AT", 8)
    with MemoryBank(str(tmp_path)) as bank:
        ids, keys = fill(bank, n=10)
        rel = bank._rd().execute("SELECT file FROM segments").fetchone()[0]
    with open(tmp_path / rel, "wb") as f:
        f.write(b"garbage")
    with MemoryBank(str(tmp_path)) as bank:
        assert bank.search(keys[3], k=1, space="vis")[0][0] == ids[3]
    os.remove(tmp_path / rel)
    with MemoryBank(str(tmp_path)) as bank:
        assert any("rebuilt" in r for r in bank.repairs) and bank.check()["ok"]
        assert bank.search(keys[5], k=1, space="vis")[0][0] == ids[5]


def test_retention_by_age_and_bytes_reclaims_files(tmp_path, monkeypatch):
    monkeypatch.setattr(seg_mod, "SEAL_AT", 4)
    monkeypatch.setattr("memory.writer.SHARD_BYTES", 600)  # a few carriers per shard file
    with MemoryBank(str(tmp_path)) as bank:
        rng = np.random.default_rng(0)
        for i in range(20):
            bank.add(stream="old", t0=2 * i, t1=2 * i + 2, wall=1000.0 + i, carrier=carrier(seed=i),
                     keys={"vis": rng.standard_normal(D)}, thumbnail=b"j")
        fill(bank, "keep", n=5)
        files_before = len(os.listdir(tmp_path / "shards")) + len(list((tmp_path / "index").rglob("*.faiss")))
        bank.set_retention("old", max_age_s=100.0)
        assert bank.apply_retention(now=1000.0 + 100.0 + 9.5) == 10  # walls 1000..1009 are older than 100 s
        assert [m.t0 for m in bank.list(stream="old")][0] == 20.0
        nb = bank.get([bank.list(stream="old")[0].id])[0]
        bank.set_retention("old", max_bytes=3 * carrier().to_bytes().__len__())
        bank.apply_retention(now=0.0)
        assert len(bank.list(stream="old")) == 3 and nb is not None
        assert len(bank.list(stream="keep")) == 5
        files_after = len(os.listdir(tmp_path / "shards")) + len(list((tmp_path / "index").rglob("*.faiss")))
        assert files_after < files_before
        assert bank.check()["ok"]
    with MemoryBank(str(tmp_path)) as bank:
        assert bank.count() == 8 and bank.check()["ok"]


def test_text_search_ranks_by_bm25_and_follows_late_evidence(tmp_path):
    with MemoryBank(str(tmp_path)) as bank:
        ids, _ = fill(bank, n=6)
        bank.set_evidence(ids[4], {"asr": "the quarterly budget was approved by Maria"})
        hits = bank.text_search("When was the budget approved?", k=3)
        assert hits[0][0] == ids[4]
        assert bank.text_search("slide 2", k=1)[0][0] == ids[2]
        assert bank.text_search("budget", k=3, t_range=(0.0, 4.0)) == []
        assert bank.text_search("the of and", k=3) == []  # nothing searchable
        bank.delete(stream="cam", t_range=(8.0, 9.0))
        assert bank.text_search("budget", k=3) == []


def test_readers_do_not_wait_for_the_writers_fsync(tmp_path, monkeypatch):
    import threading
    with MemoryBank(str(tmp_path)) as bank:
        ids, keys = fill(bank, n=3)
        real = os.fsync
        started = threading.Event()

        def slow_fsync(fd):
            started.set()
            time.sleep(1.5)
            return real(fd)

        monkeypatch.setattr(os, "fsync", slow_fsync)
        w = threading.Thread(target=lambda: bank.add(stream="cam", t0=50, t1=52, wall=0.0, carrier=carrier(),
                                                     keys={"vis": keys[0]}))
        w.start()
        assert started.wait(5)
        t = time.perf_counter()
        assert bank.search(keys[1], k=1, space="vis")[0][0] == ids[1]
        assert bank.count() == 3 and bank.get([ids[0]])
        assert time.perf_counter() - t < 0.5  # the add is still inside its fsync
        w.join()
        assert bank.count() == 4


def test_credentials_are_redacted_in_what_the_bank_stores(tmp_path):
    assert redact("rtsp://admin:s3cret@10.0.0.2:554/live") == "rtsp://admin:***@10.0.0.2:554/live"
    assert redact("could not open rtsp://u:p@h/x: timeout") == "could not open rtsp://u:***@h/x: timeout"
    with MemoryBank(str(tmp_path)) as bank:
        bank.add_stream("cam", source="rtsp://admin:s3cret@cam.local/live")
        bank.add_event("cam", "error", 1.0, 0.0, "rtsp://admin:s3cret@cam.local/live refused")
    raw = open(tmp_path / "bank.sqlite", "rb").read() + b"".join(
        open(os.path.join(tmp_path, f), "rb").read() for f in os.listdir(tmp_path) if f.startswith("bank.sqlite-"))
    assert b"s3cret" not in raw


def test_tail_cache_is_used_only_when_it_matches_sqlite(tmp_path, monkeypatch):
    with MemoryBank(str(tmp_path)) as bank:
        ids, keys = fill(bank, n=6)
    cache = tmp_path / "index" / "tails.npz"
    assert cache.exists()  # a clean close maps the tails for the next open
    with MemoryBank(str(tmp_path), readonly=True) as bank:
        assert bank.keys.tail_size("vis", "cam") == 6 and bank.search(keys[4], k=1, space="vis")[0][0] == ids[4]
    bank = MemoryBank(str(tmp_path))  # the writer consumes it, so a crash cannot leave a stale one
    assert not cache.exists()
    more, mk = fill(bank, n=2, seed=5, start=100)
    bank._lockfile.close()  # "crash": never closed, so no cache is written
    bank._lockfile = None
    assert not cache.exists()
    with MemoryBank(str(tmp_path)) as bank:
        assert bank.keys.tail_size("vis", "cam") == 8 and bank.search(mk[1], k=1, space="vis")[0][0] == more[1]
    # a cache that disagrees with SQLite is ignored
    with MemoryBank(str(tmp_path)) as bank:
        pass
    db = sqlite3.connect(tmp_path / "bank.sqlite")
    db.execute("DELETE FROM keys WHERE memory_id=?", (ids[0],))
    db.execute("DELETE FROM memories WHERE id=?", (ids[0],))
    db.commit()
    db.close()
    with MemoryBank(str(tmp_path)) as bank:
        assert bank.keys.tail_size("vis", "cam") == 7 and bank.check()["ok"]


FULL_DISK = """
import resource, signal, sys, time
sys.path.insert(0, {root!r})
import numpy as np
from memory.bank import BankError, CarrierRecord, MemoryBank
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # writes past the limit fail with EFBIG, like a full disk
bank = MemoryBank({path!r})
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
rng = np.random.default_rng(0)
pos = np.zeros((64, 3), np.int32)
acked = []
try:
    for i in range(10_000):
        acked.append(bank.add(stream="cam", t0=2 * i, t1=2 * i + 2, wall=0.0,
                              carrier=CarrierRecord(rng.standard_normal((64, 256)).astype(np.float16), pos, pos, pos,
                                                    np.ones(64, np.int32)),
                              keys={{"vis": rng.standard_normal(16)}}, thumbnail=b"j" * 2000))
except BankError as e:
    print("ERR", e)
print("ACKED", len(acked), max(acked))
"""


def test_a_full_disk_is_a_clear_error_and_loses_nothing_acknowledged(tmp_path):
    r = subprocess.run([sys.executable, "-c", FULL_DISK.format(root=os.getcwd(), path=str(tmp_path), limit=2_000_000)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    err = next(line for line in r.stdout.splitlines() if line.startswith("ERR"))
    assert "cannot write to the bank" in err and "kept" in err
    n, last = map(int, r.stdout.strip().splitlines()[-1].split()[1:])
    assert n > 5
    with MemoryBank(str(tmp_path)) as bank:
        assert bank.count() == n and max(m.id for m in bank.list()) == last
        assert bank.check()["ok"] and bank.carrier(last) is not None


def test_segments_merge_into_larger_ones_and_search_stays_exact(tmp_path, monkeypatch):
    monkeypatch.setattr(seg_mod, "SEAL_AT", 8)
    monkeypatch.setattr(seg_mod, "ANN_MIN", 10_000)  # Flat segments: search must equal brute force exactly
    n = 8 * 17 + 5
    with MemoryBank(str(tmp_path)) as bank:
        ids, keys = fill(bank, n=n, seed=4)
        bank.compact()
        sizes = sorted(r[0] for r in bank._rd().execute("SELECT n FROM segments"))
        assert sizes == [8, 32, 32, 32, 32] or sizes == [8, 128]  # 17 sealed tails: 16 merged (4 -> 1, then 4 -> 1)
        files = list((tmp_path / "index").rglob("*.faiss"))
        assert len(files) == len(sizes)
        unit = keys / np.linalg.norm(keys, axis=1, keepdims=True)
        for qi in range(0, n, 11):
            want = [ids[j] for j in np.argsort(-(unit @ unit[qi]))[:5]]
            assert [i for i, _ in bank.search(keys[qi], k=5, space="vis")] == want
        assert bank.check()["ok"]
    with MemoryBank(str(tmp_path)) as bank:  # reopen: the merged layout is what SQLite says
        assert bank.check()["ok"] and bank.search(keys[7], k=1, space="vis")[0][0] == ids[7]


def test_time_windows_find_long_clips_that_started_before_the_window(tmp_path):
    with MemoryBank(str(tmp_path)) as bank:
        ids, keys = fill(bank, n=5)                                   # 2 s clips at 0..10
        long_id = bank.add(stream="cam", t0=20.0, t1=320.0, wall=0.0, carrier=None, keys={"vis": keys[0]})
        assert bank.max_span() == 300.0
        hits = [i for i, _ in bank.search(keys[0], k=3, space="vis", t_range=(300.0, 310.0))]
        assert hits == [long_id]                                      # started 280 s before the window
        assert set(i for i, _ in bank.search(keys[0], k=3, space="vis", t_range=(1.0, 3.0))) == {ids[0], ids[1]}
    with MemoryBank(str(tmp_path), readonly=True) as bank:
        assert bank.max_span() == 300.0


def test_read_connections_of_ended_threads_are_closed(tmp_path):
    """A server's worker threads come and go: the bank keeps one read connection per live thread, not per thread
    it ever saw (each holds a page cache: the soak's resident memory grew with them)."""
    import threading

    with MemoryBank(str(tmp_path)) as bank:
        ids, _ = fill(bank, n=3)
        for _ in range(5):
            ths = [threading.Thread(target=lambda: bank.get(ids)) for _ in range(8)]
            for t in ths:
                t.start()
            for t in ths:
                t.join()
        assert bank.count() == 3  # this thread's connection: the ended threads' ones are closed on the way
        assert len(bank._readers) <= 9
        assert all(t.is_alive() for t, _ in bank._readers)


def test_what_the_screen_showed_is_kept_apart_from_what_was_said_or_shown(tmp_path):
    """evidence["screen"] (a clip's screen title and headings: context for its speech) is stored and read back,
    set late like other evidence, never quoted in citations nor full-text searched; a bank written before the
    column existed reads without it, read-only too, and gains it when a writer opens it."""
    with MemoryBank(str(tmp_path / "b")) as bank:
        mid = bank.add(stream="doc", t0=0.0, t1=2.0, wall=time.time(), carrier=carrier(),
                       keys={"vis": np.ones(D, np.float32)},
                       evidence={"asr": "the budget is fine", "screen": "Shared document\nMarlin Budget"})
        other = bank.add(stream="doc", t0=2.0, t1=4.0, wall=time.time(), carrier=carrier(seed=1),
                         keys={"vis": np.ones(D, np.float32)})
        bank.set_evidence(other, {"screen": "Shared document\nTern Rollout"})
        got = {m.id: m for m in bank.get([mid, other])}
        assert got[mid].evidence == {"asr": "the budget is fine", "screen": "Shared document\nMarlin Budget"}
        assert got[other].evidence == {"screen": "Shared document\nTern Rollout"}
        assert got[mid].citation()["evidence"] == "Said: the budget is fine"
        assert bank.text_search("Marlin", k=3) == [] and bank.text_search("Tern Rollout", k=3) == []
    old = tmp_path / "old"
    with MemoryBank(str(old)) as bank:
        fill(bank, n=2)
    db = sqlite3.connect(str(old / "bank.sqlite"))
    db.execute("ALTER TABLE memories DROP COLUMN screen")  # as written before the column
    db.commit()
    db.close()
    with MemoryBank(str(old), readonly=True) as bank:
        assert [m.evidence for m in bank.list()] == [{"ocr": "slide 0"}, {"ocr": "slide 1"}]
    with MemoryBank(str(old)) as bank:
        bank.set_evidence(bank.list()[0].id, {"screen": "Title"})
        assert bank.list()[0].evidence == {"ocr": "slide 0", "screen": "Title"}
