"""models/tinylm.py computes what transformers computes: the same MiniLM embeddings (tokens and hidden states) and,
for the bundled SmolLM2, the same prompt tokens, the same greedy tokens under the repetition penalty and the
same streamed text pieces as transformers' generate + TextIteratorStreamer (also when drafting from the prompt)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

TEXTS = ["What is the budget for the Horizon project?", "", "Ünïcödé café — naïve résumé 東京 😀",
         "asr: The price for the horizon project is $45 per seat. | ocr: Pioneer Customer Growth\n●Budget: 89",
         " ".join(["a long transcript that goes on"] * 80)]


def _matches_transformers(cls, path: str, atol: float) -> None:
    """cls(path)'s last hidden states equal transformers' AutoModel's for TEXTS (the same tokens too)."""
    from transformers import AutoModel, AutoTokenizer

    assert cls.supports(path)
    mine = cls(path)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    ref = AutoModel.from_pretrained(path, local_files_only=True).eval()
    texts = [t for t in TEXTS if t]
    ids, mask = mine.tokenize(texts, 256)
    enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    assert torch.equal(ids, enc["input_ids"]) and torch.equal(mask, enc["attention_mask"])
    with torch.inference_mode():
        want = ref(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    got = mine.forward(ids, mask)
    m = mask.bool()
    torch.testing.assert_close(got[m], want[m], atol=atol, rtol=1e-4)


def test_minibert_matches_transformers():
    from models.text_embed import default_model_dir
    from models.tinylm import MiniBert

    _matches_transformers(MiniBert, default_model_dir(), 2e-5)


def test_text_embedder_is_unchanged_by_the_plain_torch_path(monkeypatch):
    from models.text_embed import TextEmbedder

    fast = TextEmbedder().encode(TEXTS)
    monkeypatch.setenv("VIGIL_TINYLM", "0")
    slow = TextEmbedder()
    assert slow.bert is None and slow.model is not None
    np.testing.assert_allclose(fast, slow.encode(TEXTS), atol=1e-5)
    assert not fast[1].any()  # empty text: zeros


@pytest.mark.parametrize("real", [False, True])
def test_minimpnet_matches_transformers(tmp_path, real):
    """MiniMPNet against transformers' MPNetModel: a tiny random MPNet saved and loaded back, and the installed
    all-mpnet-base-v2 (the answerer's meaning model; its packages are in requirements.txt)."""
    from pathlib import Path

    from transformers import MPNetConfig, MPNetModel

    from models.text_embed import mpnet_model_dir
    from models.tinylm import MiniMPNet

    real_dir = mpnet_model_dir()
    assert real_dir is not None, "all-mpnet-base-v2 packages missing: pip install -r requirements.txt"
    path = real_dir
    if not real:
        torch.manual_seed(0)
        cfg = MPNetConfig(vocab_size=30527, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=64, max_position_embeddings=514)
        MPNetModel(cfg).save_pretrained(tmp_path)
        for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
            (tmp_path / f).write_bytes((Path(real_dir) / f).read_bytes())
        path = str(tmp_path)
    _matches_transformers(MiniMPNet, path, 5e-5)


def test_meaning_model_in_bf16_keeps_its_cosines(monkeypatch):
    """The meaning model (all-mpnet-base-v2) runs its encoder's Linear layers in bf16 where the LLM does
    (VIGIL_TINYLM_PRECISION; int8 keeps it fp32): every one of them is held low (no fp32 copy left), and what the
    answerer reads of it, the calibrated cosines of lines with a question, stays within a few thousandths of
    fp32's."""
    from models import text_embed

    lines = ["Budget: 35 million dollars", "The Nova rollout moves to March, and that is final.",
             "Who will own the vendor review?", "Curator: Euphemia", "We are running a bit late.", ""]
    question = "How much money was set aside for Nova?"
    got = {}
    for env, p in (("fp32", "fp32"), ("int8", "fp32"), ("bf16", "bf16")):
        monkeypatch.setenv("VIGIL_TINYLM_PRECISION", env)
        emb = text_embed._load_mpnet()
        assert emb.bert.precision == p
        linears = [k for k in emb.bert.w if k.startswith("encoder.layer.") and k.endswith(".weight")
                   and emb.bert.w[k].dim() == 2]
        if p == "fp32":
            assert not emb.bert.lowp and len(linears) == 6 * emb.bert.layers
        else:
            assert not linears and len(emb.bert.lowp) == 6 * emb.bert.layers
        v = emb.encode([question] + lines)
        assert not v[-1].any()  # empty text: zeros
        got[p] = emb.similarity(v[1:-1], v[0])
    np.testing.assert_allclose(got["bf16"], got["fp32"], atol=0.003)
    assert np.argmax(got["bf16"]) == np.argmax(got["fp32"]) == 0  # the budget line answers


def test_low_precision_needs_a_cpu_and_a_known_name(tmp_path):
    from models.text_embed import default_model_dir
    from models.tinylm import MiniBert

    with pytest.raises(ValueError, match="precision"):
        MiniBert(default_model_dir(), precision="fp8")


PROMPTS = [
    ("What is the budget for the Horizon project?",
     ["[00:00:08–00:00:10] asr: budget for the Verizon project to $82 million.",
      "[00:00:12–00:00:14] asr: The price for the horizon project is $45 per seat."]),
    ("Who is the team lead for the Pioneer project?",
     ["[00:00:26–00:00:30] asr: The team lead for the Pioneer project is James.",
      "[00:00:30–00:00:32] ocr: Pioneer Customer Growth ●Budget: 89 million dollars ●New office: Toronto"]),
    ("Summarize the meeting in two sentences.",
     ["[00:00:01–00:00:04] asr: Next topic: Horizon Partnerships.",
      "[00:00:04–00:00:07] asr: George will update the roadmap before Tuesday.",
      "[00:00:22–00:00:25] asr: Michael will draft the press release before Wednesday."]),
]


@pytest.fixture(scope="module")
def llms():
    """The bundled LLM twice: through transformers and in plain torch (the cache is built on first use)."""
    import os

    from models.llm import TextLLM

    old = os.environ.get("VIGIL_TINYLM")
    os.environ["VIGIL_TINYLM"] = "0"
    try:
        ref = TextLLM()
    finally:
        if old is None:
            del os.environ["VIGIL_TINYLM"]
        else:
            os.environ["VIGIL_TINYLM"] = old
    fast = TextLLM(precision="fp32")  # transformers' computation exactly (the CPU default may be bf16)
    assert ref.tiny is None and fast.tiny is not None
    return ref, fast


def test_tinyllama_generates_the_tokens_and_text_of_transformers(llms):
    from transformers import TextIteratorStreamer

    from models.answer.lite import SYSTEM_PROMPT
    from models.base import Usage

    ref, fast = llms
    assert fast.eos_ids == ref.eos_ids
    for q, notes in PROMPTS:
        msgs = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": "Notes:\n" + "\n".join(notes) + f"\n\nQuestion: {q}"}]
        enc = ref.prompt_ids(msgs)
        ids = fast.tiny.prompt_ids(msgs)
        assert ids == enc["input_ids"][0].tolist()
        assert fast.count_tokens(q) == ref.count_tokens(q)
        streamer = TextIteratorStreamer(ref.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=120)
        kw = dict(**enc, max_new_tokens=60, streamer=streamer, eos_token_id=ref.eos_ids, do_sample=False,
                  pad_token_id=ref.tokenizer.pad_token_id or ref.eos_ids[0], repetition_penalty=1.1)
        out = {}
        th = threading.Thread(target=lambda: out.setdefault("ids", ref.model.generate(**kw)))
        th.start()
        want_pieces = [p for p in streamer if p]
        th.join()
        want = out["ids"][0, len(ids):].tolist()
        for lookup in (0, 8):  # one token per pass, and drafts from the prompt checked in one pass
            got = fast.tiny.generate(ids, 60, fast.eos_ids, 1.1, lookup=lookup)
            assert got == want, (lookup, fast.tiny.decode(got), ref.tokenizer.decode(want))
        usage = Usage()
        pieces = list(fast.stream(msgs, max_new_tokens=60, usage=usage))
        assert pieces == want_pieces
        assert usage.prompt_tokens == len(ids) and usage.completion_tokens == len(want)


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_low_precision_weights_still_state_the_facts(llms, precision):
    """bf16 (the CPU default where it is native) and int8 Linear layers: the answers of the planted-fact prompts
    still carry their facts, and every projection lives in the low-precision form (no fp32 copy left)."""
    from models.answer.lite import SYSTEM_PROMPT
    from models.tinylm import TinyLlama

    _, fast = llms
    lp = TinyLlama(fast.cache_dir, precision=precision)
    assert lp.precision == precision and "lm_head" in lp.lowp
    assert not any("proj" in k for k in lp.w) and "lm_head.weight" not in lp.w or fast.tiny.cfg.get(
        "tie_word_embeddings")
    for (q, notes), fact in zip(PROMPTS[:2], ("$45", "James")):
        msgs = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": "Notes:\n" + "\n".join(notes) + f"\n\nQuestion: {q}"}]
        ids = lp.prompt_ids(msgs)
        text = lp.decode(lp.generate(ids, 40, fast.eos_ids, 1.1))
        assert fact in text, (precision, text)
        if precision == "bf16":  # drafts checked in one pass are still exact (int8 quantizes each pass's input
            # as a whole, so a pass of several positions may round differently from one-by-one passes)
            assert lp.generate(ids, 40, fast.eos_ids, 1.1, lookup=0) == lp.generate(ids, 40, fast.eos_ids, 1.1)
