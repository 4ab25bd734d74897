"""Retention per stream: a maximum age and/or bytes of carriers; older memories are deleted, reclaiming disk."""
from __future__ import annotations

import json
import time
from typing import Optional


class RetentionMixin:
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
