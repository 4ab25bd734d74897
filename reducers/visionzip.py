"""VisionZip: dominant tokens by saliency plus a few merged contextual tokens (Yang et al., CVPR'25).

Per frame with a share k of the budget: the k_d = round(k·54/64) most salient tokens are kept (dominant);
from the rest, k_c = k − k_d targets are taken at a uniform stride, and every other remaining token joins
its most similar target (cosine on features; the paper uses attention keys, which a TokenGrid lacks).
Each contextual token = target + mean(assigned), as the official code adds rather than averages.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from .base import Carrier, TokenGrid, grid_positions, merge_groups, register
from .ops import batched_nearest, saliency_of, top_per_row

DOMINANT, CONTEXTUAL = 54, 10


def stride_targets(free: Tensor, kc: Tensor) -> Tensor:
    """Among the True entries of each row, kc[b] at a uniform stride. free: [B, L] bool -> [B, L] bool."""
    r = torch.cumsum(free.long(), 1) - 1  # rank among the free entries
    R = free.sum(1, keepdim=True).clamp(min=1)
    k = kc[:, None]
    return free & (((r + 1) * k) // R > (r * k) // R)


@register("visionzip")
def visionzip(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None,
              dominant_share: float = DOMINANT / (DOMINANT + CONTEXTUAL)) -> tuple[Carrier, Any]:
    """Per frame: dominant top-k_d by saliency + k_c contextual tokens (target + mean of its assigned tokens)."""
    x = grid.tokens
    T, N, D = x.shape
    dev = x.device
    k = [budget // T + (t < budget % T) for t in range(T)]
    kd = [min(N, round(v * dominant_share)) if v > 1 else v for v in k]
    kc = [min(N - a, v - a) for v, a in zip(k, kd)]
    kd_t = torch.tensor(kd, device=dev)
    kc_t = torch.tensor(kc, device=dev)
    dom = top_per_row(saliency_of(grid), kd_t)
    tgt = stride_targets(~dom, kc_t)
    kcm = max(1, max(kc))
    order = torch.argsort(tgt.long(), dim=1, descending=True, stable=True)[:, :kcm]  # target indices first
    tvalid = torch.arange(kcm, device=dev)[None, :] < kc_t[:, None]
    tx = x.gather(1, order[:, :, None].expand(T, kcm, D))
    near = order.gather(1, batched_nearest(x, tx, tvalid))  # [T, N] token index of the nearest target
    base = (torch.arange(T, device=dev) * N)[:, None]
    own = torch.arange(N, device=dev)[None, :] + base
    rest = ~dom & ~tgt
    group = torch.where(dom | tgt, own, torch.where((kc_t[:, None] > 0) & rest, near + base, torch.full_like(own, -1)))
    flat = x.reshape(T * N, D)
    pos = grid_positions(T, *grid.hw, device=dev).reshape(-1, 3)
    size = torch.ones(T * N, dtype=torch.long, device=dev)
    c = merge_groups(flat, pos, size, group.reshape(-1), T * N, rep=torch.arange(T * N, device=dev), mode="add")
    return c.time_order(), state
