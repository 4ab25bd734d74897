"""Merge runs of adjacent near-identical frames, then pool what remains into the budget.

A static camera produces many frames that say the same thing; averaging them position-wise
keeps the picture and frees budget for frames that change. State carries the last frame so a
run that crosses a clip boundary is recognised (the clip is then marked as a continuation).
"""
from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Carrier, TokenGrid, register
from .pool2d import pool_frames, pooled_grid, uniform_frames


def frame_similarity(x: Tensor) -> Tensor:
    """Mean positional cosine between consecutive frames. x: [T, N, D] -> [T-1]."""
    xn = F.normalize(x.float(), dim=-1)
    return (xn[1:] * xn[:-1]).sum(-1).mean(-1)


def run_ids(sim: Tensor, tau: float) -> Tensor:
    """Group id of each frame: a new group starts where sim ≤ tau. sim: [T-1] -> [T] long."""
    new = torch.cat([torch.ones(1, dtype=torch.long, device=sim.device), (sim <= tau).long()])
    return torch.cumsum(new, 0) - 1


@register("framemerge")
def framemerge(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None,
               tau: float = 0.95) -> tuple[Carrier, Any]:
    """Average runs of frames whose positional cosine > tau, then pool each run to budget // runs.

    state: {"last": [N, D] last frame of the previous clip} -> same for this clip, plus
    "continues": whether this clip's first frame belongs to the previous clip's last run.
    """
    x = grid.tokens  # [T, N, D]
    T, N, D = x.shape
    sim = frame_similarity(x) if T > 1 else x.new_zeros(0)
    gid = run_ids(sim, tau)  # [T]
    G = int(gid[-1]) + 1
    # position-wise mean of each run: [G, N, D]
    cnt = torch.zeros(G, device=x.device).index_add_(0, gid, torch.ones(T, device=x.device))
    mean = torch.zeros(G, N, D, device=x.device).index_add_(0, gid, x.float()) / cnt[:, None, None]
    first = torch.full((G,), T, device=x.device, dtype=torch.long).scatter_reduce(
        0, gid, torch.arange(T, device=x.device), "amin")
    last = torch.full((G,), -1, device=x.device, dtype=torch.long).scatter_reduce(
        0, gid, torch.arange(T, device=x.device), "amax")

    keep = uniform_frames(G, min(G, budget), x.device)  # runs that fit at ≥ 1 token each
    out_hw = pooled_grid(*grid.hw, budget // keep.numel())
    c = pool_frames(mean.to(x.dtype), grid.hw, keep, out_hw, "avg")
    # pool_frames numbered the runs; map back to frame indices with the run's time span
    run = c.pos[:, 0]
    n_frames = (last - first + 1)[run]
    c = Carrier(c.tokens, torch.stack([first[run], c.pos[:, 1], c.pos[:, 2]], -1),
                torch.stack([first[run], c.lo[:, 1], c.lo[:, 2]], -1),
                torch.stack([last[run], c.hi[:, 1], c.hi[:, 2]], -1), c.size * n_frames)

    continues = False
    if state is not None and state.get("last") is not None and state["last"].shape == (N, D):
        prev = F.normalize(state["last"].to(x.device).float(), dim=-1)
        continues = bool((prev * F.normalize(x[0].float(), dim=-1)).sum(-1).mean() > tau)
    return c, {"last": x[-1].detach().clone(), "continues": continues}
