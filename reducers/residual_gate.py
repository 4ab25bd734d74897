"""Gated residual tokens (Gated Residual Tokenization, arXiv 2509.14199), feature-space version.

A scene starts at a keyframe (cos(g_t, g_keyframe) < 0.85 on frame keys, or mean tokens) and its keyframe
is tokenised fully. In later frames of the scene a patch is skipped when it is unchanged since the
keyframe, cos(x_{t,n}, x_{key,n}) > θ = 0.9, and merged into the keyframe token at that position (size-
weighted mean, span extended in time). Changed patches are kept alone. If that is still over the budget,
ToMe rounds merge the survivors down to it; a clip that changes little stays under it (M ≤ budget).

Streaming: state carries the scene's keyframe tokens and key. A clip that continues the scene gates
against the carried keyframe; its unchanged patches are already held by an earlier clip and are re-sent
coarsely (2×2 cells of positions merged), which shrinks a clip that only continues a static scene.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from .base import Carrier, TokenGrid, grid_positions, merge_groups, register
from .keyframe import keyframe_flags
from .ops import frame_keys_of, positional_cos, state_tensor
from .tome import _alternating, pack, unpack

SCENE, THETA = 0.85, 0.9


def _scene_refs(grid: TokenGrid, state: Any, scene: float):
    keys = frame_keys_of(grid)
    T, N, D = grid.tokens.shape
    dev = grid.tokens.device
    pkey = state_tensor(state, "key", (keys.shape[1],), dev)
    ptok = state_tensor(state, "keyframe", (N, D), dev)
    if pkey is None or ptok is None:
        pkey = ptok = None
    flags, _ = keyframe_flags(keys, scene, pkey)
    ref, cur = [], -1
    for t, f in enumerate(flags):
        if f:
            cur = t
        ref.append(cur)
    last = ref[-1]
    nxt = {"keyframe": (grid.tokens[last] if last >= 0 else ptok).detach().clone(),
           "key": (keys[last] if last >= 0 else pkey).detach().clone(),
           "continues": bool(pkey is not None and not flags[0])}
    return flags, ref, ptok, nxt


@register("residual_gate", next_state=lambda g, s: _scene_refs(g, s, SCENE)[3])
def residual_gate(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None,
                  theta: float = THETA, scene: float = SCENE) -> tuple[Carrier, Any]:
    """Keyframe of each scene kept whole; later patches skipped (merged into it) when cos > θ to it."""
    x = grid.tokens
    T, N, D = x.shape
    dev = x.device
    h, w = grid.hw
    flags, ref, ptok, nxt = _scene_refs(grid, state, scene)
    ref_t = torch.tensor(ref, device=dev)
    key_frame = torch.tensor(flags, device=dev)
    reft = x[ref_t.clamp(min=0)]
    if ptok is not None:
        reft = torch.where((ref_t < 0)[:, None, None], ptok.to(x.dtype)[None], reft)
    static = (positional_cos(x, reft) > theta) & ~key_frame[:, None]  # [T, N]
    n = torch.arange(N, device=dev)
    own = torch.arange(T, device=dev)[:, None] * N + n[None, :]
    into_key = ref_t.clamp(min=0)[:, None] * N + n[None, :]
    cw = (w + 1) // 2
    cell = T * N + (n // w // 2) * cw + (n % w) // 2  # coarse 2×2 cells for the continued scene
    gid = torch.where(static, torch.where((ref_t < 0)[:, None], cell[None, :].expand(T, N), into_key), own)
    n_groups = T * N + ((h + 1) // 2) * cw
    pos = grid_positions(T, h, w, device=dev).reshape(-1, 3)
    ones = torch.ones(T * N, dtype=torch.long, device=dev)
    c = merge_groups(x.reshape(-1, D), pos, ones, gid.reshape(-1), n_groups)
    if c.M > budget:  # host sync: still too many, merge the survivors by ToMe rounds
        c = c.time_order()
        st = {k: v[None] for k, v in pack(c.tokens.float() * c.size[:, None].float(), c.size, c.pos, c.lo, c.hi).items()}
        c = unpack(_alternating(st, budget), x.dtype)
    return c.time_order(), nxt
