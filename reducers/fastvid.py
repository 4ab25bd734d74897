"""FastVID: dynamic temporal segmentation + density-based spatiotemporal pruning (Shen et al., 2025).

1. Segment (DySeg): with g_t the frame keys (mean token when absent), cut after the c−1 lowest
   cos(g_t, g_{t+1}) and wherever that cosine falls below τ.
2. Frame t gets a quota q_t (budget split evenly). A segment with quota Q keeps ⌊d·Q⌋ context tokens; the
   rest are salient tokens, the top-a_t of each frame by saliency.
3. Context anchors are chosen by DPC-kNN among the non-salient tokens of every p-th frame of the segment,
   counted from its end. Every other non-salient token of the segment joins its most similar anchor;
   anchor ← w·anchor + (1−w)·mean(members), w = max(1/(n+1), 0.6), n assigned tokens (members include the
   anchor here).
Defaults: c = 8, τ = 0.9, d = 0.4, p = 4, k = 7. M == budget.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from .base import Carrier, TokenGrid, cat_carriers, grid_positions, keep_tokens, merge_groups, register
from .ops import adjacent_cos, batched_nearest, dpc_knn, frame_keys_of, ints_to, saliency_of, top_per_row

C, TAU, D_CTX, P, KNN = 8, 0.9, 0.4, 4, 7


def dyseg(keys: Tensor, c: int = C, tau: float = TAU) -> list[tuple[int, int]]:
    """Segments [(a, b)] of frames from frame keys [T, K]: cut after the c−1 lowest adjacent cosines and below τ."""
    T = keys.shape[0]
    if T == 1:
        return [(0, 0)]
    s = adjacent_cos(keys)  # [T-1]
    cut = s < tau
    order = torch.argsort(s, stable=True)[: max(0, min(c - 1, T - 1))]
    cut[order] = True
    cuts = cut.nonzero().squeeze(1).tolist()  # host sync: segment boundaries
    bounds = [0] + [i + 1 for i in cuts] + [T]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(len(bounds) - 1)]


@register("fastvid")
def fastvid(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None,
            c: int = C, tau: float = TAU, d: float = D_CTX, p: int = P, k: int = KNN) -> tuple[Carrier, Any]:
    """DySeg segments; per segment salient top-a per frame + DPC-anchored merged context tokens."""
    x = grid.tokens
    T, N, D = x.shape
    dev = x.device
    segs = dyseg(frame_keys_of(grid), c, tau)
    S = len(segs)
    q = [budget // T + (t < budget % T) for t in range(T)]
    a_t, ctx, anchor_frames = [0] * T, [], []
    for a, b in segs:
        Q = sum(q[a:b + 1])
        L = b - a + 1
        nc = int(d * Q)
        sal_total = Q - nc
        for i, t in enumerate(range(a, b + 1)):  # salient quota spread evenly over the segment's frames
            a_t[t] = sal_total // L + (i < sal_total % L)
        # the candidates: every p-th frame counted from the end; never more anchors than candidates
        fr = list(range(b, a - 1, -p))[::-1]
        cand = sum(N - a_t[t] for t in fr)
        if nc > cand:  # too few candidates (tiny N): the excess becomes salient tokens of other frames
            extra, nc = nc - cand, cand
            for t in range(a, b + 1):
                if t not in fr:
                    give = min(extra, N - a_t[t])
                    a_t[t] += give
                    extra -= give
        ctx.append(nc)
        anchor_frames.append(fr)
    F = max(len(f) for f in anchor_frames)
    a_tt, ctx_t, fidx, fval, seg_of = ints_to(
        dev, a_t, ctx, [i for f in anchor_frames for i in f + [f[-1]] * (F - len(f))],
        [int(i < len(f)) for f in anchor_frames for i in range(F)],
        [si for si, (a, b) in enumerate(segs) for _ in range(a, b + 1)])
    fidx, fval = fidx.view(S, F), fval.view(S, F).bool()
    sal = saliency_of(grid)
    salient = top_per_row(sal, a_tt)  # [T, N]
    parts = [keep_tokens(grid, salient.reshape(-1).nonzero().squeeze(1))]
    if sum(ctx) > 0:
        cx = x[fidx].reshape(S, F * N, D)
        cvalid = (~salient[fidx] & fval[:, :, None]).reshape(S, F * N)
        centre, _ = dpc_knn(cx, cvalid, ctx_t, k)
        # anchors of each segment, padded: [S, A, D]
        A = max(1, max(ctx))
        order = torch.argsort(centre.long(), dim=1, descending=True, stable=True)[:, :A]
        avalid = torch.arange(A, device=dev)[None, :] < ctx_t[:, None]
        flat_anchor = fidx.gather(1, order // N) * N + order % N  # [S, A] flat index into T·N
        ax = x.reshape(T * N, D)[flat_anchor]
        near = batched_nearest(x, ax[seg_of], avalid[seg_of])  # [T, N] anchor slot
        gid = seg_of[:, None] * A + near  # group = (segment, anchor slot)
        has_ctx = ctx_t[seg_of] > 0
        gid = torch.where(~salient & has_ctx[:, None], gid, torch.full_like(gid, -1))
        # anchors represent their own group
        slots = torch.arange(S * A, device=dev)
        gflat = torch.cat([gid.reshape(-1), gid.new_full((1,), -1)])
        gflat.scatter_(0, torch.where(avalid, flat_anchor, T * N).reshape(-1), slots)  # padding -> spare slot
        gid = gflat[:-1]
        rep = flat_anchor.reshape(-1)
        n_members = torch.zeros(S * A, dtype=torch.long, device=dev).index_add_(
            0, gid.reshape(-1).clamp(min=0), (gid.reshape(-1) >= 0).long())
        w = torch.clamp(1.0 / n_members.float(), min=0.6)  # n_members = n assigned + the anchor itself
        pos = grid_positions(T, *grid.hw, device=dev).reshape(-1, 3)
        ones = torch.ones(T * N, dtype=torch.long, device=dev)
        mc = merge_groups(x.reshape(T * N, D), pos, ones, gid.reshape(-1), S * A, rep=rep, rep_weight=w)
        parts.append(mc)
    return cat_carriers(parts).time_order(), state
