"""Query-driven re-budgeting (QuoTA, MAC-AutoML/QuoTA; with B-VLLM's optional frame de-duplication).

Runs at answer time on retrieved clips. QuoTA scores each frame's relevance by asking a VLM; our
training-free stand-in is s_t = cos(query, frame_key_t) (query: [K] or [1, K] in frame_keys space; without
frame_keys the mean token is used and the query must then have D dims). Weights w_t ∝ (100·max(s_t, 0))²,
normalised; frame t gets n_t = ⌊budget·w_t⌋ tokens (largest remainders get the rest, at most N per frame),
frames with n_t = 0 are dropped, and each kept frame is pooled to the largest grid that fits n_t
(M ≤ budget). Without a query every frame weighs the same.

dedupe (B-VLLM, 0.75; off by default): adjacent kept frames whose keys have cosine > dedupe are averaged
position-wise into one frame that takes their summed share.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from .base import Carrier, ReducerInputError, TokenGrid, cat_carriers, register
from .ops import normed
from .pool2d import pool_frames, pooled_grid


def frame_weights(keys: Tensor, query: Optional[Tensor]) -> Tensor:
    """QuoTA weights [T] float32 (sum 1) from frame keys [T, K] and a query [K] / [1, K]."""
    T = keys.shape[0]
    if query is None:
        return torch.full((T,), 1.0 / T, device=keys.device)
    s = normed(keys) @ normed(query.reshape(-1).to(keys.device))
    w = (100.0 * s.clamp(min=0)) ** 2
    tot = w.sum()
    return torch.where(tot > 0, w / tot.clamp(min=1e-12), torch.full_like(w, 1.0 / T))


def share_budget(w: list[float], budget: int, cap: int) -> list[int]:
    """⌊budget·w_t⌋ with largest remainders, water-filled under a per-frame cap (host ints; T is small)."""
    T = len(w)
    n = [0] * T
    left, free = budget, [t for t in range(T) if w[t] > 0]
    while left > 0 and free:
        ws = sum(w[t] for t in free)
        raw = {t: left * w[t] / ws for t in free}
        add = {t: min(cap - n[t], int(raw[t])) for t in free}
        got = sum(add.values())
        rest = sorted(free, key=lambda t: (-(raw[t] - int(raw[t])), t))
        for t in rest:
            if got >= left:
                break
            if n[t] + add[t] < cap and raw[t] - int(raw[t]) > 0:
                add[t] += 1
                got += 1
        for t in free:
            n[t] += add[t]
        left -= got
        free = [t for t in free if n[t] < cap]
        if got == 0:
            break
    return n


@register("query")
def query(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None,
          dedupe: Optional[float] = None) -> tuple[Carrier, Any]:
    """Frames get tokens in proportion to (100·cos(query, frame key))²; each frame pooled to its share."""
    x = grid.tokens
    T, N, D = x.shape
    dev = x.device
    keys = grid.frame_keys.float() if grid.frame_keys is not None else x.float().mean(1)
    if query is not None and query.reshape(-1).shape[0] != keys.shape[1]:
        where = "frame_keys" if grid.frame_keys is not None else "token (no frame_keys given)"
        raise ReducerInputError(f"query has {query.reshape(-1).shape[0]} dims but the {where} space has {keys.shape[1]}")
    w = frame_weights(keys, query).tolist()  # host sync (T floats)
    n = share_budget(w, budget, N)
    frames = [t for t in range(T) if n[t] > 0]
    if dedupe is not None and len(frames) > 1:
        kn = normed(keys[frames])
        adj = (kn[1:] * kn[:-1]).sum(-1).tolist()
        runs = [[frames[0]]]
        for f, s in zip(frames[1:], adj):
            (runs[-1].append(f) if s > dedupe else runs.append([f]))
    else:
        runs = [[f] for f in frames]
    # position-wise mean of each run (a run is one frame unless dedupe merged several), then one pooling
    # call per distinct output grid
    if all(len(r) == 1 for r in runs):
        src, first = x, [r[0] for r in runs]
    else:
        src = torch.stack([x[r].float().mean(0).to(x.dtype) for r in runs])
        first = list(range(len(runs)))
    by_grid: dict[tuple[int, int], list[int]] = {}
    for i, r in enumerate(runs):
        by_grid.setdefault(pooled_grid(*grid.hw, sum(n[t] for t in r)), []).append(i)
    t0 = torch.tensor([r[0] for r in runs], device=dev)
    t1 = torch.tensor([r[-1] for r in runs], device=dev)
    ln = torch.tensor([len(r) for r in runs], device=dev)
    slot = torch.full((max(first) + 1,), -1, dtype=torch.long)
    slot[torch.tensor(first)] = torch.arange(len(runs))
    slot = slot.to(dev)
    parts = []
    for hw_out, idx in sorted(by_grid.items()):
        c = pool_frames(src, grid.hw, torch.tensor([first[i] for i in idx], device=dev), hw_out, "avg")
        ri = slot[c.pos[:, 0]]
        parts.append(Carrier(c.tokens, torch.stack([t0[ri], c.pos[:, 1], c.pos[:, 2]], -1),
                             torch.stack([t0[ri], c.lo[:, 1], c.lo[:, 2]], -1),
                             torch.stack([t1[ri], c.hi[:, 1], c.hi[:, 2]], -1), c.size * ln[ri]))
    return cat_carriers(parts).time_order(), state
