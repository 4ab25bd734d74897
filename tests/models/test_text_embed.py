"""MiniLM (bundled) sentence embeddings."""
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models.text_embed import TextEmbedder


@pytest.fixture(scope="module")
def emb():
    return TextEmbedder()


def test_shape_norm_and_empty(emb):
    v = emb.encode(["hello world", "", "the budget is 35 million dollars"])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v[[0, 2]], axis=1), 1, atol=1e-4)
    assert not v[1].any()
    assert emb.dim == 384 and emb.space == "minilm-l6"
    assert emb.encode("one").shape == (1, 384)


def test_paraphrase_ranks_first(emb):
    q = emb.encode(["How much money does the Falcon project have?"])[0]
    docs = ["The weather in Paris was sunny all week.",
            "Falcon's budget is 35 million dollars.",
            "Maria will send the hiring plan before Friday.",
            "The Orion office opens in Berlin."]
    sims = emb.encode(docs) @ q
    assert int(np.argmax(sims)) == 1
    q2 = emb.encode(["Who has to send the hiring plan?"])[0]
    assert int(np.argmax(emb.encode(docs) @ q2)) == 2
