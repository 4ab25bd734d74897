"""DivPrune: keep a maximally diverse subset by greedy max-min selection (Alvar et al., CVPR'25).

d_ij = 1 − cos(x_i, x_j). Start from the most isolated token, argmax_i min_{j≠i} d_ij, then repeatedly add
argmax_i min_{s∈S} d_is. A running vector of minimum distances makes selection O(k·N) after the O(N²)
distance matrix. For a clip the selection runs per frame (batched over frames; bounds memory to T·N²),
with the budget split evenly over frames. Kept tokens are returned unchanged, in (t, y, x) order.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from .base import Carrier, TokenGrid, keep_tokens, register
from .ops import normed, split_even


try:  # optional: one fused kernel for the greedy loop on CUDA (k sequential steps, one launch)
    import triton
    import triton.language as tl

    @triton.jit
    def _maxmin_kernel(d_ptr, first_ptr, sel_ptr, L, KMAX, stride_b, stride_r, BLOCK: tl.constexpr):
        b = tl.program_id(0)
        offs = tl.arange(0, BLOCK)
        inb = offs < L
        base = d_ptr + b.to(tl.int64) * stride_b
        j = tl.load(first_ptr + b)
        tl.store(sel_ptr + b * KMAX, j)
        mind = tl.load(base + j * stride_r + offs, mask=inb, other=float("-inf"))
        mind = tl.where(offs == j, float("-inf"), mind)
        for i in range(1, KMAX):
            j = tl.argmax(mind, axis=0)  # first maximum, like torch.argmax
            tl.store(sel_ptr + b * KMAX + i, j)
            row = tl.load(base + j * stride_r + offs, mask=inb, other=float("-inf"))
            mind = tl.minimum(mind, row)
            mind = tl.where(offs == j, float("-inf"), mind)

    HAVE_TRITON = True
except Exception:  # pragma: no cover - no triton on this machine
    HAVE_TRITON = False


def _greedy_torch(d: Tensor, first: Tensor, kmax: int) -> Tensor:
    """Running-min greedy on a distance matrix d [B, L, L] from `first` [B] -> selected indices [B, kmax]."""
    B, L, _ = d.shape
    sel = torch.empty(B, kmax, dtype=torch.long, device=d.device)
    sel[:, 0] = first
    mind = d.gather(1, first.view(B, 1, 1).expand(B, 1, L)).squeeze(1).clone()
    ninf = torch.full((B, 1), float("-inf"), device=d.device)
    mind.scatter_(1, first[:, None], ninf)
    for i in range(1, kmax):
        j = mind.argmax(-1, keepdim=True)  # [B, 1]
        sel[:, i:i + 1] = j
        torch.minimum(mind, d.gather(1, j[:, :, None].expand(B, 1, L)).squeeze(1), out=mind)
        mind.scatter_(1, j, ninf)
    return sel


def _greedy_triton(d: Tensor, first: Tensor, kmax: int) -> Tensor:
    B, L, _ = d.shape
    d = d.contiguous()
    sel = torch.empty(B, kmax, dtype=torch.int32, device=d.device)
    _maxmin_kernel[(B,)](d, first.to(torch.int32).contiguous(), sel, L, kmax, d.stride(0), d.stride(1),
                         BLOCK=triton.next_power_of_2(L), num_warps=4 if L <= 1024 else 8)
    return sel.long()


def maxmin_select(x: Tensor, k: Tensor, kmax: int, impl: str = "auto") -> Tensor:
    """Greedy max-min diverse subset per row. x: [B, L, D], k: [B] long (≤ kmax ≤ L) -> keep [B, L] bool.

    impl: "torch" (a loop of k small ops), "triton" (one fused kernel), "auto" (triton on CUDA when present).
    Both pick the first maximum on ties, so they select the same tokens.
    """
    B, L, _ = x.shape
    xn = normed(x)
    d = 1.0 - torch.bmm(xn, xn.transpose(1, 2))  # [B, L, L]
    eye = torch.eye(L, dtype=torch.bool, device=x.device)
    first = d.masked_fill(eye, float("inf")).amin(-1).argmax(-1)  # most isolated token
    if impl == "auto":
        impl = "triton" if (HAVE_TRITON and x.is_cuda) else "torch"
    sel = _greedy_triton(d, first, kmax) if impl == "triton" else _greedy_torch(d, first, kmax)
    valid = torch.arange(kmax, device=x.device)[None, :] < k[:, None]
    keep = torch.zeros(B, L, dtype=torch.long, device=x.device).scatter_reduce(1, sel, valid.long(), "amax")
    return keep.bool()


@register("divprune")
def divprune(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None) -> tuple[Carrier, Any]:
    """Per-frame greedy max-min diversity; frame t keeps budget/T tokens (remainder to earlier frames)."""
    T, N, _ = grid.tokens.shape
    k = split_even(budget, T, grid.tokens.device)
    kmax = min(N, -(-budget // T))
    if kmax == 0:
        kmax = 1
    keep = maxmin_select(grid.tokens, k, kmax)
    return keep_tokens(grid, keep.reshape(-1).nonzero().squeeze(1)), state
