"""The memory bank: one directory holding everything a Vigil deployment remembers.

    bank/
      bank.sqlite            metadata (WAL): streams, memories, keys, events — the source of truth
      shards/000000.bin      carrier tokens, append-only, referenced by (shard, offset, nbytes)
      thumbs/<stream>/<id>.jpg
      index-<space>.faiss    IndexIDMap2(IndexFlatIP) over L2-normalised keys, one per key space

Write order for one memory: thumbnail -> shard bytes (fsync) -> SQLite commit (= acknowledged) -> FAISS.
FAISS files are rewritten atomically from time to time; on open the bank reconciles them, the shards
and the thumbnails with SQLite, so a SIGKILL at any point loses nothing that was acknowledged.
"""
from __future__ import annotations

import fcntl
import io
import json
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import numpy as np

SHARD_BYTES = 256 * 1024 * 1024
POS_COLS = 10  # pos(3) lo(3) hi(3) size(1), int32

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT);
CREATE TABLE IF NOT EXISTS streams (id TEXT PRIMARY KEY, source TEXT, created REAL, settings TEXT);
CREATE TABLE IF NOT EXISTS memories (
  id INTEGER PRIMARY KEY, stream TEXT NOT NULL, t0 REAL NOT NULL, t1 REAL NOT NULL, wall REAL,
  reducer TEXT, budget INTEGER, space TEXT, shard INTEGER, offset INTEGER, nbytes INTEGER, m INTEGER, d INTEGER,
  thumb TEXT, novelty REAL, asr TEXT, ocr TEXT, tags TEXT, created REAL);
CREATE INDEX IF NOT EXISTS memories_stream_t ON memories(stream, t0);
CREATE TABLE IF NOT EXISTS keys (memory_id INTEGER NOT NULL, space TEXT NOT NULL, vec BLOB NOT NULL,
  PRIMARY KEY (memory_id, space));
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, stream TEXT, kind TEXT, t REAL, wall REAL, detail TEXT);
"""


class BankError(RuntimeError):
    """The bank cannot be opened or used; one line for the user."""


@dataclass
class CarrierRecord:
    """Carrier tokens as stored: tokens [M, D] float16 (or float32 when given so), pos/lo/hi [M, 3] int32,
    size [M] int32. The stored width of a token follows from nbytes, so both dtypes read back exactly."""

    tokens: np.ndarray
    pos: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    size: np.ndarray

    def to_bytes(self) -> bytes:
        meta = np.concatenate([self.pos, self.lo, self.hi, self.size[:, None]], axis=1).astype(np.int32)
        tok = self.tokens if self.tokens.dtype == np.float32 else self.tokens.astype(np.float16)
        return np.ascontiguousarray(tok).tobytes() + meta.tobytes()

    @classmethod
    def from_bytes(cls, raw: bytes, m: int, d: int) -> "CarrierRecord":
        width = (len(raw) - m * POS_COLS * 4) // max(1, m * d)  # 2: float16, 4: float32
        dt = np.float32 if width == 4 else np.float16
        tok = np.frombuffer(raw, dt, count=m * d).reshape(m, d)
        meta = np.frombuffer(raw, np.int32, offset=m * d * width).reshape(m, POS_COLS)
        return cls(tok, meta[:, 0:3], meta[:, 3:6], meta[:, 6:9], meta[:, 9])


@dataclass
class Memory:
    id: int
    stream: str
    t0: float
    t1: float
    wall: float
    reducer: str
    budget: int
    space: str
    m: int
    d: int
    thumb: Optional[str]
    novelty: Optional[float]
    evidence: dict = field(default_factory=dict)
    score: float = 0.0

    def citation(self) -> dict:
        return {"id": self.id, "stream": self.stream, "start": round(self.t0, 3), "end": round(self.t1, 3),
                "score": round(float(self.score), 4), "evidence": evidence_text(self.evidence), "thumbnail": self.thumb}


def evidence_text(ev: dict, limit: int = 300) -> str:
    parts = [f"{k}: {v}" for k, v in ev.items() if v]
    s = " | ".join(parts)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _safe_name(stream: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stream)[:80] or "stream"


def normalize(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


class MemoryBank:
    """FAISS + SQLite + shard files in one directory. Thread-safe inside one process; one writer process per bank."""

    def __init__(self, path: str, readonly: bool = False, create: bool = True, flush_every: int = 64,
                 flush_seconds: float = 10.0):
        import faiss  # noqa: F401  (fail early with the install hint below)

        self.path = os.path.abspath(path)
        self.readonly = readonly
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._lock = threading.RLock()
        self._dirty: dict[str, int] = {}
        self._carrier_spaces: dict[str, set] = {}   # stream -> {(space, d)}, read up to memory id _spaces_upto
        self._spaces_upto = 0
        self._last_flush = time.monotonic()
        self.repairs: list[str] = []
        db_path = os.path.join(self.path, "bank.sqlite")
        if not os.path.exists(db_path):
            if readonly or not create:
                raise BankError(f"no memory bank at {path!r} (ingest something first)")
            if os.path.exists(self.path) and not os.path.isdir(self.path):
                raise BankError(f"{path!r} exists and is not a directory")
            os.makedirs(self.path, exist_ok=True)
        self._lockfile = None
        if not readonly:
            self._take_writer_lock()
            os.makedirs(os.path.join(self.path, "shards"), exist_ok=True)
            os.makedirs(os.path.join(self.path, "thumbs"), exist_ok=True)
        uri = f"file:{db_path}?mode=ro" if readonly else f"file:{db_path}"
        try:
            self.db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30, isolation_level=None)
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")  # a commit is durable: that is what 'acknowledged' means
                self.db.executescript(SCHEMA)
            else:
                self.db.execute("PRAGMA query_only=1")
        except sqlite3.DatabaseError as e:
            raise BankError(f"{path!r} is not a readable memory bank: {e}") from None
        self.indexes: dict = {}
        self._reconcile()

    # ---- locking -------------------------------------------------------------------------------

    def _take_writer_lock(self) -> None:
        self._lockfile = open(os.path.join(self.path, ".writer.lock"), "a+")
        try:
            fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lockfile.seek(0)
            who = self._lockfile.read().strip() or "another process"
            self._lockfile.close()
            self._lockfile = None
            raise BankError(f"bank {self.path!r} is being written by {who}; stop it or use another --bank") from None
        self._lockfile.seek(0)
        self._lockfile.truncate()
        self._lockfile.write(f"pid {os.getpid()}")
        self._lockfile.flush()

    # ---- recovery ----------------------------------------------------------------------------

    def _reconcile(self) -> None:
        """Make shards, thumbnails and FAISS agree with SQLite (repairing on disk unless read-only)."""
        with self._lock:
            if not self.readonly:
                self._repair_shards()
                self._repair_thumbs()
            for (space,) in self.db.execute("SELECT DISTINCT space FROM keys").fetchall():
                self._load_index(space)

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

    def _index_path(self, space: str) -> str:
        return os.path.join(self.path, f"index-{_safe_name(space)}.faiss")

    def _load_index(self, space: str) -> None:
        import faiss

        rows = self.db.execute("SELECT memory_id, vec FROM keys WHERE space=?", (space,)).fetchall()
        want = {r[0] for r in rows}
        index = None
        p = self._index_path(space)
        if os.path.exists(p):
            try:
                index = faiss.read_index(p)
            except RuntimeError:
                self.repairs.append(f"index {os.path.basename(p)} was unreadable and was rebuilt")
        dim = len(rows[0][1]) // 4 if rows else None
        if index is not None and dim is not None and index.d != dim:
            index = None
        if index is None:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim or 1))
        have = set(faiss.vector_to_array(index.id_map).tolist()) if index.ntotal else set()
        extra = have - want
        if extra:
            index.remove_ids(np.array(sorted(extra), np.int64))
            self.repairs.append(f"index {space}: removed {len(extra)} ids without metadata")
        missing = [r for r in rows if r[0] not in have]
        if missing:
            vecs = np.stack([np.frombuffer(r[1], np.float32) for r in missing])
            index.add_with_ids(normalize(vecs), np.array([r[0] for r in missing], np.int64))
            self.repairs.append(f"index {space}: added {len(missing)} acknowledged memories it lacked")
            self._dirty[space] = self._dirty.get(space, 0) + len(missing)
        self.indexes[space] = index
        if (extra or missing) and not self.readonly:
            self._write_index(space)

    def _write_index(self, space: str) -> None:
        import faiss

        p = self._index_path(space)
        tmp = p + ".tmp"
        faiss.write_index(self.indexes[space], tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, p)
        dfd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        self._dirty[space] = 0

    def flush(self, force: bool = True) -> None:
        """Persist FAISS indexes that changed (SQLite and shards are already durable)."""
        if self.readonly:
            return
        with self._lock:
            due = force or time.monotonic() - self._last_flush > self.flush_seconds
            for space, n in list(self._dirty.items()):
                if n and (due or n >= self.flush_every):
                    self._write_index(space)
            if due:
                self._last_flush = time.monotonic()

    # ---- writing -----------------------------------------------------------------------------

    def _shard_path(self, sid: int) -> str:
        return os.path.join(self.path, "shards", f"{sid:06d}.bin")

    def add_stream(self, stream: str, source: str = "", settings: Optional[dict] = None) -> None:
        with self._lock:
            self.db.execute("INSERT OR IGNORE INTO streams(id, source, created, settings) VALUES (?,?,?,?)",
                            (stream, source, time.time(), json.dumps(settings or {})))

    def add_event(self, stream: str, kind: str, t: float, wall: float, detail: str = "") -> None:
        with self._lock:
            self.db.execute("INSERT INTO events(stream, kind, t, wall, detail) VALUES (?,?,?,?,?)",
                            (stream, kind, t, wall, detail))

    def add(self, *, stream: str, t0: float, t1: float, wall: float, carrier: Optional[CarrierRecord],
            keys: dict[str, np.ndarray], reducer: str = "", budget: int = 0, space: str = "",
            thumbnail: Optional[bytes] = None, novelty: Optional[float] = None, evidence: Optional[dict] = None) -> int:
        """Store one memory durably; returns its id once acknowledged (SQLite committed)."""
        if self.readonly:
            raise BankError("bank is open read-only")
        ev = evidence or {}
        with self._lock:
            mid = (self.db.execute("SELECT COALESCE(MAX(id), 0) FROM memories").fetchone()[0] or 0) + 1
            thumb_rel = None
            if thumbnail is not None:
                thumb_rel = os.path.join("thumbs", _safe_name(stream), f"{mid}.jpg")
                p = os.path.join(self.path, thumb_rel)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p + ".tmp", "wb") as f:
                    f.write(thumbnail)
                os.replace(p + ".tmp", p)
            shard = offset = nbytes = m = d = None
            if carrier is not None:
                raw = carrier.to_bytes()
                shard, offset = self._shard_for(len(raw))
                with open(self._shard_path(shard), "ab") as f:
                    f.write(raw)
                    f.flush()
                    os.fsync(f.fileno())
                nbytes, (m, d) = len(raw), carrier.tokens.shape
            vecs = {s: normalize(np.asarray(v, np.float32).reshape(-1)) for s, v in keys.items()}
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute("INSERT OR IGNORE INTO streams(id, source, created, settings) VALUES (?,?,?,?)",
                                (stream, "", time.time(), "{}"))
                self.db.execute(
                    "INSERT INTO memories(id, stream, t0, t1, wall, reducer, budget, space, shard, offset, nbytes, m, d,"
                    " thumb, novelty, asr, ocr, tags, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (mid, stream, t0, t1, wall, reducer, budget, space, shard, offset, nbytes, m, d, thumb_rel,
                     novelty, ev.get("asr"), ev.get("ocr"), ev.get("tags"), time.time()))
                for s, v in vecs.items():
                    self.db.execute("INSERT INTO keys(memory_id, space, vec) VALUES (?,?,?)", (mid, s, v.tobytes()))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            for s, v in vecs.items():
                self._index_for(s, v.size).add_with_ids(v[None], np.array([mid], np.int64))
                self._dirty[s] = self._dirty.get(s, 0) + 1
            self.flush(force=False)
            return mid

    def set_evidence(self, memory_id: int, evidence: dict, keys: Optional[dict[str, np.ndarray]] = None) -> None:
        """Attach text evidence (and its keys) to an existing memory, e.g. when ASR finishes later."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for col in ("asr", "ocr", "tags"):
                    if col in evidence:
                        self.db.execute(f"UPDATE memories SET {col}=? WHERE id=?", (evidence[col], memory_id))
                for s, v in (keys or {}).items():
                    v = normalize(np.asarray(v, np.float32).reshape(-1))
                    self.db.execute("INSERT OR REPLACE INTO keys(memory_id, space, vec) VALUES (?,?,?)",
                                    (memory_id, s, v.tobytes()))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            for s, v in (keys or {}).items():
                v = normalize(np.asarray(v, np.float32).reshape(-1))
                idx = self._index_for(s, v.size)
                idx.remove_ids(np.array([memory_id], np.int64))
                idx.add_with_ids(v[None], np.array([memory_id], np.int64))
                self._dirty[s] = self._dirty.get(s, 0) + 1

    def _index_for(self, space: str, dim: int):
        import faiss

        idx = self.indexes.get(space)
        if idx is None or (idx.ntotal == 0 and idx.d != dim):
            idx = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
            self.indexes[space] = idx
        if idx.d != dim:
            raise BankError(f"key space {space!r} holds {idx.d}-d keys; got {dim}-d (another encoder?)")
        return idx

    def _shard_for(self, n: int) -> tuple[int, int]:
        sid = self.db.execute("SELECT COALESCE(MAX(shard), 0) FROM memories").fetchone()[0] or 0
        p = self._shard_path(sid)
        size = os.path.getsize(p) if os.path.exists(p) else 0
        if size and size + n > SHARD_BYTES:
            sid, size = sid + 1, 0
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

    def _delete_ids(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        thumbs = []
        self.db.execute("BEGIN IMMEDIATE")
        try:
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
        arr = np.array(ids, np.int64)
        for s, idx in self.indexes.items():
            if idx.remove_ids(arr):  # one batched call: remove_ids scans the whole index
                self._dirty[s] = self._dirty.get(s, 0) + 1
        for t in thumbs:
            try:
                os.remove(os.path.join(self.path, t))
            except FileNotFoundError:
                pass
        self.flush(force=True)

    # ---- reading -----------------------------------------------------------------------------

    @staticmethod
    def _where(stream: Optional[str], t_range: Optional[tuple[float, float]],
               streams: Optional[Iterable[str]] = None) -> tuple[str, list]:
        cond, args = [], []
        if stream is not None:
            cond.append("stream=?")
            args.append(stream)
        if streams:
            s = list(streams)
            cond.append(f"stream IN ({','.join('?' * len(s))})")
            args += s
        if t_range is not None:
            cond.append("t1>? AND t0<?")
            args += [float(t_range[0]), float(t_range[1])]
        return ("WHERE " + " AND ".join(cond)) if cond else "", args

    def search(self, query: np.ndarray, k: int = 5, space: Optional[str] = None,
               t_range: Optional[tuple[float, float]] = None, streams: Optional[Iterable[str]] = None) -> list[tuple[int, float]]:
        """Top-k (memory id, cosine) for a query key in one key space, optionally inside a time window."""
        import faiss

        space = space or self.default_space()
        with self._lock:
            idx = self.indexes.get(space)
            if idx is None or idx.ntotal == 0 or k <= 0:
                return []
            q = normalize(np.asarray(query, np.float32).reshape(1, -1))
            if q.shape[1] != idx.d:
                raise BankError(f"query key has {q.shape[1]} dims; key space {space!r} has {idx.d}")
            params = None
            if t_range is not None or streams:
                where, args = self._where(None, t_range, streams)
                ids = np.array([r[0] for r in self.db.execute(f"SELECT id FROM memories {where}", args)], np.int64)
                if ids.size == 0:
                    return []
                params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(ids))
            D, I = idx.search(q, min(k, idx.ntotal), params=params)
        return [(int(i), float(d)) for d, i in zip(D[0], I[0]) if i >= 0]

    def key_of(self, memory_id: int, space: str) -> Optional[np.ndarray]:
        with self._lock:
            r = self.db.execute("SELECT vec FROM keys WHERE memory_id=? AND space=?", (memory_id, space)).fetchone()
        return None if r is None else np.frombuffer(r[0], np.float32)

    def default_space(self) -> Optional[str]:
        spaces = self.key_spaces()
        visual = [s for s in spaces if not s.startswith("text")]
        return (visual or spaces or [None])[0]

    def key_spaces(self) -> list[str]:
        with self._lock:
            return sorted(self.indexes)

    _COLS = "id, stream, t0, t1, wall, reducer, budget, space, m, d, thumb, novelty, asr, ocr, tags"

    def _row(self, r) -> Memory:
        ev = {k: v for k, v in zip(("asr", "ocr", "tags"), r[12:15]) if v}
        return Memory(*r[:12], evidence=ev)

    def get(self, ids: Sequence[int]) -> list[Memory]:
        """Memories by id, in the order asked (missing ids are skipped)."""
        if not ids:
            return []
        with self._lock:
            q = ",".join("?" * len(ids))
            rows = {r[0]: self._row(r) for r in self.db.execute(f"SELECT {self._COLS} FROM memories WHERE id IN ({q})", list(ids))}
        return [rows[i] for i in ids if i in rows]

    def list(self, stream: Optional[str] = None, t_range: Optional[tuple[float, float]] = None,
             limit: Optional[int] = None, newest_first: bool = False) -> list[Memory]:
        where, args = self._where(stream, t_range)
        order = "DESC" if newest_first else "ASC"
        lim = f" LIMIT {int(limit)}" if limit else ""
        with self._lock:
            return [self._row(r) for r in self.db.execute(
                f"SELECT {self._COLS} FROM memories {where} ORDER BY stream, t0 {order}{lim}"
                if not newest_first else f"SELECT {self._COLS} FROM memories {where} ORDER BY id DESC{lim}", args)]

    def carrier(self, memory_id: int) -> Optional[CarrierRecord]:
        with self._lock:
            r = self.db.execute("SELECT shard, offset, nbytes, m, d FROM memories WHERE id=?", (memory_id,)).fetchone()
        if r is None or r[0] is None:
            return None
        shard, offset, nbytes, m, d = r
        with open(self._shard_path(shard), "rb") as f:
            f.seek(offset)
            raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise BankError(f"memory {memory_id}: shard {shard} is truncated")
        return CarrierRecord.from_bytes(raw, m, d)

    def thumbnail_path(self, memory_id: int) -> Optional[str]:
        m = self.get([memory_id])
        return os.path.join(self.path, m[0].thumb) if m and m[0].thumb else None

    def events(self, stream: Optional[str] = None) -> list[dict]:
        where, args = self._where(stream, None)
        with self._lock:
            return [dict(zip(("stream", "kind", "t", "wall", "detail"), r)) for r in
                    self.db.execute(f"SELECT stream, kind, t, wall, detail FROM events {where} ORDER BY id", args)]

    def carrier_spaces(self, streams: Optional[Iterable[str]] = None) -> set:
        """{(space, d)} of the carrier tokens stored for these streams (all when None). Cheap on every ask: only
        memories added since the last call are read."""
        with self._lock:
            upto = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM memories").fetchone()[0]
            for stream, space, d in self.db.execute(
                    "SELECT DISTINCT stream, space, d FROM memories WHERE id > ? AND id <= ? AND m > 0",
                    (self._spaces_upto, upto)).fetchall():
                self._carrier_spaces.setdefault(stream, set()).add((space or "", int(d)))
            self._spaces_upto = upto
            want = set(streams) if streams else None
            return {sd for st, v in self._carrier_spaces.items() if want is None or st in want for sd in v}

    def count(self) -> int:
        with self._lock:
            return self.db.execute("SELECT COUNT(*) FROM memories").fetchone()[0]

    def streams(self) -> list[dict]:
        with self._lock:
            rows = self.db.execute(
                "SELECT s.id, s.source, COUNT(m.id), COALESCE(SUM(m.t1 - m.t0), 0), MIN(m.t0), MAX(m.t1) "
                "FROM streams s LEFT JOIN memories m ON m.stream = s.id GROUP BY s.id ORDER BY s.created").fetchall()
        return [dict(zip(("stream", "source", "memories", "covered_s", "first_t", "last_t"), r)) for r in rows]

    def resume_point(self, stream_id: str) -> tuple[float, float]:
        """(last_t, offset) for a live stream id: where its media clock stood and where a new run continues it.

        Live media time is seconds since the stream started, and a stop/start must not restart it at 0: the
        bank orders, filters ("the last hour") and cites by t within a stream, so a second run from 0 would
        interleave its memories with the first run's. A restarted live source goes on from the stream's last t
        plus the wall-clock time it was stopped: the convention LiveSource uses for a reconnect (a gap is a jump
        in t, recorded as a "gap" event). A stream new to the bank starts at (0, 0)."""
        row = next((s for s in self.streams() if s["stream"] == stream_id), None)
        ts, walls = [], []
        if row is not None and row["last_t"] is not None:
            ts.append(float(row["last_t"]))
            newest = self.list(stream=stream_id, limit=1, newest_first=True)
            if newest:
                walls.append(newest[0].wall + (newest[0].t1 - newest[0].t0))
        for e in self.events(stream_id):
            ts.append(float(e["t"]))
            walls.append(float(e["wall"]))
        if not ts:
            return 0.0, 0.0
        last_t = max(ts)
        stopped = max(0.0, time.time() - max(walls)) if walls else 0.0
        return last_t, last_t + stopped

    def note_restart(self, stream_id: str, last_t: float, offset: float) -> None:
        """Record the stopped stretch of a live stream restarted at `offset` as a gap event."""
        self.add_event(stream_id, "gap", last_t, time.time(),
                       f"source stopped; restarted at t={offset:.1f}s ({offset - last_t:.1f}s without video)")

    def stream_settings(self, stream: str) -> dict:
        with self._lock:
            r = self.db.execute("SELECT settings FROM streams WHERE id=?", (stream,)).fetchone()
        return json.loads(r[0]) if r and r[0] else {}

    def get_meta(self, key: str, default=None):
        with self._lock:
            r = self.db.execute("SELECT v FROM meta WHERE k=?", (key,)).fetchone()
        return json.loads(r[0]) if r else default

    def set_meta(self, key: str, value) -> None:
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO meta(k, v) VALUES (?,?)", (key, json.dumps(value)))

    def bytes_on_disk(self) -> int:
        total = 0
        for d, _, files in os.walk(self.path):
            for f in files:
                try:
                    total += os.path.getsize(os.path.join(d, f))
                except FileNotFoundError:
                    pass
        return total

    def check(self) -> dict:
        """Do SQLite, FAISS and shards agree? {"ok": bool, ...} (used by tests and `info`)."""
        import faiss

        with self._lock:
            problems = []
            for space, idx in self.indexes.items():
                sql = {r[0] for r in self.db.execute("SELECT memory_id FROM keys WHERE space=?", (space,))}
                have = set(faiss.vector_to_array(idx.id_map).tolist()) if idx.ntotal else set()
                if sql != have:
                    problems.append(f"index {space}: {len(have - sql)} extra, {len(sql - have)} missing")
            for shard, end in self.db.execute("SELECT shard, MAX(offset+nbytes) FROM memories WHERE shard IS NOT NULL GROUP BY shard"):
                size = os.path.getsize(self._shard_path(shard)) if os.path.exists(self._shard_path(shard)) else 0
                if size < end:
                    problems.append(f"shard {shard} is shorter than its references")
            ids = {r[0] for r in self.db.execute("SELECT id FROM memories")}
            keyed = {r[0] for r in self.db.execute("SELECT DISTINCT memory_id FROM keys")}
            if keyed - ids:
                problems.append(f"{len(keyed - ids)} keys without a memory")
        return {"ok": not problems, "problems": problems, "memories": len(ids)}

    def close(self) -> None:
        with self._lock:
            if not self.readonly:
                self.flush(force=True)
            self.db.close()
            if self._lockfile is not None:
                self._lockfile.close()
                self._lockfile = None

    def __enter__(self) -> "MemoryBank":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def encode_jpeg(image: np.ndarray, width: int = 320, quality: int = 80) -> bytes:
    """A thumbnail JPEG of an RGB uint8 image, `width` pixels wide."""
    from PIL import Image

    im = Image.fromarray(image)
    if im.width > width:
        im = im.resize((width, max(1, round(im.height * width / im.width))), Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()
