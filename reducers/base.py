"""The reducer contract: TokenGrid in, Carrier out, plus a registry by name.

Pure torch, no I/O. Every reducer is a function

    reduce(grid, budget, state=None, query=None) -> (Carrier, state)

that works on any device, is deterministic and vectorized (no Python loops over tokens).
"""
from __future__ import annotations

import math
import numbers

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import Tensor


class ReducerInputError(ValueError):
    """Bad input to a reducer: the message is meant for the user, one line."""


@dataclass
class TokenGrid:
    """One clip's visual tokens.

    tokens:     [T, N, D] on an h×w grid, N = h·w
    saliency:   [T, N] optional ([CLS] attention or attention received)
    frame_keys: [T, K] optional, in a retrieval space
    times:      [T] optional media seconds of each frame
    space:      which model's embedding space the tokens live in
    logits:     [T, C] optional classifier logits of each frame, returned with the grid (never kept on a shared
                encoder, where another stream's call would overwrite them)
    """

    tokens: Tensor
    hw: tuple[int, int]
    saliency: Optional[Tensor] = None
    frame_keys: Optional[Tensor] = None
    times: Optional[Tensor] = None
    space: str = ""
    logits: Optional[Tensor] = None

    @property
    def T(self) -> int:
        return self.tokens.shape[0]

    @property
    def N(self) -> int:
        return self.tokens.shape[1]

    @property
    def D(self) -> int:
        return self.tokens.shape[2]


@dataclass
class Carrier:
    """A clip reduced to M ≤ budget tokens.

    tokens: [M, D]
    pos:    [M, 3] long, (t, y, x) of the representative token (t = frame index in the clip)
    lo, hi: [M, 3] long, inclusive bounds of everything the token stands for (= pos when kept alone)
    size:   [M]    long, how many original tokens it stands for
    """

    tokens: Tensor
    pos: Tensor
    lo: Tensor
    hi: Tensor
    size: Tensor

    @property
    def M(self) -> int:
        return self.tokens.shape[0]

    def to(self, device: torch.device | str) -> "Carrier":
        return Carrier(*(x.to(device) for x in (self.tokens, self.pos, self.lo, self.hi, self.size)))

    def time_order(self) -> "Carrier":
        """Sort tokens by (t, y, x): the order an LLM should see them in."""
        key = (self.pos[:, 0] * 1_000_000 + self.pos[:, 1] * 1_000 + self.pos[:, 2])
        idx = torch.argsort(key, stable=True)
        meta = torch.cat([self.size[:, None], self.pos, self.lo, self.hi], 1)[idx]  # one gather, not four
        return carrier_from_meta(self.tokens[idx], meta)


def carrier_from_meta(tokens: Tensor, meta: Tensor) -> Carrier:
    """Carrier whose pos/lo/hi/size are views of one [M, 10] long tensor (size, pos, lo, hi)."""
    return Carrier(tokens, meta[:, 1:4], meta[:, 4:7], meta[:, 7:10], meta[:, 0])


# Constant index tensors per (T, h, w, device), built once: the reducers run on a fixed grid per stream, and
# rebuilding them costs several kernel launches per clip. Never evicted: captured CUDA graphs read them.
_CONST: dict = {}


def _const(key: tuple, make: Callable[[], Tensor]) -> Tensor:
    v = _CONST.get(key)
    if v is None:
        v = _CONST[key] = make()
    return v


def grid_meta(T: int, h: int, w: int, device) -> Tensor:
    """[T·h·w, 10] long (size = 1, pos, lo = pos, hi = pos) of every token of the grid, cached."""
    dev = torch.device(device)

    def make():
        p = grid_positions(T, h, w, device=dev).reshape(-1, 3)
        return torch.cat([torch.ones_like(p[:, :1]), p, p, p], 1)
    return _const(("meta", T, h, w, dev), make)


# The packed float32 working layout of the merging reducers: [..., D] features, then PACK = 11 columns
# size | lo (3) | −hi (3) | pos (3) | flat index t·N + y·w + x of pos. Integers up to 2^24 are exact in float32.
PACK = 11
P_SIZE, P_LO, P_NHI, P_POS, P_FLAT = 0, 1, 4, 7, 10


def grid_pack(T: int, h: int, w: int, device) -> Tensor:
    """[T, h·w, PACK] float32 packed metadata of the untouched grid, cached."""
    dev = torch.device(device)

    def make():
        N = h * w
        p = grid_positions(T, h, w, device=dev).reshape(T, N, 3).float()
        flat = torch.arange(T * N, device=dev, dtype=torch.float32).view(T, N, 1)
        return torch.cat([torch.ones_like(flat), p, -p, p, flat], -1)
    return _const(("pack", T, h, w, dev), make)


def carrier_from_packed(P: Tensor, D: int, dtype: torch.dtype, sums: bool = True, order: bool = True) -> Carrier:
    """Packed rows [M, D + PACK] -> Carrier, sorted by the flat index of pos (= (t, y, x) order) when `order`.

    sums: the feature columns hold size-weighted sums (divided by size here); else the features themselves.
    """
    return carrier_from_meta(*packed_to_meta(P, D, dtype, sums, order))


def packed_to_meta(P: Tensor, D: int, dtype: torch.dtype, sums: bool = True, order: bool = True) -> tuple[Tensor, Tensor]:
    """Packed rows [M, D + PACK] -> (tokens [M, D] in dtype, meta [M, 10] long (size, pos, lo, hi))."""
    if order:
        P = P[torch.argsort(P[:, D + P_FLAT])]  # flat indices of representatives are distinct
    m = P[:, D:D + P_FLAT].long()
    tok = P[:, :D] / P[:, D:D + 1] if sums else P[:, :D]
    meta = torch.cat([m[:, P_SIZE:P_SIZE + 1], m[:, P_POS:P_POS + 3], m[:, P_LO:P_LO + 3], -m[:, P_NHI:P_NHI + 3]], 1)
    return tok.to(dtype), meta


def grid_positions(T: int, h: int, w: int, device: torch.device | str = "cpu") -> Tensor:
    """(t, y, x) of every token of a [T, h·w] grid -> [T, N, 3] long."""
    t = torch.arange(T, device=device).view(T, 1, 1).expand(T, h, w)
    y = torch.arange(h, device=device).view(1, h, 1).expand(T, h, w)
    x = torch.arange(w, device=device).view(1, 1, w).expand(T, h, w)
    return torch.stack([t, y, x], dim=-1).reshape(T, h * w, 3)


def keep_tokens(grid: TokenGrid, flat_idx: Tensor) -> Carrier:
    """Carrier of the tokens at flat indices into [T·N], kept alone (size 1), in index order."""
    flat_idx = torch.sort(flat_idx).values
    tok = grid.tokens.reshape(-1, grid.D)[flat_idx]
    return carrier_from_meta(tok, grid_meta(grid.T, *grid.hw, grid.tokens.device)[flat_idx])


def merge_groups(tokens: Tensor, pos: Tensor, size: Tensor, group: Tensor, n_groups: int,
                 rep: Optional[Tensor] = None, lo: Optional[Tensor] = None, hi: Optional[Tensor] = None,
                 rep_weight: Optional[Tensor] = None, mode: str = "mean") -> Carrier:
    """Merge tokens by group id with a size-weighted mean.

    tokens: [L, D], pos: [L, 3] long, size: [L] long, group: [L] long in [-1, n_groups) (-1 = dropped)
    rep:    [n_groups] index into L of each group's representative (default: its first member)
    lo, hi: [L, 3] spans of the inputs when they already stand for several originals (default: pos)
    rep_weight: [n_groups] float w; the output is w·x_rep + (1-w)·mean(members) (HoliTom's β, FastVID's w)
    mode:   "mean" (mean over all members, rep included) or "add" (VisionZip: x_rep + mean(other members))
    Groups of one member return that token unchanged (bit-exact). Empty groups are dropped.
    """
    L, D = tokens.shape
    dev = tokens.device
    group = torch.where(group < 0, torch.full_like(group, n_groups), group)
    G = n_groups + 1  # one spare group collects dropped tokens
    lo = pos if lo is None else lo
    hi = pos if hi is None else hi
    xf = tokens.float()
    acc = torch.zeros(G, D, device=dev, dtype=torch.float32).index_add_(0, group, xf * size.float()[:, None])
    cs = torch.zeros(G, 2, device=dev, dtype=torch.long).index_add_(
        0, group, torch.stack([size, torch.ones_like(size)], 1))  # (size sum, member count)
    big = torch.iinfo(torch.long).max
    lh = torch.full((G, 6), big, device=dev, dtype=torch.long).scatter_reduce(
        0, group[:, None].expand(L, 6), torch.cat([lo, -hi], 1), "amin")  # (min lo, -max hi)
    if rep is None:
        rep = torch.full((G,), L, device=dev, dtype=torch.long).scatter_reduce(
            0, group, torch.arange(L, device=dev), "amin")[:n_groups]
    keep = (cs[:n_groups, 0] > 0).nonzero().squeeze(1)  # the one host sync
    acc, cs, lh, rep = acc[keep], cs[keep], lh[keep], rep.clamp(0, L - 1)[keep]
    gsize, count = cs[:, 0], cs[:, 1]
    xr = xf[rep]
    if mode == "add":
        # rep + mean of the other members (VisionZip's contextual tokens)
        others = (acc - xr * size[rep].float()[:, None]) / (gsize - size[rep]).clamp(min=1)[:, None].float()
        out = xr + others
    elif mode == "mean":
        out = acc / gsize[:, None].to(torch.float32)
        if rep_weight is not None:
            rw = rep_weight.float()[keep][:, None]
            out = rw * xr + (1 - rw) * out
    else:
        raise ValueError(f"unknown merge mode {mode!r}")
    out = torch.where((count == 1)[:, None], xr, out)  # groups of one: the token itself, bit-exact
    return Carrier(out.to(tokens.dtype), pos[rep], lh[:, :3], -lh[:, 3:], gsize)


def cat_carriers(parts: list[Carrier]) -> Carrier:
    """Concatenate carriers (in the given order)."""
    return Carrier(*(torch.cat([getattr(p, f) for p in parts]) for f in ("tokens", "pos", "lo", "hi", "size")))


def validate(grid: TokenGrid, budget: int, query: Optional[Tensor] = None) -> None:
    """Raise ReducerInputError for input no reducer can work with."""
    x = grid.tokens
    if not isinstance(x, Tensor):
        raise ReducerInputError(f"tokens must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3:
        raise ReducerInputError(f"tokens must be [T, N, D], got shape {tuple(x.shape)}")
    T, N, D = x.shape
    if T == 0 or N == 0 or D == 0:
        raise ReducerInputError(f"empty clip: tokens have shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ReducerInputError(f"tokens must be floating point, got {x.dtype}")
    h, w = grid.hw
    if h * w != N:
        raise ReducerInputError(f"grid {h}x{w} does not match N={N} tokens per frame")
    if not isinstance(budget, numbers.Integral) or isinstance(budget, bool) or budget <= 0:
        raise ReducerInputError(f"budget must be a positive integer, got {budget!r}")
    if grid.saliency is not None and tuple(grid.saliency.shape) != (T, N):
        raise ReducerInputError(
            f"saliency shape {tuple(grid.saliency.shape)} does not match tokens [T, N] = [{T}, {N}]")
    if grid.frame_keys is not None and (grid.frame_keys.dim() != 2 or grid.frame_keys.shape[0] != T):
        raise ReducerInputError(
            f"frame_keys must be [T, K] with T={T}, got shape {tuple(grid.frame_keys.shape)}")
    if query is not None and (not isinstance(query, Tensor) or query.dim() not in (1, 2)
                              or (query.dim() == 2 and query.shape[0] != 1)):
        raise ReducerInputError(f"query must be a [K] or [1, K] tensor, got {getattr(query, 'shape', type(query))}")
    # finiteness: one host sync for everything, the culprit is named only on failure
    named = [("tokens contain", x), ("saliency contains", grid.saliency), ("frame_keys contain", grid.frame_keys),
             ("query contains", query)]
    named = [(n, t) for n, t in named if t is not None]
    # max |v| is NaN or inf exactly when a value is: one reduction kernel per tensor
    amax = torch.stack([torch.linalg.vector_norm(t, float("inf")).to(x.device) for _, t in named]).tolist()
    if not all(math.isfinite(v) for v in amax):
        bad = [n for (n, _), v in zip(named, amax) if not math.isfinite(v)][0]
        raise ReducerInputError(f"{bad} NaN or inf")


ReduceFn = Callable[..., tuple[Carrier, Any]]
REDUCERS: dict[str, ReduceFn] = {}


def register(name: str, next_state: Optional[Callable[[TokenGrid, Any], Any]] = None
             ) -> Callable[[ReduceFn], ReduceFn]:
    """Register a reducer under a name; the wrapper validates input and handles budget ≥ T·N.

    next_state(grid, state) -> state: for temporal reducers, the state after a clip that was kept whole
    (budget ≥ T·N), so a stream stays continuous whatever the budget.
    """

    def deco(fn: ReduceFn) -> ReduceFn:
        def wrapped(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None, **kw):
            validate(grid, budget, query)
            budget = int(budget)
            if budget >= grid.T * grid.N:
                idx = torch.arange(grid.T * grid.N, device=grid.tokens.device)
                return keep_tokens(grid, idx), (next_state(grid, state) if next_state is not None else state)
            carrier, state = fn(grid, budget, state=state, query=query, **kw)
            assert carrier.M <= budget, f"{name} returned {carrier.M} > budget {budget}"
            return carrier, state

        wrapped.__name__ = fn.__name__
        wrapped.__qualname__ = fn.__qualname__
        wrapped.__doc__ = fn.__doc__
        wrapped.__wrapped__ = fn  # type: ignore[attr-defined]
        wrapped.reducer_name = name  # type: ignore[attr-defined]
        REDUCERS[name] = wrapped
        return wrapped

    return deco


def get_reducer(name: str) -> ReduceFn:
    if name not in REDUCERS:
        raise ReducerInputError(f"unknown reducer {name!r}; choose from: {', '.join(sorted(REDUCERS))}")
    return REDUCERS[name]
