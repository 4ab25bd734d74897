"""Key search: exact over the streams' tails, approximate-then-exact over sealed segments (memory.segments)."""
from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

from .records import BankError, normalize


class SearchMixin:
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
                                exact=lambda ids: self._exact_keys(space, ids), rebuild=self._rebuild_segment,
                                seg_keys=self._segment_keys)

    def _exact_keys(self, space: str, ids: list[int]) -> dict[int, np.ndarray]:
        out = {}
        for c in range(0, len(ids), 500):
            part = ids[c:c + 500]
            for mid, vec in self._rd().execute(f"SELECT memory_id, vec FROM keys WHERE space=? AND memory_id IN "
                                               f"({','.join('?' * len(part))})", [space, *part]):
                out[mid] = np.frombuffer(vec, np.float32)
        return out

    def key_of(self, memory_id: int, space: str) -> Optional[np.ndarray]:
        r = self._rd().execute("SELECT vec FROM keys WHERE memory_id=? AND space=?", (memory_id, space)).fetchone()
        return None if r is None else np.frombuffer(r[0], np.float32)

    def default_space(self) -> Optional[str]:
        spaces = self.key_spaces()
        visual = [s for s in spaces if not s.startswith("text")]
        return (visual or spaces or [None])[0]

    def key_spaces(self) -> list[str]:
        return self.keys.spaces()
