"""Retrieval over a bank: one or several key spaces fused by reciprocal-rank fusion, inside a time window."""
from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

from .bank import Memory, MemoryBank
from .textkeys import TEXT_PARTS, is_part_space

RRF_K = 60  # the usual constant from Cormack et al.; damps the weight of top ranks


def rrf(rankings: list[list[tuple[int, float]]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked (id, score) lists: score(id) = Σ 1 / (k + rank). Returns (id, fused) best first."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (mid, _) in enumerate(ranking):
            fused[mid] = fused.get(mid, 0.0) + 1.0 / (k + rank + 1)
    return sorted(fused.items(), key=lambda x: (-x[1], x[0]))


def retrieve(bank: MemoryBank, query_keys: dict[str, np.ndarray], k: int = 5,
             t_range: Optional[tuple[float, float]] = None, streams: Optional[Iterable[str]] = None,
             pool: int = 4, text: Optional[str] = None) -> list[Memory]:
    """Top-k memories for query keys in one or more spaces (spaces the bank lacks are skipped), and for `text`
    by the bank's full-text index (FTS5 bm25 over transcript, on-screen text and tags), fused by RRF.

    Each memory's `score` is its best cosine over the spaces of whole memories (what a user can read as confidence;
    0 for a memory found by its words alone); the keys of parts of a memory's text (memory.textkeys) only rank:
    each part's space is one ranking, and every memory by its best text key (whole or part) one more.
    The order comes from RRF when there are several rankings.
    """
    streams = list(streams) if streams else None
    spaces = [s for s in query_keys if s in set(bank.key_spaces())]
    if not spaces:
        return []
    # words refine a dense search; they never stand in for a missing key space
    lexical = bank.text_search(text, k=k * pool, t_range=t_range, streams=streams) if text else []
    deep = k * pool if len(spaces) + bool(lexical) > 1 else k  # fusion needs candidates beyond each list's top k
    whole = [s for s in spaces if not is_part_space(s)] or spaces
    rankings, best, by_part = [], {}, set()
    for space in spaces:
        hits = bank.search(query_keys[space], k=deep, space=space, t_range=t_range, streams=streams)
        rankings.append(hits)
        if space not in whole:
            by_part.update(mid for mid, _ in hits)
            continue
        for mid, s in hits:
            best[mid] = max(best.get(mid, -1.0), s)
    if len(whole) < len(spaces):  # each memory by its best text key too: the one part that answers
        rankings.append(best_text(rankings, spaces))
    order = rrf(rankings + [lexical]) if len(rankings) + bool(lexical) > 1 else rankings[0]
    ids = [mid for mid, _ in order[:k]]
    best.update(whole_scores(bank, query_keys, whole, [mid for mid in ids if mid not in best and mid in by_part]))
    out = bank.get(ids)
    for m in out:
        m.score = best.get(m.id, 0.0)
    return out


def best_text(rankings: list[list[tuple[int, float]]], spaces: list[str]) -> list[tuple[int, float]]:
    """One ranking of the memories by their best cosine over the text key spaces (the whole and its parts)."""
    best: dict[int, float] = {}
    for hits, space in zip(rankings, spaces):
        if space.split(":", 1)[0] in TEXT_PARTS:
            for mid, s in hits:
                best[mid] = max(best.get(mid, -1.0), s)
    return sorted(best.items(), key=lambda x: (-x[1], x[0]))


def whole_scores(bank: MemoryBank, query_keys: dict[str, np.ndarray], spaces: list[str],
                 ids: list[int]) -> dict[int, float]:
    """The best cosine over `spaces` of memories a part's key found beyond those spaces' own top hits."""
    out: dict[int, float] = {}
    for space in spaces if ids else []:
        q = np.asarray(query_keys[space], np.float32).reshape(-1)
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        for mid, vec in bank._exact_keys(space, ids).items():
            if vec.size == q.size:
                out[mid] = max(out.get(mid, -1.0), float(vec @ q))
    return out
