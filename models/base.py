"""Interfaces every model adapter implements. Adapters live in their own modules; nothing here loads weights."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Optional, Protocol, Sequence

import numpy as np
import torch

from reducers.base import Carrier, TokenGrid


class ModelError(RuntimeError):
    """A model could not be loaded or run; the message is one line for the user."""


def auto_device(device: Optional[str] = None) -> torch.device:
    """CUDA when present, else CPU, unless the user named one."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def auto_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA, fp32 on CPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


class Encoder(Protocol):
    """Frames -> visual tokens. `space` names the embedding space of the tokens (carriers are only
    fed back to an answerer of the same space); `key_dim` is the size of frame keys used for retrieval."""

    space: str
    key_dim: int

    def encode(self, frames: Sequence[np.ndarray]) -> TokenGrid:
        """frames: T RGB uint8 arrays [H, W, 3] -> TokenGrid with tokens [T, N, D] and frame_keys [T, key_dim]."""
        ...


class QueryEncoder(Protocol):
    """Text or an example image -> a key in the same space as the frame keys."""

    key_space: str

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:  # [B, K]
        ...


@dataclass
class MemoryView:
    """What an answerer gets for one retrieved memory, already in time order."""

    memory_id: int
    stream: str
    t0: float
    t1: float
    score: float
    carrier: Optional[Carrier] = None       # tokens in the encoder's space, when the answerer can take them
    evidence: dict = field(default_factory=dict)  # {"asr": str, "ocr": str, "tags": str}
    thumbnail: Optional[str] = None


class Answerer(Protocol):
    """Streams an answer from retrieved memories."""

    def answer(self, question: str, memories: Sequence[MemoryView], history: Sequence[dict] = ()) -> Iterator[str]:
        """Yield text pieces as they are generated."""
        ...
