"""Baselines: per-frame 2D pooling (LLaVA-Video 2×2 average, LLaVA-OV bilinear) and uniform frame sampling."""
from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Carrier, TokenGrid, register


def pooled_grid(h: int, w: int, per_frame: int) -> tuple[int, int]:
    """Largest (oh, ow) with the grid's aspect ratio and oh·ow ≤ per_frame (≥ 1×1)."""
    per_frame = max(1, per_frame)
    if h * w <= per_frame:
        return h, w
    scale = math.sqrt(per_frame / (h * w))
    oh, ow = max(1, math.floor(h * scale)), max(1, math.floor(w * scale))
    # grow one side while it still fits: squeezes the most out of the budget
    while (oh + 1) * ow <= per_frame and oh < h:
        oh += 1
    while oh * (ow + 1) <= per_frame and ow < w:
        ow += 1
    return oh, ow


def uniform_frames(T: int, n: int, device: torch.device | str = "cpu") -> Tensor:
    """n evenly spaced frame indices in [0, T) -> [n] long (centres of n equal bins)."""
    n = max(1, min(n, T))
    return ((torch.arange(n, device=device, dtype=torch.float64) + 0.5) * T / n).long().clamp(max=T - 1)


def _bins(size: int, out: int, device) -> tuple[Tensor, Tensor]:
    """Inclusive [start, end] input index of each adaptive-pooling output cell -> 2× [out] long."""
    i = torch.arange(out, device=device)
    start = (i * size) // out
    end = ((i + 1) * size + out - 1) // out - 1
    return start, end


def pool_frames(x: Tensor, hw: tuple[int, int], frames: Tensor, out_hw: tuple[int, int], mode: str = "avg") -> Carrier:
    """Pool each chosen frame of x to out_hw.

    x: [T, N, D], frames: [F] long, out_hw: (oh, ow) -> Carrier with F·oh·ow tokens in (t, y, x) order.
    mode: "avg" (adaptive average) or "bilinear" (LLaVA-OV's resize).
    """
    h, w = hw
    oh, ow = out_hw
    D = x.shape[-1]
    xf = x[frames].reshape(-1, h, w, D).permute(0, 3, 1, 2).float()  # [F, D, h, w]
    if mode == "avg":
        y = F.adaptive_avg_pool2d(xf, (oh, ow))
    elif mode == "bilinear":
        y = F.interpolate(xf, size=(oh, ow), mode="bilinear", align_corners=False)
    else:
        raise ValueError(f"unknown pool mode {mode!r}")
    Fn = frames.numel()
    tok = y.permute(0, 2, 3, 1).reshape(Fn * oh * ow, D).to(x.dtype)
    ys, ye = _bins(h, oh, x.device)
    xs, xe = _bins(w, ow, x.device)
    t = frames.view(Fn, 1, 1).expand(Fn, oh, ow)
    lo = torch.stack([t, ys.view(1, oh, 1).expand(Fn, oh, ow), xs.view(1, 1, ow).expand(Fn, oh, ow)], -1).reshape(-1, 3)
    hi = torch.stack([t, ye.view(1, oh, 1).expand(Fn, oh, ow), xe.view(1, 1, ow).expand(Fn, oh, ow)], -1).reshape(-1, 3)
    pos = (lo + hi) // 2
    size = (hi[:, 1] - lo[:, 1] + 1) * (hi[:, 2] - lo[:, 2] + 1)
    return Carrier(tok, pos, lo, hi, size)


@register("pool2d")
def pool2d(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None,
           mode: str = "avg") -> tuple[Carrier, Any]:
    """Pool every frame to the largest grid that fits budget // T (LLaVA-Video: 2×2 avg; mode="bilinear" for LLaVA-OV).

    When budget < T, frames are first sampled uniformly to one token each.
    """
    T, N, _ = grid.tokens.shape
    frames = uniform_frames(T, min(T, budget), grid.tokens.device)
    out_hw = pooled_grid(*grid.hw, budget // frames.numel())
    return pool_frames(grid.tokens, grid.hw, frames, out_hw, mode), state


@register("uniform")
def uniform(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None) -> tuple[Carrier, Any]:
    """Keep ⌊budget / N⌋ evenly spaced whole frames; below one frame's worth, pool a single middle frame."""
    T, N, _ = grid.tokens.shape
    n = budget // N
    if n >= 1:
        frames = uniform_frames(T, n, grid.tokens.device)
        return pool_frames(grid.tokens, grid.hw, frames, grid.hw, "avg"), state
    frames = uniform_frames(T, 1, grid.tokens.device)
    return pool_frames(grid.tokens, grid.hw, frames, pooled_grid(*grid.hw, budget), "avg"), state


@register("pool2d_bilinear")
def pool2d_bilinear(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None
                    ) -> tuple[Carrier, Any]:
    """LLaVA-OneVision: bilinear resize of every frame (27×27 → 14×14 = 196 at its "100%"), to the largest
    grid that fits budget // T."""
    return pool2d.__wrapped__(grid, budget, state=state, query=query, mode="bilinear")  # already validated
