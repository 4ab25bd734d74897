"""ToMe: bipartite soft matching, size-weighted, iterated until the budget is met (Bolya et al., ICLR'23).

Video version (TempMe/AIM-style hierarchy): adjacent frames are paired and the left frame's tokens (set A)
merge into their best match among the right frame's tokens (set B); the pairs are paired again, and so on.
Each level keeps the same fraction q = (budget / T·N)^(1/levels) of the tokens, so merging is spread over
time scales. Whatever remains above the budget is merged by the classic alternating A/B rounds.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import Tensor

from .base import Carrier, TokenGrid, grid_positions, register
from .ops import normed

def pack(xs: Tensor, size: Tensor, pos: Tensor, lo: Tensor, hi: Tensor) -> dict[str, Tensor]:
    """Token state for the rounds, packed so each round costs few kernels:
    "f" [.., D+1] float32 = (size-weighted feature sum, size); "b" [.., 6] long = (lo, −hi); "pos" [.., 3]."""
    return {"f": torch.cat([xs.float(), size.float()[..., None]], -1), "b": torch.cat([lo, -hi], -1), "pos": pos}


def unpack(st: dict[str, Tensor], dtype: torch.dtype) -> Carrier:
    """Packed state of one batch row [1, L, ...] -> Carrier (mean features)."""
    f, b = st["f"][0], st["b"][0]
    size = f[:, -1]
    tok = (f[:, :-1] / size[:, None]).to(dtype)  # a token never merged has size 1: bit-exact
    return Carrier(tok, st["pos"][0], b[:, :3], -b[:, 3:], size.round().long())


def bipartite_round(a: dict[str, Tensor], b: dict[str, Tensor], r: int) -> dict[str, Tensor]:
    """Merge the r best-matched tokens of A into B.

    a, b: packed states (see `pack`) of [B, na, ...] and [B, nb, ...] -> [B, na - r + nb, ...] (unmerged A
    first, then B). Features and sizes add up, spans widen, B's tokens keep their positions.
    """
    Bn, na = a["pos"].shape[:2]
    r = max(0, min(r, na))
    fa = a["f"][..., :-1]
    scores = torch.bmm(normed(fa), normed(b["f"][..., :-1]).transpose(1, 2))  # [B, na, nb]
    node_max, node_idx = scores.max(-1)
    edge = torch.argsort(node_max, dim=-1, descending=True, stable=True)  # src first, then unmerged
    dst = node_idx.gather(1, edge[:, :r])
    out = {}
    for f, how in (("f", "sum"), ("b", "amin"), ("pos", None)):
        va, vb = a[f], b[f]
        C = va.shape[-1]
        g = va.gather(1, edge[..., None].expand(Bn, na, C))
        if how is not None and r > 0:
            vb = vb.scatter_reduce(1, dst[..., None].expand(Bn, r, C), g[:, :r], how)
        out[f] = torch.cat([g[:, r:], vb], 1)
    return out


def _alternating(st: dict[str, Tensor], target: int) -> dict[str, Tensor]:
    """Classic ToMe rounds over [B, L, ...] (A = even, B = odd indices) until L ≤ target."""
    while st["pos"].shape[1] > target:
        L = st["pos"].shape[1]
        r = min(L // 2, L - target)
        st = bipartite_round({f: v[:, ::2] for f, v in st.items()}, {f: v[:, 1::2] for f, v in st.items()}, r)
    return st


def tome_video(x: Tensor, hw: tuple[int, int], budget: int) -> Carrier:
    """x: [T, N, D] -> Carrier of ≤ budget merged tokens (exactly min(budget, T·N))."""
    T, N, D = x.shape
    pos = grid_positions(T, *hw, device=x.device)
    st = pack(x, torch.ones(T, N, dtype=torch.long, device=x.device), pos, pos, pos)
    levels = math.ceil(math.log2(T)) if T > 1 else 0
    q = (budget / (T * N)) ** (1.0 / levels) if levels else 1.0
    leftovers: list[dict[str, Tensor]] = []
    while st["pos"].shape[0] > 1:
        S, n = st["pos"].shape[:2]
        if S % 2:  # an odd segment out waits for the final rounds
            leftovers.append({f: v[-1:] for f, v in st.items()})
            st = {f: v[:-1] for f, v in st.items()}
            S -= 1
        total = S * n + sum(lv["pos"].shape[1] for lv in leftovers)
        want = max(budget, math.ceil(total * q))
        r = min(n, max(0, total - want) // (S // 2))  # floor: never below the budget
        st = bipartite_round({f: v[0::2] for f, v in st.items()}, {f: v[1::2] for f, v in st.items()}, r)
    flat = {f: torch.cat([v.reshape(1, -1, v.shape[-1])] + [lv[f] for lv in leftovers], 1) for f, v in st.items()}
    flat = _alternating(flat, budget)
    return unpack(flat, x.dtype).time_order()


@register("tome")
def tome(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None) -> tuple[Carrier, Any]:
    """ToMe bipartite soft matching over time (adjacent-frame hierarchy) then space, until M == budget."""
    return tome_video(grid.tokens, grid.hw, budget), state
