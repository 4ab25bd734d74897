"""The batched Qwen2.5-VL / Qwen2-VL vision tower (models/vlm/qwen_tower.py) against transformers' own tower.

Tiny random models built in code and loaded through save_pretrained + from_pretrained (SDPA, as the product loads
them), with unit-variance weights (std 1/sqrt(fan_in)) so that attention is far from uniform and a wrong window,
order or rotary angle moves the output by orders of magnitude more than the tolerance (the controls show it).

* tower level: `qwen_tower.forward` equals `visual(pixels, grid_thw).pooler_output` in fp32 on the CPU (1e-5) for
  grids whose merged size is and is not a multiple of the window (window padding, windows of unequal length),
  several time steps, and several videos in one call; a Qwen2.5-VL config with the real window (112 px = 4×4
  merged units) and full-attention layers between windowed ones, and a Qwen2-VL config (all layers full).
* through the adapter: `encode` with the batched tower equals `encode` through transformers' forward (tokens and
  saliency) for frame counts 1, 3, 4, 7 and frame sizes that need resizing and window padding; and a clip encoded
  in one call equals its frame pairs encoded one at a time.
* CUDA (when available): fp32 (SDPA over padded windows) at 1e-4, and bf16 through the varlen flash kernel:
  its error against an fp32 reference is no larger than transformers' own bf16 tower's.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.vlm import load_vlm, qwen_tower
from tests.models import tiny

CUDA = torch.cuda.is_available()
DEVICES = ["cpu"] + (["cuda"] if CUDA else [])


@torch.no_grad()
def unit_weights(module: torch.nn.Module, seed: int = 1234) -> None:
    g = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        if p.dim() >= 2:
            p.copy_((torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel())).to(p.dtype))


def _save_load(model, path: str, cls):
    model.save_pretrained(path)
    return cls.from_pretrained(path, attn_implementation="sdpa", dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def towers(tmp_path_factory):
    """name -> the vision tower of a tiny model saved and loaded back (fp32, CPU, unit-variance weights)."""
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLConfig,
                              Qwen2VLForConditionalGeneration)
    text = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                num_key_value_heads=2, rope_scaling={"type": "mrope", "mrope_section": [2, 1, 1]})
    torch.manual_seed(0)
    c25 = Qwen2_5_VLConfig(text_config=text, vision_config=dict(
        depth=4, hidden_size=64, intermediate_size=96, num_heads=4, out_hidden_size=32, patch_size=14,
        spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[1, 3], in_channels=3))
    c2 = Qwen2VLConfig(text_config=text, vision_config=dict(
        depth=3, embed_dim=32, hidden_size=32, num_heads=4, mlp_ratio=2, patch_size=14, spatial_merge_size=2,
        temporal_patch_size=2, in_channels=3))
    out = {}
    for name, cfg, cls in (("qwen2_5_vl", c25, Qwen2_5_VLForConditionalGeneration),
                           ("qwen2_vl", c2, Qwen2VLForConditionalGeneration)):
        m = _save_load(cls(cfg), str(tmp_path_factory.mktemp(name)), cls)
        unit_weights(m.model.visual)
        out[name] = m.model.visual
    return out


def _pixels(grid: list[list[int]], seed: int, device="cpu", dtype=torch.float32) -> torch.Tensor:
    n = sum(t * h * w for t, h, w in grid)
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3 * 2 * 14 * 14, generator=g).to(device, dtype)


@torch.inference_mode()
def _both(vis, grid, seed=0, device="cpu", dtype=torch.float32):
    px = _pixels(grid, seed, device, dtype)
    g = torch.tensor(grid, device=device)
    return qwen_tower.forward(vis, px, g), vis(px, grid_thw=g).pooler_output


# merged grids (h/2 × w/2) against the 4×4-unit window: exact multiples (transformers adds an empty window
# that its cu_seqlens drop), remainders on one or both sides, one time step and several, several videos
GRIDS = [[[1, 8, 8]], [[1, 4, 6]], [[2, 14, 10]], [[3, 28, 28]], [[1, 2, 2]], [[2, 8, 8], [1, 6, 10], [3, 4, 4]]]


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: "+".join("x".join(map(str, r)) for r in g))
@pytest.mark.parametrize("name", ["qwen2_5_vl", "qwen2_vl"])
def test_tower_matches_transformers(towers, name, grid):
    vis = towers[name]
    assert qwen_tower.supported(vis)
    ours, ref = _both(vis, grid, seed=len(grid) * 7 + grid[0][1])
    units = sum(t * h * w for t, h, w in grid) // 4
    assert ours.shape == ref.shape == (units, 32)
    assert ref.abs().mean() > 0.1   # unit-variance weights: a real signal, not near-zero outputs
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_controls_window_layout_matters(towers):
    """The tolerance above tells layouts apart: full attention in the windowed layers, or the merged tokens left in
    window order, miss transformers' output by far more than 1e-5."""
    vis = towers["qwen2_5_vl"]
    grid = [[2, 14, 10]]
    _, ref = _both(vis, grid)
    keep = vis.fullatt_block_indexes
    try:
        vis.fullatt_block_indexes = list(range(len(vis.blocks)))
        qwen_tower._LAYOUTS.pop(vis, None)
        wrong, _ = _both(vis, grid)
    finally:
        vis.fullatt_block_indexes = keep
    assert (wrong - ref).abs().max() > 1e-2
    lay = qwen_tower.layout(vis, grid, torch.device("cpu"))
    ours, _ = _both(vis, grid)
    assert (ours[lay.order] - ref).abs().max() > 1e-2   # window order not undone
    assert lay.window.index is not None and lay.window.max_len == 64   # windows of unequal length: the padded path


def test_unsupported_tower_falls_back(towers):
    vis = towers["qwen2_5_vl"]
    h = vis.blocks[0].attn.register_forward_hook(lambda *a: None)
    try:
        assert not qwen_tower.supported(vis)
    finally:
        h.remove()
    assert qwen_tower.supported(vis)
    assert not qwen_tower.supported(torch.nn.Linear(2, 2))


# ------------------------------------------------------------------------------------------ through the adapter
@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """(family, device) -> the tiny model of tests/models/tiny.py loaded by load_vlm (fp32 on the CPU, bf16 on
    CUDA), with unit-variance vision weights (the same on every device)."""
    dirs, made = {}, {}

    def get(fam: str, device: str):
        if fam not in dirs:
            dirs[fam] = tiny.BUILDERS[fam](str(tmp_path_factory.mktemp(fam)))
        if (fam, device) not in made:
            ad = load_vlm(dirs[fam], device=device)
            unit_weights(ad.model.model.visual)
            made[(fam, device)] = ad
        return made[(fam, device)]
    return get


def _frames(n: int, hw: tuple[int, int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (hw[0], hw[1], 3), dtype=np.uint8) for _ in range(n)]


def _encode(ad, frames, batched: bool):
    keep = ad.batched_tower
    ad.batched_tower = batched
    try:
        return ad.encode(frames)
    finally:
        ad.batched_tower = keep


def _close(ad, a: torch.Tensor, b: torch.Tensor) -> None:
    """fp32: allclose 1e-5; bf16 (CUDA): relative error under 3e-2."""
    if ad.dtype == torch.float32:
        torch.testing.assert_close(a.float(), b.float(), rtol=1e-5, atol=1e-5)
    else:
        assert _rel(a, b) < 3e-2, _rel(a, b)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


# (frames, size): 1 frame (repeated to a pair), odd counts, sizes at a multiple of 28 and not (resized), merged
# grids 2×3 (window 2×2: padding on w), 3×5 (both), 4×4 (exact)
CASES = [(1, (56, 84)), (3, (84, 140)), (4, (112, 112)), (7, (100, 130))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n,hw", CASES, ids=[f"{n}f-{h}x{w}" for n, (h, w) in CASES])
@pytest.mark.parametrize("fam", ["qwen2_5_vl", "qwen2_vl"])
def test_encode_batched_equals_transformers(adapters, fam, n, hw, device):
    ad = adapters(fam, device)
    frames = _frames(n, hw, seed=n)
    ours, ref = _encode(ad, frames, True), _encode(ad, frames, False)
    assert ours.tokens.shape == ref.tokens.shape and ours.hw == ref.hw
    assert ours.tokens.shape[0] == (n + 1) // 2
    assert ref.tokens.float().std() > 0.05
    _close(ad, ours.tokens, ref.tokens)
    assert ours.saliency is not None and ref.saliency is not None   # the saliency hook fired on both paths
    assert ours.saliency.shape == ref.saliency.shape == ours.tokens.shape[:2]
    _close(ad, ours.saliency, ref.saliency)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fam", ["qwen2_5_vl", "qwen2_vl"])
def test_encode_clip_equals_pairs_one_at_a_time(adapters, fam, device):
    ad = adapters(fam, device)
    frames = _frames(8, (84, 140), seed=3)
    whole = ad.encode(frames)
    parts = [ad.encode(frames[i:i + 2]) for i in range(0, 8, 2)]
    steps = torch.cat([p.tokens for p in parts])
    assert whole.tokens.shape == steps.shape == (4, 15, ad.hidden)
    _close(ad, whole.tokens, steps)
    # and a different pair order would not pass: steps differ from each other by far more than the tolerance
    assert (whole.tokens[0].float() - whole.tokens[1].float()).abs().max() > 0.1


# ------------------------------------------------------------------------------------------ CUDA
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_cuda_fp32_and_bf16(towers):
    import copy
    vis32 = copy.deepcopy(towers["qwen2_5_vl"]).cuda()
    keep = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False   # transformers' Conv3d too
    try:
        for grid in ([[3, 28, 28]], [[2, 8, 8], [1, 6, 10]]):
            ours, ref = _both(vis32, grid, device="cuda")
            torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
        vis16 = copy.deepcopy(vis32).to(torch.bfloat16)
        assert "varlen" in qwen_tower.attention_backend(torch.device("cuda"), torch.bfloat16)
        for grid in ([[8, 28, 28]], [[2, 14, 10], [1, 6, 10]]):
            px = _pixels(grid, 5, "cuda")
            g = torch.tensor(grid, device="cuda")
            with torch.inference_mode():
                exact = vis32(px, grid_thw=g).pooler_output
                ours = qwen_tower.forward(vis16, px.bfloat16(), g)
                ref = vis16(px.bfloat16(), grid_thw=g).pooler_output
            assert "varlen" in qwen_tower.attention_backend(torch.device("cuda"), torch.bfloat16)   # it did not fail
            e_ours, e_ref = _rel(ours, exact), _rel(ref, exact)
            assert e_ours < 3e-2 and e_ours <= 1.5 * e_ref + 2e-3, (e_ours, e_ref)
            assert _rel(ours, ref) < 3e-2
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = keep
