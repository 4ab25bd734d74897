"""Interfaces every model adapter implements. Adapters live in their own modules; nothing here loads weights."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Protocol, Sequence

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


def stage_threads(stages: int = 2) -> int:
    """Intra-op threads for one model of the lite ingest, whose stages compute at the same time (speech recognition
    on a thread of its own beside the frame encoder and OCR): the cores shared out, at least one. Two stages each
    asking for every core oversubscribe them, and OpenMP threads then spin at barriers waiting for a preempted
    sibling (EfficientNet-Lite0 on a busy 2-core VM: 26 CPU ms a frame with one thread, 145 with two)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, stages))


def auto_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA, fp32 on CPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def stream_from_worker(work: Callable[[], None], streamer, on_stop: Optional[Callable[[], None]] = None,
                       what: str = "generation") -> Iterator[str]:
    """Run `work()` (a generate call feeding `streamer`, a transformers TextIteratorStreamer) in a thread and yield
    its text pieces. `on_stop` runs when the consumer stops early or the stream ends (e.g. to cancel generation);
    an error in the worker is raised here, in the consumer's thread, as a one-line ModelError."""
    err: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer's thread below
            err.append(e)
        finally:
            streamer.end()  # a second end() after generate's own only repeats the stop signal

    th = threading.Thread(target=run, name="vigil-generate", daemon=True)
    th.start()
    ended = False
    try:
        for piece in streamer:
            if piece:
                yield piece
        ended = True
    finally:
        if on_stop is not None:
            on_stop()
        if ended or on_stop is not None:  # an uncancellable worker left early finishes on its own, unwaited
            th.join()
    if err:
        if isinstance(err[0], ModelError):
            raise err[0]
        raise ModelError(f"{what} failed: {type(err[0]).__name__}: {err[0]}".splitlines()[0]) from err[0]


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
    steps: Optional[int] = None             # time steps of the clip's token grid (None: infer from the carrier)


@dataclass(frozen=True)
class Consumes:
    """What an answerer reads from each retrieved memory. The ask path loads exactly this and nothing else.

    carriers: the stored carrier tokens, as torch tensors (they must be in `space`, `width` wide)
    evidence: the transcript, on-screen text and tags
    screen:   evidence["screen"], the title of the slide on screen when the clip was recorded
    """

    carriers: bool = False
    evidence: bool = True
    screen: bool = False
    space: Optional[str] = None    # "<model_type>:<hidden>" of the carriers it takes
    width: Optional[int] = None    # their hidden size


@dataclass
class Usage:
    """Token counts of one answer. `placed` maps memory id -> carrier tokens put in the prompt for it, so
    visual_tokens == sum(placed.values()). Filled by the answerer while it answers (one Usage per ask)."""

    prompt_tokens: int = 0
    visual_tokens: int = 0
    completion_tokens: int = 0
    placed: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)    # answerer-side timings (prepare, ttft, decode), when measured

    def as_dict(self) -> dict:
        return {"prompt_tokens": int(self.prompt_tokens), "visual_tokens": int(self.visual_tokens),
                "completion_tokens": int(self.completion_tokens)}


class Answerer(Protocol):
    """Streams an answer from retrieved memories; declares what it reads of them in `consumes`."""

    consumes: Consumes

    def answer(self, question: str, memories: Sequence[MemoryView], history: Sequence[dict] = (),
               usage: Optional[Usage] = None) -> Iterator[str]:
        """Yield text pieces as they are generated; fill `usage` (prompt, visual and completion tokens)."""
        ...
