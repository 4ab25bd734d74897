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

Speed: one device function (a CUDA graph on CUDA) does step 1 on the T frame means and the static test of
step 2 for every possible segment (≤ T rows); its segment ids and static counts come back in one small copy,
the clip's single host sync, after which every cluster count is a host integer (`ops.allocate_host`). A second
graph runs one batched DPC-kNN over the static sets and the T dynamic sets (on CUDA with Triton its three row
passes over d² are Triton kernels, see `ops._dpc_core(fused=True)`), and merges each cluster into per-centre
slots: on CUDA by one batched matrix product with the 0/w assignment matrix (deterministic; exact TF32 for
bf16 clips), on the CPU by index_add_. Segment sums are deterministic (`ops.segment_sums`).
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from .base import Carrier, TokenGrid, carrier_from_meta, grid_meta, register
from .ops import GraphCache, _dpc_core, allocate_host, exact_tf32, ints_to, normed, segment_sums

SEG_RATIO, KNN, TAU, JOIN = 0.25, 7, 0.8, 0.98


def _segment_ids(m: Tensor, nc: int, k: int = KNN, join: float = JOIN) -> Tensor:
    """Segment id [T] long (contiguous runs 0, 1, ..., S−1) of each frame, from DPC-kNN clusters of the frame
    means m [T, D] float32: a new segment wherever the cluster label changes."""
    T = m.shape[0]
    dev = m.device
    zero = torch.zeros(1, dtype=torch.long, device=dev)
    if T == 1:
        return zero
    _, assign = _dpc_core(m[None], torch.ones(1, T, dtype=torch.bool, device=dev),
                          torch.full((1,), nc, dtype=torch.long, device=dev), k)
    lab = assign[0]
    cut = lab[1:] != lab[:-1]
    # our addition: DPC must return round(0.25·T) clusters even when the clip has fewer scenes; a cut
    # between two runs whose mean frames are near-identical (cosine > join) is dropped
    seg = torch.cat([zero, torch.cumsum(cut.long(), 0)])
    sm, _ = segment_sums(m[:, None], seg, T)
    sn = normed(sm[:, 0])
    same = (sn[seg[1:]] * sn[seg[:-1]]).sum(-1) > join
    return torch.cat([zero, torch.cumsum((cut & ~same).long(), 0)])


def cluster_segments(x: Tensor, ratio: float = SEG_RATIO, k: int = KNN, join: float = JOIN) -> list[tuple[int, int]]:
    """Contiguous frame segments [(a, b)] from DPC-kNN clusters of frame means. x: [T, N, D]."""
    T = x.shape[0]
    return _bounds(_segment_ids(x.mean(1, dtype=torch.float32), max(1, round(ratio * T)), k, join).tolist())


def _bounds(seg: list[int]) -> list[tuple[int, int]]:
    out = []
    for t, s in enumerate(seg):
        if t == 0 or s != seg[t - 1]:
            out.append([t, t])
        else:
            out[-1][1] = t
    return [(a, b) for a, b in out]


def _segments_device(x: Tensor, nc: int, k: int, join: float, tau: float) -> tuple[Tensor, Tensor]:
    """Steps 1 and 2 on the device: -> (packed [T + R] long: each frame's segment id, then each segment's
    static count; static [R, N] bool). R = T on CUDA (fixed shapes for the graph), the segment count on the CPU.
    Position n of a segment of L ≥ 2 frames is static when the mean pairwise cosine of its L tokens > τ."""
    T, N, D = x.shape
    seg = _segment_ids(x.mean(1, dtype=torch.float32), nc, k, join)
    R = T if x.is_cuda else int(seg[-1]) + 1
    ln = torch.zeros(R, dtype=torch.long, device=x.device).index_add_(0, seg, torch.ones_like(seg))
    _, sq = segment_sums(x, seg, R, normalize=True, sums=False, sumsq=True)  # ‖Σ x̂‖² per segment and position
    Lf = ln[:, None].float()
    mpc = (sq - Lf) / (Lf * (Lf - 1)).clamp(min=1)
    static = (mpc > tau) & (ln[:, None] > 1)  # [R, N]
    return torch.cat([seg, static.sum(1)]), static


_SEG = GraphCache(_segments_device, size=16)


@register("prunevid")
def prunevid(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None,
             tau: float = TAU, k: int = KNN) -> tuple[Carrier, Any]:
    """Static/dynamic split per segment, static temporal means, DPC-kNN cluster means to the budget."""
    x = grid.tokens
    T, N, D = x.shape
    packed, static = _SEG(x, nc=max(1, round(SEG_RATIO * T)), k=k, join=JOIN, tau=float(tau))
    vals = packed.tolist()  # the one host sync: segments and static counts
    seg_h = vals[:T]
    segs = _bounds(seg_h)
    S = len(segs)
    n_static = vals[T:T + S]
    lens = [b - a + 1 for a, b in segs]
    # only segments with static positions enter the clustering batch (padded to an even count); groups of
    # capacity 0 get nothing from `allocate`, so leaving them out changes no count
    use = [si for si in range(S) if n_static[si] > 0]
    U, Up = len(use), -(-max(1, len(use)) // 2) * 2
    u_of = {si: ui for ui, si in enumerate(use)}
    cap = [n_static[si] for si in use] + [N - n_static[seg_h[t]] for t in range(T)]
    counts = allocate_host(cap, budget)
    counts = counts[:U] + [0] * (Up - U) + counts[U:]
    pad = [0] * (Up - U)
    flat, = ints_to(x.device, use + pad + [u_of.get(seg_h[t], Up) for t in range(T)] + [lens[si] for si in use] + pad
                    + [segs[si][0] for si in use] + pad + [segs[si][1] for si in use] + pad + counts)
    tok, meta = _PV(x, static, flat, hw=tuple(grid.hw), k=k, Up=Up,
                    Cm=min(N, -(-max(1, max(counts)) // 8) * 8), M=sum(counts))
    return carrier_from_meta(tok, meta), state


def _prunevid_device(x: Tensor, static_seg: Tensor, flat: Tensor, hw: tuple[int, int], k: int, Up: int, Cm: int,
                     M: int) -> tuple[Tensor, Tensor]:
    """Static means + one DPC-kNN batch (the Up segments with static positions, then the T dynamic sets), each
    cluster merged into its size-weighted mean; the M output tokens in (t, y, x) order.
    static_seg [R, N]: static positions per segment; flat: the host integers (segment of each used row uidx
    [Up], each frame's used row uf [T] (Up: its segment has no static position), ln, a, b [Up], counts
    [Up + T]). Shapes depend on (T, N, D, R, Up, Cm, M) only."""
    T, N, D = x.shape
    S = Up
    B = S + T
    dev = x.device
    h, w = hw
    uidx, uf, ln, a_t, b_t, counts_t = torch.split(flat, [S, T, S, S, S, S + T])
    static = static_seg[uidx] & (ln > 0)[:, None]  # [S, N]
    xf = x.float()
    sums, _ = segment_sums(x, uf, S + 1)
    means = sums[:S] / ln.clamp(min=1)[:, None, None].float()
    dyn = ~torch.cat([static, static.new_zeros(1, N)])[uf]  # [T, N]
    valid = torch.cat([static, dyn])
    # the static tokens are the temporal means in the clip's dtype (as in PruneVid, which runs in the model's
    # dtype): they are clustered and merged as such
    bf16 = x.dtype == torch.bfloat16
    tokf = torch.cat([means.to(x.dtype).float(), xf])  # [B, N, D]
    centre, assign = _dpc_core(tokf, valid, counts_t, k, bf16_from=0 if bf16 else None, fused=True)
    # slots: centre j of set b -> b·Cm + j; members (centres included) add into their centre's slot
    corder = torch.argsort(centre.to(torch.uint8), dim=1, descending=True, stable=True)[:, :Cm]  # [B, Cm]
    cvalid = torch.arange(Cm, device=dev)[None, :] < counts_t[:, None]
    sink = B * Cm
    slot_of = torch.full((B, N), sink, device=dev, dtype=torch.long).scatter_(
        1, corder, torch.where(cvalid, torch.arange(sink, device=dev).view(B, Cm), sink))
    g = torch.where(assign >= 0, slot_of.gather(1, assign.clamp(min=0)), sink)  # [B, N]
    # Σ x·size, Σ size, count per slot (static tokens stand for their segment's frames, dynamic ones for 1)
    wt = torch.cat([ln.float()[:, None].expand(S, N), torch.ones(T, N, device=dev)])  # [B, N]
    if x.is_cuda:  # one batched product with the [B, Cm, N] weighted assignment matrix: no atomics
        loc = torch.where(g < sink, g - torch.arange(B, device=dev)[:, None] * Cm, Cm)
        A = (loc[:, None, :] == torch.arange(Cm, device=dev)[None, :, None]).float()  # [B, Cm, N]
        Aw = A * wt[:, None, :]
        with exact_tf32(bf16):  # integer weights ≤ T times bf16 values: exact products
            sx = torch.bmm(Aw, tokf)
        acc = torch.cat([sx, Aw.sum(-1, keepdim=True), A.sum(-1, keepdim=True)], -1).reshape(sink, D + 2)
    else:
        tok = tokf.reshape(B * N, D)
        wtf = wt.reshape(-1, 1)
        acc = torch.zeros(sink + 1, D + 2, device=dev).index_add_(
            0, g.reshape(-1), torch.cat([tok * wtf, wtf, torch.ones_like(wtf)], 1))[:sink]
    g = g.reshape(-1)
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
    xr = tokf[sb, sn]
    out = torch.where(acc[:, D + 1:] > 1, acc[:, :D] / acc[:, D:D + 1].clamp(min=1), xr)  # a lone token: bit-exact
    t0 = tlo[sb]
    m = torch.cat([acc[:, D:D + 1].long(), t0[:, None], yx[sn], span[:, :3], -span[:, 3:]], 1)
    # valid slots by (t, y, x): a position is static or dynamic, never both; exactly M are valid
    sel = torch.argsort(torch.where(cvalid.reshape(-1), t0 * N + sn, 2 * T * N))[:M]
    return out[sel].to(x.dtype), m[sel]


_PV = GraphCache(_prunevid_device, size=16)
