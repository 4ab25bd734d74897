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

_FIELDS = ("xs", "size", "pos", "lo", "hi")


def bipartite_round(a: dict[str, Tensor], b: dict[str, Tensor], r: int) -> dict[str, Tensor]:
    """Merge the r best-matched tokens of A into B.

    a, b: fields of [B, na, ...] and [B, nb, ...]: "xs" size-weighted feature sums [.., D] float32,
    "size" [..] long, "pos"/"lo"/"hi" [.., 3] long. -> the same fields with [B, na - r + nb, ...]
    (unmerged A first, then B). B's tokens keep their positions as representatives.
    """
    Bn, na = a["size"].shape
    r = max(0, min(r, na))
    scores = torch.bmm(normed(a["xs"]), normed(b["xs"]).transpose(1, 2))  # [B, na, nb]
    node_max, node_idx = scores.max(-1)
    edge = torch.argsort(node_max, dim=-1, descending=True, stable=True)
    unm, src = edge[:, r:], edge[:, :r]
    dst = node_idx.gather(1, src)
    out = {}
    for f, how in (("xs", "sum"), ("size", "sum"), ("lo", "amin"), ("hi", "amax"), ("pos", None)):
        fa, fb = a[f], b[f]
        extra = fa.shape[2:]
        def ix(i: Tensor) -> Tensor:
            return i.view(*i.shape, *([1] * len(extra))).expand(*i.shape, *extra)
        keep = fa.gather(1, ix(unm))
        if how is not None:
            fb = fb.scatter_reduce(1, ix(dst), fa.gather(1, ix(src)), how)
        out[f] = torch.cat([keep, fb], 1)
    return out


def _alternating(st: dict[str, Tensor], target: int) -> dict[str, Tensor]:
    """Classic ToMe rounds over [B, L, ...] (A = even, B = odd indices) until L ≤ target."""
    while st["size"].shape[1] > target:
        L = st["size"].shape[1]
        r = min(L // 2, L - target)
        st = bipartite_round({f: v[:, ::2] for f, v in st.items()}, {f: v[:, 1::2] for f, v in st.items()}, r)
    return st


def tome_video(x: Tensor, hw: tuple[int, int], budget: int) -> Carrier:
    """x: [T, N, D] -> Carrier of ≤ budget merged tokens (exactly min(budget, T·N))."""
    T, N, D = x.shape
    pos = grid_positions(T, *hw, device=x.device)
    st = {"xs": x.float(), "size": torch.ones(T, N, dtype=torch.long, device=x.device),
          "pos": pos, "lo": pos, "hi": pos}
    levels = math.ceil(math.log2(T)) if T > 1 else 0
    q = (budget / (T * N)) ** (1.0 / levels) if levels else 1.0
    leftovers: list[dict[str, Tensor]] = []
    while st["size"].shape[0] > 1:
        S, n = st["size"].shape
        if S % 2:  # an odd segment out waits for the final rounds
            leftovers.append({f: v[-1:].reshape(1, -1, *v.shape[2:]) for f, v in st.items()})
            st = {f: v[:-1] for f, v in st.items()}
            S -= 1
        total = S * n + sum(lv["size"].shape[1] for lv in leftovers)
        want = max(budget, math.ceil(total * q))
        r = min(n, max(0, total - want) // (S // 2))  # floor: never below the budget
        st = bipartite_round({f: v[0::2] for f, v in st.items()}, {f: v[1::2] for f, v in st.items()}, r)
    flat = {f: torch.cat([v.reshape(1, -1, *v.shape[2:])] + [lv[f] for lv in leftovers], 1) for f, v in st.items()}
    flat = _alternating(flat, budget)
    size = flat["size"][0]
    tok = (flat["xs"][0] / size[:, None].float()).to(x.dtype)
    # tokens never merged are returned bit-exact
    c = Carrier(tok, flat["pos"][0], flat["lo"][0], flat["hi"][0], size)
    return c.time_order()


@register("tome")
def tome(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None) -> tuple[Carrier, Any]:
    """ToMe bipartite soft matching over time (adjacent-frame hierarchy) then space, until M == budget."""
    return tome_video(grid.tokens, grid.hw, budget), state
