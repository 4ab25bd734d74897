"""The watches and alerts tables (engine/watches.py decides what they mean)."""
from __future__ import annotations

import sqlite3
from typing import Optional, Sequence


class WatchStoreMixin:
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
