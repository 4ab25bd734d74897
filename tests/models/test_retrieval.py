"""RetrievalEncoder: tiny SigLIP and CLIP configs saved and loaded back (no downloads)."""
from __future__ import annotations

import pytest
import torch

from models.base import ModelError
from models.retrieval import RetrievalEncoder
from tests.models import tiny


@pytest.mark.parametrize("kind", ["siglip", "clip"])
def test_round_trip(tmp_path, kind):
    d = tiny.tiny_retrieval(str(tmp_path / kind), kind)
    enc = RetrievalEncoder.from_pretrained(d, device="cpu")
    img = enc.encode_images(tiny.frames(3))
    txt = enc.encode_text(["a red square", "a dog"])
    K = 32 if kind == "siglip" else 16
    assert img.shape == (3, K) and txt.shape == (2, K) and enc.key_dim == K
    assert torch.allclose(img.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(txt.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert enc.key_space.startswith(kind + ":") and enc.key_space.endswith(f":{K}")
    # deterministic, and batch-independent
    assert torch.allclose(enc.encode_text(["a dog"])[0], txt[1], atol=1e-5)
    # loads the same way twice
    enc2 = RetrievalEncoder.from_pretrained(d, device="cpu")
    assert torch.allclose(enc2.encode_images(tiny.frames(3)), img, atol=1e-5)


def test_vlm_uses_retrieval_keys(tmp_path):
    from models.vlm import load_vlm
    enc = RetrievalEncoder.from_pretrained(tiny.tiny_retrieval(str(tmp_path / "r")), device="cpu")
    ad = load_vlm(tiny.tiny_qwen25(str(tmp_path / "q")), device="cpu", retrieval=enc)
    g = ad.encode(tiny.frames(4))
    assert ad.key_dim == enc.key_dim and g.frame_keys.shape == (g.T, enc.key_dim)
    assert ad.key_encoder is enc


def test_not_a_retrieval_model(tmp_path):
    d = tiny.tiny_unsupported(str(tmp_path / "bert"))
    with pytest.raises(ModelError, match="unsupported retrieval model"):
        RetrievalEncoder.from_pretrained(d)
