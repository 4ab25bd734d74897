"""Synthetic token clips with known structure for the reducer tests (seeded, CPU, float32)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from reducers import TokenGrid


def smooth_field(h: int, w: int, D: int, g: torch.Generator) -> torch.Tensor:
    """[h·w, D] features that vary smoothly over the grid plus per-position detail (like real patch tokens)."""
    coarse = torch.randn(1, D, 2, 2, generator=g)
    base = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=True)[0].permute(1, 2, 0)
    return (base + 0.7 * torch.randn(h, w, D, generator=g)).reshape(h * w, D)


def clip(kind: str, T: int = 8, h: int = 6, w: int = 6, D: int = 32, seed: int = 0,
         saliency: bool = False, keys: bool = False, noise: float = 0.01, scene: Optional[torch.Tensor] = None) -> TokenGrid:
    """kind: "random" (iid tokens), "static" (one picture repeated, tiny noise), "region" (static except a
    2×2 block that changes every frame), "cut" (two static scenes, the cut at T/2)."""
    g = torch.Generator().manual_seed(seed)
    N = h * w
    if kind == "random":
        x = torch.randn(T, N, D, generator=g)
    else:
        a = scene if scene is not None else smooth_field(h, w, D, g)
        x = a[None].repeat(T, 1, 1)
        if kind == "region":
            for y in (1, 2):
                for xx in (1, 2):
                    x[:, y * w + xx] = 3 * torch.randn(T, D, generator=g)
        elif kind == "cut":
            b = smooth_field(h, w, D, g)
            x[T // 2:] = b
        elif kind != "static":
            raise ValueError(kind)
        x = x + noise * torch.randn(T, N, D, generator=g)
    sal = torch.rand(T, N, generator=g) if saliency else None
    fk = x.mean(1) if keys else None
    return TokenGrid(tokens=x, hw=(h, w), saliency=sal, frame_keys=fk)


def region_index(w: int = 6) -> list[int]:
    return [y * w + xx for y in (1, 2) for xx in (1, 2)]


def coverage(grid: TokenGrid, tokens: torch.Tensor) -> torch.Tensor:
    """Cosine of every original token to its nearest carrier token -> [T·N]."""
    a = F.normalize(grid.tokens.reshape(-1, grid.D).float(), dim=-1)
    b = F.normalize(tokens.float(), dim=-1)
    return (a @ b.T).amax(-1)
