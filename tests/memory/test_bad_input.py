"""Bad input for the bank (issue 13): a bank directory that turns read-only mid-run, a corrupt or truncated key
segment. (A full disk and a second writer are in test_bank.py.) Each is one clear line, never a traceback, and
nothing acknowledged is lost."""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from memory import segments as seg_mod
from memory.bank import BankError, MemoryBank
from tests.conftest import ROOT

D = 16


def items(n, start=0, seed=0):
    keys = np.random.default_rng(seed).standard_normal((n, D)).astype(np.float32)
    return [dict(stream="cam", t0=2.0 * (start + i), t1=2.0 * (start + i) + 2, wall=time.time(), carrier=None,
                 keys={"vis": keys[i]}, thumbnail=b"\xff\xd8jpeg", evidence={"ocr": f"slide {start + i}"})
            for i in range(n)], keys


def unprivileged() -> list[str]:
    """A prefix that runs a command without root's power to ignore file modes (so `chmod a-w` binds it as it binds
    any service account): nothing for a normal user, setpriv with no capabilities for root."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot drop the right to ignore file modes")
    return ["setpriv", "--inh-caps=-all", "--bounding-set=-all"]


def chmod_tree(path: str, writable: bool) -> None:
    subprocess.run(["chmod", "-R", "u+w" if writable else "a-w", path], check=True)


READ_ONLY_MID_RUN = """
import json, sys, time, subprocess
import numpy as np
sys.path.insert(0, {root!r})
from memory.bank import BankError, MemoryBank
path = {path!r}
keys = np.random.default_rng(0).standard_normal((10, 16)).astype(np.float32)
def items(a, b):
    return [dict(stream="cam", t0=2.0 * i, t1=2.0 * i + 2, wall=time.time(), carrier=None, keys={{"vis": keys[i]}},
                 thumbnail=b"\\xff\\xd8jpeg", evidence={{"ocr": f"slide {{i}}"}}) for i in range(a, b)]
bank = MemoryBank(path)
acked = bank.add_many(items(0, 6))
print("ACK", json.dumps(acked), flush=True)
subprocess.run(["chmod", "-R", "a-w", path], check=True)  # the directory turns read-only under the running bank
try:
    bank.add_many(items(6, 10))
    print("WROTE")
except BankError as e:
    print("ERR", e)
print("FOUND", bank.search(keys[2], k=1, space="vis")[0][0], bank.count())
bank.close()
print("CLOSED")
"""


def test_a_bank_turned_read_only_mid_run_is_one_clear_error_and_keeps_what_was_acknowledged(tmp_path):
    path = str(tmp_path / "bank")
    r = subprocess.run([*unprivileged(), sys.executable, "-c", READ_ONLY_MID_RUN.format(root=ROOT, path=path)],
                       capture_output=True, text=True, timeout=300)
    chmod_tree(path, True)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    out = dict((line + " ").split(" ", 1) for line in r.stdout.splitlines())
    acked = json.loads(out["ACK"])
    assert "WROTE" not in out
    assert "cannot write to the bank" in out["ERR"] and "kept" in out["ERR"]
    assert out["FOUND"].split() == [str(acked[2]), "6"]  # reading goes on while the disk refuses writes
    assert "CLOSED" in out  # closing a bank it cannot write to does not raise either
    with MemoryBank(path) as bank:
        assert [m.id for m in bank.list()] == acked  # the refused batch left nothing behind, not even in part
        assert bank.check()["ok"]
        assert sorted(os.listdir(os.path.join(path, "thumbs", "cam"))) == sorted(f"{i}.jpg" for i in acked)
        assert bank.add_many(items(2, start=6, seed=2)[0])  # and writing works again once the disk does


def test_ingest_stops_with_one_line_when_the_bank_turns_read_only(tmp_path, media):
    """Through the CLI: the bank directory becomes read-only while a recording is being ingested."""
    bank = str(tmp_path / "bank")
    proc = subprocess.Popen([*unprivileged(), sys.executable, os.path.join(ROOT, "app.py"), "ingest", media["long"],
                             "--bank", bank, "--stream", "rec"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    seen: list[int] = []
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        try:
            with MemoryBank(bank, readonly=True) as b:
                seen = [m.id for m in b.list()]
        except BankError as e:  # not created yet (no file, or its writer is still making the tables)
            assert "no memory bank" in str(e)
        if len(seen) >= 2:
            break
        time.sleep(0.1)
    assert proc.poll() is None and len(seen) >= 2, "the ingest finished before the bank could be made read-only"
    chmod_tree(bank, False)
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        chmod_tree(bank, True)
    assert proc.returncode != 0
    assert "Traceback" not in err and "cannot write to the bank" in err, err[-2000:]
    lines = [x for x in err.splitlines() if "cannot write to the bank" in x]
    assert len(lines) == 1 and "kept" in lines[0]
    with MemoryBank(bank) as b:
        have = {m.id for m in b.list()}
        assert set(seen) <= have and b.check()["ok"]
        assert all(b.carrier(i) is not None for i in seen)


def _segment_bank(path, monkeypatch, n=40):
    monkeypatch.setattr(seg_mod, "SEAL_AT", 16)
    batch, keys = items(n)
    with MemoryBank(path) as bank:
        ids = bank.add_many(batch)
        bank.compact()
        files = [r[0] for r in bank._rd().execute("SELECT file FROM segments")]
    return ids, keys, files


def test_a_truncated_segment_is_searched_from_sqlite_and_rebuilt_by_the_next_writer(tmp_path, monkeypatch):
    path = str(tmp_path / "bank")
    ids, keys, files = _segment_bank(path, monkeypatch)
    target = os.path.join(path, files[0])
    size = os.path.getsize(target)
    with open(target, "r+b") as f:
        f.truncate(size // 3)
    unit = keys / np.linalg.norm(keys, axis=1, keepdims=True)
    with MemoryBank(path, readonly=True) as bank:  # a reader cannot repair on disk: it searches a copy from SQLite
        for qi in (0, 7, 20, 33):
            want = [ids[j] for j in np.argsort(-(unit @ unit[qi]))[:5]]
            assert [i for i, _ in bank.search(keys[qi], k=5, space="vis")] == want
        assert os.path.getsize(target) == size // 3
    with MemoryBank(path) as bank:  # the writer rebuilds the file
        assert bank.search(keys[3], k=1, space="vis")[0][0] == ids[3]
        assert bank.check()["ok"]
    assert os.path.getsize(target) > size // 3
    import faiss

    assert faiss.read_index(target).ntotal == 16  # the rebuilt file is a whole segment again
