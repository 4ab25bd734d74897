"""Reading memories, carriers, streams, events and settings through each thread's own read connection."""
from __future__ import annotations

import json
import os
import time
from typing import Iterable, Optional, Sequence

from .records import EVIDENCE_COLS, BankError, CarrierRecord, Memory


class ReaderMixin:
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

    _BASE_COLS = "id, stream, t0, t1, wall, reducer, budget, space, m, d, thumb, novelty, asr, ocr, tags, steps"

    @property
    def _COLS(self) -> str:
        """The memory columns read, "screen" as NULL in a bank written before it (opened read-only, unmigrated)."""
        cols = getattr(self, "_cols_cache", None)
        if cols is None:
            have = {r[1] for r in self._rd().execute("PRAGMA table_info(memories)")}
            cols = self._cols_cache = self._BASE_COLS + (", screen" if "screen" in have else ", NULL")
        return cols

    def _row(self, r) -> Memory:
        ev = {k: v for k, v in zip(EVIDENCE_COLS, r[12:15] + r[16:17]) if v}
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
                raw = bytearray(nbytes)  # writable: the ask path wraps these bytes as tensors without a copy
                if f.readinto(raw) != nbytes:
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

    def bytes_on_disk(self) -> int:
        total = 0
        for d, _, files in os.walk(self.path):
            for f in files:
                try:
                    total += os.path.getsize(os.path.join(d, f))
                except FileNotFoundError:
                    pass
        return total
