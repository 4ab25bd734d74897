"""VisionZip: dominant tokens by saliency plus a few merged contextual tokens (Yang et al., CVPR'25).

Per frame with a share k of the budget: the k_d = round(k·54/64) most salient tokens are kept (dominant);
from the rest, k_c = k − k_d targets are taken at a uniform stride, and every other remaining token joins
its most similar target (cosine on features; the paper uses attention keys, which a TokenGrid lacks).
Each contextual token = target + mean(assigned), as the official code adds rather than averages.

Speed: every frame keeps exactly k_d + k_c tokens (host integers), so the kept set is one stable sort of a
mask, and the contextual sums and spans are scatters into k_c slots per frame: no host sync.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from .base import Carrier, TokenGrid, _const, carrier_from_meta, grid_meta, register
from .ops import GraphCache, ints_to, normed, saliency_of, top_per_row

DOMINANT, CONTEXTUAL = 54, 10


def stride_targets(free: Tensor, kc: Tensor) -> Tensor:
    """Among the True entries of each row, kc[b] at a uniform stride. free: [B, L] bool -> [B, L] bool."""
    r = torch.cumsum(free.long(), 1) - 1  # rank among the free entries
    R = free.sum(1, keepdim=True).clamp(min=1)
    k = kc[:, None]
    return free & (((r + 1) * k) // R > (r * k) // R)


@register("visionzip")
def visionzip(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None,
              dominant_share: float = DOMINANT / (DOMINANT + CONTEXTUAL)) -> tuple[Carrier, Any]:
    """Per frame: dominant top-k_d by saliency + k_c contextual tokens (target + mean of its assigned tokens)."""
    x = grid.tokens
    T, N, D = x.shape
    k = [budget // T + (t < budget % T) for t in range(T)]
    kd = [min(N, round(v * dominant_share)) if v > 1 else v for v in k]
    kc = [min(N - a, v - a) for v, a in zip(k, kd)]
    kd_t, kc_t = ints_to(x.device, kd, kc)
    # every shape follows from (T, N, D, budget): on CUDA the selection and merge replay as one CUDA graph
    tok, meta = _VZ(x, saliency_of(grid), kd_t, kc_t, hw=tuple(grid.hw), M=sum(kd) + sum(kc), kcm=max(1, max(kc)))
    return carrier_from_meta(tok, meta), state


def _visionzip_device(x: Tensor, sal: Tensor, kd_t: Tensor, kc_t: Tensor, hw: tuple[int, int], M: int,
                      kcm: int) -> tuple[Tensor, Tensor]:
    T, N, D = x.shape
    dev = x.device
    h, w = hw
    dom = top_per_row(sal, kd_t)
    tgt = stride_targets(~dom, kc_t)
    order = torch.argsort(tgt.long(), dim=1, descending=True, stable=True)[:, :kcm]  # target indices first
    tvalid = torch.arange(kcm, device=dev)[None, :] < kc_t[:, None]
    xn = normed(x)
    sim = torch.bmm(xn, xn.gather(1, order[:, :, None].expand(T, kcm, D)).transpose(1, 2))
    near = sim.masked_fill_(~tvalid[:, None, :], float("-inf")).argmax(-1)  # [T, N] slot of the nearest target
    # kept tokens: exactly k_t per frame, in flat (= t, y, x) order; inv maps a flat index to its rank among them
    sel = dom | tgt
    idx = torch.argsort((~sel).reshape(-1).to(torch.uint8), stable=True)[:M]
    inv = torch.full((T * N,), M, device=dev, dtype=torch.long).scatter_(0, idx, torch.arange(M, device=dev))
    # group of every token: a kept token is its own group, another token of a frame with targets joins its
    # nearest target, the rest (frames without targets) go to the spare group M
    tflat = order.gather(1, near) + (torch.arange(T, device=dev) * N)[:, None]
    rest = ~sel & (kc_t > 0)[:, None]
    group = torch.where(rest, inv[tflat], inv.view(T, N)).reshape(-1)
    acc = torch.zeros(M + 1, D + 1, device=dev).index_add_(
        0, group, torch.cat([x.reshape(T * N, D).float(), torch.ones(T * N, 1, device=dev)], 1))[:M]
    span = torch.full((M + 1, 4), N, device=dev, dtype=torch.long).scatter_reduce_(
        0, group[:, None].expand(-1, 4), _yx4(T, h, w, dev), "amin")[:M]  # min (y, x, −y, −x) over members
    cnt = acc[:, D:]
    xr = x.reshape(T * N, D)[idx].float()
    # VisionZip adds: target + mean of the other members (a token alone stays bit-exact)
    tok = torch.where(cnt > 1, xr + (acc[:, :D] - xr) / (cnt - 1).clamp(min=1), xr).to(x.dtype)
    m = grid_meta(T, h, w, dev)[idx]  # (size, pos, lo, hi)
    m[:, 0] = cnt[:, 0]
    m[:, 5:7] = span[:, :2]
    m[:, 8:10] = -span[:, 2:]
    return tok, m


_VZ = GraphCache(_visionzip_device)


def _yx4(T: int, h: int, w: int, device) -> Tensor:
    """[T·N, 4] long (y, x, −y, −x) of every token, cached."""
    def make():
        yx = grid_meta(T, h, w, device)[:, 2:4]
        return torch.cat([yx, -yx], 1)
    return _const(("yx4", T, h, w, torch.device(device)), make)
