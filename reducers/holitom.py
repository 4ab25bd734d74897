"""HoliTom, outer-LLM part (Shao et al., 2025; cokeshao/HoliTom).

1. s[t,n] = cos(x_{t,n}, x_{t+1,n}); position n is static over frames [i, j] when s > τ for every
   consecutive pair. Gain G(i,j) = (j−i)·#static. A dynamic program over frames maximises the total gain:
   dp[j] = max(dp[j−1], max_{w=2..min(j+1,W)} dp[j−w] + G(j−w+1, j)), backtracked into segments.
2. In each segment, static positions become their temporal mean; other positions are dynamic in every frame.
3. Rebudget r′ = min(budget / (T·N − removed), 1); dynamic tokens keep the top ⌈r′·N_dyn⌉ per frame by
   saliency, static tokens of each segment are clustered by DPC-kNN to ≈ r′·N_static centres
   (centre ← β·centre + (1−β)·mean(members), members include the centre). Counts are made exact with
   `ops.allocate`, so M == min(budget, what is left after temporal merging).
Defaults: τ = 0.8, β = 0.6, k = 7, W = 1024.

Streaming: state carries the previous clip's last frame, prepended as a virtual frame −1, so a static segment
continues across the boundary. Static positions of a segment that began in the previous clip are already
held by that clip's carrier: they are re-sent coarsely (capacity ⌈n/4⌉ DPC centres), which frees budget for
new content and shrinks a clip that only continues a static scene.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from .base import Carrier, TokenGrid, cat_carriers, grid_positions, keep_tokens, merge_groups, register
from .ops import allocate, dpc_knn, ints_to, positional_cos, saliency_of, state_tensor, top_per_row

TAU, BETA, KNN, WINDOW = 0.8, 0.6, 7, 1024
CONTINUE_SHARE = 4  # continued static tokens get 1/4 of their capacity


def static_counts(x: Tensor, tau: float) -> tuple[Tensor, Tensor]:
    """x: [T, N, D] -> (n_static [T, T] long: #positions static over frames [i, j] (0 where j ≤ i),
    cb [T, N] long: cumulative count of non-static steps, static over [i, j] ⇔ cb[j] == cb[i])."""
    T, N, _ = x.shape
    s = positional_cos(x[1:], x[:-1])  # [T-1, N]
    cb = torch.cat([torch.zeros(1, N, dtype=torch.long, device=x.device), torch.cumsum((s <= tau).long(), 0)])
    same = cb[None, :, :] == cb[:, None, :]  # [i, j, N]
    n = same.sum(-1)
    i = torch.arange(T, device=x.device)
    return torch.where(i[None, :] > i[:, None], n, torch.zeros_like(n)), cb


def segment_dp(n_static: list[list[int]], window: int = WINDOW) -> list[tuple[int, int]]:
    """Segments [(i, j)] maximising Σ (j−i)·#static(i, j). n_static: [T][T] host ints (tiny T: plain Python)."""
    T = len(n_static)
    dp = [0] * (T + 1)  # dp[j + 1] = best gain of frames 0..j
    back = [1] * (T + 1)
    for j in range(T):
        best, bw = dp[j], 1
        for w in range(2, min(j + 1, window) + 1):
            g = dp[j + 1 - w] + (w - 1) * n_static[j - w + 1][j]
            if g > best:
                best, bw = g, w
        dp[j + 1], back[j + 1] = best, bw
    segs, j = [], T
    while j > 0:
        w = back[j]
        segs.append((j - w, j - 1))
        j -= w
    return segs[::-1]


def _next_state(grid: TokenGrid, state: Any) -> dict:
    return {"last": grid.tokens[-1].detach().clone(), "continues": False}


@register("holitom", next_state=_next_state)
def holitom(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None,
            tau: float = TAU, beta: float = BETA, k: int = KNN, window: int = WINDOW) -> tuple[Carrier, Any]:
    """DP temporal segmentation, static temporal means + DPC-kNN, dynamic saliency top-k (outer HoliTom)."""
    x = grid.tokens
    T, N, D = x.shape
    dev = x.device
    prev = state_tensor(state, "last", (N, D), dev)
    v = int(prev is not None)
    xv = torch.cat([prev.to(x.dtype)[None], x]) if v else x  # [T+v, N, D]
    n_static, cb = static_counts(xv, tau)
    segs = segment_dp(n_static.tolist(), window)  # the one host sync
    # per segment: in-clip frame range [a, b] (clip coordinates), static mask, capacity
    S = len(segs)
    seg_of = [0] * T
    a_l, b_l, nst, cont = [], [], [], []
    for si, (i, j) in enumerate(segs):
        a, b = max(i - v, 0), j - v
        for t in range(a, b + 1):
            seg_of[t] = si
        a_l.append(a), b_l.append(b)
        nst.append(n_static[i][j] if (j > i and b >= a) else 0)
        cont.append(v == 1 and i == 0 and j > 0)
    use = [si for si in range(S) if nst[si] > 0]
    cap_st = [(n + CONTINUE_SHARE - 1) // CONTINUE_SHARE if c else n for n, c in zip(nst, cont)]
    seg_t, si_t, sj_t, nst_t, cap_st_t, u, ln, ta, tb = ints_to(
        dev, seg_of, [i for i, _ in segs], [j for _, j in segs], nst, cap_st, use,
        [b_l[si] - a_l[si] + 1 for si in use], [a_l[si] for si in use], [b_l[si] for si in use])
    static = (cb[sj_t] == cb[si_t]) & (nst_t > 0)[:, None]  # [S, N]
    # capacities: dynamic tokens per frame, static centres per segment (continued ones quartered)
    dyn = ~static[seg_t]  # [T, N]
    counts = allocate(torch.cat([dyn.sum(1), cap_st_t]), budget)
    c_dyn, c_st = counts[:T], counts[T:]
    sal = saliency_of(grid)
    keep = top_per_row(sal, c_dyn, dyn)
    parts = [keep_tokens(grid, keep.reshape(-1).nonzero().squeeze(1))]
    if use:
        seg_sum = torch.zeros(S, N, D, device=dev).index_add_(0, seg_t, x.float())[u]
        means = seg_sum / ln[:, None, None].float()  # [U, N, D] temporal means
        valid = static[u]
        centre, assign = dpc_knn(means, valid, c_st[u], k)
        U = len(use)
        gid = torch.where(assign >= 0, assign + (torch.arange(U, device=dev) * N)[:, None], assign)
        yx = grid_positions(1, *grid.hw, device=dev)[0, :, 1:]  # [N, 2]
        ta = ta[:, None, None].expand(U, N, 1)
        tb = tb[:, None, None].expand(U, N, 1)
        yx = yx[None].expand(U, N, 2)
        lo = torch.cat([ta, yx], -1).reshape(-1, 3)
        hi = torch.cat([tb, yx], -1).reshape(-1, 3)
        size = ln[:, None].expand(U, N).reshape(-1)
        parts.append(merge_groups(means.reshape(-1, D).to(x.dtype), lo, size, gid.reshape(-1), U * N,
                                  rep=torch.arange(U * N, device=dev), lo=lo, hi=hi,
                                  rep_weight=torch.full((U * N,), beta, device=dev)))
    carrier = cat_carriers(parts).time_order()
    return carrier, {"last": x[-1].detach().clone(), "continues": bool(cont and cont[0])}
