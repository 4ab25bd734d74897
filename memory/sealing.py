"""Sealing full key tails into segment files and merging segments in the background (memory.segments holds the
index structures; this is the part that records them in SQLite)."""
from __future__ import annotations

import os
import threading
import time
from typing import Sequence

import numpy as np

from . import segments as seg_mod
from .segments import Segment

KEY_CHUNK_ROWS = 4096  # rows per fetch when a segment's keys are read back from SQLite


class SealingMixin:
    def _segment_keys(self, sg: Segment) -> tuple[np.ndarray, np.ndarray]:
        """A segment's (ids, keys) as SQLite holds them (the source of truth; deleted memories are gone)."""
        cur = self._rd().execute("SELECT memory_id, vec FROM keys WHERE seg=? ORDER BY memory_id", (sg.seg,))
        ids: list[np.ndarray] = []
        vecs: list[np.ndarray] = []
        while rows := cur.fetchmany(KEY_CHUNK_ROWS):  # in chunks: a search thread gets the GIL between them
            ids.append(np.fromiter((r[0] for r in rows), np.int64, len(rows)))
            vecs.append(np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), -1))
        if not ids:
            return np.zeros(0, np.int64), np.zeros((0, sg.dim), np.float32)
        return np.concatenate(ids), np.concatenate(vecs)

    def _rebuild_segment(self, sg: Segment) -> None:
        """A segment file that is missing or unreadable, rebuilt from its keys in SQLite (in memory when read-only)."""
        ids, vecs = self._segment_keys(sg)
        if self.readonly:
            sg._index = seg_mod.build_index(ids, vecs)
        else:
            self.keys.write_segment(sg.file, ids, vecs)

    def _seal_due(self, tails: Sequence[tuple[str, str]]) -> None:
        sealed = False
        for space, stream in tails:
            while self.keys.tail_size(space, stream) >= seg_mod.SEAL_AT:
                if not self._seal(space, stream):
                    break
                sealed = True
        if sealed and not self.readonly:
            self._compact_soon()

    def _seal(self, space: str, stream: str) -> bool:
        """Seal the oldest SEAL_AT keys of one stream's tail into a segment file: built and written with no lock
        held, then recorded (and the keys marked) in one commit."""
        with self._seal_lock:
            rows = self._rd().execute(
                "SELECT k.memory_id, k.vec, m.t0, m.t1 FROM keys k JOIN memories m ON m.id = k.memory_id "
                "WHERE k.space=? AND k.seg IS NULL AND m.stream=? ORDER BY k.memory_id LIMIT ?",
                (space, stream, seg_mod.SEAL_AT)).fetchall()
            if len(rows) < seg_mod.SEAL_AT:
                return False
            ids = np.array([r[0] for r in rows], np.int64)
            vecs = np.stack([np.frombuffer(r[1], np.float32) for r in rows])
            with self._lock:
                seg = (self.db.execute("SELECT COALESCE(MAX(seg), 0) FROM segments").fetchone()[0] or 0) + 1
            rel = self.keys.seg_path(space, stream, seg)
            self.keys.write_segment(rel, ids, vecs)
            t0, t1 = min(r[2] for r in rows), max(r[3] for r in rows)
            with self._lock:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    self.db.execute("INSERT INTO segments(seg, space, stream, file, n, dim, t0, t1, created) "
                                    "VALUES (?,?,?,?,?,?,?,?,?)",
                                    (seg, space, stream, rel, len(ids), vecs.shape[1], t0, t1, time.time()))
                    for c in range(0, len(ids), 500):
                        part = ids[c:c + 500].tolist()
                        self.db.execute(f"UPDATE keys SET seg=? WHERE space=? AND seg IS NULL AND memory_id IN "
                                        f"({','.join('?' * len(part))})", [seg, space, *part])
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
                self.keys.attach(Segment(seg, space, stream, rel, len(ids), vecs.shape[1], t0, t1), ids)
            return True

    # ---- merging segments (so a stream of months is a handful of segments, not thousands) --------

    def _merge_candidates(self, space: str, stream: str) -> list[Segment]:
        with self.keys.lock:
            segs = sorted((s for s in self.keys.segments.get(space, []) if s.stream == stream), key=lambda s: s.seg)
        by_level: dict[int, list[Segment]] = {}
        for sg in segs:
            by_level.setdefault(seg_mod.level(sg.n), []).append(sg)
        for lvl in sorted(by_level):
            if len(by_level[lvl]) >= seg_mod.FANIN:
                return by_level[lvl][:seg_mod.FANIN]
        return []

    def compact(self) -> int:
        """Merge every stream's segments that are due (FANIN of one size -> one segment FANIN times larger): the new
        file is written once, then one commit moves the keys to it and drops the old segments, whose files are
        then deleted. Returns how many merges ran. A crash at any point leaves either the old or the new segments."""
        if self.readonly:
            return 0
        done = 0
        while True:
            with self.keys.lock:
                pairs = sorted({(s.space, s.stream) for segs in self.keys.segments.values() for s in segs})
            todo = [(sp, st, c) for sp, st in pairs if (c := self._merge_candidates(sp, st))]
            if not todo:
                return done
            for space, stream, olds in todo:
                self._merge(space, stream, olds)
                done += 1

    def _merge(self, space: str, stream: str, olds: list[Segment]) -> None:
        with self._seal_lock:
            ids_old = [o.seg for o in olds]
            q = ",".join("?" * len(ids_old))
            alive = self._rd().execute(f"SELECT COUNT(*) FROM segments WHERE seg IN ({q})", ids_old).fetchone()[0]
            if alive != len(ids_old):
                return  # another merge (the background one, or compact()) took them first
            rows = self._rd().execute(f"SELECT memory_id, vec FROM keys WHERE seg IN ({q}) ORDER BY memory_id",
                                      ids_old).fetchall()
            with self._lock:
                seg = (self.db.execute("SELECT COALESCE(MAX(seg), 0) FROM segments").fetchone()[0] or 0) + 1
            rel = self.keys.seg_path(space, stream, seg)
            ids = np.array([r[0] for r in rows], np.int64)
            dim = olds[0].dim
            vecs = np.stack([np.frombuffer(r[1], np.float32) for r in rows]) if rows else np.zeros((0, dim), np.float32)
            self.keys.write_segment(rel, ids, vecs)
            t0, t1 = min(o.t0 for o in olds), max(o.t1 for o in olds)
            n = max(len(ids), sum(o.n for o in olds))  # its size class counts what it was built for
            with self._lock:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    self.db.execute("INSERT INTO segments(seg, space, stream, file, n, dim, t0, t1, created) "
                                    "VALUES (?,?,?,?,?,?,?,?,?)", (seg, space, stream, rel, n, dim, t0, t1, time.time()))
                    self.db.execute(f"UPDATE keys SET seg=? WHERE seg IN ({q})", [seg, *ids_old])
                    self.db.execute(f"DELETE FROM segments WHERE seg IN ({q})", ids_old)
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
                self.keys.attach(Segment(seg, space, stream, rel, n, dim, t0, t1), np.zeros(0, np.int64))
                for o in self.keys.detach(set(ids_old)):
                    o._index = None
            for o in olds:
                try:
                    os.remove(os.path.join(self.path, o.file))
                except FileNotFoundError:
                    pass

    def _compact_soon(self) -> None:
        """Merge in a background thread (one at a time), so ingestion never waits for it."""
        th = getattr(self, "_compactor", None)
        if th is not None and th.is_alive():
            self._compact_again = True
            return
        self._compact_again = False

        def run() -> None:
            try:
                while True:
                    self.compact()
                    if not self._compact_again:
                        return
                    self._compact_again = False
            except Exception as e:  # noqa: BLE001 - merging is an optimisation; the segments stay searchable
                self.repairs.append(f"segment merge failed: {e}")

        self._compactor = threading.Thread(target=run, daemon=True, name="vigil-bank-compact")
        self._compactor.start()

    def _drop_empty_segments(self) -> None:
        """Segments none of whose keys remain (their memories were deleted): delete row and file (reclaims disk)."""
        empty = self.db.execute("SELECT seg, file FROM segments s WHERE NOT EXISTS "
                                "(SELECT 1 FROM keys k WHERE k.seg = s.seg)").fetchall()
        if not empty:
            return
        self.db.execute(f"DELETE FROM segments WHERE seg IN ({','.join('?' * len(empty))})", [e[0] for e in empty])
        for sg in self.keys.detach({e[0] for e in empty}):
            sg._index = None
        for _, rel in empty:
            try:
                os.remove(os.path.join(self.path, rel))
            except FileNotFoundError:
                pass

    def flush(self, force: bool = True) -> None:
        """Seal every tail that is due. (SQLite and shards are durable at each add; nothing else is buffered.)"""
        if self.readonly:
            return
        self._seal_due(list(self.keys.tails))
