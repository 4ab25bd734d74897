"""KFFocus-style keyframe budgeting (arXiv 2508.08989; no official code).

Frame t is a keyframe when cos(g_t, g_last_keyframe) < θ (g = frame keys, or mean tokens). Keyframes get
4× the tokens of other frames (2×2 vs 4×4 pooling in the paper), scaled to the budget; each frame is pooled
to the largest grid that fits its share (so M ≤ budget, usually a little under). θ = 0.9 is our choice.

Streaming: state carries the last keyframe's key, so a clip that continues the previous scene starts with
an ordinary (low-resolution) frame instead of a new keyframe.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from .base import Carrier, TokenGrid, cat_carriers, register
from .ops import frame_keys_of, normed, state_tensor
from .pool2d import pool_frames, pooled_grid, uniform_frames

THETA, RATIO = 0.9, 4


def keyframe_flags(keys: Tensor, theta: float, prev_key: Optional[Tensor] = None) -> tuple[list[bool], int]:
    """keys: [T, K] -> (is keyframe per frame, index of the last keyframe, -1 = prev_key)."""
    kk = keys.float().cpu()  # T keys: a tiny problem, solved on the host (one small copy, the host sync)
    if prev_key is not None:
        kk = torch.cat([prev_key.float().cpu()[None], kk])
    kn = normed(kk)
    sim = (kn @ kn.T).tolist()
    off = int(prev_key is not None)
    last = 0 if off else None
    flags = []
    for t in range(keys.shape[0]):
        i = t + off
        new = last is None or sim[i][last] < theta
        if new:
            last = i
        flags.append(new)
    return flags, (last - off if last is not None else -1)


def _last_key(grid: TokenGrid, state: Any, theta: float = THETA) -> dict:
    keys = frame_keys_of(grid)
    prev = state_tensor(state, "key", (keys.shape[1],), keys.device)
    flags, last = keyframe_flags(keys, theta, prev)
    key = keys[last] if last >= 0 else prev
    return {"key": key.detach().clone(), "continues": bool(prev is not None and not flags[0]), "flags": flags}


@register("keyframe", next_state=lambda g, s: {k: v for k, v in _last_key(g, s).items() if k != "flags"})
def keyframe(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None,
             theta: float = THETA, ratio: int = RATIO) -> tuple[Carrier, Any]:
    """Keyframes (novel vs the last keyframe) get `ratio`× the tokens of other frames."""
    x = grid.tokens
    T, N, _ = x.shape
    dev = x.device
    st = _last_key(grid, state, theta)
    flags = st.pop("flags")
    kf = [t for t in range(T) if flags[t]]
    nk = [t for t in range(T) if not flags[t]]
    den = ratio * len(kf) + len(nk)
    q_kf, q_nk = budget * ratio // den, budget // den
    if q_kf == 0 or (q_nk == 0 and nk):  # too small for every frame: keyframes (or, failing that, some frames) only
        pool = kf if kf else nk
        frames = [pool[i] for i in uniform_frames(len(pool), min(len(pool), budget)).tolist()]
        q = budget // len(frames)
        plan = [(frames, q)]
    else:
        plan = [(kf, q_kf), (nk, q_nk)]
    parts = [pool_frames(x, grid.hw, torch.tensor(fr, device=dev), pooled_grid(*grid.hw, q), "avg")
             for fr, q in plan if fr and q > 0]
    return cat_carriers(parts).time_order(), st
