"""Gated residual tokens (Gated Residual Tokenization, arXiv 2509.14199), feature-space version.

A scene starts at a keyframe (cos(g_t, g_keyframe) < 0.85 on frame keys, or mean tokens) and its keyframe
is tokenised fully. In later frames of the scene a patch is skipped when it is unchanged since the
keyframe, cos(x_{t,n}, x_{key,n}) > θ = 0.9, and merged into the keyframe token at that position (size-
weighted mean, span extended in time). Changed patches are kept alone. If that is still over the budget,
ToMe rounds merge the survivors down to it; a clip that changes little stays under it (M ≤ budget).

Streaming: state carries the scene's keyframe tokens and key. A clip that continues the scene gates
against the carried keyframe; its unchanged patches are already held by an earlier clip and are re-sent
coarsely (2×2 cells of positions merged), which shrinks a clip that only continues a static scene.

Speed: group sums, sizes, spans and representatives are two scatters into one packed tensor (`base.grid_pack`
layout); the survivors are found with the one data-dependent host sync, then merged by packed ToMe rounds.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from .base import P_FLAT, P_POS, P_SIZE, PACK, Carrier, TokenGrid, _const, carrier_from_packed, grid_pack, register
from .keyframe import keyframe_flags
from .ops import GraphCache, frame_keys_of, ints_to, normed, state_tensor
from .tome import alternating, pack

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


def _cells(h: int, w: int, device) -> Tensor:
    """[N] long: the coarse 2×2 cell of every position."""
    def make():
        n = torch.arange(h * w, device=device)
        return (n // w // 2) * ((w + 1) // 2) + (n % w) // 2
    return _const(("cells", h, w, torch.device(device)), make)


def _groups_device(x: Tensor, ptok: Tensor, ridx: Tensor, gate: Tensor, tbase: Tensor, hw: tuple[int, int],
                   theta: float, cont: bool) -> tuple[Tensor]:
    """Per group (own token, keyframe token, or coarse cell of a continued scene): packed feature sums, size,
    span and first member. Shapes depend on (T, N, D) only: on CUDA this replays as one CUDA graph."""
    T, N, D = x.shape
    dev = x.device
    h, w = hw
    xn = normed(x)
    kn = torch.cat([xn, normed(ptok)[None]]) if cont else xn
    static = ((xn * kn[ridx]).sum(-1) > theta) & gate.bool()[:, None]  # [T, N]
    # group of a skipped patch: its keyframe token, or (continued scene) its coarse cell after the T·N own ids
    n = torch.arange(N, device=dev)
    into = tbase[:, None] + (torch.where((tbase >= T * N)[:, None], _cells(h, w, dev)[None], n[None]) if cont else n[None])
    gid = torch.where(static, into, torch.arange(T * N, device=dev).view(T, N)).reshape(-1)
    G = T * N + ((h + 1) // 2) * ((w + 1) // 2)
    Pin = pack(x, T, hw).reshape(T * N, D + PACK)
    Q = torch.empty(G, D + PACK, device=dev)
    Q[:, :D + 1] = 0
    Q[:, D + 1:] = float("inf")
    Q[:, :D + 1].index_add_(0, gid, Pin[:, :D + 1])  # feature sums, sizes
    Q[:, D + 1:].scatter_reduce_(0, gid[:, None].expand(-1, PACK - 1), Pin[:, D + 1:], "amin")  # spans, first member
    return (Q,)


_GROUPS = GraphCache(_groups_device, size=8)


@register("residual_gate", next_state=lambda g, s: _scene_refs(g, s, SCENE)[3])
def residual_gate(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None,
                  theta: float = THETA, scene: float = SCENE) -> tuple[Carrier, Any]:
    """Keyframe of each scene kept whole; later patches skipped (merged into it) when cos > θ to it."""
    x = grid.tokens
    T, N, D = x.shape
    dev = x.device
    h, w = grid.hw
    flags, ref, ptok, nxt = _scene_refs(grid, state, scene)
    cont = ptok is not None and ref[0] < 0  # the clip starts inside the carried scene
    ridx, gate, tbase = ints_to(dev, [r if r >= 0 else T for r in ref], [int(not f) for f in flags],
                                [r * N if r >= 0 else T * N for r in ref])
    pt = ptok.to(x.dtype) if cont else x[0]
    Q, = _GROUPS(x, pt, ridx, gate, tbase, hw=(h, w), theta=float(theta), cont=bool(cont))
    keep = (Q[:, D + P_SIZE] > 0).nonzero().squeeze(1)  # the one data-dependent host sync
    P = Q[keep]
    # the representative is the first member (lowest flat index): take its position from the grid
    P[:, D + P_POS:D + P_POS + 3] = grid_pack(T, h, w, dev).reshape(T * N, PACK)[
        P[:, D + P_FLAT].long(), P_POS:P_POS + 3]
    if cont:  # coarse cells were numbered after the own groups: restore (t, y, x) order
        P = P[torch.argsort(P[:, D + P_FLAT])]
    if P.shape[0] > budget:  # still too many: merge the survivors by ToMe rounds
        P = alternating(P[None], D, budget, bf16=x.dtype == torch.bfloat16)[0]
    return carrier_from_packed(P, D, x.dtype), nxt
