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

Speed: the DP needs the [T, T] static counts on the host (the one host sync); from them every capacity and
count is a host integer (`ops.allocate_host`), so the kept dynamic tokens and the static cluster tokens are
selected by sorts of masks with known sizes, and merged by scatters into per-centre slots.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Carrier, TokenGrid, carrier_from_meta, grid_meta, register
from .ops import GraphCache, _dpc_core, allocate_host, ints_to, normed, rank_rows, saliency_of, state_tensor

TAU, BETA, KNN, WINDOW = 0.8, 0.6, 7, 1024
CONTINUE_SHARE = 4  # continued static tokens get 1/4 of their capacity


def static_counts(x: Tensor, tau: float) -> tuple[Tensor, Tensor]:
    """x: [T, N, D] -> (n_static [T, T] long: #positions static over frames [i, j] (0 where j ≤ i),
    cb [T, N] long: cumulative count of non-static steps, static over [i, j] ⇔ cb[j] == cb[i])."""
    xn = normed(x)
    s = (xn[1:] * xn[:-1]).sum(-1)  # [T-1, N] positional cosine of consecutive frames
    cb = F.pad(torch.cumsum(s <= tau, 0, dtype=torch.long), (0, 0, 1, 0))
    n = (cb[None, :, :] == cb[:, None, :]).sum(-1)  # [i, j]
    return n.triu(1), cb


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
    h, w = grid.hw
    prev = state_tensor(state, "last", (N, D), dev)
    v = int(prev is not None)
    xv = torch.cat([prev.to(x.dtype)[None], x]) if v else x  # [T+v, N, D]
    n_static, cb = static_counts(xv, tau)
    ns = n_static.tolist()  # the one host sync
    segs = segment_dp(ns, window)
    # per segment: in-clip frame range [a, b] (clip coordinates), static count, continued or not
    seg_of = [0] * T
    a_l, b_l, nst, cont = [], [], [], []
    for si, (i, j) in enumerate(segs):
        a, b = max(i - v, 0), j - v
        for t in range(a, b + 1):
            seg_of[t] = si
        a_l.append(a), b_l.append(b)
        nst.append(ns[i][j] if (j > i and b >= a) else 0)
        cont.append(v == 1 and i == 0 and j > 0)
    use = [si for si in range(len(segs)) if nst[si] > 0]
    U = len(use)
    u_of = {si: ui for ui, si in enumerate(use)}
    cap_st = [(n + CONTINUE_SHARE - 1) // CONTINUE_SHARE if c else n for n, c in zip(nst, cont)]
    # capacities (host): dynamic tokens per frame, static centres per segment (continued ones quartered)
    counts = allocate_host([N - nst[seg_of[t]] for t in range(T)] + cap_st, budget)
    c_dyn, c_st = counts[:T], [counts[T + si] for si in use]
    # pad the used-segment count (to a multiple of 4) and the centre slots (to a multiple of 8): every
    # device shape then follows from few keys, and on CUDA the rest replays as one CUDA graph per key
    Up = -(-max(U, 1) // 4) * 4
    pad = [0] * (Up - U)
    Cm = min(N, -(-max([1] + c_st) // 8) * 8)
    uf, c_dyn_t, si_t, sj_t, c_st_t, ln_t, ta_t, tb_t = ints_to(
        dev, [u_of.get(seg_of[t], Up) for t in range(T)], c_dyn, [segs[si][0] for si in use] + pad,
        [segs[si][1] for si in use] + pad, c_st + pad, [b_l[si] - a_l[si] + 1 for si in use] + pad,
        [a_l[si] for si in use] + pad, [b_l[si] for si in use] + pad)
    tok, meta = _HT(x, saliency_of(grid), cb, uf, c_dyn_t, si_t, sj_t, c_st_t, ln_t, ta_t, tb_t,
                    hw=tuple(grid.hw), beta=float(beta), k=k, Cm=Cm, M=sum(c_dyn) + sum(c_st))
    return carrier_from_meta(tok, meta), {"last": x[-1].detach().clone(), "continues": bool(cont and cont[0])}


def _holitom_device(x: Tensor, sal: Tensor, cb: Tensor, uf: Tensor, c_dyn_t: Tensor, si_t: Tensor, sj_t: Tensor,
                    c_st_t: Tensor, ln_t: Tensor, ta_t: Tensor, tb_t: Tensor, hw: tuple[int, int], beta: float,
                    k: int, Cm: int, M: int) -> tuple[Tensor, Tensor]:
    """Dynamic saliency top-k per frame (kept alone) and DPC-kNN centres of each segment's static temporal
    means (β·centre + (1−β)·mean); the M output tokens in (t, y, x) order. Shapes depend on (T, N, D, U, Cm, M)."""
    T, N, D = x.shape
    U = si_t.shape[0]
    dev = x.device
    h, w = hw
    static = (cb[sj_t] == cb[si_t]) & (ln_t > 0)[:, None]  # [U, N]: static over the whole segment
    dyn = ~torch.cat([static, static.new_zeros(1, N)])[uf]  # [T, N]
    # dynamic tokens: the top c_dyn[t] of each frame by saliency, kept alone
    keep = (rank_rows(sal, dyn) < c_dyn_t[:, None]) & dyn
    meta = grid_meta(T, h, w, dev)
    # static positions: temporal means over their segment, clustered by DPC-kNN
    seg_sum = torch.zeros(U + 1, N, D, device=dev).index_add_(0, uf, x.float())[:U]
    means = seg_sum / ln_t.clamp(min=1)[:, None, None].float()  # [U, N, D] float32
    # the static tokens are the temporal means in the clip's dtype (HoliTom runs in the model's dtype): they
    # are clustered and merged as such
    mx = means.to(x.dtype).float()
    centre, assign = _dpc_core(mx, static, c_st_t, k, bf16_from=0 if x.dtype == torch.bfloat16 else None)
    # slots: centre j of segment u -> u·Cm + j; members (centres included) add into their centre's slot
    corder = torch.argsort(centre.to(torch.uint8), dim=1, descending=True, stable=True)[:, :Cm]  # [U, Cm]
    cvalid = torch.arange(Cm, device=dev)[None, :] < c_st_t[:, None]
    sink = U * Cm
    slot_of = torch.full((U, N), sink, device=dev, dtype=torch.long).scatter_(
        1, corder, torch.where(cvalid, torch.arange(U * Cm, device=dev).view(U, Cm), sink))
    g = torch.where(assign >= 0, slot_of.gather(1, assign.clamp(min=0)), sink).reshape(-1)
    acc = torch.zeros(sink + 1, D + 1, device=dev).index_add_(
        0, g, torch.cat([mx.reshape(U * N, D), torch.ones(U * N, 1, device=dev)], 1))[:sink]
    yx = meta[:N, 2:4]
    span = torch.full((sink + 1, 4), N, device=dev, dtype=torch.long).scatter_reduce_(
        0, g[:, None].expand(-1, 4), torch.cat([yx, -yx], 1).repeat(U, 1), "amin")[:sink]
    su = torch.arange(sink, device=dev) // Cm
    sn = corder.reshape(-1)  # segment, position of each slot's centre
    cnt = acc[:, D:].clamp(min=1)
    xr = mx[su, sn]
    stok = torch.where(cnt > 1, beta * xr + (1 - beta) * (acc[:, :D] / cnt), xr)  # β·centre + (1−β)·mean
    ta, tb = ta_t[su], tb_t[su]
    smeta = torch.stack([ln_t[su] * cnt[:, 0].long(), ta, sn // w, sn % w, ta, span[:, 0], span[:, 1],
                         tb, -span[:, 2], -span[:, 3]], 1)
    # kept dynamic tokens and valid centres by (t, y, x) (distinct: a position is static or dynamic in a
    # frame, never both); exactly M of them come first
    big = 2 * T * N
    key = torch.cat([torch.where(keep.reshape(-1), torch.arange(T * N, device=dev), big),
                     torch.where(cvalid.reshape(-1), ta * N + sn, big)])
    sel = torch.argsort(key)[:M]
    tok = torch.cat([x.reshape(T * N, D).float(), stok])[sel].to(x.dtype)
    return tok, torch.cat([meta, smeta])[sel]


_HT = GraphCache(_holitom_device, size=16)
