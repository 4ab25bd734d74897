"""DyCoke, outer stage only (temporal token merging, Tao et al., CVPR'25; KD-TAO/DyCoke).

Windows of 4 frames: frame 0 of a window is the anchor and is kept whole; frames 1 and 2 are compared
position by position with the anchor, frame 3 with frame 2, and each non-anchor frame keeps its
⌊(1−K)·N⌋ least similar tokens (K = 0.7, outer retention 47.5%). The inner-LLM KV pruning is skipped.

Budget: the per-frame paper counts (N per anchor, ⌊(1−K)N⌋ per non-anchor) are scaled proportionally to
fit the budget (anchors then keep their most salient tokens); above the paper retention the non-anchor
frames keep more. M == budget.

Streaming: state carries the last frame. When the clip's first frame continues it (mean positional
cosine > 0.9), that frame is not an anchor: it is compared with the previous clip's last frame, so a static
scene across the boundary is not re-sent whole.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from .base import Carrier, TokenGrid, keep_tokens, register
from .ops import CONTINUE_TAU, allocate, positional_cos, saliency_of, state_tensor, top_per_row

WINDOW, K = 4, 0.7


def _next_state(grid: TokenGrid, state: Any) -> dict:
    x = grid.tokens
    prev = state_tensor(state, "last", (grid.N, grid.D), x.device)
    cont = bool(prev is not None and positional_cos(prev, x[0]).mean() > CONTINUE_TAU)
    return {"last": x[-1].detach().clone(), "continues": cont}


@register("dycoke", next_state=_next_state)
def dycoke(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None,
           k: float = K, window: int = WINDOW) -> tuple[Carrier, Any]:
    """Anchor frame per window of 4 kept whole; other frames keep their least similar tokens (K=0.7)."""
    x = grid.tokens
    T, N, D = x.shape
    dev = x.device
    new_state = _next_state(grid, state)
    cont = new_state["continues"]
    t = torch.arange(T, device=dev)
    p = t % window
    ref = torch.where(p == window - 1, t - 1, t - p)  # frames 1, 2 -> anchor; frame 3 -> frame 2
    anchor = p == 0
    prev_x = x[ref.clamp(min=0)]
    if cont:  # frame 0 continues the previous clip: compare it with the previous clip's last frame
        anchor = anchor & (t != 0)
        prev_x = torch.cat([state["last"].to(dev)[None].to(x.dtype), prev_x[1:]])
    sim = positional_cos(x, prev_x)  # [T, N]
    score = torch.where(anchor[:, None], saliency_of(grid), -sim)
    keep_na = int((1 - k) * N)
    cap = torch.where(anchor, torch.full_like(t, N), torch.full_like(t, keep_na))
    if budget > int(cap.sum()):
        n_anchor = int(anchor.sum())
        cap = torch.where(anchor, cap, torch.full_like(t, N))
        extra = allocate(torch.where(anchor, torch.zeros_like(t), cap), budget - n_anchor * N)
        counts = torch.where(anchor, cap, extra)
    else:
        counts = allocate(cap, budget)
    keep = top_per_row(score, counts)
    return keep_tokens(grid, keep.reshape(-1).nonzero().squeeze(1)), new_state
