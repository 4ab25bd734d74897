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

from .base import Carrier, TokenGrid, cat_carriers, register
from .ops import positional_cos, state_tensor
from .pool2d import pool_frames, pooled_grid, uniform_frames


def frame_similarity(x: Tensor) -> Tensor:
    """Mean positional cosine between consecutive frames. x: [T, N, D] -> [T-1]."""
    xn = F.normalize(x.float(), dim=-1)
    return (xn[1:] * xn[:-1]).sum(-1).mean(-1)


def run_ids(sim: Tensor, tau: float) -> Tensor:
    """Group id of each frame: a new group starts where sim ≤ tau. sim: [T-1] -> [T] long."""
    new = torch.cat([torch.ones(1, dtype=torch.long, device=sim.device), (sim <= tau).long()])
    return torch.cumsum(new, 0) - 1


CONTINUE_SHARE = 4


def _next_state(grid: TokenGrid, state: Any) -> dict:
    prev = state_tensor(state, "last", (grid.N, grid.D), grid.tokens.device)
    cont = bool(prev is not None and positional_cos(prev, grid.tokens[0]).mean() > 0.95)
    return {"last": grid.tokens[-1].detach().clone(), "continues": cont}


@register("framemerge", next_state=_next_state)
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

    continues = False
    prev = state_tensor(state, "last", (N, D), x.device)
    if prev is not None:
        continues = bool(positional_cos(prev, x[0]).mean() > tau)

    keep = uniform_frames(G, min(G, budget), x.device)  # runs that fit at ≥ 1 token each
    per = budget // keep.numel()
    out_hw = pooled_grid(*grid.hw, per)
    mx = mean.to(x.dtype)
    if continues and G > 1 and int(keep[0]) == 0:
        # the first run continues the previous clip's last run, which that clip already holds: re-send it
        # coarsely (a quarter of a run's share) and let it free nothing else (M < budget)
        c = cat_carriers([pool_frames(mx, grid.hw, keep[:1], pooled_grid(*grid.hw, max(1, per // CONTINUE_SHARE)), "avg"),
                          pool_frames(mx, grid.hw, keep[1:], out_hw, "avg")])
    elif continues and G == 1:
        c = pool_frames(mx, grid.hw, keep, pooled_grid(*grid.hw, max(1, budget // CONTINUE_SHARE)), "avg")
    else:
        c = pool_frames(mx, grid.hw, keep, out_hw, "avg")
    # pool_frames numbered the runs; map back to frame indices with the run's time span
    run = c.pos[:, 0]
    n_frames = (last - first + 1)[run]
    c = Carrier(c.tokens, torch.stack([first[run], c.pos[:, 1], c.pos[:, 2]], -1),
                torch.stack([first[run], c.lo[:, 1], c.lo[:, 2]], -1),
                torch.stack([last[run], c.hi[:, 1], c.hi[:, 2]], -1), c.size * n_frames)
    return c.time_order(), {"last": x[-1].detach().clone(), "continues": continues}
