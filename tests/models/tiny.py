"""Tiny random models built in code, saved with save_pretrained, for tests without downloads.

Each builder writes a directory that `load_vlm` / `RetrievalEncoder.from_pretrained` load through
the normal path: config.json + weights + a byte-level BPE tokenizer trained here on a few
sentences (lossless, so timestamps survive a decode) with the family's special tokens and chat
template. Nothing is fetched from the hub.
"""
from __future__ import annotations

import json
import os

import torch

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SMOL_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}: "
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)
CORPUS = [
    "You are Vigil, an assistant that answers questions about video the user has recorded.",
    "Video memories, in time order: [00:12:30–00:12:32] Question: what happened at the door?",
    "a red car drives past the gate while a person walks a dog in the rain at night",
    "Speech: hello there. On screen: EXIT 12. Tags: person, car, dog, door, kitchen, office",
    "the quick brown fox jumps over the lazy dog 0123456789 system user assistant",
] * 4
VOCAB = 512


def make_tokenizer(out_dir: str, specials: list[str], chat_template: str, eos: str, pad: str | None = None,
                   bos: str | None = None, vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token=eos, pad_token=pad or eos, bos_token=bos,
                                   additional_special_tokens=[s for s in specials if s not in (eos, pad, bos)])
    fast.chat_template = chat_template
    fast.save_pretrained(out_dir)
    assert len(fast) <= VOCAB
    return fast


def _text_cfg(**extra):
    d = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=False)
    d.update(extra)
    return d


def _save(model, out_dir):
    torch.manual_seed(0)
    model.save_pretrained(out_dir)


def tiny_qwen25(out_dir: str, qwen2: bool = False) -> str:
    """Qwen2.5-VL (or Qwen2-VL): hidden 32, 2 layers, vision depth 2, patch 14, merge 2."""
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
    tok = make_tokenizer(out_dir, specials, CHATML, eos="<|im_end|>", pad="<|endoftext|>")
    ids = {s: tok.convert_tokens_to_ids(s) for s in specials}
    torch.manual_seed(0)
    text = _text_cfg(rope_scaling={"type": "mrope", "mrope_section": [2, 1, 1]}, rope_theta=10000.0,
                     bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    common = dict(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                  vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    if qwen2:
        from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
        vision = dict(depth=2, embed_dim=32, hidden_size=32, num_heads=4, mlp_ratio=2, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2, in_channels=3)
        cfg = Qwen2VLConfig(text_config=text, vision_config=vision, **common)
        model = Qwen2VLForConditionalGeneration(cfg)
    else:
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=4, out_hidden_size=32, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2, window_size=56, fullatt_block_indexes=[1],
                      tokens_per_second=2, in_channels=3)
        cfg = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **common)
        model = Qwen2_5_VLForConditionalGeneration(cfg)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    _save(model.eval(), out_dir)
    with open(os.path.join(out_dir, "preprocessor_config.json"), "w") as f:
        json.dump({"image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
                   "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2}, f)
    return out_dir


def tiny_llava_ov(out_dir: str) -> str:
    """LLaVA-OneVision: SigLIP tower 56 px / patch 14 (4×4 → pooled 2×2), Qwen2 LM hidden 32."""
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
    tok = make_tokenizer(out_dir, specials, CHATML, eos="<|im_end|>", pad="<|endoftext|>")
    ids = {s: tok.convert_tokens_to_ids(s) for s in specials}
    torch.manual_seed(0)
    cfg = LlavaOnevisionConfig(
        text_config=dict(model_type="qwen2", **_text_cfg(eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])),
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, image_size=56, patch_size=14),
        image_token_index=ids["<image>"], video_token_index=ids["<video>"],
        vision_feature_layer=-1, vision_feature_select_strategy="full", image_grid_pinpoints=[[56, 56]])
    model = LlavaOnevisionForConditionalGeneration(cfg)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    _save(model.eval(), out_dir)
    with open(os.path.join(out_dir, "preprocessor_config.json"), "w") as f:
        json.dump({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}, f)
    return out_dir


def tiny_smolvlm(out_dir: str, idefics3: bool = False) -> str:
    """SmolVLM (or Idefics3): tower 64 px / patch 16 (4×4 → shuffle 2 → 2×2), Llama LM hidden 32."""
    specials = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<image>", "<fake_token_around_image>",
                "<global-img>"]
    tok = make_tokenizer(out_dir, specials, SMOL_TEMPLATE, eos="<end_of_utterance>", pad="<|endoftext|>")
    ids = {s: tok.convert_tokens_to_ids(s) for s in specials}
    torch.manual_seed(0)
    text = dict(model_type="llama", **_text_cfg(eos_token_id=ids["<end_of_utterance>"], pad_token_id=ids["<|endoftext|>"]))
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=64,
                  patch_size=16)
    if idefics3:
        from transformers import Idefics3Config, Idefics3ForConditionalGeneration
        cfg = Idefics3Config(text_config=text, vision_config=vision, image_token_id=ids["<image>"], scale_factor=2)
        model = Idefics3ForConditionalGeneration(cfg)
    else:
        from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration
        cfg = SmolVLMConfig(text_config=text, vision_config=vision, image_token_id=ids["<image>"], scale_factor=2)
        model = SmolVLMForConditionalGeneration(cfg)
    model.generation_config.eos_token_id = ids["<end_of_utterance>"]
    _save(model.eval(), out_dir)
    return out_dir


def tiny_unsupported(out_dir: str) -> str:
    """A BERT config: a real architecture that is not a VLM."""
    from transformers import BertConfig, BertModel
    cfg = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64)
    BertModel(cfg).save_pretrained(out_dir)
    return out_dir


def tiny_retrieval(out_dir: str, kind: str = "siglip") -> str:
    """SigLIP or CLIP dual encoder: towers hidden 32, 2 layers, image 32 px / patch 8, projection 16 (CLIP)."""
    specials = ["<|endoftext|>", "<pad>"]
    tok = make_tokenizer(out_dir, specials, CHATML, eos="<|endoftext|>", pad="<pad>")
    ids = {s: tok.convert_tokens_to_ids(s) for s in specials}
    torch.manual_seed(0)
    tcfg = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=64, pad_token_id=ids["<pad>"], eos_token_id=ids["<|endoftext|>"])
    vcfg = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32,
                patch_size=8)
    if kind == "siglip":
        from transformers import SiglipConfig, SiglipModel
        model = SiglipModel(SiglipConfig(text_config=tcfg, vision_config=vcfg))
        mean, std = [0.5] * 3, [0.5] * 3
    else:
        from transformers import CLIPConfig, CLIPModel
        model = CLIPModel(CLIPConfig(text_config=dict(tcfg, bos_token_id=ids["<|endoftext|>"]), vision_config=vcfg,
                                     projection_dim=16))
        mean, std = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
    _save(model.eval(), out_dir)
    with open(os.path.join(out_dir, "preprocessor_config.json"), "w") as f:
        json.dump({"image_mean": mean, "image_std": std, "size": {"height": 32, "width": 32}}, f)
    return out_dir


BUILDERS = {
    "qwen2_5_vl": tiny_qwen25,
    "qwen2_vl": lambda d: tiny_qwen25(d, qwen2=True),
    "llava_onevision": tiny_llava_ov,
    "smolvlm": tiny_smolvlm,
    "idefics3": lambda d: tiny_smolvlm(d, idefics3=True),
}


def frames(T: int = 4, H: int = 64, W: int = 80, seed: int = 0):
    """T RGB uint8 frames with a moving square (deterministic)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    out = []
    for t in range(T):
        f = (rng.random((H, W, 3)) * 60).astype("uint8")
        x = 4 + 6 * t
        f[10:30, x:x + 20] = (220, 40, 40)
        out.append(f)
    return out
