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

Speed: the segmentation reads T−1 cosines on the host (the one host sync); every quota is then a host
integer, so salient tokens and anchors are selected by sorts with known sizes and merged by scatters into
per-anchor slots.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from .base import Carrier, TokenGrid, _const, carrier_from_meta, grid_meta, register
from .ops import GraphCache, _dpc_core, adjacent_cos, exact_tf32, frame_keys_of, ints_to, normed, rank_rows, saliency_of

C, TAU, D_CTX, P, KNN = 8, 0.9, 0.4, 4, 7


def dyseg(keys: Tensor, c: int = C, tau: float = TAU) -> list[tuple[int, int]]:
    """Segments [(a, b)] of frames from frame keys [T, K]: cut after the c−1 lowest adjacent cosines and below τ."""
    T = keys.shape[0]
    if T == 1:
        return [(0, 0)]
    s = adjacent_cos(keys.float().cpu()).tolist()  # T−1 cosines, on the host (one small copy)
    cut = [v < tau for v in s]
    for i in sorted(range(T - 1), key=lambda i: s[i])[: max(0, min(c - 1, T - 1))]:  # stable: ties by index
        cut[i] = True
    bounds = [0] + [i + 1 for i in range(T - 1) if cut[i]] + [T]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(len(bounds) - 1)]


def _tyx6(T: int, h: int, w: int, device) -> Tensor:
    """[T·N, 6] long (t, y, x, −t, −y, −x) of every token, cached."""
    def make():
        p = grid_meta(T, h, w, device)[:, 1:4]
        return torch.cat([p, -p], 1)
    return _const(("tyx6", T, h, w, torch.device(device)), make)


@register("fastvid")
def fastvid(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None,
            c: int = C, tau: float = TAU, d: float = D_CTX, p: int = P, k: int = KNN) -> tuple[Carrier, Any]:
    """DySeg segments; per segment salient top-a per frame + DPC-anchored merged context tokens."""
    x = grid.tokens
    T, N, D = x.shape
    dev = x.device
    h, w = grid.hw
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
    # segments with one candidate frame first, then the others (their DPC batches run separately, so the
    # short ones are not padded to F frames); each group padded to an even count and the anchor slots to a
    # multiple of 8: every device shape then follows from few keys, and on CUDA the rest replays as one
    # CUDA graph per key
    one = [si for si in range(S) if len(anchor_frames[si]) == 1]
    many = [si for si in range(S) if len(anchor_frames[si]) > 1]
    S1 = -(-len(one) // 2) * 2
    rows = one + [None] * (S1 - len(one)) + many + [None] * (-(-len(many) // 2) * 2 - len(many))
    row_of = {si: r for r, si in enumerate(rows) if si is not None}
    Sp, A = len(rows), min(F * N, -(-max(1, max(ctx)) // 8) * 8)
    fr_rows = [anchor_frames[si] + [anchor_frames[si][-1]] * (F - len(anchor_frames[si])) if si is not None else [0] * F
               for si in rows]
    fv_rows = [[int(i < len(anchor_frames[si])) for i in range(F)] if si is not None else [0] * F for si in rows]
    a_tt, ctx_t, fidx, fval, seg_of = ints_to(
        dev, a_t, [ctx[si] if si is not None else 0 for si in rows], [i for f in fr_rows for i in f],
        [i for f in fv_rows for i in f], [row_of[si] for si, (a, b) in enumerate(segs) for _ in range(a, b + 1)])
    tok, meta = _FV(x, saliency_of(grid), a_tt, ctx_t, fidx.view(Sp, F), fval.view(Sp, F).bool(), seg_of,
                    hw=tuple(grid.hw), A=A, k=k, M=sum(a_t) + sum(ctx), S1=S1)
    return carrier_from_meta(tok, meta), state


def _fastvid_device(x: Tensor, sal: Tensor, a_tt: Tensor, ctx_t: Tensor, fidx: Tensor, fval: Tensor,
                    seg_of: Tensor, hw: tuple[int, int], A: int, k: int, M: int, S1: int = 0) -> tuple[Tensor, Tensor]:
    """Salient top-a per frame, DPC anchors per segment, context merged into them; the M output tokens
    (salient ones alone, anchors merged) in (t, y, x) order. The first S1 segments have one candidate frame.
    Shapes depend on (T, N, D, S, S1, F, A, M) only."""
    T, N, D = x.shape
    S, F = fidx.shape
    dev = x.device
    h, w = hw
    salient = rank_rows(sal) < a_tt[:, None]  # [T, N]
    cx = x[fidx].reshape(S, F * N, D)
    cvalid = (~salient[fidx] & fval[:, :, None]).reshape(S, F * N)
    b16 = 0 if x.dtype == torch.bfloat16 else None
    if 0 < S1 < S and F > 1:  # one-frame segments: DPC over their N candidates only
        c1, _ = _dpc_core(cx[:S1, :N], cvalid[:S1, :N], ctx_t[:S1], k, bf16_from=b16)
        c2, _ = _dpc_core(cx[S1:], cvalid[S1:], ctx_t[S1:], k, bf16_from=b16)
        centre = torch.cat([torch.cat([c1, c1.new_zeros(S1, (F - 1) * N)], 1), c2])
    else:
        centre, _ = _dpc_core(cx, cvalid, ctx_t, k, bf16_from=b16)
    # anchors of each segment, padded: [S, A]
    order = torch.argsort(centre.to(torch.uint8), dim=1, descending=True, stable=True)[:, :A]
    avalid = torch.arange(A, device=dev)[None, :] < ctx_t[:, None]
    flat_anchor = fidx.gather(1, order // N) * N + order % N  # [S, A] flat index into T·N
    xn = normed(x)
    bf16 = x.dtype == torch.bfloat16
    if bf16:  # cosines of bf16 tokens in bf16 precision, as FastVID runs in the model's dtype (exact on TF32)
        xn = xn.bfloat16().float()
    an = xn.reshape(T * N, D)[flat_anchor]  # [S, A, D]
    with exact_tf32(bf16 and x.is_cuda):
        sim = torch.bmm(xn, an[seg_of].transpose(1, 2))
    sim = sim.masked_fill_(~avalid[seg_of][:, None, :], float("-inf"))
    gid = seg_of[:, None] * A + sim.argmax(-1)  # group = (segment, anchor slot)
    sink = S * A
    has_ctx = ctx_t[seg_of] > 0
    gid = torch.where(~salient & has_ctx[:, None], gid, sink).reshape(-1)
    # anchors represent their own group (padding slots write to the spare last entry)
    gid = torch.cat([gid, gid.new_full((1,), sink)])
    gid.scatter_(0, torch.where(avalid, flat_anchor, T * N).reshape(-1), torch.arange(S * A, device=dev))
    gid = gid[:-1]
    xf = x.reshape(T * N, D).float()
    acc = torch.zeros(sink + 1, D + 1, device=dev).index_add_(
        0, gid, torch.cat([xf, torch.ones(T * N, 1, device=dev)], 1))[:sink]
    span = torch.full((sink + 1, 6), T * N, device=dev, dtype=torch.long).scatter_reduce_(
        0, gid[:, None].expand(-1, 6), _tyx6(T, h, w, dev), "amin")[:sink]
    fa = flat_anchor.reshape(-1)
    cnt = acc[:, D:].clamp(min=1)  # members, the anchor included (≥ 1 for a valid slot)
    xr = xf[fa]
    wgt = torch.clamp(1.0 / cnt, min=0.6)
    atok = torch.where(cnt > 1, wgt * xr + (1 - wgt) * (acc[:, :D] / cnt), xr)
    meta = grid_meta(T, h, w, dev)
    ameta = torch.cat([cnt.long(), meta[fa, 1:4], span[:, :3], -span[:, 3:]], 1)
    # the salient tokens (alone) and the valid anchors, by flat index: exactly M of them come first
    big = 2 * T * N
    key = torch.cat([torch.where(salient.reshape(-1), torch.arange(T * N, device=dev), big),
                     torch.where(avalid.reshape(-1), fa, big)])
    sel = torch.argsort(key)[:M]
    tok = torch.cat([xf, atok])[sel].to(x.dtype)
    return tok, torch.cat([meta, ameta])[sel]


_FV = GraphCache(_fastvid_device, size=16)
