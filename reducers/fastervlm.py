"""FasterVLM: keep the top-k tokens by [CLS] attention (Zhang et al., 2024; Theia-4869/FasterVLM).

Saliency is grid.saliency ([CLS]→patch attention, or attention received for SigLIP); without it the
fallback of `ops.saliency_of` (distance from the frame mean) is used. The top-k runs over the whole clip,
so busy frames get more tokens than quiet ones. Kept tokens are unchanged, in (t, y, x) order.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from .base import Carrier, TokenGrid, keep_tokens, register
from .ops import saliency_of


def topk_saliency(sal: Tensor, k: int) -> Tensor:
    """Flat indices of the k most salient tokens (ties: lower index). sal: [T, N] -> [k] long."""
    flat = sal.reshape(-1)
    order = torch.argsort(flat, descending=True, stable=True)
    return order[:k]


@register("fastervlm")
def fastervlm(grid: TokenGrid, budget: int, state: Any = None, query: Optional[Tensor] = None) -> tuple[Carrier, Any]:
    """Top-`budget` tokens of the clip by saliency."""
    return keep_tokens(grid, topk_saliency(saliency_of(grid), budget)), state
