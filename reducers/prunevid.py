"""PruneVid, first (outer-LLM) stage (Huang et al., 2024; Visual-AI/PruneVid).

1. Segment frames: DPC-kNN on frame means (round(0.25·T) clusters, k = 7); a new segment starts wherever
   the cluster label changes, so segments are contiguous. (Our addition: adjacent segments whose mean
   frames have cosine > 0.98 are joined, since DPC always returns round(0.25·T) clusters.)
2. In a segment of L ≥ 2 frames, position n is static when the mean pairwise cosine of its L tokens
   exceeds 0.8 (computed as (‖Σ x̂‖² − L) / (L(L−1))). Static tokens become their temporal mean.
3. The static set of each segment and the dynamic set of each frame are clustered by DPC-kNN, each down to
   its share of the budget (PruneVid uses 50%; here the share is budget-driven via `ops.allocate`), and each
   cluster becomes its size-weighted mean. The second, inner-LLM stage is skipped. M == budget unless the
   static merge alone already fits.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from .base import Carrier, TokenGrid, grid_positions, merge_groups, register
from .ops import allocate, dpc_knn, ints_to, normed

SEG_RATIO, KNN, TAU = 0.25, 7, 0.8


def cluster_segments(x: Tensor, ratio: float = SEG_RATIO, k: int = KNN, join: float = 0.98) -> list[tuple[int, int]]:
    """Contiguous frame segments [(a, b)] from DPC-kNN clusters of frame means. x: [T, N, D]."""
    T = x.shape[0]
    if T == 1:
        return [(0, 0)]
    m = x.float().mean(1)[None]  # [1, T, D]
    nc = max(1, round(ratio * T))
    _, assign = dpc_knn(m, torch.ones(1, T, dtype=torch.bool, device=x.device),
                        torch.tensor([nc], device=x.device), k)
    lab = assign[0]
    cut = lab[1:] != lab[:-1]
    # our addition: DPC must return round(0.25·T) clusters even when the clip has fewer scenes; a cut
    # between two runs whose mean frames are near-identical (cosine > join) is dropped
    seg = torch.cat([torch.zeros(1, dtype=torch.long, device=x.device), torch.cumsum(cut.long(), 0)])
    S = int(seg[-1]) + 1
    sm = torch.zeros(S, m.shape[-1], device=x.device).index_add_(0, seg, m[0])
    sn = normed(sm)
    same = (sn[seg[1:]] * sn[seg[:-1]]).sum(-1) > join
    cuts = (cut & ~same).nonzero().squeeze(1).tolist()  # host sync
    bounds = [0] + [i + 1 for i in cuts] + [T]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(len(bounds) - 1)]


@register("prunevid")
def prunevid(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None,
             tau: float = TAU, k: int = KNN) -> tuple[Carrier, Any]:
    """Static/dynamic split per segment, static temporal means, DPC-kNN cluster means to the budget."""
    x = grid.tokens
    T, N, D = x.shape
    dev = x.device
    segs = cluster_segments(x, SEG_RATIO, k)
    S = len(segs)
    seg_of, ln, a_t, b_t = ints_to(dev, [si for si, (a, b) in enumerate(segs) for _ in range(a, b + 1)],
                                   [b - a + 1 for a, b in segs], [a for a, _ in segs], [b for _, b in segs])
    xn_sum = torch.zeros(S, N, D, device=dev).index_add_(0, seg_of, normed(x))
    Lf = ln[:, None].float()
    mpc = ((xn_sum * xn_sum).sum(-1) - Lf) / (Lf * (Lf - 1)).clamp(min=1)
    static = (mpc > tau) & (ln[:, None] > 1)  # [S, N]
    means = torch.zeros(S, N, D, device=dev).index_add_(0, seg_of, x.float()) / Lf[:, :, None]
    dyn = ~static[seg_of]  # [T, N]
    # one clustering batch: S static sets, then T dynamic sets
    bx = torch.cat([means, x.float()])  # [S+T, N, D]
    valid = torch.cat([static, dyn])
    counts = allocate(valid.sum(1), budget)
    _, assign = dpc_knn(bx, valid, counts, k)
    B = S + T
    gid = torch.where(assign >= 0, assign + (torch.arange(B, device=dev) * N)[:, None], assign).reshape(-1)
    pos = grid_positions(T, *grid.hw, device=dev)  # [T, N, 3]
    yx = pos[0, :, 1:][None].expand(S, N, 2)
    slo = torch.cat([a_t[:, None, None].expand(S, N, 1), yx], -1)
    shi = torch.cat([b_t[:, None, None].expand(S, N, 1), yx], -1)
    lo = torch.cat([slo, pos]).reshape(-1, 3)
    hi = torch.cat([shi, pos]).reshape(-1, 3)
    size = torch.cat([ln[:, None].expand(S, N), torch.ones(T, N, dtype=torch.long, device=dev)]).reshape(-1)
    tok = torch.cat([means.to(x.dtype), x]).reshape(-1, D)
    c = merge_groups(tok, lo, size, gid, B * N, rep=torch.arange(B * N, device=dev), lo=lo, hi=hi)
    return c.time_order(), state
