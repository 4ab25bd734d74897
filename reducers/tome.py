"""ToMe: bipartite soft matching, size-weighted, iterated until the budget is met (Bolya et al., ICLR'23).

Video version (TempMe/AIM-style hierarchy): adjacent frames are paired and the left frame's tokens (set A)
merge into their best match among the right frame's tokens (set B); the pairs are paired again, and so on.
Each level keeps the same fraction q = (budget / T·N)^(1/levels) of the tokens, so merging is spread over
time scales. Whatever remains above the budget is merged by the classic alternating A/B rounds.

Speed: the token state is one packed float32 tensor (`base.grid_pack` layout: size-weighted feature sums,
size, span, position), so a round is a dozen kernels (one normalisation, one bmm, one max, one sort, two
gathers, two scatters, one cat) and never syncs with the host: round sizes are host integers. A bf16 clip
is matched on bf16-rounded normalised features (ToMe runs in the model's dtype), whose products are exact on
TF32 tensor cores.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import P_LO, Carrier, TokenGrid, carrier_from_meta, grid_pack, packed_to_meta, register
from .ops import GraphCache, exact_tf32


def pack(x: Tensor, T: int, hw: tuple[int, int]) -> Tensor:
    """Tokens [T, N, D] of an untouched grid -> packed state [T, N, D + PACK] (float32)."""
    return torch.cat([x.float(), grid_pack(T, *hw, x.device)], -1)


def bipartite_round(P: Tensor, D: int, r: int, a_sl: slice, b_sl: slice, pair_dim: int = 1, bf16: bool = False
                    ) -> Tensor:
    """Merge the r best-matched tokens of A into B.

    P: packed state [B, L, D + PACK] (pair_dim = 1: A and B are token slices a_sl/b_sl of each row) or
    [S, n, D + PACK] (pair_dim = 0: A and B are row slices, e.g. even and odd segments).
    Returns [B', na − r + nb, D + PACK]: unmerged A first (by descending match score), then B. Feature sums
    and sizes add up, spans widen, B's tokens keep their positions.
    """
    xn = F.normalize(P[..., :D], dim=-1)  # one normalisation of the whole state per round
    if bf16:  # a bf16 clip is matched in bf16 precision, as ToMe runs in the model's dtype (exact on TF32)
        xn = xn.bfloat16().float()
    if pair_dim == 1:
        A, B, an, bn = P[:, a_sl], P[:, b_sl], xn[:, a_sl], xn[:, b_sl]
    else:
        A, B, an, bn = P[a_sl], P[b_sl], xn[a_sl], xn[b_sl]
    Bn, na, C = A.shape
    r = max(0, min(r, na))
    with exact_tf32(bf16 and P.is_cuda):
        node_max, node_idx = torch.bmm(an, bn.transpose(1, 2)).max(-1)  # [B, na]
    edge = torch.argsort(node_max, dim=-1, descending=True, stable=True)  # src first, then unmerged
    g = A.gather(1, edge[..., None].expand(Bn, na, C))
    if r > 0:  # in place: B is a slice of this round's input, which nothing reads afterwards
        dst = node_idx.gather(1, edge[:, :r])[..., None]
        B[..., :D + 1].scatter_reduce_(1, dst.expand(Bn, r, D + 1), g[:, :r, :D + 1], "sum")  # sums, size
        B[..., D + P_LO:D + P_LO + 6].scatter_reduce_(1, dst.expand(Bn, r, 6), g[:, :r, D + P_LO:D + P_LO + 6],
                                                      "amin")  # (lo, −hi)
    return torch.cat([g[:, r:], B], 1)


def alternating(P: Tensor, D: int, target: int, bf16: bool = False) -> Tensor:
    """Classic ToMe rounds over packed [B, L, ...] (A = even, B = odd indices) until L ≤ target."""
    while P.shape[1] > target:
        L = P.shape[1]
        r = min(L // 2, L - target)
        P = bipartite_round(P, D, r, slice(0, None, 2), slice(1, None, 2), bf16=bf16)
    return P


def tome_video(x: Tensor, hw: tuple[int, int], budget: int) -> Carrier:
    """x: [T, N, D] -> Carrier of ≤ budget merged tokens (exactly min(budget, T·N)).

    Every round size follows from (T, N, budget): on CUDA the whole reduction replays as one CUDA graph."""
    return carrier_from_meta(*_TOME(x, hw=tuple(hw), budget=int(budget)))


def _tome_device(x: Tensor, hw: tuple[int, int], budget: int) -> tuple[Tensor, Tensor]:
    T, N, D = x.shape
    bf16 = x.dtype == torch.bfloat16
    st = pack(x, T, hw)
    levels = math.ceil(math.log2(T)) if T > 1 else 0
    q = (budget / (T * N)) ** (1.0 / levels) if levels else 1.0
    leftovers: list[Tensor] = []
    while st.shape[0] > 1:
        S, n = st.shape[:2]
        if S % 2:  # an odd segment out waits for the final rounds
            leftovers.append(st[-1:])
            st = st[:-1]
            S -= 1
        total = S * n + sum(lv.shape[1] for lv in leftovers)
        want = max(budget, math.ceil(total * q))
        r = min(n, max(0, total - want) // (S // 2))  # floor: never below the budget
        st = bipartite_round(st, D, r, slice(0, None, 2), slice(1, None, 2), pair_dim=0, bf16=bf16)
    flat = torch.cat([st.reshape(1, -1, st.shape[-1])] + leftovers, 1) if leftovers else st.reshape(1, -1, st.shape[-1])
    flat = alternating(flat, D, budget, bf16=bf16)
    return packed_to_meta(flat[0], D, x.dtype)


_TOME = GraphCache(_tome_device)


@register("tome")
def tome(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None) -> tuple[Carrier, Any]:
    """ToMe bipartite soft matching over time (adjacent-frame hierarchy) then space, until M == budget."""
    return tome_video(grid.tokens, grid.hw, budget), state
