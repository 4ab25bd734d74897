"""Opening a bank after anything (a clean close, a SIGKILL, a bank written by an older version): shards,
thumbnails and key segments are made to agree with SQLite, the source of truth; check() says whether they do."""
from __future__ import annotations

import os
import re

import numpy as np

from . import segments as seg_mod
from .segments import Segment


class RecoveryMixin:
    def _reconcile(self) -> None:
        """Make shards, thumbnails and key segments agree with SQLite (repairing on disk unless read-only); load
        the stream tails (bounded) and the segment list (files open lazily)."""
        with self._lock:
            if not self.readonly:
                self._repair_shards()
                self._repair_thumbs()
            self._load_keys()

    def _load_keys(self) -> None:
        known = set()
        for seg, space, stream, rel, n, dim, t0, t1 in self.db.execute(
                "SELECT seg, space, stream, file, n, dim, t0, t1 FROM segments ORDER BY seg").fetchall():
            known.add(rel)
            sg = Segment(seg, space, stream, rel, n, dim, t0, t1)
            if not os.path.exists(os.path.join(self.path, rel)) and not self.readonly:
                self._rebuild_segment(sg)
                self.repairs.append(f"key segment {rel} was missing and was rebuilt from SQLite")
            self.keys.attach(sg, np.zeros(0, np.int64))
        root = os.path.join(self.path, "index")
        if not self.readonly and os.path.isdir(root):
            for d, _, files in os.walk(root):
                for f in files:
                    rel = os.path.relpath(os.path.join(d, f), self.path)
                    if rel not in known and f != seg_mod.TAIL_CACHE:  # sealed by a process that died before its commit
                        os.remove(os.path.join(d, f))
                        self.repairs.append(f"removed unfinished key segment {rel}")
        expect: dict[str, set] = {}
        for mid, space in self.db.execute("SELECT memory_id, space FROM keys WHERE seg IS NULL"):
            expect.setdefault(space, set()).add(mid)
        cache = os.path.join(self.path, "index", seg_mod.TAIL_CACHE)
        if self.keys.load_tail_cache(expect):
            if not self.readonly:
                os.remove(cache)  # valid for this open only: the writer appends from now on
                self._seal_due(list(self.keys.tails))
            return
        rows = self.db.execute("SELECT k.memory_id, k.space, m.stream, k.vec FROM keys k JOIN memories m "
                               "ON m.id = k.memory_id WHERE k.seg IS NULL ORDER BY k.memory_id").fetchall()
        groups: dict[tuple[str, str], list] = {}
        for mid, space, stream, vec in rows:
            groups.setdefault((space, stream), []).append((mid, vec))
        for (space, stream), items in groups.items():
            vecs = np.stack([np.frombuffer(v, np.float32) for _, v in items])
            self.keys.add(space, stream, np.array([m for m, _ in items], np.int64), vecs)
        if not self.readonly:
            self._seal_due(list(groups))

    def _repair_shards(self) -> None:
        rows = self.db.execute("SELECT shard, MAX(offset + nbytes) FROM memories WHERE shard IS NOT NULL GROUP BY shard").fetchall()
        ends = {s: e for s, e in rows}
        shard_dir = os.path.join(self.path, "shards")
        for name in sorted(os.listdir(shard_dir)):
            m = re.fullmatch(r"(\d{6})\.bin", name)
            if not m:
                continue
            sid, p = int(m.group(1)), os.path.join(shard_dir, name)
            size = os.path.getsize(p)
            end = ends.get(sid, 0)
            if size > end:  # bytes written before a crash, never acknowledged
                with open(p, "r+b") as f:
                    f.truncate(end)
                    os.fsync(f.fileno())
                self.repairs.append(f"shard {name}: dropped {size - end} unacknowledged bytes")
        for sid, end in ends.items():
            p = self._shard_path(sid)
            size = os.path.getsize(p) if os.path.exists(p) else 0
            if size < end:  # cannot happen with fsync-before-commit, but never serve garbage
                bad = [r[0] for r in self.db.execute(
                    "SELECT id FROM memories WHERE shard=? AND offset+nbytes>?", (sid, size))]
                self._delete_ids(bad)
                self.repairs.append(f"shard {sid}: {len(bad)} memories referenced missing bytes and were removed")

    def _repair_thumbs(self) -> None:
        referenced = {r[0] for r in self.db.execute("SELECT thumb FROM memories WHERE thumb IS NOT NULL")}
        root = os.path.join(self.path, "thumbs")
        for d, _, files in os.walk(root):
            for f in files:
                rel = os.path.relpath(os.path.join(d, f), self.path)
                if rel not in referenced:
                    os.remove(os.path.join(d, f))
                    self.repairs.append(f"removed orphan thumbnail {rel}")
        missing = [t for t in referenced if not os.path.exists(os.path.join(self.path, t))]
        for t in missing:
            self.db.execute("UPDATE memories SET thumb=NULL WHERE thumb=?", (t,))
            self.repairs.append(f"thumbnail {t} was missing")

    def check(self) -> dict:
        """Do SQLite, the key tails and segments, and the shards agree? {"ok": bool, ...} (tests and `info`)."""
        db = self._rd()
        problems = []
        for space in self.key_spaces():
            sql = {r[0] for r in db.execute("SELECT memory_id FROM keys WHERE space=? AND seg IS NULL", (space,))}
            have = self.keys.tail_ids(space)
            if sql != have:
                problems.append(f"key tail {space}: {len(have - sql)} extra, {len(sql - have)} missing")
        for seg, rel in db.execute("SELECT seg, file FROM segments"):
            if not os.path.exists(os.path.join(self.path, rel)):
                problems.append(f"key segment {rel} is missing")
        for shard, end in db.execute("SELECT shard, MAX(offset+nbytes) FROM memories WHERE shard IS NOT NULL GROUP BY shard"):
            size = os.path.getsize(self._shard_path(shard)) if os.path.exists(self._shard_path(shard)) else 0
            if size < end:
                problems.append(f"shard {shard} is shorter than its references")
        ids = {r[0] for r in db.execute("SELECT id FROM memories")}
        keyed = {r[0] for r in db.execute("SELECT DISTINCT memory_id FROM keys")}
        if keyed - ids:
            problems.append(f"{len(keyed - ids)} keys without a memory")
        return {"ok": not problems, "problems": problems, "memories": len(ids)}
