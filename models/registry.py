"""Model profiles: which encoder, key encoders, evidence extractors and answerer a run uses.

`lite` (default, offline, bundled weights) or a VLM given by hub id / local directory with --model.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .base import ModelError


@dataclass
class Profile:
    name: str
    encoder: Any                       # Encoder protocol
    answerer: Any = None               # Answerer protocol, or None: the answer lists the moments
    text_embedder: Any = None          # text evidence -> keys ("text:<space>")
    key_encoder: Any = None            # separate retrieval encoder for clip keys (SigLIP/CLIP), if any
    evidence: list = field(default_factory=list)

    def evidence_for(self, stream_id: str) -> list:
        """Evidence extractors for one stream: fresh state around the loaded models, linked (OCR prompts ASR)."""
        from .evidence import fresh_evidence

        return fresh_evidence(self.evidence)

    def query_keys(self, question: Optional[str] = None, image: Optional[np.ndarray] = None) -> dict[str, np.ndarray]:
        """Query keys in every space this profile can reach."""
        keys: dict[str, np.ndarray] = {}
        if image is not None:
            enc = self.key_encoder or self.encoder
            keys[getattr(enc, "key_space", enc.space)] = np.asarray(enc.encode_images([image])[0], np.float32)
        if question:
            if self.text_embedder is not None:  # the whole memory's text key and each part's (memory.textkeys)
                from memory.textkeys import text_spaces

                q = self.text_embedder.encode([question])[0]
                keys.update({space: q for space in text_spaces(self.text_embedder.space)})
            if self.key_encoder is not None and hasattr(self.key_encoder, "encode_text"):
                keys[self.key_encoder.key_space] = np.asarray(self.key_encoder.encode_text([question])[0], np.float32)
        return keys


def load_profile(model: Optional[str] = None, *, trust_remote_code: bool = False, device: Optional[str] = None,
                 evidence: bool = True, answerer: bool = True, retrieval: Optional[str] = None,
                 text_evidence: bool = False) -> Profile:
    """The lite profile when model is None or "lite", else a VLM by hub id or local directory.

    retrieval: a SigLIP/CLIP hub id or directory; its image keys are stored at ingest and its text keys
    let `ask` search those clips by text (a VLM alone can only be queried by an example image).
    text_evidence: a VLM also gets the lite profile's speech and on-screen text (bundled Whisper and RapidOCR,
    when `evidence`) and the MiniLM text keys, for hybrid search; its answerer reads that text in the prompt.
    """
    if model in (None, "lite") and retrieval is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    key_encoder = None
    if retrieval:
        from .retrieval import RetrievalEncoder

        key_encoder = RetrievalEncoder.from_pretrained(retrieval, device=device, trust_remote_code=trust_remote_code)
    if model in (None, "lite"):
        prof = _lite(device, evidence, answerer)
        prof.key_encoder = key_encoder
        return prof
    from .vlm import load_vlm  # heavy import only when asked

    vlm = load_vlm(model, trust_remote_code=trust_remote_code, device=device, retrieval=key_encoder)
    key_encoder = getattr(vlm, "key_encoder", None) or key_encoder
    prof = Profile(name=model, encoder=vlm, answerer=vlm if answerer else None, key_encoder=key_encoder)
    if text_evidence:
        from .text_embed import TextEmbedder

        prof.text_embedder = TextEmbedder()
        if evidence:
            from .evidence import lite_evidence

            prof.evidence = lite_evidence(vlm, tags=False)  # ImageNet tags belong to the lite encoder
    return prof


class LazyLiteEncoder:
    """EfficientNet-Lite0, built on first use (a text question never needs it: its keys are MiniLM's).
    Its space names are known without loading; everything else is the loaded encoder's."""

    space = key_space = "efficientnet-lite0"
    key_dim = 1280

    def __init__(self, device: Optional[str] = None):
        self._device = device
        self._enc = None
        self._lock = threading.Lock()

    @property
    def loaded(self):
        if self._enc is None:
            with self._lock:
                if self._enc is None:
                    from .efficientnet import EfficientNetLite0Encoder

                    self._enc = EfficientNetLite0Encoder(device=self._device)
        return self._enc

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.loaded, name)


def _lite(device: Optional[str], evidence: bool, answerer: bool) -> Profile:
    enc = LazyLiteEncoder(device)
    prof = Profile(name="lite", encoder=enc)
    if evidence:
        from .evidence import lite_evidence

        prof.evidence = lite_evidence(enc)
    try:
        from .text_embed import TextEmbedder

        prof.text_embedder = TextEmbedder()
    except ModelError:
        pass
    if answerer:
        try:
            from .answer.lite import LiteAnswerer

            prof.answerer = LiteAnswerer(embedder=prof.text_embedder)
        except ImportError:
            pass
    return prof
