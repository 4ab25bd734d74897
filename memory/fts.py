"""Full-text search over the memories' text evidence (SQLite FTS5, bm25)."""
from __future__ import annotations

import re
import sqlite3
from typing import Iterable, Optional

_FTS_STOP = set("""a an the and or but of to in on at for with from by about as is are was were be been it its this
that these those there here what which who whom when where why how do does did have has had will would can could
i we you he she they me us him her them my our your his their not no so if then than any some all tell please say
said says""".split())


def fts_query(text: str) -> str:
    """A question as an FTS5 query: its content words, each quoted, OR-ed (bm25 weighs them)."""
    words = [w for w in re.findall(r"[\w']+", (text or "").lower()) if (len(w) > 1 or w.isdigit()) and w not in _FTS_STOP]
    words = list(dict.fromkeys(w.replace("'", "") for w in words if w.replace("'", "")))
    return " OR ".join(f'"{w}"' for w in words[:32])


class FullTextMixin:
    """MemoryBank's text search (the FTS5 table and its triggers live in memory.schema)."""

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
