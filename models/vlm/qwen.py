"""Qwen2.5-VL and Qwen2-VL.

Encode: frames are resized to multiples of 28 (patch 14 × merger 2) inside [min_pixels, max_pixels]
(default max 392×392 → 14×14 = 196 tokens per time step), patchified exactly as transformers'
Qwen2-VL video processor does (temporal patch 2), and run through the model's own vision tower
and 2×2 patch merger (`get_video_features`), so tokens are in the LLM input space.
T frames → ceil(T/2) time steps (t of the TokenGrid = frame pair index); grid hw is the merged grid.

Saliency: the mean attention each merged token *receives* in the last full-attention block of the
vision tower (averaged over heads and queries, summed over the 2×2 patches a merged token covers),
captured by a forward pre-hook on that block's attention. Qwen's tower has no [CLS]. When the
installed transformers lays the block out differently, saliency is None (reducers fall back).

Answer: each memory becomes `<|vision_start|><|video_pad|>×M<|vision_end|>` and the M carrier
tokens go into the placeholder embeddings. 3D rotary position ids come from the kept tokens'
(t, y, x): a block starting at text position s gives token (t, y, x) the ids
(s + ⌊t·interval⌋, s + y, s + x), with interval = tokens_per_second · seconds per time step for
Qwen2.5-VL (absolute-time mRoPE) and 1 for Qwen2-VL; text after the block continues at max + 1,
as in the model's original `get_rope_index`.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from reducers.base import Carrier

from . import qwen_tower
from .common import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, VLMAdapter, norm_stats, read_json, resize_normalize


def smart_resize(h: int, w: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    hb = max(factor, round(h / factor) * factor)
    wb = max(factor, round(w / factor) * factor)
    if hb * wb > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        hb = max(factor, math.floor(h / beta / factor) * factor)
        wb = max(factor, math.floor(w / beta / factor) * factor)
    elif hb * wb < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        hb = math.ceil(h * beta / factor) * factor
        wb = math.ceil(w * beta / factor) * factor
    return hb, wb


def patchify(x: torch.Tensor, patch: int, tpatch: int, merge: int) -> tuple[torch.Tensor, list[int]]:
    """[T, C, H, W] normalized -> flattened patches [gt·gh·gw, C·tp·p·p] in the order the Qwen vision
    tower expects (merge windows contiguous), and grid (gt, gh, gw)."""
    T, C, H, W = x.shape
    if T % tpatch:
        x = torch.cat([x, x[-1:].expand(tpatch - T % tpatch, -1, -1, -1)], 0)
    gt, gh, gw = x.shape[0] // tpatch, H // patch, W // patch
    x = x.reshape(gt, tpatch, C, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(gt * gh * gw, C * tpatch * patch * patch), [gt, gh, gw]


class QwenVLAdapter(VLMAdapter):
    family = "qwen"
    placeholder_token = "<|video_pad|>"
    temporal_patch = 2
    uses_mrope = True
    batched_tower = True   # encode through models/vlm/qwen_tower.py (False: transformers' own tower forward)

    def __init__(self, *a, max_pixels: Optional[int] = None, min_pixels: Optional[int] = None, **kw):
        super().__init__(*a, **kw)
        vc = self.config.vision_config
        self.patch = int(vc.patch_size)
        self.merge = int(vc.spatial_merge_size)
        self.temporal_patch = int(getattr(vc, "temporal_patch_size", 2))
        pp = read_json(self.model_dir, "preprocessor_config.json")
        vp = read_json(self.model_dir, "video_preprocessor_config.json") or pp
        self.mean, self.std = norm_stats(vp, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)
        f = self.patch * self.merge
        self.min_pixels = min_pixels or 4 * f * f
        self.max_pixels = max_pixels or 392 * 392
        self.is_25 = self.config.model_type == "qwen2_5_vl"
        self.tokens_per_second = float(getattr(vc, "tokens_per_second", 2) or 2)
        tok = self.tokenizer
        self.vs_id = int(getattr(self.config, "vision_start_token_id", tok.convert_tokens_to_ids("<|vision_start|>")))
        self.ve_id = int(getattr(self.config, "vision_end_token_id", tok.convert_tokens_to_ids("<|vision_end|>")))
        self.video_id = int(getattr(self.config, "video_token_id", tok.convert_tokens_to_ids("<|video_pad|>")))
        self._sal = None
        self._hook_attn()

    # ---------------------------------------------------------------- saliency hook
    def _hook_attn(self):
        vis = self.model.model.visual
        full = list(getattr(vis, "fullatt_block_indexes", None) or [])
        idx = full[-1] if full else len(vis.blocks) - 1
        try:
            attn = vis.blocks[idx].attn
            attn.qkv, attn.num_heads  # noqa: B018 - layout check
        except AttributeError:
            return
        self._sal_layer_is_full = bool(full) or not hasattr(vis, "window_size")

        def pre(mod, args, kwargs):
            if not self.want_saliency or self._sal is not False:
                return
            try:
                hs = args[0] if args else kwargs["hidden_states"]
                cu = kwargs.get("cu_seqlens", args[1] if len(args) > 1 else None)
                pe = kwargs.get("position_embeddings")
                L = hs.shape[0]
                H = mod.num_heads
                qkv = mod.qkv(hs).reshape(L, 3, H, -1).permute(1, 0, 2, 3)
                q, k = qkv[0], qkv[1]
                if pe is not None:
                    cos, sin = pe
                    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as mq
                    q, k = mq.apply_rotary_pos_emb_vision(q, k, cos, sin)
                rec = torch.zeros(L, device=hs.device, dtype=torch.float32)
                bounds = cu.tolist() if cu is not None else [0, L]
                for a, b in zip(bounds[:-1], bounds[1:]):
                    qa, ka = q[a:b].transpose(0, 1).float(), k[a:b].transpose(0, 1).float()  # [H, n, d]
                    scale = getattr(mod, "scaling", None) or qa.shape[-1] ** -0.5
                    for c0 in range(0, b - a, 2048):
                        s = torch.softmax((qa[:, c0:c0 + 2048] @ ka.transpose(1, 2)) * scale, -1)
                        rec[a:b] += s.sum(dim=(0, 1)) / (H * (b - a))
                self._sal = rec
            except Exception:  # noqa: BLE001 - saliency is optional
                self._sal = None

        attn.register_forward_pre_hook(pre, with_kwargs=True)

    def _window_reverse(self, grid_thw: torch.Tensor) -> Optional[torch.Tensor]:
        """Permutation that undoes the vision tower's window ordering (None for Qwen2-VL: no windows)."""
        vis = self.model.model.visual
        if not hasattr(vis, "window_size"):
            return torch.arange(int(grid_thw.prod()) // (self.merge ** 2), device=grid_thw.device)
        try:
            from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as mq
            if hasattr(mq, "get_vision_window_index"):
                wi, _ = mq.get_vision_window_index(grid_thw, spatial_merge_size=self.merge,
                                                   window_size=vis.window_size, patch_size=self.patch)
            else:
                wi, _ = vis.get_window_index(grid_thw)
            return torch.argsort(wi.to(grid_thw.device))
        except Exception:  # noqa: BLE001
            return None

    # ---------------------------------------------------------------- encode
    def _encode_tokens(self, x):
        T, _, H, W = x.shape
        h, w = smart_resize(H, W, self.patch * self.merge, self.min_pixels, self.max_pixels)
        x = resize_normalize(x, (h, w), self.mean, self.std)
        flat, grid = patchify(x, self.patch, self.temporal_patch, self.merge)
        grid_thw = torch.tensor([grid], device=self.device)
        self._sal = False if self.want_saliency else None
        vis = self.model.model.visual
        if self.batched_tower and qwen_tower.supported(vis):   # same function, one attention call per layer
            feats = qwen_tower.forward(vis, flat.to(self.dtype), grid_thw)
        else:
            out = self.model.model.get_video_features(flat.to(self.dtype), grid_thw)
            po = out.pooler_output if hasattr(out, "pooler_output") else out[0] if isinstance(out, tuple) else out
            feats = torch.cat(list(po), 0) if isinstance(po, (list, tuple)) else po
        gt, gh, gw = grid
        mh, mw = gh // self.merge, gw // self.merge
        tokens = feats.reshape(gt, mh * mw, -1)
        sal = None
        if isinstance(self._sal, torch.Tensor) and self._sal.numel() == gt * gh * gw:
            rev = self._window_reverse(grid_thw)
            if rev is not None:
                unit = self._sal.view(-1, self.merge ** 2).sum(-1)   # per merged token, window order
                sal = unit[rev].view(gt, mh * mw)
        self._sal = None
        return tokens, (mh, mw), sal

    # ---------------------------------------------------------------- prompt
    def _vision_block(self, carrier: Carrier):
        return [self.vs_id] + [self.video_id] * carrier.M + [self.ve_id], 1, None

    def seconds_per_step(self, carrier: Carrier, t0: float, t1: float) -> float:
        steps = int(carrier.hi[:, 0].max()) + 1 if carrier.M else 1
        return max(1e-3, (t1 - t0) / max(1, steps))

    def _positions(self, segments, L):
        """[3, 1, L] rope ids: text 1D, each carrier (s + ⌊t·interval⌋, s + y, s + x); built in numpy."""
        P = np.empty((3, L), dtype=np.int64)
        cur = off = 0
        for seg in segments:
            if seg[0] == "text":
                n = len(seg[1])
                P[:, off:off + n] = np.arange(cur, cur + n)
                cur += n
                off += n
                continue
            ids, start, mem, pos, steps = seg[1], seg[2], seg[5], seg[6], seg[7]
            P[:, off] = cur  # vision_start is text
            cur += 1
            off += 1
            M = pos.shape[0]
            if self.is_25:
                interval = self.tokens_per_second * max(1e-3, (mem.t1 - mem.t0) / max(1, steps))
                tpos = (pos[:, 0].astype(np.float64) * interval).astype(np.int64)
            else:
                tpos = pos[:, 0]
            P[0, off:off + M] = tpos + cur
            P[1:, off:off + M] = pos[:, 1:].T + cur
            if M:
                cur = int(max(tpos.max(), pos[:, 1:].max())) + cur + 1
            off += M
            n_rest = len(ids) - start - M   # vision_end (+ anything after)
            P[:, off:off + n_rest] = np.arange(cur, cur + n_rest)
            cur += n_rest
            off += n_rest
        assert off == L, (off, L)
        return torch.from_numpy(P).to(self.device).view(3, 1, L), cur
