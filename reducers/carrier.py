"""VideoScan-style carriers (Li et al., 2025; LyliAgave/VideoScan), training-free part.

Each frame gets a carrier: the mean of its tokens. A fixed-size memory of carriers evicts, when full, the
earlier frame of the most similar adjacent pair (`CarrierMemory`). The trained part (a carrier KV that holds
context inside the LLM) needs weights and is not reproduced.

As a reducer: frames are evicted by that rule until at most `budget` frames remain, and additionally while
an adjacent pair has cosine > `dedupe` (0.98; our addition, so a static clip collapses). An evicted frame is
folded into the frame that replaced it (position-wise mean), so each kept carrier spans a run of frames.
With budget ≥ 2 frames' worth, each run keeps a few carriers: its mean frame pooled to a grid that fits its
share (1×1 = the paper's single mean carrier).

Streaming: state holds the previous clip's last carrier as a pinned left neighbour. A frame evicted against
it continues the previous clip (already in memory): that run is re-sent with a quarter of a run's share.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Carrier, TokenGrid, cat_carriers, register
from .ops import normed, state_tensor
from .pool2d import pool_frames, pooled_grid

DEDUPE = 0.98
CONTINUE_SHARE = 4


def evict_adjacent(sim: list[list[float]], keep_max: int, dedupe: float, pinned: bool) -> list[int]:
    """Run id (index of the surviving frame) for every frame, after evicting the earlier of the most similar
    adjacent pair while more than keep_max survive or a pair exceeds `dedupe`.

    sim: host [n][n] cosines; with `pinned`, row/col 0 is the previous clip's carrier, which is never evicted
    (a pair with it evicts the later frame, which then maps to run -1). Returns run ids for frames 1.. (pinned)
    or 0.. (not pinned).
    """
    n = len(sim)
    alive = list(range(n))
    owner = list(range(n))  # frame -> the frame that absorbed it
    def count() -> int:
        return len(alive) - int(pinned)
    while len(alive) > 1:
        pairs = [(sim[alive[i]][alive[i + 1]], i) for i in range(len(alive) - 1)]
        s, i = max(pairs, key=lambda p: (p[0], -p[1]))
        if count() <= keep_max and s <= dedupe:
            break
        if pinned and i == 0:
            gone, into = alive[1], alive[0]
        else:
            gone, into = alive[i], alive[i + 1]
        owner[gone] = into
        alive.remove(gone)
    def root(f: int) -> int:
        while owner[f] != f:
            f = owner[f]
        return f
    runs = [root(f) for f in range(n)]
    if pinned:
        return [r - 1 for r in runs[1:]]  # pinned carrier -> -1
    return runs


def _next_state(grid: TokenGrid, state: Any) -> dict:
    return {"carrier": grid.tokens[-1].float().mean(0).detach().clone(), "continues": False}


@register("carrier", next_state=_next_state)
def carrier(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None,
            dedupe: float = DEDUPE) -> tuple[Carrier, Any]:
    """Mean carrier per frame; evict the earlier of the most similar adjacent pair; pool runs to the budget."""
    x = grid.tokens
    T, N, D = x.shape
    dev = x.device
    g = x.float().mean(1)  # [T, D] frame carriers
    prev = state_tensor(state, "carrier", (D,), dev)
    gg = torch.cat([prev.float()[None], g]) if prev is not None else g
    gn = normed(gg)
    sim = (gn @ gn.T).tolist()  # host sync (tiny)
    runs = evict_adjacent(sim, min(T, budget), dedupe, prev is not None)
    uniq = sorted(set(runs))
    rid = {r: i for i, r in enumerate(uniq)}
    gid = torch.tensor([rid[r] for r in runs], device=dev)
    G = len(uniq)
    cont = uniq[0] == -1
    cnt = torch.zeros(G, device=dev).index_add_(0, gid, torch.ones(T, device=dev))
    mean = torch.zeros(G, N, D, device=dev).index_add_(0, gid, x.float()) / cnt[:, None, None]
    first = [runs.index(r) for r in uniq]
    last = [T - 1 - runs[::-1].index(r) for r in uniq]
    # normal runs weigh CONTINUE_SHARE, a continued run 1 (a quarter of a normal run's share)
    w = [1 if (cont and i == 0) else CONTINUE_SHARE for i in range(G)]
    den = max(sum(w), CONTINUE_SHARE)
    share = [max(1, budget * wi // den) if wi > 1 else budget * wi // den for wi in w]
    if cont:
        share[0] = min(share[0], max(0, budget - sum(share[1:])))
    parts = []
    by_grid: dict[tuple[int, int], list[int]] = {}
    for i in range(G):
        if share[i] > 0:
            by_grid.setdefault(pooled_grid(*grid.hw, share[i]), []).append(i)
    for hw_out, runs_i in sorted(by_grid.items()):
        c = pool_frames(mean.to(x.dtype), grid.hw, torch.tensor(runs_i, device=dev), hw_out, "avg")
        r = c.pos[:, 0]
        f0 = torch.tensor(first, device=dev)[r]
        f1 = torch.tensor(last, device=dev)[r]
        nf = cnt.long()[r]
        parts.append(Carrier(c.tokens, torch.stack([f1, c.pos[:, 1], c.pos[:, 2]], -1),
                             torch.stack([f0, c.lo[:, 1], c.lo[:, 2]], -1),
                             torch.stack([f1, c.hi[:, 1], c.hi[:, 2]], -1), c.size * nf))
    out = cat_carriers(parts).time_order()
    return out, {"carrier": g[-1].detach().clone(), "continues": cont}


class CarrierMemory:
    """A fixed number of carriers; when full, the earlier of the most similar adjacent pair is evicted.

    tokens: [M, D] in time order, times: [M] float (media seconds or frame index). Pure torch, any device.
    """

    def __init__(self, capacity: int = 64):
        if capacity < 1:
            raise ValueError("capacity must be ≥ 1")
        self.capacity = capacity
        self.tokens: Optional[Tensor] = None
        self.times: Optional[Tensor] = None

    def __len__(self) -> int:
        return 0 if self.tokens is None else self.tokens.shape[0]

    def add(self, tokens: Tensor, times: Tensor) -> None:
        """Append carriers tokens [n, D] at times [n] (after everything held), then evict down to capacity."""
        if tokens.dim() == 1:
            tokens, times = tokens[None], times.reshape(1)
        if self.tokens is None:
            self.tokens, self.times = tokens.clone(), times.clone().float()
        else:
            self.tokens = torch.cat([self.tokens, tokens.to(self.tokens)])
            self.times = torch.cat([self.times, times.to(self.times)])
        extra = len(self) - self.capacity
        if extra > 0:
            self.evict(extra)

    def evict(self, n: int) -> None:
        """Evict n carriers, one at a time: the earlier of the currently most similar adjacent pair."""
        keep = torch.ones(len(self), dtype=torch.bool, device=self.tokens.device)
        xn = F.normalize(self.tokens.float(), dim=-1)
        for _ in range(n):
            idx = keep.nonzero().squeeze(1)
            s = (xn[idx[:-1]] * xn[idx[1:]]).sum(-1)
            keep[idx[torch.argmax(s)]] = False
        self.tokens, self.times = self.tokens[keep], self.times[keep]
