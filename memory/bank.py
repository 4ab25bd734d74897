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

MemoryBank is assembled from one part per job: records (what is stored), schema (tables, migrations), writer (group
commit, deletion), sealing (tails -> segments, merges), recovery (reconcile on open, check), retention, search (keys),
fts (text), reader (rows, carriers, streams), watch_store (watches, alerts); segments holds the key indexes.
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
import threading

from .fts import _FTS_STOP, FullTextMixin, fts_query
from .reader import ReaderMixin
from .records import (EVIDENCE_LABELS, POS_COLS, BankError, CarrierRecord, Memory, encode_jpeg, evidence_text,
                      normalize, redact)
from .recovery import RecoveryMixin
from .retention import RetentionMixin
from .schema import migrate
from .sealing import SealingMixin
from .search import SearchMixin
from .segments import KeyIndex
from .watch_store import WatchStoreMixin
from .writer import RETENTION_EVERY, SHARD_BYTES, WriterMixin

# what callers import from here (the parts live in the modules above)
__all__ = ["MemoryBank", "BankError", "CarrierRecord", "Memory", "EVIDENCE_LABELS", "POS_COLS", "RETENTION_EVERY",
           "SHARD_BYTES", "encode_jpeg", "evidence_text", "fts_query", "normalize", "redact", "_FTS_STOP"]


class MemoryBank(RecoveryMixin, SealingMixin, WriterMixin, RetentionMixin, SearchMixin, FullTextMixin, ReaderMixin,
                 WatchStoreMixin):
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
        self._readers: list[tuple[threading.Thread, sqlite3.Connection]] = []  # (its thread, read connection)
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
                if self.db.execute("SELECT 1 FROM sqlite_master WHERE name='segments'").fetchone() is None:
                    self.db.close()  # a bank its writer is still creating (or from before key segments)
                    raise BankError(f"no memory bank at {path!r} yet (ingest something first)")
        except sqlite3.DatabaseError as e:
            raise BankError(f"{path!r} is not a readable memory bank: {e}") from None
        self.keys = KeyIndex(self.path, readonly)
        self._reconcile()

    def _migrate(self) -> None:
        self.repairs += migrate(self.db, self.path)

    # ---- connections and locking ---------------------------------------------------------------

    def _rd(self) -> sqlite3.Connection:
        """This thread's read-only connection (WAL: it sees every committed write and never waits for the writer).
        Connections of threads that have ended are closed here, so a server whose worker threads come and go
        holds one per live thread, not one per thread it ever had."""
        c = getattr(self._local, "db", None)
        if c is None:
            c = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, check_same_thread=False, timeout=30,
                                isolation_level=None)
            c.execute("PRAGMA query_only=1")
            self._local.db = c
            with self._readers_lock:
                for th, old in self._readers:
                    if not th.is_alive():
                        old.close()
                self._readers = [(th, x) for th, x in self._readers if th.is_alive()]
                self._readers.append((threading.current_thread(), c))
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
                for _, c in self._readers:
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
