"""The memory bank: one directory holding everything a Vigil deployment remembers.

    bank/
      bank.sqlite            metadata (WAL): streams, memories, keys, segments, events, FTS5 over the text evidence —
                             the source of truth for what is acknowledged
      shards/000000.bin      carrier tokens, append-only per stream, referenced by (shard, offset, nbytes)
      thumbs/<stream>/<id>.jpg
      index/<space>/<stream>/<seg>.faiss   sealed key segments, written once (memory.segments)

Write order for one memory: thumbnail -> shard bytes (fsync) -> SQLite commit (= acknowledged) -> the stream's
in-memory key tail. Keys live once, in SQLite; a stream's tail of unsealed keys is indexed exactly in memory (rebuilt
on open, bounded), and full tails are sealed into ANN segment files that are never rewritten. On open the bank
reconciles shards, thumbnails and segment files with SQLite, so a SIGKILL at any point loses nothing acknowledged.

Readers never wait for the writer: every thread reads through its own read-only SQLite connection (WAL), and the
writer's lock covers only writing (shard fsync and commit).
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

from . import segments as seg_mod
from .segments import KeyIndex, Segment

SHARD_BYTES = 64 * 1024 * 1024
POS_COLS = 10  # pos(3) lo(3) hi(3) size(1), int32
RETENTION_EVERY = 256  # adds between retention passes

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT);
CREATE TABLE IF NOT EXISTS streams (id TEXT PRIMARY KEY, source TEXT, created REAL, settings TEXT);
CREATE TABLE IF NOT EXISTS memories (
  id INTEGER PRIMARY KEY, stream TEXT NOT NULL, t0 REAL NOT NULL, t1 REAL NOT NULL, wall REAL,
  reducer TEXT, budget INTEGER, space TEXT, shard INTEGER, offset INTEGER, nbytes INTEGER, m INTEGER, d INTEGER,
  thumb TEXT, novelty REAL, asr TEXT, ocr TEXT, tags TEXT, created REAL, steps INTEGER);
CREATE INDEX IF NOT EXISTS memories_stream_t ON memories(stream, t0);
CREATE INDEX IF NOT EXISTS memories_t ON memories(t0);
CREATE INDEX IF NOT EXISTS memories_stream_wall ON memories(stream, wall);
CREATE TABLE IF NOT EXISTS keys (memory_id INTEGER NOT NULL, space TEXT NOT NULL, vec BLOB NOT NULL, seg INTEGER,
  PRIMARY KEY (memory_id, space));
CREATE TABLE IF NOT EXISTS segments (seg INTEGER PRIMARY KEY, space TEXT NOT NULL, stream TEXT NOT NULL,
  file TEXT NOT NULL, n INTEGER, dim INTEGER, t0 REAL, t1 REAL, created REAL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, stream TEXT, kind TEXT, t REAL, wall REAL, detail TEXT);
CREATE TABLE IF NOT EXISTS watches (id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT NOT NULL, stream TEXT,
  kind TEXT, threshold REAL, cooldown REAL, image TEXT, webhook TEXT, created REAL);
CREATE TABLE IF NOT EXISTS alerts (id INTEGER PRIMARY KEY, watch INTEGER, watch_text TEXT, stream TEXT, memory_id INTEGER,
  t0 REAL, t1 REAL, wall REAL, score REAL, evidence TEXT, thumb TEXT, clip TEXT, clip_t0 REAL, clip_t1 REAL,
  created REAL, delivery TEXT);
CREATE INDEX IF NOT EXISTS alerts_created ON alerts(created);
"""
POST_SCHEMA = """
CREATE INDEX IF NOT EXISTS keys_seg ON keys(seg, space);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(asr, ocr, tags, content='memories', content_rowid='id',
  tokenize='porter unicode61');
CREATE TRIGGER IF NOT EXISTS memories_fts_ai AFTER INSERT ON memories BEGIN
  INSERT INTO memories_fts(rowid, asr, ocr, tags) VALUES (new.id, new.asr, new.ocr, new.tags); END;
CREATE TRIGGER IF NOT EXISTS memories_fts_ad AFTER DELETE ON memories BEGIN
  INSERT INTO memories_fts(memories_fts, rowid, asr, ocr, tags) VALUES ('delete', old.id, old.asr, old.ocr, old.tags); END;
CREATE TRIGGER IF NOT EXISTS memories_fts_au AFTER UPDATE OF asr, ocr, tags ON memories BEGIN
  INSERT INTO memories_fts(memories_fts, rowid, asr, ocr, tags) VALUES ('delete', old.id, old.asr, old.ocr, old.tags);
  INSERT INTO memories_fts(rowid, asr, ocr, tags) VALUES (new.id, new.asr, new.ocr, new.tags); END;
"""
_CRED_RE = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)([^/\s:@]+):([^/\s@]*)@")
_FTS_STOP = set("""a an the and or but of to in on at for with from by about as is are was were be been it its this
that these those there here what which who whom when where why how do does did have has had will would can could
i we you he she they me us him her them my our your his their not no so if then than any some all tell please say
said says""".split())


def redact(text: str) -> str:
    """`rtsp://user:pass@host/…` -> `rtsp://user:***@host/…`, anywhere in the text."""
    return _CRED_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@", text or "") if text else text


def fts_query(text: str) -> str:
    """A question as an FTS5 query: its content words, each quoted, OR-ed (bm25 weighs them)."""
    words = [w for w in re.findall(r"[\w']+", (text or "").lower()) if (len(w) > 1 or w.isdigit()) and w not in _FTS_STOP]
    words = list(dict.fromkeys(w.replace("'", "") for w in words if w.replace("'", "")))
    return " OR ".join(f'"{w}"' for w in words[:32])


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
    steps: Optional[int] = None   # time steps of the clip's token grid (carrier pos t runs over 0..steps-1)
    score: float = 0.0

    def citation(self) -> dict:
        return {"id": self.id, "stream": self.stream, "start": round(self.t0, 3), "end": round(self.t1, 3),
                "score": round(float(self.score), 4), "evidence": evidence_text(self.evidence), "thumbnail": self.thumb}


# what each kind of text evidence is, in the words the faces show it with
EVIDENCE_LABELS = {"asr": "Said", "ocr": "On screen", "tags": "Looks like"}


def evidence_text(ev: dict, limit: int = 300) -> str:
    """A memory's text evidence on one line, in plain words: `Said: … | On screen: … | Looks like: cup, mug`."""
    parts = []
    for k, v in (ev or {}).items():
        if not v:
            continue
        v = " ".join(str(v).split())  # slide lines and transcript breaks on one line
        parts.append(f"{EVIDENCE_LABELS.get(k, k.replace('_', ' ').capitalize())}: {v}")
    s = " | ".join(parts)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _safe_name(stream: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stream)[:80] or "stream"


def normalize(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


class MemoryBank:
    """SQLite + shard files + key segments in one directory. Thread-safe inside one process; one writer process
    per bank (a second is refused with one line)."""

    def __init__(self, path: str, readonly: bool = False, create: bool = True, flush_every: int = 64,
                 flush_seconds: float = 10.0):
        import faiss  # noqa: F401  (fail early with the install hint below)

        self.path = os.path.abspath(path)
        self.readonly = readonly
        self._lock = threading.RLock()          # the writer's lock: writes only, never taken by readers
        self._seal_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list = []
        self._readers_lock = threading.Lock()
        self._carrier_spaces: dict[str, set] = {}   # stream -> {(space, d)}, read up to memory id _spaces_upto
        self._spaces_upto = 0
        self._stream_shard: dict[str, int] = {}
        self._adds = 0
        self._span_seen = -1.0
        self.repairs: list[str] = []
        self.db_path = os.path.join(self.path, "bank.sqlite")
        if not os.path.exists(self.db_path):
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
        uri = f"file:{self.db_path}?mode=ro" if readonly else f"file:{self.db_path}"
        try:
            self.db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30, isolation_level=None)
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")  # a commit is durable: that is what 'acknowledged' means
                self._migrate()
            else:
                self.db.execute("PRAGMA query_only=1")
        except sqlite3.DatabaseError as e:
            raise BankError(f"{path!r} is not a readable memory bank: {e}") from None
        self.keys = KeyIndex(self.path, readonly)
        self._reconcile()

    def _migrate(self) -> None:
        had_fts = self.db.execute("SELECT 1 FROM sqlite_master WHERE name='memories_fts'").fetchone() is not None
        self.db.executescript(SCHEMA)
        cols = {r[1] for r in self.db.execute("PRAGMA table_info(keys)")}
        if "seg" not in cols:  # a bank from before segments: every key starts in its stream's tail
            self.db.execute("ALTER TABLE keys ADD COLUMN seg INTEGER")
        if "steps" not in {r[1] for r in self.db.execute("PRAGMA table_info(memories)")}:
            self.db.execute("ALTER TABLE memories ADD COLUMN steps INTEGER")
        self.db.executescript(POST_SCHEMA)
        if not had_fts and self.db.execute("SELECT 1 FROM memories LIMIT 1").fetchone():
            self.db.execute("INSERT INTO memories_fts(memories_fts) VALUES ('rebuild')")
            self.repairs.append("indexed the text evidence for full-text search")
        if self.db.execute("SELECT 1 FROM meta WHERE k='max_span'").fetchone() is None:  # once, for older banks
            span = self.db.execute("SELECT COALESCE(MAX(t1 - t0), 0) FROM memories").fetchone()[0] or 0.0
            self.db.execute("INSERT INTO meta(k, v) VALUES ('max_span', ?)", (json.dumps(float(span)),))
        for name in os.listdir(self.path):  # whole-index files of the old layout: keys now live in SQLite
            if re.fullmatch(r"index-.*\.faiss(\.tmp)?", name):
                os.remove(os.path.join(self.path, name))

    # ---- connections and locking ---------------------------------------------------------------

    def _rd(self) -> sqlite3.Connection:
        """This thread's read-only connection (WAL: it sees every committed write and never waits for the writer)."""
        c = getattr(self._local, "db", None)
        if c is None:
            c = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, check_same_thread=False, timeout=30,
                                isolation_level=None)
            c.execute("PRAGMA query_only=1")
            self._local.db = c
            with self._readers_lock:
                self._readers.append(c)
        return c

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

    # ---- key segments ---------------------------------------------------------------------------

    def _rebuild_segment(self, sg: Segment) -> None:
        """A segment file that is missing or unreadable, rebuilt from its keys in SQLite (in memory when read-only)."""
        rows = self._rd().execute("SELECT memory_id, vec FROM keys WHERE seg=? ORDER BY memory_id", (sg.seg,)).fetchall()
        ids = np.array([r[0] for r in rows], np.int64)
        vecs = np.stack([np.frombuffer(r[1], np.float32) for r in rows]) if rows else np.zeros((0, sg.dim), np.float32)
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

    # ---- writing -----------------------------------------------------------------------------

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
                        " d, thumb, novelty, asr, ocr, tags, created, steps) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (mid, stream, it["t0"], it["t1"], it.get("wall"), it.get("reducer", ""), it.get("budget", 0),
                         it.get("space", ""), shard, offset, nbytes, m, d, thumb_rel, it.get("novelty"), ev.get("asr"),
                         ev.get("ocr"), ev.get("tags"), time.time(), it.get("steps")))
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
                for col in ("asr", "ocr", "tags"):
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

    # ---- retention ----------------------------------------------------------------------------

    def set_retention(self, stream: str, max_age_s: Optional[float] = None, max_bytes: Optional[int] = None) -> None:
        """Keep a stream's memories at most max_age_s (wall clock) and/or max_bytes of carriers; older ones are
        deleted on the next retention pass (every few hundred adds, or apply_retention()), freeing their files."""
        with self._lock:
            self.add_stream(stream)
            st = self.stream_settings(stream)
            st["retention"] = {"max_age_s": max_age_s, "max_bytes": max_bytes}
            self.db.execute("UPDATE streams SET settings=? WHERE id=?", (json.dumps(st), stream))

    def apply_retention(self, now: Optional[float] = None) -> int:
        """Delete what the streams' retention rules no longer keep; returns how many memories went."""
        if self.readonly:
            return 0
        now = time.time() if now is None else now
        gone = 0
        for stream, settings in self._rd().execute("SELECT id, settings FROM streams").fetchall():
            rule = (json.loads(settings) if settings else {}).get("retention") or {}
            ids: list[int] = []
            if rule.get("max_age_s"):
                ids += [r[0] for r in self._rd().execute("SELECT id FROM memories WHERE stream=? AND wall < ?",
                                                         (stream, now - float(rule["max_age_s"])))]
            if rule.get("max_bytes"):
                total = 0
                for mid, nb in self._rd().execute("SELECT id, COALESCE(nbytes, 0) FROM memories WHERE stream=? "
                                                  "ORDER BY t0 DESC", (stream,)):
                    total += nb
                    if total > int(rule["max_bytes"]):
                        ids.append(mid)
            if ids:
                with self._lock:
                    self._delete_ids(sorted(set(ids)))
                gone += len(set(ids))
        return gone

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
        """Top-k (memory id, cosine) for a query key in one key space, optionally inside a time window and streams.
        Exact over recent keys, approximate-then-exact over sealed segments."""
        space = space or self.default_space()
        dim = self.keys.dim(space) if space else None
        if dim is None or k <= 0:
            return []
        q = normalize(np.asarray(query, np.float32).reshape(1, -1))
        if q.shape[1] != dim:
            raise BankError(f"query key has {q.shape[1]} dims; key space {space!r} has {dim}")
        streams = list(streams) if streams else None
        allowed = None
        if t_range is not None:
            where, args = self._where(None, t_range, streams)
            # an index range on t0 (a memory overlapping the window started at most the longest clip before it)
            where += " AND t0>?"
            args.append(float(t_range[0]) - self.max_span() - 1e-6)
            allowed = np.array([r[0] for r in self._rd().execute(f"SELECT id FROM memories {where}", args)], np.int64)
            if allowed.size == 0:
                return []
        return self.keys.search(q[0], space, k, set(streams) if streams else None, t_range, allowed,
                                exact=lambda ids: self._exact_keys(space, ids), rebuild=self._rebuild_segment)

    def _exact_keys(self, space: str, ids: list[int]) -> dict[int, np.ndarray]:
        out = {}
        for c in range(0, len(ids), 500):
            part = ids[c:c + 500]
            for mid, vec in self._rd().execute(f"SELECT memory_id, vec FROM keys WHERE space=? AND memory_id IN "
                                               f"({','.join('?' * len(part))})", [space, *part]):
                out[mid] = np.frombuffer(vec, np.float32)
        return out

    def text_search(self, query: str, k: int = 5, t_range: Optional[tuple[float, float]] = None,
                    streams: Optional[Iterable[str]] = None) -> list[tuple[int, float]]:
        """Top-k (memory id, relevance) by SQLite FTS5's bm25 over the transcript, on-screen text and tags
        (higher is better; tags weigh less). Empty when the query has no searchable words."""
        expr = fts_query(query)
        if not expr or k <= 0:
            return []
        where, args = self._where(None, t_range, list(streams) if streams else None)
        where = where.replace("WHERE ", "AND ").replace("stream", "m.stream").replace("t1>", "m.t1>").replace("t0<", "m.t0<")
        try:
            rows = self._rd().execute(
                "SELECT f.rowid, bm25(memories_fts, 1.0, 1.0, 0.3) AS r FROM memories_fts f JOIN memories m "
                f"ON m.id = f.rowid WHERE memories_fts MATCH ? {where} ORDER BY r LIMIT ?",
                [expr, *args, int(k)]).fetchall()
        except sqlite3.OperationalError:  # a bank written before full-text search and opened read-only
            return []
        return [(int(i), -float(r)) for i, r in rows]

    def key_of(self, memory_id: int, space: str) -> Optional[np.ndarray]:
        r = self._rd().execute("SELECT vec FROM keys WHERE memory_id=? AND space=?", (memory_id, space)).fetchone()
        return None if r is None else np.frombuffer(r[0], np.float32)

    def default_space(self) -> Optional[str]:
        spaces = self.key_spaces()
        visual = [s for s in spaces if not s.startswith("text")]
        return (visual or spaces or [None])[0]

    def key_spaces(self) -> list[str]:
        return self.keys.spaces()

    _COLS = "id, stream, t0, t1, wall, reducer, budget, space, m, d, thumb, novelty, asr, ocr, tags, steps"

    def _row(self, r) -> Memory:
        ev = {k: v for k, v in zip(("asr", "ocr", "tags"), r[12:15]) if v}
        return Memory(*r[:12], evidence=ev, steps=r[15])

    def get(self, ids: Sequence[int]) -> list[Memory]:
        """Memories by id, in the order asked (missing ids are skipped)."""
        if not ids:
            return []
        q = ",".join("?" * len(ids))
        rows = {r[0]: self._row(r) for r in self._rd().execute(f"SELECT {self._COLS} FROM memories WHERE id IN ({q})",
                                                               list(ids))}
        return [rows[i] for i in ids if i in rows]

    def list(self, stream: Optional[str] = None, t_range: Optional[tuple[float, float]] = None,
             limit: Optional[int] = None, newest_first: bool = False) -> list[Memory]:
        where, args = self._where(stream, t_range)
        lim = f" LIMIT {int(limit)}" if limit else ""
        sql = (f"SELECT {self._COLS} FROM memories {where} ORDER BY stream, t0{lim}" if not newest_first else
               f"SELECT {self._COLS} FROM memories {where} ORDER BY id DESC{lim}")
        return [self._row(r) for r in self._rd().execute(sql, args)]

    def carrier(self, memory_id: int) -> Optional[CarrierRecord]:
        r = self._rd().execute("SELECT shard, offset, nbytes, m, d FROM memories WHERE id=?", (memory_id,)).fetchone()
        if r is None or r[0] is None:
            return None
        shard, offset, nbytes, m, d = r
        with open(self._shard_path(shard), "rb") as f:
            f.seek(offset)
            raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise BankError(f"memory {memory_id}: shard {shard} is truncated")
        return CarrierRecord.from_bytes(raw, m, d)

    def max_span(self) -> float:
        """The longest memory's t1 - t0 (kept in meta as memories are added), so time windows use the t0 index."""
        r = self._rd().execute("SELECT v FROM meta WHERE k='max_span'").fetchone()
        if r is not None:
            return float(json.loads(r[0]))
        r = self._rd().execute("SELECT COALESCE(MAX(t1 - t0), 0) FROM memories").fetchone()  # a bank from before
        return float(r[0] or 0.0)

    def carriers(self, ids: Sequence[int]) -> dict[int, CarrierRecord]:
        """Several memories' carriers at once: one row query, one open per shard file, reads in file order."""
        if not ids:
            return {}
        q = ",".join("?" * len(ids))
        rows = self._rd().execute(f"SELECT id, shard, offset, nbytes, m, d FROM memories WHERE id IN ({q}) "
                                  "AND shard IS NOT NULL ORDER BY shard, offset", list(ids)).fetchall()
        out: dict[int, CarrierRecord] = {}
        f, open_shard = None, None
        try:
            for mid, shard, offset, nbytes, m, d in rows:
                if shard != open_shard:
                    if f is not None:
                        f.close()
                    f, open_shard = open(self._shard_path(shard), "rb"), shard
                f.seek(offset)
                raw = f.read(nbytes)
                if len(raw) != nbytes:
                    raise BankError(f"memory {mid}: shard {shard} is truncated")
                out[mid] = CarrierRecord.from_bytes(raw, m, d)
        finally:
            if f is not None:
                f.close()
        return out

    def thumbnail_path(self, memory_id: int) -> Optional[str]:
        m = self.get([memory_id])
        return os.path.join(self.path, m[0].thumb) if m and m[0].thumb else None

    def events(self, stream: Optional[str] = None) -> list[dict]:
        where, args = self._where(stream, None)
        return [dict(zip(("stream", "kind", "t", "wall", "detail"), r)) for r in
                self._rd().execute(f"SELECT stream, kind, t, wall, detail FROM events {where} ORDER BY id", args)]

    def carrier_spaces(self, streams: Optional[Iterable[str]] = None) -> set:
        """{(space, d)} of the carrier tokens stored for these streams (all when None). Cheap on every ask: only
        memories added since the last call are read."""
        db = self._rd()
        with self._readers_lock:
            upto = db.execute("SELECT COALESCE(MAX(id), 0) FROM memories").fetchone()[0]
            for stream, space, d in db.execute(
                    "SELECT DISTINCT stream, space, d FROM memories WHERE id > ? AND id <= ? AND m > 0",
                    (self._spaces_upto, upto)).fetchall():
                self._carrier_spaces.setdefault(stream, set()).add((space or "", int(d)))
            self._spaces_upto = max(self._spaces_upto, upto)
            want = set(streams) if streams else None
            return {sd for st, v in self._carrier_spaces.items() if want is None or st in want for sd in v}

    def count(self) -> int:
        return self._rd().execute("SELECT COUNT(*) FROM memories").fetchone()[0]

    def streams(self) -> list[dict]:
        rows = self._rd().execute(
            "SELECT s.id, s.source, COUNT(m.id), COALESCE(SUM(m.t1 - m.t0), 0), MIN(m.t0), MAX(m.t1) "
            "FROM streams s LEFT JOIN memories m ON m.stream = s.id GROUP BY s.id ORDER BY s.created").fetchall()
        return [dict(zip(("stream", "source", "memories", "covered_s", "first_t", "last_t"), r)) for r in rows]

    def spans(self, stream: str) -> list[tuple[float, float]]:
        """(t0, t1) of a stream's memories in time order: what media time the stream covers."""
        return [(float(a), float(b)) for a, b in self._rd().execute(
            "SELECT t0, t1 FROM memories WHERE stream=? ORDER BY t0, t1", (stream,))]

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
        r = self._rd().execute("SELECT settings FROM streams WHERE id=?", (stream,)).fetchone()
        return json.loads(r[0]) if r and r[0] else {}

    def get_meta(self, key: str, default=None):
        r = self._rd().execute("SELECT v FROM meta WHERE k=?", (key,)).fetchone()
        return json.loads(r[0]) if r else default

    def set_meta(self, key: str, value) -> None:
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO meta(k, v) VALUES (?,?)", (key, json.dumps(value)))

    # ---- watches and alerts (engine/watches.py decides what they mean) ------------------------------

    WATCH_COLS = ("id", "text", "stream", "kind", "threshold", "cooldown", "image", "webhook", "created")
    ALERT_COLS = ("id", "watch", "watch_text", "stream", "memory_id", "t0", "t1", "wall", "score", "evidence", "thumb",
                  "clip", "clip_t0", "clip_t1", "created", "delivery")

    def _insert(self, table: str, names: tuple, fields: dict) -> int:
        cols = [c for c in names if c in fields and c != "id"]
        with self._lock:
            cur = self.db.execute(f"INSERT INTO {table}({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                  [fields[c] for c in cols])
            return int(cur.lastrowid)

    def _update(self, table: str, names: tuple, row_id: int, fields: dict) -> None:
        cols = [c for c in names if c in fields and c != "id"]
        if cols:
            with self._lock:
                self.db.execute(f"UPDATE {table} SET {', '.join(c + '=?' for c in cols)} WHERE id=?",
                                [fields[c] for c in cols] + [int(row_id)])

    def add_watch(self, **fields) -> int:
        return self._insert("watches", self.WATCH_COLS, fields)

    def update_watch(self, watch_id: int, **fields) -> None:
        self._update("watches", self.WATCH_COLS, watch_id, fields)

    def remove_watch(self, watch_id: int) -> bool:
        with self._lock:
            return self.db.execute("DELETE FROM watches WHERE id=?", (int(watch_id),)).rowcount > 0

    def watches(self) -> list[dict]:
        try:
            rows = self._rd().execute(f"SELECT {', '.join(self.WATCH_COLS)} FROM watches ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # a bank from before watches, opened read-only
            return []
        return [dict(zip(self.WATCH_COLS, r)) for r in rows]

    def add_alert(self, **fields) -> int:
        return self._insert("alerts", self.ALERT_COLS, fields)

    def update_alert(self, alert_id: int, **fields) -> None:
        self._update("alerts", self.ALERT_COLS, alert_id, fields)

    def alerts(self, *, since_wall: Optional[float] = None, after_id: Optional[int] = None,
               stream: Optional[str] = None, watch: Optional[int] = None, ids: Optional[Sequence[int]] = None,
               limit: Optional[int] = None) -> list[dict]:
        """Stored alerts, oldest first (the newest `limit` when limited)."""
        cond, args = [], []
        for sql, v in (("created>=?", since_wall), ("id>?", after_id), ("stream=?", stream), ("watch=?", watch)):
            if v is not None:
                cond.append(sql)
                args.append(v)
        if ids is not None:
            cond.append(f"id IN ({','.join('?' * len(ids))})" if ids else "0")
            args += list(ids)
        where = ("WHERE " + " AND ".join(cond)) if cond else ""
        lim = f" LIMIT {int(limit)}" if limit else ""
        try:
            rows = self._rd().execute(f"SELECT {', '.join(self.ALERT_COLS)} FROM alerts {where} ORDER BY id DESC{lim}",
                                      args).fetchall()
        except sqlite3.OperationalError:
            return []
        return [dict(zip(self.ALERT_COLS, r)) for r in reversed(rows)]

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

    def close(self) -> None:
        th = getattr(self, "_compactor", None)
        if th is not None:
            th.join()  # a merge in flight finishes (or the next open cleans up after it)
        with self._lock:
            if not self.readonly:
                try:
                    self.flush(force=True)
                    self.keys.save_tails()  # the next open maps the tails instead of reading them row by row
                except Exception:  # noqa: BLE001 - closing must not lose the lock release below
                    pass
            with self._readers_lock:
                for c in self._readers:
                    try:
                        c.close()
                    except sqlite3.Error:
                        pass
                self._readers.clear()
            self._local = threading.local()
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
