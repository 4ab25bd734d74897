"""Retrieval keys aligned with text: SigLIP (`SiglipModel`, also SigLIP2's `siglip2` type when
installed) or CLIP (`CLIPModel`). Frame keys at ingest, query keys at ask time, both L2-normalized
in the same space, so `ask` works by text.

    enc = RetrievalEncoder.from_pretrained("google/siglip-base-patch16-224")   # or a local dir
    keys = enc.encode_images(frames)      # [T, K] float32, normalized
    q = enc.encode_text(["a red car"])     # [B, K] float32, normalized
    enc.key_space                          # "siglip:<name>:<K>" — only compare keys of one space
"""
from __future__ import annotations

import os
import threading
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from models.base import ModelError, auto_device, auto_dtype

from .vlm.common import (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, frames_to_tensor, norm_stats, read_json,
                         resize_normalize)
from .vlm.loading import resolve_model_dir

_KINDS = {"siglip": "SiglipModel", "siglip2": "Siglip2Model", "clip": "CLIPModel"}


def _features(out) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    po = getattr(out, "pooler_output", None)
    if po is not None:
        return po
    return out[0]


class RetrievalEncoder:
    """Image and text towers of a SigLIP/CLIP model (QueryEncoder protocol plus encode_images)."""

    def __init__(self, model, tokenizer, model_dir: str, device: torch.device, dtype: torch.dtype, name: str = ""):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device, self.dtype = device, dtype
        cfg = model.config
        self.kind = cfg.model_type
        vc = cfg.vision_config
        pp = read_json(model_dir, "preprocessor_config.json")
        size = pp.get("size") or {}
        if isinstance(size, dict) and "height" in size:
            self.size = (int(size["height"]), int(size["width"]))
        else:
            self.size = (int(vc.image_size), int(vc.image_size))
        self.mean, self.std = (norm_stats(pp) if self.kind.startswith("siglip")
                               else norm_stats(pp, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD))
        self.max_text = int(getattr(cfg.text_config, "max_position_embeddings", 64) or 64)
        self._graph = None          # CUDA graph of the text tower for one max_length query (SigLIP), built lazily
        self._graph_lock = threading.Lock()
        with torch.inference_mode():
            probe = self.encode_text(["probe"])
        self.key_dim = int(probe.shape[-1])
        self.key_space = f"{self.kind}:{name or os.path.basename(os.path.abspath(model_dir))}:{self.key_dim}"

    @classmethod
    def from_pretrained(cls, id_or_dir: str, device: Optional[str] = None, trust_remote_code: bool = False,
                        dtype: Optional[torch.dtype] = None) -> "RetrievalEncoder":
        import transformers as tf
        from transformers import AutoConfig, AutoTokenizer

        model_dir = resolve_model_dir(id_or_dir, trust_remote_code)
        try:
            cfg = AutoConfig.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
        except (ValueError, OSError) as e:
            raise ModelError(f"{id_or_dir}: cannot read config: {str(e).splitlines()[0][:160]}") from None
        if cfg.model_type not in _KINDS or not hasattr(tf, _KINDS[cfg.model_type]):
            raise ModelError(f"{id_or_dir}: unsupported retrieval model type {cfg.model_type!r}; "
                             f"supported: SigLIP (siglip, siglip2), CLIP (clip)")
        dev = auto_device(device)
        dt = dtype or auto_dtype(dev)
        try:
            model = getattr(tf, _KINDS[cfg.model_type]).from_pretrained(model_dir, dtype=dt).to(dev)
            tok = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"{id_or_dir}: could not load: {type(e).__name__}: {str(e).splitlines()[0][:160]}") from None
        name = id_or_dir if not os.path.isdir(os.path.expanduser(id_or_dir)) else ""
        return cls(model, tok, model_dir, dev, dt, name=name)

    @torch.inference_mode()
    def encode_images(self, frames: Sequence[np.ndarray], batch: int = 64) -> torch.Tensor:
        """T RGB uint8 frames -> [T, K] float32 on CPU, L2-normalized."""
        out = []
        for i in range(0, len(frames), batch):
            x = frames_to_tensor(frames[i:i + batch], self.device)
            x = resize_normalize(x, self.size, self.mean, self.std).to(self.dtype)
            out.append(_features(self.model.get_image_features(pixel_values=x)).float())
        return F.normalize(torch.cat(out), dim=-1).cpu()

    @torch.inference_mode()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """B texts -> [B, K] float32 on CPU, L2-normalized."""
        texts = list(texts)
        # SigLIP was trained with max_length padding; CLIP with an attention mask
        pad = "max_length" if self.kind.startswith("siglip") else True
        enc = self.tokenizer(texts, padding=pad, truncation=True, max_length=self.max_text, return_tensors="pt")
        kw = {"input_ids": enc["input_ids"].to(self.device)}
        if not self.kind.startswith("siglip") and "attention_mask" in enc:
            kw["attention_mask"] = enc["attention_mask"].to(self.device)
        if len(texts) == 1 and "attention_mask" not in kw:
            out = self._graphed_text(kw["input_ids"])
            if out is not None:
                return out
        return F.normalize(_features(self.model.get_text_features(**kw)).float(), dim=-1).cpu()

    def _graphed_text(self, ids: torch.Tensor) -> Optional[torch.Tensor]:
        """One question's text key through a CUDA graph of the tower (a fixed [1, max_length] input, as SigLIP pads):
        27 layers at batch 1 are launch-bound, and a replay is one launch. None off CUDA or if capture fails."""
        if self.device.type != "cuda" or self._graph is False or os.environ.get("VIGIL_CUDA_GRAPHS", "1") == "0":
            return None
        with self._graph_lock:  # one static buffer: concurrent askers take turns (a replay is ~1-3 ms)
            if self._graph is None:
                try:
                    static_in = ids.clone()
                    side = torch.cuda.Stream(self.device)
                    side.wait_stream(torch.cuda.current_stream(self.device))
                    with torch.cuda.stream(side):
                        for _ in range(2):  # warm-up outside the capture (lazy inits, autotuning)
                            _features(self.model.get_text_features(input_ids=static_in))
                    torch.cuda.current_stream(self.device).wait_stream(side)
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph):
                        static_out = F.normalize(_features(self.model.get_text_features(input_ids=static_in)).float(),
                                                 dim=-1)
                    self._graph = (graph, static_in, static_out)
                except Exception:  # noqa: BLE001 - eager is always correct
                    self._graph = False
                    return None
            graph, static_in, static_out = self._graph
            if static_in.shape != ids.shape:
                return None
            static_in.copy_(ids)
            graph.replay()
            return static_out.cpu()
