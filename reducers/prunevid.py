"""PruneVid, first (outer-LLM) stage (Huang et al., 2024; Visual-AI/PruneVid).

1. Segment frames: DPC-kNN on frame means (round(0.25·T) clusters, k = 7); a new segment starts wherever
   the cluster label changes, so segments are contiguous. (Our addition: adjacent segments whose mean
   frames have cosine > 0.98 are joined, since DPC always returns round(0.25·T) clusters.)
2. In a segment of L ≥ 2 frames, position n is static when the mean pairwise cosine of its L tokens
   exceeds 0.8 (computed as (‖Σ x̂‖² − L) / (L(L−1))). Static tokens become their temporal mean.
3. The static set of each segment (its temporal means, in the clip's dtype) and the dynamic set of each
   frame are clustered by DPC-kNN, each down to
   its share of the budget (PruneVid uses 50%; here the share is budget-driven via `ops.allocate`), and each
   cluster becomes its size-weighted mean. The second, inner-LLM stage is skipped. M == budget unless the
   static merge alone already fits.

Speed: the frame-level clustering of step 1 works on T frame means, so it runs on the host (one copy of
[T, D]); the static counts of step 2 come back in one more small copy, after which every cluster count is a
host integer (`ops.allocate_host`), and the clusters are merged by scatters into per-centre slots.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from .base import Carrier, TokenGrid, carrier_from_meta, grid_meta, register
from .ops import GraphCache, _dpc_core, allocate_host, dpc_knn, ints_to, normed

SEG_RATIO, KNN, TAU = 0.25, 7, 0.8


def cluster_segments(x: Tensor, ratio: float = SEG_RATIO, k: int = KNN, join: float = 0.98) -> list[tuple[int, int]]:
    """Contiguous frame segments [(a, b)] from DPC-kNN clusters of frame means. x: [T, N, D]."""
    T = x.shape[0]
    if T == 1:
        return [(0, 0)]
    m = x.mean(1, dtype=torch.float32).cpu()[None]  # [1, T, D]: a T-point problem, solved on the host (host sync)
    nc = max(1, round(ratio * T))
    _, assign = dpc_knn(m, torch.ones(1, T, dtype=torch.bool), torch.tensor([nc]), k)
    lab = assign[0]
    cut = lab[1:] != lab[:-1]
    # our addition: DPC must return round(0.25·T) clusters even when the clip has fewer scenes; a cut
    # between two runs whose mean frames are near-identical (cosine > join) is dropped
    seg = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(cut.long(), 0)])
    S = int(seg[-1]) + 1
    sm = torch.zeros(S, m.shape[-1]).index_add_(0, seg, m[0])
    sn = normed(sm)
    same = (sn[seg[1:]] * sn[seg[:-1]]).sum(-1) > join
    cuts = (cut & ~same).nonzero().squeeze(1).tolist()
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
    Sp = -(-S // 2) * 2  # segment count padded (empty segments): few device shapes, one CUDA graph per key
    lens = [b - a + 1 for a, b in segs] + [0] * (Sp - S)
    seg_of, ln, a_t, b_t = ints_to(dev, [si for si, (a, b) in enumerate(segs) for _ in range(a, b + 1)],
                                   lens, [a for a, _ in segs] + [0] * (Sp - S), [b for _, b in segs] + [0] * (Sp - S))
    static, n_static = _STATIC(x, seg_of, ln, tau=float(tau))
    n_static = n_static.tolist()  # host sync: the cluster counts below are host integers
    # only segments with static positions enter the clustering batch (padded to an even count); groups of
    # capacity 0 get nothing from `allocate`, so leaving them out changes no count
    use = [si for si in range(S) if n_static[si] > 0]
    U, Up = len(use), -(-max(1, len(use)) // 2) * 2
    u_of = {si: ui for ui, si in enumerate(use)}
    cap = [n_static[si] for si in use] + [N - n_static[si] for si, (a, b) in enumerate(segs) for _ in range(a, b + 1)]
    counts = allocate_host(cap, budget)
    counts = counts[:U] + [0] * (Up - U) + counts[U:]
    pad = [0] * (Up - U)
    uidx, uf, ln_u, a_u, b_u, counts_t = ints_to(
        dev, use + pad, [u_of.get(si, Up) for si, (a, b) in enumerate(segs) for _ in range(a, b + 1)],
        [lens[si] for si in use] + pad, [segs[si][0] for si in use] + pad, [segs[si][1] for si in use] + pad, counts)
    static_u = static[uidx] & (ln_u > 0)[:, None]
    tok, meta = _PV(x, static_u, uf, ln_u, a_u, b_u, counts_t, hw=tuple(grid.hw), k=k,
                    Cm=min(N, -(-max(1, max(counts)) // 8) * 8), M=sum(counts))
    return carrier_from_meta(tok, meta), state


def _static_device(x: Tensor, seg_of: Tensor, ln: Tensor, tau: float) -> tuple[Tensor, Tensor]:
    """Static positions of each segment: mean pairwise cosine of the position's tokens > τ (L ≥ 2)."""
    T, N, D = x.shape
    xn_sum = torch.zeros(ln.shape[0], N, D, device=x.device).index_add_(0, seg_of, normed(x))
    Lf = ln[:, None].float()
    mpc = ((xn_sum * xn_sum).sum(-1) - Lf) / (Lf * (Lf - 1)).clamp(min=1)
    static = (mpc > tau) & (ln[:, None] > 1)  # [S, N]
    return static, static.sum(1)


_STATIC = GraphCache(_static_device, size=16)


def _prunevid_device(x: Tensor, static: Tensor, uf: Tensor, ln: Tensor, a_t: Tensor, b_t: Tensor,
                     counts_t: Tensor, hw: tuple[int, int], k: int, Cm: int, M: int) -> tuple[Tensor, Tensor]:
    """Static means + one DPC-kNN batch (the S segments with static positions, then the T dynamic sets), each
    cluster merged into its size-weighted mean; the M output tokens in (t, y, x) order.
    static [S, N]; uf [T]: each frame's row in static (S: its segment has no static position).
    Shapes depend on (T, N, D, S, Cm, M) only."""
    T, N, D = x.shape
    S = static.shape[0]
    B = S + T
    dev = x.device
    h, w = hw
    xf = x.float()
    means = torch.zeros(S + 1, N, D, device=dev).index_add_(0, uf, xf)[:S] / ln.clamp(min=1)[:, None, None].float()
    dyn = ~torch.cat([static, static.new_zeros(1, N)])[uf]  # [T, N]
    valid = torch.cat([static, dyn])
    # the static tokens are the temporal means in the clip's dtype (as in PruneVid, which runs in the model's
    # dtype): they are clustered and merged as such
    tokf = torch.cat([means.to(x.dtype).float(), xf])  # [B, N, D]
    centre, assign = _dpc_core(tokf, valid, counts_t, k, bf16_from=0 if x.dtype == torch.bfloat16 else None)
    # slots: centre j of set b -> b·Cm + j; members (centres included) add into their centre's slot
    corder = torch.argsort(centre.to(torch.uint8), dim=1, descending=True, stable=True)[:, :Cm]  # [B, Cm]
    cvalid = torch.arange(Cm, device=dev)[None, :] < counts_t[:, None]
    sink = B * Cm
    slot_of = torch.full((B, N), sink, device=dev, dtype=torch.long).scatter_(
        1, corder, torch.where(cvalid, torch.arange(sink, device=dev).view(B, Cm), sink))
    g = torch.where(assign >= 0, slot_of.gather(1, assign.clamp(min=0)), sink).reshape(-1)
    # Σ x·size, Σ size, count per slot (static tokens stand for their segment's frames, dynamic ones for 1)
    tok = tokf.reshape(B * N, D)
    wt = torch.cat([ln.float()[:, None].expand(S, N), torch.ones(T, N, device=dev)]).reshape(-1, 1)
    acc = torch.zeros(sink + 1, D + 2, device=dev).index_add_(
        0, g, torch.cat([tok * wt, wt, torch.ones_like(wt)], 1))[:sink]
    # spans: (t_lo, y, x, −t_hi, −y, −x); a static token spans its segment
    yx = grid_meta(T, h, w, dev)[:N, 2:4]
    tlo = torch.cat([a_t, torch.arange(T, device=dev)])
    thi = torch.cat([b_t, torch.arange(T, device=dev)])
    tyx = torch.cat([tlo[:, None, None].expand(B, N, 1), yx[None].expand(B, N, 2),
                     -thi[:, None, None].expand(B, N, 1), -yx[None].expand(B, N, 2)], -1).reshape(B * N, 6)
    span = torch.full((sink + 1, 6), T * N, device=dev, dtype=torch.long).scatter_reduce_(
        0, g[:, None].expand(-1, 6), tyx, "amin")[:sink]
    sb = torch.arange(sink, device=dev) // Cm
    sn = corder.reshape(-1)  # set, position of each slot's centre
    xr = tok.view(B, N, D)[sb, sn]
    out = torch.where(acc[:, D + 1:] > 1, acc[:, :D] / acc[:, D:D + 1].clamp(min=1), xr)  # a lone token: bit-exact
    t0 = tlo[sb]
    m = torch.cat([acc[:, D:D + 1].long(), t0[:, None], yx[sn], span[:, :3], -span[:, 3:]], 1)
    # valid slots by (t, y, x): a position is static or dynamic, never both; exactly M are valid
    sel = torch.argsort(torch.where(cvalid.reshape(-1), t0 * N + sn, 2 * T * N))[:M]
    return out[sel].to(x.dtype), m[sel]


_PV = GraphCache(_prunevid_device, size=16)
