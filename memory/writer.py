"""Writing memories: group commits (thumbnail -> shard bytes + fsync -> one SQLite transaction), late evidence,
deletions that never reuse an id and give shard files back."""
from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from typing import Optional, Sequence

import numpy as np

from .records import EVIDENCE_COLS, BankError, CarrierRecord, _safe_name, normalize, redact

SHARD_BYTES = 64 * 1024 * 1024
RETENTION_EVERY = 256  # adds between retention passes


class WriterMixin:
    def _shard_path(self, sid: int) -> str:
        return os.path.join(self.path, "shards", f"{sid:06d}.bin")

    def add_stream(self, stream: str, source: str = "", settings: Optional[dict] = None) -> None:
        with self._lock:
            self.db.execute("INSERT OR IGNORE INTO streams(id, source, created, settings) VALUES (?,?,?,?)",
                            (stream, redact(source), time.time(), json.dumps(settings or {})))

    def add_event(self, stream: str, kind: str, t: float, wall: float, detail: str = "") -> None:
        with self._lock:
            self.db.execute("INSERT INTO events(stream, kind, t, wall, detail) VALUES (?,?,?,?,?)",
                            (stream, kind, t, wall, redact(detail)))

    def add(self, *, stream: str, t0: float, t1: float, wall: float, carrier: Optional[CarrierRecord],
            keys: dict[str, np.ndarray], reducer: str = "", budget: int = 0, space: str = "",
            thumbnail: Optional[bytes] = None, novelty: Optional[float] = None, evidence: Optional[dict] = None,
            steps: Optional[int] = None) -> int:
        """Store one memory durably; returns its id once acknowledged (SQLite committed). steps: time steps of the
        clip's token grid, so an answerer can place a pruned carrier's tokens at their true times."""
        return self.add_many([dict(stream=stream, t0=t0, t1=t1, wall=wall, carrier=carrier, keys=keys, reducer=reducer,
                                   budget=budget, space=space, thumbnail=thumbnail, novelty=novelty,
                                   evidence=evidence, steps=steps)])[0]

    def add_many(self, items: Sequence[dict]) -> list[int]:
        """Store several memories (each a dict of add()'s arguments) with one group commit: one append and one
        fsync per shard file, one SQLite transaction. They are acknowledged together when it returns. A disk that
        is full or no longer writable raises BankError (one line); what was acknowledged before stays."""
        try:
            return self._add_many(items)
        except (OSError, sqlite3.OperationalError) as e:
            try:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            why = getattr(e, "strerror", None) or str(e)
            raise BankError(f"cannot write to the bank at {self.path}: {why}; memories stored before this are kept"
                            ) from None

    def _add_many(self, items: Sequence[dict]) -> list[int]:
        if self.readonly:
            raise BankError("bank is open read-only")
        if not items:
            return []
        prepared = []
        for it in items:
            vecs = {s: normalize(np.asarray(v, np.float32).reshape(-1)) for s, v in (it.get("keys") or {}).items()}
            for s, v in vecs.items():
                have = self.keys.dim(s)
                if have is not None and have != v.size:
                    raise BankError(f"key space {s!r} holds {have}-d keys; got {v.size}-d (another encoder?)")
            prepared.append((it, vecs))
        with self._lock:
            # ids are never reused, even after deletions (a citation, a cached thumbnail URL or an alert naming
            # an id must not come to mean another memory): the deleted high-water mark is kept in meta
            floor = self._deleted_upto()
            mid0 = max(self.db.execute("SELECT COALESCE(MAX(id), 0) FROM memories").fetchone()[0] or 0, floor) + 1
            rows, pending = [], {}  # pending: shard -> [bytes...] appended in one write each
            for n, (it, vecs) in enumerate(prepared):
                mid, stream = mid0 + n, it["stream"]
                thumb_rel = None
                if it.get("thumbnail") is not None:
                    thumb_rel = os.path.join("thumbs", _safe_name(stream), f"{mid}.jpg")
                    p = os.path.join(self.path, thumb_rel)
                    os.makedirs(os.path.dirname(p), exist_ok=True)
                    with open(p + ".tmp", "wb") as f:
                        f.write(it["thumbnail"])
                    os.replace(p + ".tmp", p)
                shard = offset = nbytes = m = d = None
                if it.get("carrier") is not None:
                    raw = it["carrier"].to_bytes()
                    shard, offset = self._shard_for(stream, len(raw), {k: sum(map(len, v)) for k, v in pending.items()})
                    pending.setdefault(shard, []).append(raw)
                    nbytes, (m, d) = len(raw), it["carrier"].tokens.shape
                rows.append((mid, stream, it, vecs, thumb_rel, shard, offset, nbytes, m, d))
            for shard, parts in pending.items():
                with open(self._shard_path(shard), "ab") as f:
                    f.write(b"".join(parts))
                    f.flush()
                    os.fsync(f.fileno())
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for mid, stream, it, vecs, thumb_rel, shard, offset, nbytes, m, d in rows:
                    ev = it.get("evidence") or {}
                    self.db.execute("INSERT OR IGNORE INTO streams(id, source, created, settings) VALUES (?,?,?,?)",
                                    (stream, "", time.time(), "{}"))
                    self.db.execute(
                        "INSERT INTO memories(id, stream, t0, t1, wall, reducer, budget, space, shard, offset, nbytes, m,"
                        " d, thumb, novelty, asr, ocr, tags, created, steps, screen)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (mid, stream, it["t0"], it["t1"], it.get("wall"), it.get("reducer", ""), it.get("budget", 0),
                         it.get("space", ""), shard, offset, nbytes, m, d, thumb_rel, it.get("novelty"), ev.get("asr"),
                         ev.get("ocr"), ev.get("tags"), time.time(), it.get("steps"), ev.get("screen")))
                    for s, v in vecs.items():
                        self.db.execute("INSERT INTO keys(memory_id, space, vec) VALUES (?,?,?)", (mid, s, v.tobytes()))
                span = max(float(it["t1"]) - float(it["t0"]) for _, _, it, *_ in rows)
                if span > self._span_seen:
                    old = self.db.execute("SELECT v FROM meta WHERE k='max_span'").fetchone()
                    have = float(json.loads(old[0])) if old else float(self.db.execute(
                        "SELECT COALESCE(MAX(t1 - t0), 0) FROM memories").fetchone()[0] or 0.0)
                    self._span_seen = max(span, have)
                    self.db.execute("INSERT OR REPLACE INTO meta(k, v) VALUES ('max_span', ?)", (json.dumps(self._span_seen),))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            groups: dict[tuple[str, str], list] = {}
            for mid, stream, _, vecs, *_ in rows:
                for s, v in vecs.items():
                    groups.setdefault((s, stream), []).append((mid, v))
            for (s, stream), mv in groups.items():
                self.keys.add(s, stream, np.array([x for x, _ in mv], np.int64), np.stack([v for _, v in mv]))
            before, self._adds = self._adds, self._adds + len(rows)
        self._seal_due(list(groups))
        if before // RETENTION_EVERY != self._adds // RETENTION_EVERY:
            self.apply_retention()
        return [r[0] for r in rows]

    def set_evidence(self, memory_id: int, evidence: dict, keys: Optional[dict[str, np.ndarray]] = None) -> None:
        """Attach text evidence (and its keys) to an existing memory, e.g. when ASR finishes later."""
        vecs = {s: normalize(np.asarray(v, np.float32).reshape(-1)) for s, v in (keys or {}).items()}
        with self._lock:
            row = self.db.execute("SELECT stream FROM memories WHERE id=?", (memory_id,)).fetchone()
            if row is None:
                return
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for col in EVIDENCE_COLS:
                    if col in evidence:
                        self.db.execute(f"UPDATE memories SET {col}=? WHERE id=?", (evidence[col], memory_id))
                for s, v in vecs.items():
                    self.db.execute("INSERT OR REPLACE INTO keys(memory_id, space, vec, seg) VALUES (?,?,?,NULL)",
                                    (memory_id, s, v.tobytes()))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            for s, v in vecs.items():
                self.keys.replace(s, row[0], memory_id, v)

    def _shard_for(self, stream: str, n: int, pending: Optional[dict] = None) -> tuple[int, int]:
        """(shard, offset) to append n bytes for a stream (after `pending` bytes not yet written per shard): each
        stream appends to shards of its own, so deleting a stream's old memories can give whole files back."""
        pending = pending or {}
        sid = self._stream_shard.get(stream)
        if sid is None:
            r = self.db.execute("SELECT MAX(shard) FROM memories WHERE stream=?", (stream,)).fetchone()
            sid = r[0] if r and r[0] is not None else None
        p = self._shard_path(sid) if sid is not None else None
        size = (os.path.getsize(p) if p and os.path.exists(p) else 0) + pending.get(sid, 0)
        if sid is None or (size + n > SHARD_BYTES and size > 0):
            top = self.db.execute("SELECT COALESCE(MAX(shard), -1) FROM memories").fetchone()[0]
            files = [int(f[:6]) for f in os.listdir(os.path.join(self.path, "shards")) if re.fullmatch(r"\d{6}\.bin", f)]
            sid, size = max([top, *files, *pending]) + 1, 0
        self._stream_shard[stream] = sid
        return sid, size

    def delete(self, stream: Optional[str] = None, t_range: Optional[tuple[float, float]] = None) -> int:
        """Delete memories of a stream and/or overlapping a time range; returns how many."""
        if self.readonly:
            raise BankError("bank is open read-only")
        where, args = self._where(stream, t_range)
        with self._lock:
            ids = [r[0] for r in self.db.execute(f"SELECT id FROM memories {where}", args)]
            self._delete_ids(ids)
            return len(ids)

    def drop_stream(self, stream: str) -> int:
        """Forget a stream entirely: its memories (keys, thumbnails, and its shard files, which hold only its
        carriers), its events and its row. Returns how many memories went."""
        if self.readonly:
            raise BankError("bank is open read-only")
        with self._lock:
            n = self.delete(stream=stream)
            self.db.execute("DELETE FROM events WHERE stream=?", (stream,))
            self.db.execute("DELETE FROM streams WHERE id=?", (stream,))
            self._stream_shard.pop(stream, None)
            self._carrier_spaces.pop(stream, None)
            try:
                os.rmdir(os.path.join(self.path, "thumbs", _safe_name(stream)))
            except OSError:  # not empty (another stream of the same safe name) or never made
                pass
            return n

    def _deleted_upto(self) -> int:
        """The highest memory id ever deleted (0 when none): new ids start above it."""
        floor = getattr(self, "_id_floor", None)
        if floor is None:
            r = self.db.execute("SELECT v FROM meta WHERE k='deleted_upto'").fetchone()
            floor = self._id_floor = int(json.loads(r[0])) if r else 0
        return floor

    def _delete_ids(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        thumbs = []
        floor = max(self._deleted_upto(), max(int(i) for i in ids))
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("INSERT OR REPLACE INTO meta(k, v) VALUES ('deleted_upto', ?)", (json.dumps(floor),))
            for chunk in range(0, len(ids), 500):
                part = list(ids[chunk:chunk + 500])
                q = ",".join("?" * len(part))
                thumbs += [r[0] for r in self.db.execute(f"SELECT thumb FROM memories WHERE id IN ({q})", part) if r[0]]
                self.db.execute(f"DELETE FROM memories WHERE id IN ({q})", part)
                self.db.execute(f"DELETE FROM keys WHERE memory_id IN ({q})", part)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self._id_floor = floor
        self.keys.remove(ids)
        for t in thumbs:
            try:
                os.remove(os.path.join(self.path, t))
            except FileNotFoundError:
                pass
        self._drop_empty_segments()
        self._drop_unused_shards()

    def _drop_unused_shards(self) -> None:
        used = {r[0] for r in self.db.execute("SELECT DISTINCT shard FROM memories WHERE shard IS NOT NULL")}
        for name in os.listdir(os.path.join(self.path, "shards")):
            m = re.fullmatch(r"(\d{6})\.bin", name)
            if m and int(m.group(1)) not in used:
                os.remove(os.path.join(self.path, "shards", name))
                self._stream_shard = {k: v for k, v in self._stream_shard.items() if v != int(m.group(1))}
