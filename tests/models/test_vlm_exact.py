"""Exactness of the VLM answer path against transformers' own models (tiny random models built in code, CPU, fp32).

A generated video is ingested through the product pipeline (FileSource -> Clipper -> the adapter's encoder ->
reducer -> MemoryBank on disk, carriers stored float32), the memories are loaded back through the one ask path
(`models.ask.memory_views` / `models.ask.ask`) and the prompt is built by the adapter's `build_inputs`. That is
compared with what transformers itself does with the same decoded frames:

* full tokens (pool2d with a budget >= T·N keeps every token, unchanged): our prompt's input_ids equal the native
  ones (the family's own placeholder layout, expanded by transformers' own processor code), Qwen's 3D position ids
  equal `get_rope_index`'s, and the first-token logits of the model's forward on our `inputs_embeds` equal those of
  its native forward on its own pixel inputs (allclose 1e-4 in fp32; in practice they are bit-identical). The
  product's decoder (`generate_ids`) picks the native argmax as its first token. A control shows the tolerance
  catches a prompt whose carrier tokens are out of order (and, for Qwen, plain 1D positions).
* reduced tokens (pool2d, ToMe, DivPrune at a small budget): the embeddings at the visual placeholders are exactly
  the stored carrier tokens, in order (torch.equal), and those are exactly the reducer's output on our encoder's
  tokens; Qwen's 3D position ids of the kept tokens equal the ids `get_rope_index` gives the patches they stand for
  in the native full-token prompt (relative to each video block's start); the text before each block ends with the
  citation's timestamp line.

The tiny models get unit-variance random weights (std 1/sqrt(fan_in)) after loading: with the builders' 0.02 the
LLM barely reacts to its input, so logits alone could not tell a right prompt from a wrong one.

Native pixel inputs come from transformers' own image processor classes, built in code (no hub), with frame sizes
at which their resize is a no-op, so our preprocessing (resize, rescale, normalize, patch order) is checked too.
The video processor classes need torchvision, which is not installed here, so the video layout is assembled from
the image processors' outputs exactly as the video processors would:
* Qwen2-VL / Qwen2.5-VL: `Qwen2VLImageProcessorPil` with temporal_patch_size=1 does resize/rescale/normalize and
  the spatial patch order per frame; consecutive frame pairs are stacked on the temporal-patch axis, which is what
  `Qwen2VLVideoProcessor` does (its reshape (gt, tp, C, gh/m, m, p, gw/m, m, p) -> (gt, gh/m, gw/m, m, m, C, tp, p, p)).
  second_per_grid_ts = temporal_patch_size / fps, as `Qwen2_5_VLProcessor` computes it.
* LLaVA-OneVision: `LlavaOnevisionImageProcessorPil`'s first patch is the whole frame resized to `size`, rescaled
  and normalized, the same steps `LlavaOnevisionVideoProcessor` takes; frames go in as pixel_values_videos.
* SmolVLM / Idefics3: frames go in as consecutive unsplit images (pixel_values + pixel_attention_mask from
  `SmolVLMImageProcessorPil` / `Idefics3ImageProcessorPil`); Idefics3 through `Idefics3Processor` end to end.

Qwen text positions after a video block: transformers 5.x continues at start + max(h, w) / merge, Qwen's reference
code (and transformers 4.x, vLLM) at max(vision ids) + 1; our adapter does the latter. They coincide whenever the
block's temporal extent does not exceed its spatial one (real 2 s clips: ≤ 4 vs 14), as with the sizes used here.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from memory.bank import MemoryBank
from memory.carriers import to_carrier
from models.ask import ask, memory_views
from models.registry import Profile
from models.vlm import load_vlm, timestamp_line
from models.vlm.common import SYSTEM_PROMPT
from reducers import get_reducer
from stream.pipeline import IngestConfig, IngestPipeline
from stream.sources import open_source
from tests.models import tiny

FAMILIES = ["qwen2_5_vl", "qwen2_vl", "llava_onevision", "smolvlm", "idefics3"]
# frame sizes where every processor's resize is a no-op: Qwen multiples of 28 (patch 14 × merge 2) inside
# [min_pixels, max_pixels]; LLaVA-OV and SmolVLM their towers' square image_size
SIZE = {"qwen2_5_vl": (56, 84), "qwen2_vl": (56, 84), "llava_onevision": (56, 56), "smolvlm": (64, 64),
        "idefics3": (64, 64)}
FPS = 2.0            # 2 s clips of 4 sampled frames: 2 temporal steps for Qwen
SECONDS = 4          # two clips
QUESTION = "what happened at the door?"
FULL = 10 ** 6       # a pool2d budget >= T·N keeps every token
REDUCED = {"pool2d": 5, "tome": 5, "divprune": 5}
ATOL = RTOL = 1e-4


@dataclass
class Ingested:
    bank: MemoryBank
    clips: list                       # [(memory id, Clip)] in time order
    profile: Profile


@dataclass
class Family:
    fam: str
    model_dir: str
    ad: object
    video: str
    banks: dict = field(default_factory=dict)   # (reducer, budget) -> Ingested
    native: dict = field(default_factory=dict)  # cached native full-token inputs


@pytest.fixture(scope="module")
def families(tmp_path_factory):
    """fam -> Family, built on first use (model dir, loaded adapter, generated video); banks closed at the end."""
    made: dict[str, Family] = {}

    def get(fam: str) -> Family:
        if fam not in made:
            from tests.fixtures.video import make_video
            root = tmp_path_factory.mktemp(fam)
            d = tiny.BUILDERS[fam](str(root / "model"))
            H, W = SIZE[fam]
            video = make_video(str(root / "v.mp4"), seconds=SECONDS, fps=10, size=(W, H), audio_hz=None)
            ad = load_vlm(d, device="cpu")
            sensitize(ad.model)
            made[fam] = Family(fam, d, ad, video)
        return made[fam]

    yield get
    for f in made.values():
        for ing in f.banks.values():
            ing.bank.close()


@torch.no_grad()
def sensitize(model) -> None:
    """Unit-variance random weights (std 1/sqrt(fan_in)) instead of the tiny builders' 0.02: with those the LLM is
    nearly blind to its input (swapping visual tokens moved the logits by ~1e-4, the test's own tolerance); now a
    wrong prompt moves them by 1e-2 and more (see the controls)."""
    g = torch.Generator().manual_seed(1234)
    for p in model.parameters():
        if p.dim() >= 2:
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))


def ingest(f: Family, reducer: str, budget: int) -> Ingested:
    """The generated video through the product's ingest pipeline into a bank on disk (float32 carriers)."""
    key = (reducer, budget)
    if key not in f.banks:
        bank = MemoryBank(f.video + f".{reducer}{budget}.bank")
        clips = []
        pipe = IngestPipeline(open_source(f.video, fps=FPS), bank, f.ad, stream_id="cam",
                              config=IngestConfig(fps=FPS, budget=budget, reducer=reducer, scene_cut=None,
                                                  carrier_dtype="float32"),
                              on_clip=lambda mid, clip: clips.append((mid, clip)))
        pipe.run()
        assert len(clips) == int(SECONDS * FPS) // 4 and all(len(c.frames) == 4 for _, c in clips), \
            [(c.t0, c.t1, len(c.frames)) for _, c in clips]
        f.banks[key] = Ingested(bank, clips, Profile(name="tiny", encoder=f.ad, answerer=f.ad))
    return f.banks[key]


def views_of(ing: Ingested) -> list:
    """The ask path's memory views of every memory (carriers loaded from the shards and converted there)."""
    return memory_views(ing.bank, ing.profile, ing.bank.get([mid for mid, _ in ing.clips]))


def chat_text(tok, blocks: list[str]) -> str:
    """The conversation our adapter asks: system prompt, then each memory's timestamp line and its vision block."""
    user = "Video memories, in time order:\n" + "\n".join(blocks) + f"\nQuestion: {QUESTION}"
    return tok.apply_chat_template([{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}],
                                   tokenize=False, add_generation_prompt=True)


def _frames(clip) -> list[np.ndarray]:
    return [fr.image for fr in clip.frames]


# ------------------------------------------------------------------------------------------------ native inputs
def native_qwen(f: Family, clips) -> tuple[torch.Tensor, dict]:
    from transformers import Qwen2VLImageProcessorPil
    from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor

    cfg = f.ad.config
    p, m, tp = cfg.vision_config.patch_size, cfg.vision_config.spatial_merge_size, cfg.vision_config.temporal_patch_size
    # the checkpoint's own preprocessor config (mean/std, patch/merge), one frame per temporal patch
    ip = Qwen2VLImageProcessorPil.from_pretrained(f.model_dir, temporal_patch_size=1)
    proc = Qwen2_5_VLProcessor if cfg.model_type == "qwen2_5_vl" else Qwen2VLProcessor
    stub = SimpleNamespace(video_processor=SimpleNamespace(merge_size=m), video_token="<|video_pad|>")
    pixels, grids, blocks = [], [], []
    for i, (_, clip) in enumerate(clips):
        out = ip(images=_frames(clip), return_tensors="pt")
        T = len(clip.frames)
        assert T % tp == 0 and out["image_grid_thw"][:, 0].eq(1).all()
        gh, gw = (int(v) for v in out["image_grid_thw"][0, 1:])
        assert (gh * p, gw * p) == SIZE[f.fam]          # the resize was a no-op
        n = gh * gw
        # [T·n, C·p·p] per-frame patches -> [T/tp·n, C·tp·p·p]: frame pairs on the temporal-patch axis
        x = out["pixel_values"].view(T // tp, tp, n, 3, p * p).permute(0, 2, 3, 1, 4).reshape(T // tp * n, -1)
        pixels.append(x)
        grids.append([T // tp, gh, gw])
        block = proc.replace_video_token(stub, {"video_grid_thw": torch.tensor(grids)}, i)
        blocks.append(f"{timestamp_line(clip.t0, clip.t1)}\n<|vision_start|>{block}<|vision_end|>")
    ids = f.ad.tokenizer(chat_text(f.ad.tokenizer, blocks), add_special_tokens=False, return_tensors="pt")["input_ids"]
    kw = dict(pixel_values_videos=torch.cat(pixels), video_grid_thw=torch.tensor(grids),
              mm_token_type_ids=(ids == cfg.video_token_id).int() * 2)   # text 0, image 1, video 2
    if cfg.model_type == "qwen2_5_vl":
        kw["second_per_grid_ts"] = torch.tensor([tp / FPS] * len(clips))
    return ids, kw


def native_llava_ov(f: Family, clips) -> tuple[torch.Tensor, dict]:
    from transformers import LlavaOnevisionImageProcessorPil, LlavaOnevisionProcessor

    vc = f.ad.config.vision_config
    S = vc.image_size
    ip = LlavaOnevisionImageProcessorPil.from_pretrained(f.model_dir, size={"height": S, "width": S},
                                                         image_grid_pinpoints=[[S, S]], do_pad=False)
    stub = SimpleNamespace(num_image_tokens=(S // vc.patch_size) ** 2, video_token="<video>")
    videos = torch.stack([ip(images=_frames(c), return_tensors="pt")["pixel_values"][:, 0] for _, c in clips])
    blocks = [f"{timestamp_line(c.t0, c.t1)}\n"
              + LlavaOnevisionProcessor.replace_video_token(stub, {"pixel_values_videos": videos}, i)
              for i, (_, c) in enumerate(clips)]
    ids = f.ad.tokenizer(chat_text(f.ad.tokenizer, blocks), add_special_tokens=False, return_tensors="pt")["input_ids"]
    return ids, dict(pixel_values_videos=videos)


def native_smol(f: Family, clips) -> tuple[torch.Tensor, dict]:
    from transformers import (Idefics3ImageProcessorPil, Idefics3Processor, SmolVLMImageProcessorPil)
    from transformers.models.smolvlm.processing_smolvlm import get_image_prompt_string

    cfg = f.ad.config
    S = cfg.vision_config.image_size
    seq_len = int((S // cfg.vision_config.patch_size) ** 2 / cfg.scale_factor ** 2)
    images = [im for _, c in clips for im in _frames(c)]
    blocks = [f"{timestamp_line(c.t0, c.t1)}\n" + "<image>" * len(c.frames) for _, c in clips]
    text = chat_text(f.ad.tokenizer, blocks)
    kw = dict(do_image_splitting=False, size={"longest_edge": S}, max_image_size={"longest_edge": S})
    if cfg.model_type == "idefics3":
        proc = Idefics3Processor(image_processor=Idefics3ImageProcessorPil(**kw), tokenizer=f.ad.tokenizer,
                                 image_seq_len=seq_len)
        out = proc(text=[text], images=[images], return_tensors="pt", add_special_tokens=False)
        ids = out["input_ids"]
    else:  # SmolVLMProcessor needs num2words (not installed): its own prompt function, its own image processor
        out = SmolVLMImageProcessorPil(**kw)(images=[images], return_tensors="pt")
        one = get_image_prompt_string(0, 0, seq_len, fake_token_around_image="<fake_token_around_image>",
                                      image_token="<image>", global_image_token="<global-img>")
        ids = f.ad.tokenizer(text.replace("<image>", one), add_special_tokens=False, return_tensors="pt")["input_ids"]
    assert tuple(out["pixel_values"].shape[-2:]) == SIZE[f.fam] and out["pixel_values"].shape[1] == len(images)
    return ids, dict(pixel_values=out["pixel_values"], pixel_attention_mask=out["pixel_attention_mask"])


NATIVE = {"qwen2_5_vl": native_qwen, "qwen2_vl": native_qwen, "llava_onevision": native_llava_ov,
          "smolvlm": native_smol, "idefics3": native_smol}


def native_full(f: Family) -> dict:
    """Native inputs, positions and first-token logits for the full-token bank's clips (cached per family)."""
    if not f.native:
        ing = ingest(f, "pool2d", FULL)
        ids, kw = NATIVE[f.fam](f, ing.clips)
        seen = {}

        def grab(mod, args, kwargs):  # what the native forward hands its language model
            seen["embeds"], seen["pos"] = kwargs["inputs_embeds"].clone(), kwargs.get("position_ids")

        hook = f.ad.language_model().register_forward_pre_hook(grab, with_kwargs=True)
        try:
            with torch.inference_mode():
                logits = f.ad.model(input_ids=ids, **kw).logits[0, -1].float()
        finally:
            hook.remove()
        pos = None
        if f.ad.uses_mrope:
            m = f.ad.model.model
            rk = {k: v for k, v in kw.items() if k in inspect.signature(m.get_rope_index).parameters}
            pos, _ = m.get_rope_index(ids, **rk)
        if pos is not None:
            assert torch.equal(seen["pos"], pos)
        else:
            assert seen["pos"] is None  # the language model counts 0..L-1
        f.native.update(ids=ids, kw=kw, logits=logits, pos=pos, embeds=seen["embeds"],
                        clips=[(c.t0, c.t1) for _, c in ing.clips])
    return f.native


def our_logits(ad, prep, embeds=None, position_ids=None) -> torch.Tensor:
    """Last-position logits of the model's own forward on our prompt embeddings and position ids."""
    with torch.inference_mode():
        out = ad.model(inputs_embeds=prep.inputs_embeds if embeds is None else embeds,
                       position_ids=prep.position_ids if position_ids is None else position_ids, use_cache=False)
    return out.logits[0, -1].float()


def visual_slots(ad, ids: torch.Tensor) -> torch.Tensor:
    """Prompt indices of the carrier tokens (placeholders; LLaVA-OV's last placeholder per block is its newline)."""
    ph = ad.tokenizer.convert_tokens_to_ids(ad.placeholder_token)
    at = (ids == ph).nonzero().flatten()
    if ad.family == "llava_onevision":
        ends = torch.cat([at[1:] != at[:-1] + 1, torch.tensor([True])])   # last placeholder of each run
        at = at[~ends]
    return at


def block_starts(ad, ids: torch.Tensor) -> list[int]:
    """Index of the first token of each memory's vision block."""
    first = {"qwen": "<|vision_start|>", "llava_onevision": "<video>", "smolvlm": "<fake_token_around_image>"}[ad.family]
    at = (ids == ad.tokenizer.convert_tokens_to_ids(first)).nonzero().flatten().tolist()
    if ad.family == "qwen":
        return at
    # a block is a run of vision tokens; a new one starts after text
    vis = {ad.tokenizer.convert_tokens_to_ids(t) for t in
           ("<video>", "<image>", "<fake_token_around_image>", "<global-img>")}
    return [i for i in at if int(ids[i - 1]) not in vis]


# ------------------------------------------------------------------------------------------------ full tokens
@pytest.mark.parametrize("fam", FAMILIES)
def test_full_tokens_match_native_forward(families, fam):
    """Bank -> memory_views -> build_inputs gives the model's native prompt, positions and first-token logits."""
    f = families(fam)
    ad = f.ad
    ing = ingest(f, "pool2d", FULL)
    views = views_of(ing)
    # no reduction: each stored carrier is the encoder's whole token grid, unchanged and in (t, y, x) order
    for (mid, clip), v in zip(ing.clips, views):
        g = ad.encode(_frames(clip))
        assert v.memory_id == mid and v.carrier.tokens.dtype == torch.float32
        assert torch.equal(v.carrier.tokens, g.tokens.reshape(-1, g.D))
        assert v.carrier.M == g.T * g.N
    nat = native_full(f)
    prep = ad.build_inputs(QUESTION, views)
    # the prompt: the family's native placeholder layout (and the same text around it)
    assert prep.input_ids.shape == nat["ids"].shape, (prep.debug["text"], ad.tokenizer.decode(nat["ids"][0]))
    assert torch.equal(prep.input_ids, nat["ids"])
    if ad.uses_mrope:  # the 3D rope ids transformers computes for the video blocks and the text around them
        assert torch.equal(prep.position_ids, nat["pos"])
    else:
        assert torch.equal(prep.position_ids.view(-1), torch.arange(prep.input_ids.shape[1]))
    # the language model's input: our spliced carrier embeddings equal the native vision features at every position
    assert torch.allclose(prep.inputs_embeds, nat["embeds"], atol=1e-5, rtol=1e-5), \
        (prep.inputs_embeds - nat["embeds"]).abs().max()
    ours = our_logits(ad, prep)
    assert torch.allclose(ours, nat["logits"], atol=ATOL, rtol=RTOL), (ours - nat["logits"]).abs().max()
    # the product's decoder starts its answer with the native model's greedy token
    first = ad.generate_ids(prep, max_new_tokens=1, min_new_tokens=1)
    want = nat["logits"].clone()
    want[list(ad._stop_ids)] = -float("inf")
    assert first == [int(want.argmax())]

    # controls: the tolerance catches carrier tokens out of order, and (Qwen) 1D instead of 3D positions
    at = visual_slots(ad, prep.input_ids[0])
    shuffled = prep.inputs_embeds.clone()
    shuffled[0, at] = prep.inputs_embeds[0, at.roll(1)]
    assert not torch.allclose(our_logits(ad, prep, embeds=shuffled), nat["logits"], atol=ATOL, rtol=RTOL)
    if ad.uses_mrope:
        flat = torch.arange(prep.input_ids.shape[1]).view(1, 1, -1).expand(3, 1, -1)
        assert not torch.allclose(our_logits(ad, prep, position_ids=flat), nat["logits"], atol=ATOL, rtol=RTOL)


# ------------------------------------------------------------------------------------------------ reduced tokens
@pytest.mark.parametrize("reducer", sorted(REDUCED))
@pytest.mark.parametrize("fam", FAMILIES)
def test_reduced_tokens_are_the_stored_carriers(families, fam, reducer):
    """Through ask(): the visual embeddings are exactly the stored carriers, in order; Qwen's kept tokens sit at the
    native ids of the patches they stand for; each block follows its citation's timestamp line."""
    f = families(fam)
    ad = f.ad
    budget = REDUCED[reducer]
    ing = ingest(f, reducer, budget)
    bank = ing.bank
    answer, cites = ask(bank, ing.profile, QUESTION, k=len(ing.clips), image=_frames(ing.clips[0][1])[0],
                        max_new_tokens=1, min_new_tokens=1)
    assert "".join(answer) and answer.answered
    assert [c["id"] for c in cites] == [mid for mid, _ in ing.clips]
    stored = [to_carrier(bank.carrier(c["id"])) for c in cites]
    assert all(0 < s.M <= budget for s in stored) and sum(s.M for s in stored) < sum(
        v.carrier.M for v in views_of(ingest(f, "pool2d", FULL)))
    # stored = the reducer's output on our encoder's tokens of those frames, bit for bit (float32 storage)
    reduce, state = get_reducer(reducer), None
    for (_, clip), s in zip(ing.clips, stored):
        g = ad.encode(_frames(clip))
        g.times = torch.tensor([fr.t for fr in clip.frames])
        c, state = reduce(g, budget, state=state)
        c = c.time_order()
        assert torch.equal(s.tokens, c.tokens) and torch.equal(s.pos, c.pos)
    # the prompt the ask path built, rebuilt from the same views: placeholders hold exactly the stored tokens
    dbg = ad.prompt_debug
    prep = ad.build_inputs(QUESTION, memory_views(bank, ing.profile, bank.get([c["id"] for c in cites])))
    ids = prep.input_ids[0]
    assert torch.equal(prep.input_ids, dbg["input_ids"]) and dbg["placeholders"] == [s.M for s in stored]
    at = visual_slots(ad, ids)
    assert torch.equal(prep.inputs_embeds[0, at], torch.cat([s.tokens for s in stored]))
    assert [c["tokens"] for c in cites] == [s.M for s in stored]
    if ad.family == "llava_onevision":   # one image_newline after each memory's tokens, as natively per video
        ph = ad.tokenizer.convert_tokens_to_ids("<video>")
        nl = sorted(set((ids == ph).nonzero().flatten().tolist()) - set(at.tolist()))
        assert len(nl) == len(stored)
        assert torch.equal(prep.inputs_embeds[0, nl], ad.model.model.image_newline.detach().expand(len(nl), -1))
    # each vision block comes right after its citation's timestamp line
    starts = block_starts(ad, ids)
    assert len(starts) == len(cites)
    prev = 0
    for c, s0 in zip(cites, starts):
        before = ad.tokenizer.decode(ids[prev:s0])
        assert before.endswith(timestamp_line(c["start"], c["end"]) + "\n"), before
        prev = s0
    # Qwen: kept token (t, y, x) gets the native 3D ids of patch (t, y, x) in the full-token prompt, relative to the
    # block start (native: the video's tokens are t-major, then rows, then columns)
    if ad.uses_mrope:
        nat = native_full(f)
        assert nat["clips"] == [(c.t0, c.t1) for _, c in ing.clips]
        g = ad.encode(_frames(ing.clips[0][1]))
        w, N = g.hw[1], g.N
        n_ids = nat["ids"][0]
        nat_vid = (n_ids == ad.video_id).nonzero().flatten()
        nat_starts = block_starts(ad, n_ids)
        P, NP = prep.position_ids[:, 0], nat["pos"][:, 0]
        k = 0
        for b, s in enumerate(stored):
            ours_s = int(P[0, starts[b]]) + 1                      # first id after our <|vision_start|>
            nat_s = int(NP[0, nat_starts[b]]) + 1
            first_vid = int(nat_vid[b * g.T * N])
            flat = first_vid + s.pos[:, 0] * N + s.pos[:, 1] * w + s.pos[:, 2]
            assert torch.equal(P[:, at[k:k + s.M]] - ours_s, NP[:, flat] - nat_s), (b, s.pos)
            k += s.M
