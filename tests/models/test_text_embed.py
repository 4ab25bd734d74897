"""MiniLM (bundled) sentence embeddings."""
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models.text_embed import TextEmbedder, length_batches


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


def test_mpnet_from_its_packages_equals_sentence_transformers(tmp_path, monkeypatch):
    """all-mpnet-base-v2 joined from its five PyPI packages into the cache (a fresh cache here) gives what
    sentence-transformers gives for the same directory, and judges a paraphrase closest."""
    from models.text_embed import mpnet_model_dir

    monkeypatch.setenv("VIGIL_CACHE", str(tmp_path))
    path = mpnet_model_dir()
    assert path is not None, "all-mpnet-base-v2 packages missing: pip install -r requirements.txt"
    assert path.startswith(str(tmp_path)) and mpnet_model_dir() == path
    assert not list(tmp_path.rglob("*.zip")) and not list(tmp_path.rglob("desktop.ini"))
    from sentence_transformers import SentenceTransformer

    mine = TextEmbedder(path, space="mpnet-base")
    texts = ["How many vehicles does Kettle operate?", "Kettle runs 41 vans on its delivery rounds.",
             "Can you hear the echo?"]
    want = SentenceTransformer(path, device="cpu").encode(texts, normalize_embeddings=True)
    v = mine.encode(texts)
    assert mine.dim == 768 and mine.space == "mpnet-base" and v.shape == (3, 768)
    np.testing.assert_allclose(v, want, atol=2e-5)
    assert v[1] @ v[0] > v[2] @ v[0] + 0.3


def test_similarity_is_the_cosine_on_minilm_scale(emb):
    """MiniLM's similarity is the plain cosine; a calibrated model's is its cosine mapped monotonically."""
    v = emb.encode(["a cat sat on the mat", "a cat is on the mat", "stock prices fell"])
    np.testing.assert_allclose(emb.similarity(v[1:], v[0]), v[1:] @ v[0], atol=1e-6)
    cal = TextEmbedder.__new__(TextEmbedder)
    cal.calibration = (np.array([-1.0, 0.0, 0.5, 1.0], np.float32), np.array([-1.0, 0.1, 0.3, 1.0], np.float32))
    got = cal.similarity(np.array([[0.25], [0.75], [0.0]], np.float32), np.array([1.0], np.float32))
    np.testing.assert_allclose(got, [0.2, 0.65, 0.1], atol=1e-6)


def test_meaning_embedder_falls_back_to_minilm(emb, monkeypatch):
    from models.text_embed import meaning_embedder

    monkeypatch.setenv("VIGIL_MEANING", "minilm")
    assert meaning_embedder(emb) is emb


def test_mpnet_parts_that_do_not_join_leave_nothing_behind(tmp_path, monkeypatch):
    """Parts whose joined zip has another sha256 (a corrupted or mismatched install) give one clear ModelError and
    leave no half-unpacked model in the cache, so a later run retries from scratch."""
    import models.text_embed as te
    from models.base import ModelError

    assert all(_installed(p) for p in te.MPNET_PARTS), "pip install -r requirements.txt"
    monkeypatch.setenv("VIGIL_CACHE", str(tmp_path))
    monkeypatch.setattr(te, "MPNET_SHA256", "0" * 64)
    with pytest.raises(ModelError, match="sha256 differs"):
        te.mpnet_model_dir()
    assert not (tmp_path / "text" / "all-mpnet-base-v2").exists()
    assert not [p for p in (tmp_path / "text").iterdir()]


def _installed(name: str) -> bool:
    import importlib.metadata as md

    try:
        md.distribution(name)
        return True
    except md.PackageNotFoundError:
        return False


def test_texts_of_a_length_are_batched_together_and_come_back_in_order():
    """A batch is padded to its longest text: a page of slide text beside one-line captions is encoded in its own
    batch, and each vector is the one the text gets alone, in the caller's order."""
    e = TextEmbedder()
    e.batch_size = 2
    page = " ".join(f"Line {i}: the depot in Leeds holds {i * 7} pallets of spare parts." for i in range(12))
    texts = [page, "Budget approved.", page.replace("Leeds", "Hull"), "Next slide."]
    widths = []
    forward = e.bert.forward
    e.bert.forward = lambda ids, mask: (widths.append(int(mask.sum(1).max())), forward(ids, mask))[1]
    v = e.encode(texts)
    assert len(widths) == 2 and min(widths) <= 8 < max(widths)  # the two captions together, the two pages together
    e.bert.forward = forward
    alone = np.stack([TextEmbedder().encode([t])[0] for t in texts])
    assert np.allclose(v, alone, atol=1e-5)


PAGE = "Tailor: Lucius\nHarvest: April 15\nNote 1: Sorry, my cat just walked across the keyboard\nPage count: 57"


@pytest.mark.parametrize("texts, size, batches", [
    # a dense slide's clip keys beside the titles of clips without text: not padded to the page (before: one batch)
    (["Gazebo", "Sextant", PAGE, "Caravan", PAGE + " Horses: 83"], 32, [[0, 1, 3], [2, 4]]),
    (["x" * 20, "y" * 46, "z" * 47], 32, [[0, 1], [2]]),        # 46 = 1.5 x 20 + 16 characters: still together
    (["same length"] * 5, 2, [[0, 1], [2, 3], [4]]),            # at most `size` a batch
    (["", "   ", "words"], 32, [[2]]),                           # blank texts are not encoded
    ([], 32, []),
])
def test_length_batches(texts, size, batches):
    assert length_batches(texts, size) == batches


def test_a_clip_s_keys_are_not_padded_to_its_page(emb):
    """At the default batch size, the one-word keys of a clip go in a batch of their own, not padded to the slide
    page beside them, and every vector is the one its text gets alone."""
    texts = ["Gazebo", "Sextant", PAGE, "Caravan", PAGE + " Horses: 83"]
    widths = []
    forward = emb.bert.forward
    emb.bert.forward = lambda ids, mask: (widths.append(tuple(mask.shape)), forward(ids, mask))[1]
    try:
        v = emb._encode(texts)
    finally:
        emb.bert.forward = forward
    assert sorted(widths, key=lambda w: w[1])[0] == (3, 5) and len(widths) == 2   # 3 words of 3-5 tokens
    alone = np.stack([emb._encode([t])[0] for t in texts])
    assert np.allclose(v, alone, atol=1e-5)
