"""Coarse visual tags from an ImageNet classifier's logits (EfficientNet-Lite0's `_fc` output).

The 1000 class names ship in models/imagenet_labels.txt (index order of the standard ImageNet-1k head).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

LABELS_FILE = Path(__file__).with_name("imagenet_labels.txt")

# A tag becomes evidence only at this probability (top-1, averaged over the clip's frames) or above. Calibrated by
# bench/tags_calibration.py: the highest top-1 probability on frames where no ImageNet label is right (generated
# slides, documents and speaker pictures; opencv-doc's walkway, tree and animation footage) was 0.695, so 0.70.
# On those frames the classifier said "mobile home", "planetarium", "nematode", "envelope"; on opencv-doc's
# hand-held cup it said "soap dispenser", "joystick" at ≤ 0.3 — all now dropped: a memory without a sure tag
# has no tags.
MIN_TAG_PROB = 0.70


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    labels = tuple(x.strip() for x in LABELS_FILE.read_text(encoding="utf-8").splitlines() if x.strip())
    assert len(labels) == 1000, f"{LABELS_FILE} must have 1000 labels, has {len(labels)}"
    return labels


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def top_tags(logits, k: int = 3, min_prob: float = 0.05) -> list[str]:
    """logits [T, 1000] (or [1000]) -> up to k distinct label names, ranked by probability averaged over the T
    frames; labels below min_prob average probability are left out (an empty list is a valid answer)."""
    try:
        import torch

        if isinstance(logits, torch.Tensor):
            logits = logits.detach().float().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    a = np.asarray(logits, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[-1] != 1000 or a.shape[0] == 0 or not np.isfinite(a).all():
        return []
    p = _softmax(a).mean(0)
    order = np.argsort(-p)[:k]
    labels = imagenet_labels()
    return [labels[i] for i in order if p[i] >= min_prob]


def tags_text(tags: Sequence[str]) -> str:
    """Tags as one evidence string: "monitor, screen, web site"."""
    return ", ".join(tags)
