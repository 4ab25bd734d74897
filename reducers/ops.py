"""Shared tensor ops for the reducers: saliency/keys with fallbacks, budget allocation, ranking, DPC-kNN.

All functions are pure torch, vectorized over tokens, deterministic (ties broken by index) and device-agnostic.
Similarities are computed in float32 whatever the input dtype.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import TokenGrid


def normed(x: Tensor) -> Tensor:
    """L2-normalised float32 copy of x along the last dim."""
    return F.normalize(x.float(), dim=-1)


def saliency_of(grid: TokenGrid) -> Tensor:
    """[T, N] float32 saliency: grid.saliency when given, else a fallback.

    Fallback (no [CLS] / attention available): 1 − cos(x_{t,n}, mean_n x_{t,n}), how unlike its frame's
    mean a token is. It costs O(T·N·D) and, like [CLS] attention, ranks distinctive objects above the
    uniform background that averaging already represents.
    """
    if grid.saliency is not None:
        return grid.saliency.float()
    x = normed(grid.tokens)
    m = F.normalize(x.mean(1, keepdim=True), dim=-1)
    return 1.0 - (x * m).sum(-1)


def frame_keys_of(grid: TokenGrid) -> Tensor:
    """[T, K] float32 frame keys: grid.frame_keys when given, else the mean token of each frame."""
    if grid.frame_keys is not None:
        return grid.frame_keys.float()
    return grid.tokens.float().mean(1)


def adjacent_cos(x: Tensor) -> Tensor:
    """Cosine of consecutive rows. x: [T, ...K] -> [T-1, ...] (last dim reduced)."""
    xn = normed(x)
    return (xn[1:] * xn[:-1]).sum(-1)


def split_even(total: int, parts: int, device) -> Tensor:
    """total split into `parts` near-equal integer shares (earlier parts get the remainder) -> [parts] long."""
    i = torch.arange(parts, device=device)
    return total // parts + (i < total % parts).long()


def allocate(cap: Tensor, budget: int | Tensor) -> Tensor:
    """Share a budget across groups in proportion to their capacities, exactly.

    cap: [G] long ≥ 0 -> counts [G] long with counts ≤ cap and Σcounts = min(budget, Σcap).
    counts_g = ⌊budget·cap_g / Σcap⌋, the remainder to the largest fractions (ties: lower index).
    Integer arithmetic only, no host sync.
    """
    cap = cap.long()
    S = cap.sum()
    b = torch.as_tensor(budget, device=cap.device, dtype=torch.long)
    b = torch.minimum(b, S)
    Sc = S.clamp(min=1)
    num = b * cap
    base = num // Sc
    frac = num - base * Sc
    rem = b - base.sum()
    G = cap.numel()
    # order by fraction descending, index ascending (stable)
    order = torch.argsort(-frac, stable=True)
    rank = torch.empty_like(order).scatter_(0, order, torch.arange(G, device=cap.device))
    extra = (rank < rem) & (frac > 0)
    return base + extra.long()


def rank_rows(score: Tensor, valid: Optional[Tensor] = None) -> Tensor:
    """Rank of each entry within its row by descending score (0 = best; ties: lower index first).

    score: [B, L], valid: [B, L] bool (invalid entries rank last) -> [B, L] long.
    """
    s = score.float()
    if valid is not None:
        s = s.masked_fill(~valid, float("-inf"))
    order = torch.argsort(s, dim=-1, descending=True, stable=True)
    B, L = s.shape
    return torch.empty_like(order).scatter_(1, order, torch.arange(L, device=s.device).expand(B, L))


def top_per_row(score: Tensor, k: Tensor, valid: Optional[Tensor] = None) -> Tensor:
    """Mask of the top-k[b] entries of each row (variable k). score: [B, L], k: [B] long -> [B, L] bool."""
    r = rank_rows(score, valid)
    m = r < k[:, None]
    if valid is not None:
        m &= valid
    return m


def dpc_knn(x: Tensor, valid: Tensor, n_centres: Tensor, k: int = 7) -> tuple[Tensor, Tensor]:
    """Density-peak clustering with k-NN density (DPC-kNN), batched with padding.

    x: [B, L, D], valid: [B, L] bool, n_centres: [B] long (clamped to the valid count)
    -> centre [B, L] bool, assign [B, L] long (index in L of each token's centre; -1 when invalid).

    d = cdist/√D; ρ = exp(−mean of the k smallest squared distances); δ = distance to the nearest denser
    token (ties in ρ: the lower index counts as denser), max distance for the densest; centres are the top
    ρ·δ; every valid token joins its nearest centre (a centre joins itself).
    """
    B, L, D = x.shape
    dev = x.device
    inf = float("inf")
    d = torch.cdist(x.float(), x.float()).mul_(1.0 / math.sqrt(D))  # [B, L, L]
    pair = valid[:, :, None] & valid[:, None, :]
    d = d.masked_fill_(~pair, inf)
    kk = max(1, min(k, L - 1))
    eye = torch.eye(L, dtype=torch.bool, device=dev)
    knn = torch.topk(d.masked_fill(eye, inf), kk, dim=-1, largest=False).values  # [B, L, kk]
    fin = torch.isfinite(knn)
    msq = knn.masked_fill(~fin, 0).square().sum(-1) / fin.sum(-1).clamp(min=1)
    rho = torch.exp(-msq).masked_fill(~valid, -1.0)
    # "denser" = higher ρ, ties to the lower index: compare ranks of a stable descending sort
    order = torch.argsort(rho, dim=-1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(L, device=dev).expand(B, L))
    denser = rank[:, None, :] < rank[:, :, None]
    delta = d.masked_fill(~denser, inf).amin(-1)
    dmax = d.masked_fill(~pair, 0.0).amax(-1)
    delta = torch.where(torch.isfinite(delta), delta, dmax)
    score = (rho * delta).masked_fill(~valid, -inf)
    nc = torch.minimum(n_centres.long(), valid.sum(-1))
    centre = top_per_row(score, nc, valid)
    assign = d.masked_fill(~centre[:, None, :], inf).argmin(-1)
    idx = torch.arange(L, device=dev)
    assign = torch.where(centre, idx, assign)
    ok = valid & centre.any(-1, keepdim=True)
    return centre, assign.masked_fill(~ok, -1)


def batched_nearest(x: Tensor, targets: Tensor, target_valid: Tensor) -> Tensor:
    """Index of each row's most similar (cosine) valid target. x: [B, L, D], targets: [B, C, D],
    target_valid: [B, C] bool -> [B, L] long."""
    s = torch.bmm(normed(x), normed(targets).transpose(1, 2))
    s = s.masked_fill(~target_valid[:, None, :], float("-inf"))
    return s.argmax(-1)


CONTINUE_TAU = 0.9  # mean positional cosine above which a clip's first frame continues the previous clip's last


def state_tensor(state, key: str, shape: tuple[int, ...], device) -> Optional[Tensor]:
    """state[key] moved to `device` when state is a dict holding a tensor of that shape, else None."""
    if not isinstance(state, dict):
        return None
    v = state.get(key)
    if not isinstance(v, Tensor) or tuple(v.shape) != tuple(shape):
        return None
    return v.to(device)


def positional_cos(a: Tensor, b: Tensor) -> Tensor:
    """Cosine of tokens at the same positions. a, b: [..., N, D] -> [..., N] float32."""
    return (normed(a) * normed(b)).sum(-1)


def ints_to(device, *lists) -> list[Tensor]:
    """Host int lists -> long tensors on `device` with a single host-to-device copy (one per call, not per list)."""
    sizes = [len(v) for v in lists]
    flat = torch.tensor([i for v in lists for i in v], dtype=torch.long).to(device)
    return list(torch.split(flat, sizes))
