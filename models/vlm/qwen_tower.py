"""Batched forward of transformers' Qwen2.5-VL / Qwen2-VL vision tower: one attention call per layer.

transformers' tower (with SDPA or eager attention) splits every layer's packed sequence at `cu_seqlens` and runs
one attention per piece: for Qwen2.5-VL's windowed layers that is one call per 8×8-patch window (1,024 windows per
layer for 128 frames at 392×392), so the tower is bound by Python and kernel launches. This module computes the
same function with the loaded tower's own modules and weights (no copies):

* patch embedding as one matmul with the Conv3d weight viewed as [D, C·tp·p·p] (the conv's stride equals its
  kernel, so it is the same product);
* the same window order (transformers' own `get_vision_window_index`), the same 2D rotary angles, the same blocks
  (`norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp` called as modules);
* attention over all windows (or all time steps, for full-attention layers) in ONE call: on CUDA in fp16/bf16
  through torch's variable-length flash attention (`torch.nn.attention.varlen.varlen_attn`, cu_seqlens as
  transformers would pass to flash-attn); elsewhere SDPA on the sequences gathered into a padded
  [S, max_len] batch with a key mask (a plain reshape when all sequences have one length);
* the merger, then the inverse window order, as transformers does.

Forward pre-hooks registered on a block's attention module run with the same inputs transformers' forward gives
them (normed hidden states in window order, `cu_seqlens`, `position_embeddings`), so instrumentation such as the
Qwen adapter's saliency hook keeps working; a tower whose attention modules carry forward (post) hooks, or whose
layout differs from the one described here, is not `supported` and callers use transformers' forward.
"""
from __future__ import annotations

import functools
import inspect
import logging
import weakref
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)
_VARLEN_ERROR: list[str] = []   # the first error the variable-length kernel raised (then SDPA is used)


@dataclass(frozen=True)
class Segments:
    """Packed sequences of one attention pattern. cu [S+1] int32 on the device; index/valid [S, max_len] (padded
    gather index into the packed tokens and its mask), None when every sequence has length max_len."""
    cu: torch.Tensor
    max_len: int
    index: Optional[torch.Tensor]
    valid: Optional[torch.Tensor]


@dataclass(frozen=True)
class Layout:
    """Per-call layout. order [U] merge-unit permutation into window order (None: identity, Qwen2-VL);
    restore [U] its inverse; window/full: the two attention patterns over tokens in window order."""
    order: Optional[torch.Tensor]
    restore: Optional[torch.Tensor]
    window: Segments
    full: Segments


# ------------------------------------------------------------------------------------------ capability
def supported(vis: nn.Module) -> bool:
    """True when `vis` is a Qwen2-VL / Qwen2.5-VL vision tower laid out as this module expects."""
    try:
        blocks = list(vis.blocks)
        pe = vis.patch_embed.proj
        ok = (isinstance(pe, nn.Conv3d) and tuple(pe.kernel_size) == tuple(pe.stride) and pe.padding == (0, 0, 0)
              and vis.rotary_pos_emb.inv_freq is not None and vis.merger is not None and len(blocks) > 0)
        for b in blocks:
            a = b.attn
            ok = ok and isinstance(a.qkv, nn.Linear) and isinstance(a.proj, nn.Linear) and int(a.num_heads) > 0
            ok = ok and not a._forward_hooks and b.norm1 is not None and b.norm2 is not None and b.mlp is not None
        if hasattr(vis, "window_size"):
            ok = ok and _window_index_fn(vis) is not None and vis.fullatt_block_indexes is not None
        return bool(ok)
    except AttributeError:
        return False


def _window_index_fn(vis: nn.Module):
    """transformers' window index function for this tower: grid_thw [B, 3] -> (unit order [U], cu_window [W+1])."""
    import sys
    mod = sys.modules.get(type(vis).__module__)
    fn = getattr(mod, "get_vision_window_index", None)
    if fn is not None:
        return lambda g: fn(g, spatial_merge_size=vis.spatial_merge_size, window_size=vis.window_size,
                            patch_size=vis.patch_size)
    return getattr(vis, "get_window_index", None)   # transformers 4.x


# ------------------------------------------------------------------------------------------ layout
def segments(lengths: list[int], device: torch.device) -> Segments:
    """Sequence lengths [S] (zeros dropped) -> Segments on `device`."""
    lens = torch.tensor([n for n in lengths if n > 0], dtype=torch.long)
    cu = F.pad(lens.cumsum(0), (1, 0))
    L = int(lens.max())
    if bool((lens == L).all()):
        return Segments(cu.to(device, torch.int32), L, None, None)
    ar = torch.arange(L)
    valid = ar[None, :] < lens[:, None]
    index = torch.where(valid, cu[:-1, None] + ar[None, :], torch.zeros((), dtype=torch.long))
    return Segments(cu.to(device, torch.int32), L, index.to(device), valid.to(device))


_LAYOUTS: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()   # tower -> key -> Layout


def layout(vis: nn.Module, grid: list[list[int]], device: torch.device) -> Layout:
    """grid [[t, h, w], ...] in patches -> Layout (window order and both attention patterns)."""
    key = (tuple(map(tuple, grid)), str(device))
    cache = _LAYOUTS.setdefault(vis, {})
    if key in cache:
        return cache[key]
    unit = int(vis.spatial_merge_size) ** 2
    full = segments([h * w for t, h, w in grid for _ in range(t)], device)
    order = restore = None
    window = full
    if hasattr(vis, "window_size"):
        g = torch.tensor(grid, dtype=torch.long)
        wi, cu_w = _window_index_fn(vis)(g)
        order = wi.to(device=device, dtype=torch.long)
        restore = torch.argsort(order)
        cu_w = torch.unique_consecutive(torch.as_tensor(cu_w, dtype=torch.long).cpu())
        window = segments((cu_w[1:] - cu_w[:-1]).tolist(), device)
        assert int(cu_w[-1]) == order.numel() * unit
    out = Layout(order, restore, window, full)
    if len(cache) >= 16:
        cache.clear()
    cache[key] = out
    return out


def rotary(vis: nn.Module, grid: list[list[int]], order: Optional[torch.Tensor], device: torch.device
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) [N, head_dim] float32 in window order: axial (h, w) angles of each patch, with patches listed
    merge-block-major (block row, block col, row in block, col in block) and repeated over t, as the tower does."""
    m = int(vis.spatial_merge_size)
    rot = vis.rotary_pos_emb
    inv = rot.inv_freq.to(device=device, dtype=torch.float32)
    pos = []
    for t, h, w in grid:
        hh = torch.arange(h, device=device).view(h // m, m, 1, 1).expand(h // m, m, w // m, m)
        ww = torch.arange(w, device=device).view(1, 1, w // m, m).expand(h // m, m, w // m, m)
        hw = torch.stack([hh.permute(0, 2, 1, 3).reshape(-1), ww.permute(0, 2, 1, 3).reshape(-1)], -1)
        pos.append(hw.repeat(t, 1))
    pos = torch.cat(pos)                                              # [N, 2]
    freqs = (pos[..., None].float() * inv).flatten(1)                 # [N, head_dim/2]: h angles, then w angles
    if order is not None:
        unit = m * m
        freqs = freqs.view(-1, unit, freqs.shape[-1])[order].flatten(0, 1)
    emb = torch.cat([freqs, freqs], -1)
    scale = float(getattr(rot, "attention_scaling", 1.0) or 1.0)
    return emb.cos() * scale, emb.sin() * scale


# ------------------------------------------------------------------------------------------ attention
def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [L, H, d] rotated in float32 by cos/sin [L, d] (each two equal halves, as the tower builds them), back in
    x's dtype: x·cos + rotate_half(x)·sin, as apply_rotary_pos_emb_vision computes it, in fewer passes."""
    xf = x.float()
    h = xf.shape[-1] // 2
    s = sin[:, None, :h]
    out = xf * cos[:, None]
    out[..., :h].addcmul_(xf[..., h:], s, value=-1.0)
    out[..., h:].addcmul_(xf[..., :h], s)
    return out.to(x.dtype)


def _norm(mod: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """mod(x). transformers' RMSNorm (x in fp32 · rsqrt(mean(x²) + eps), back to x's dtype, times the weight) runs
    as torch's rms_norm (which upcasts the same way) and one multiply instead of its six passes."""
    eps = getattr(mod, "variance_epsilon", None)
    if eps is None or not type(mod).__name__.endswith("RMSNorm") or not isinstance(mod.weight, torch.Tensor):
        return mod(x)
    return mod.weight * F.rms_norm(x, (x.shape[-1],), None, eps)


@functools.lru_cache(maxsize=1)
def _varlen():
    """(torch's varlen_attn or None, whether it takes `scale`: torch 2.10's does not, later ones do)."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None, False
    return varlen_attn, "scale" in inspect.signature(varlen_attn).parameters


def _use_varlen(q: torch.Tensor, scale: float) -> bool:
    fn, takes_scale = _varlen()
    return (fn is not None and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) and not _VARLEN_ERROR
            and (takes_scale or abs(scale - q.shape[-1] ** -0.5) < 1e-9))


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, seg: Segments, scale: float) -> torch.Tensor:
    """q, k, v [L, H, d] packed -> [L, H, d]: softmax attention within each sequence of `seg`, none across."""
    if _use_varlen(q, scale):
        fn, takes_scale = _varlen()
        try:
            return fn(q.contiguous(), k.contiguous(), v.contiguous(), seg.cu, seg.cu, seg.max_len, seg.max_len,
                      **({"scale": scale} if takes_scale else {}))
        except (RuntimeError, TypeError, ValueError, NotImplementedError) as e:
            _VARLEN_ERROR.append(f"{type(e).__name__}: {e}"[:300])
            log.warning("varlen attention unavailable, using padded SDPA: %s", _VARLEN_ERROR[0])
    L, H, d = q.shape
    S = seg.cu.numel() - 1
    if seg.index is None:   # all sequences have length max_len: a reshape
        qb, kb, vb = (x.reshape(S, seg.max_len, H, d).transpose(1, 2) for x in (q, k, v))
        o = F.scaled_dot_product_attention(qb, kb, vb, scale=scale)
        return o.transpose(1, 2).reshape(L, H, d)
    qb, kb, vb = (x[seg.index].transpose(1, 2) for x in (q, k, v))     # [S, H, max_len, d]
    o = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=seg.valid[:, None, None, :], scale=scale)
    return o.transpose(1, 2)[seg.valid]


def attention_backend(device: torch.device, dtype: torch.dtype) -> str:
    """Which attention `attend` uses for this device/dtype (for benchmarks and notes)."""
    if device.type == "cuda" and dtype in (torch.float16, torch.bfloat16) and _varlen()[0] is not None \
            and not _VARLEN_ERROR:
        return "varlen flash attention (torch.nn.attention.varlen)"
    return "SDPA over padded sequences" + (f" (varlen failed: {_VARLEN_ERROR[0]})" if _VARLEN_ERROR else "")


def _pre_hooks(mod: nn.Module, x: torch.Tensor, kwargs: dict) -> torch.Tensor:
    """Run `mod`'s forward pre-hooks as its own forward would (x its first positional argument)."""
    for hid, hook in list(mod._forward_pre_hooks.items()):
        if hid in mod._forward_pre_hooks_with_kwargs:
            r = hook(mod, (x,), kwargs)
            if r is not None:
                x = r[0][0]
        else:
            r = hook(mod, (x,))
            if r is not None:
                x = r[0] if isinstance(r, tuple) else r
    return x


def block(blk: nn.Module, h: torch.Tensor, seg: Segments, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """One vision block on packed hidden states h [L, D] (window order) -> [L, D]."""
    a = blk.attn
    x = _norm(blk.norm1, h)
    if a._forward_pre_hooks:
        x = _pre_hooks(a, x, {"cu_seqlens": seg.cu, "position_embeddings": rope, "max_seqlen": seg.max_len})
    L = x.shape[0]
    H = int(a.num_heads)
    q, k, v = a.qkv(x).view(L, 3, H, -1).unbind(1)
    cos, sin = rope
    q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
    scale = float(getattr(a, "scaling", None) or q.shape[-1] ** -0.5)
    h = h + a.proj(attend(q, k, v, seg, scale).reshape(L, -1))
    return h + blk.mlp(_norm(blk.norm2, h))


# ------------------------------------------------------------------------------------------ forward
def embed(vis: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """pixels [N, C·tp·p·p] -> [N, D]: the Conv3d patch embedding as one matmul with its own weight."""
    w = vis.patch_embed.proj.weight
    b = vis.patch_embed.proj.bias
    return F.linear(pixels.to(w.dtype), w.view(w.shape[0], -1), b)


def forward(vis: nn.Module, pixels: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
    """pixels [N, C·tp·p·p] (patches in the processors' order), grid_thw [B, 3] (t, h, w in patches)
    -> merged features [N / merge², out_dim] in grid order: what transformers' tower returns as pooler_output
    (concatenated over the B entries)."""
    grid = [[int(v) for v in row] for row in grid_thw.tolist()]
    dev = pixels.device
    lay = layout(vis, grid, dev)
    unit = int(vis.spatial_merge_size) ** 2
    h = embed(vis, pixels)
    if lay.order is not None:
        h = h.view(-1, unit, h.shape[-1])[lay.order].flatten(0, 1)
    rope = rotary(vis, grid, lay.order, dev)
    full = set(getattr(vis, "fullatt_block_indexes", None) or []) if lay.order is not None else None
    for i, blk in enumerate(vis.blocks):
        seg = lay.full if full is None or i in full else lay.window
        h = block(blk, h, seg, rope)
    out = vis.merger(h)
    return out if lay.restore is None else out[lay.restore]
