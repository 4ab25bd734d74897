"""LLaVA-OneVision (llava-hf checkpoints).

Encode: each frame is resized to the tower's image_size (384 for SigLIP-so400m) and normalized
with the checkpoint's mean/std (0.5/0.5 by default), then the model's own `get_video_features`
runs the SigLIP tower, takes `vision_feature_layer`, applies the projector and the 2×2 bilinear
video pooling (27×27 → 14×14 = 196 tokens per frame). The trailing `image_newline` it appends
for the whole video is dropped from the TokenGrid and re-added per memory at answer time.

Saliency: SigLIP has no [CLS]; we take the mean attention each patch *receives* in the selected
layer (heads and queries averaged), captured with a pre-hook on that layer's attention, then
pooled to the 14×14 grid with the same bilinear resize as the tokens.

Answer: one block of M + 1 `<video>` placeholders per memory: the M carrier tokens followed by
the model's `image_newline` embedding (the processor also counts frames·196 + 1 for a video).
Positions are plain 1D.
"""
from __future__ import annotations

import functools
import logging
import math

from typing import Optional

import torch
import torch.nn.functional as F

from reducers.base import Carrier

from .common import VLMAdapter, norm_stats, read_json, resize_normalize

log = logging.getLogger("vigil.vlm")


def siglip_received_attention(mod, hs: torch.Tensor, chunk: int = 8) -> torch.Tensor:
    """Mean attention each token receives ([B, N]) for a CLIP/SigLIP-style attention module."""
    B, N, C = hs.shape
    H = mod.num_heads
    d = C // H
    scale = getattr(mod, "scale", None) or getattr(mod, "scaling", None) or d ** -0.5
    out = []
    for i in range(0, B, chunk):
        h = hs[i:i + chunk]
        q = mod.q_proj(h).view(h.shape[0], N, H, d).transpose(1, 2)
        k = mod.k_proj(h).view(h.shape[0], N, H, d).transpose(1, 2)
        a = torch.softmax((q @ k.transpose(-1, -2)).float() * scale, -1)   # [b, H, N, N]
        out.append(a.mean(dim=(1, 2)))
    return torch.cat(out, 0)


class SaliencyHook:
    """Captures received attention of one attention module while `active`."""

    def __init__(self, attn_module):
        self.active = False
        self.value = None
        self.mod = attn_module
        attn_module.register_forward_pre_hook(self._pre, with_kwargs=True)

    def _pre(self, mod, args, kwargs):
        if not self.active:
            return
        try:
            hs = args[0] if args else kwargs["hidden_states"]
            self.value = siglip_received_attention(mod, hs)
        except Exception:  # noqa: BLE001 - saliency is optional
            self.value = None


def _layers_of(tower):
    vm = getattr(tower, "vision_model", tower)
    enc = getattr(vm, "encoder", None)
    return getattr(enc, "layers", None) if enc is not None else None


class LlavaOneVisionAdapter(VLMAdapter):
    family = "llava_onevision"
    placeholder_token = "<video>"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        vc = self.config.vision_config
        self.image_size = int(vc.image_size)
        self.patch = int(vc.patch_size)
        pp = read_json(self.model_dir, "video_preprocessor_config.json") or read_json(self.model_dir, "preprocessor_config.json")
        self.mean, self.std = norm_stats(pp)
        self.video_id = int(getattr(self.config, "video_token_id", None) or self.config.video_token_index)
        self._hook = None
        self._lean = None
        self._lean_inner = None    # the lean path as called: eager, or torch.compile'd
        self._graphs = None        # GraphedBatches over it (use_graphs)
        layers = _layers_of(self.model.model.vision_tower)
        layer = self.config.vision_feature_layer
        if layers is not None and isinstance(layer, int):
            try:
                self._hook = SaliencyHook(layers[layer].self_attn)
            except (AttributeError, IndexError):
                self._hook = None
        lay = self.config.vision_feature_layer
        vm = getattr(self.model.model.vision_tower, "vision_model", self.model.model.vision_tower)
        if layers is not None and isinstance(lay, int) and hasattr(vm, "embeddings"):
            self._lean = self._lean_features

    def _lean_features(self, px: torch.Tensor) -> torch.Tensor:
        """Tower layers up to `vision_feature_layer`, projector and 2×2 pooling, without collecting every
        layer's hidden states (what get_video_features does): [T, 3, S, S] -> [T, n, D]."""
        m = self.model.model
        vm = getattr(m.vision_tower, "vision_model", m.vision_tower)
        layers = vm.encoder.layers
        lay = self.config.vision_feature_layer
        n_run = len(layers) + 1 + lay if lay < 0 else lay
        h = vm.embeddings(px)
        for layer in layers[:n_run]:
            h = layer(h, None)
            h = h[0] if isinstance(h, tuple) else h
        if self.config.vision_feature_select_strategy == "default":
            h = h[:, 1:]
        return m.apply_pooling(m.multi_modal_projector(h))

    def compile(self, **kw):
        """torch.compile the lean vision path (CUDA; the encoder worker's VIGIL_COMPILE=1, bench/vlm_gpu.py)."""
        if self._lean is None:
            return self
        self._lean_inner = torch.compile(self._lean_features, **kw)
        return self._wrap_lean()

    def use_graphs(self, on: bool = True) -> bool:
        """Run the vision path (with the saliency hook when it is wanted) as CUDA graphs at a few batch sizes
        (models/vlm/graphs.py): one launch per batch instead of one per kernel. Returns whether it is on."""
        want = bool(on) and self._lean is not None and self.device.type == "cuda"
        if not want:
            self._graphs = None
        elif self._graphs is None:
            from .graphs import GraphedBatches

            self._graphs = {sal: GraphedBatches(functools.partial(self._vision, sal=sal)) for sal in (False, True)}
        return self._graphs is not None

    def _wrap_lean(self):
        if self._graphs is not None:
            for g in self._graphs.values():
                g.reset()   # captured from the previous function: captured again on use
        self._lean = self._lean_inner or self._lean_features
        return self

    def _vision(self, px: torch.Tensor, sal: bool):
        """[T, 3, S, S] -> (pooled tokens [T, n, D], received attention [T, N] or None)."""
        if self._hook is not None:
            self._hook.active, self._hook.value = sal, None
        try:
            return self._lean(px), (self._hook.value if self._hook is not None and sal else None)
        finally:
            if self._hook is not None:
                self._hook.active = False

    def _graphed(self, x: torch.Tensor, want_sal: bool) -> Optional[torch.Tensor]:
        """Pooled tokens [T·n, D] through the CUDA graphs (the hook's value set from the graph's own copy: the hook
        ran while it was captured, not now); None when a capture or replay failed, which turns the graphs off."""
        try:
            po, sal = self._graphs[want_sal](x.to(self.dtype))
        except RuntimeError as e:   # experimental path; out of memory is the worker's to handle
            if "out of memory" in str(e).lower():
                raise
            log.warning("CUDA graphs of the vision tower turned off after: %s", str(e).splitlines()[0][:200])
            self._graphs = None
            if self._hook is not None:   # a capture may have left the hook off: the eager pass sets it again
                self._hook.active, self._hook.value = self.want_saliency, None
            return None
        if self._hook is not None:
            self._hook.value = sal
        return po.reshape(-1, self.hidden)

    @torch.inference_mode()
    def capture_graphs(self) -> list[int]:
        """Capture every batch size's graph now (the worker's warm-up), so no live batch waits for a capture."""
        if self._graphs is None:
            return []
        x = torch.zeros((1, 3, self.image_size, self.image_size), dtype=self.dtype, device=self.device)
        with self._encode_lock:
            return self._graphs[bool(self.want_saliency and self._hook is not None)].capture_all(x)

    def _encode_tokens(self, x):
        T = x.shape[0]
        x = resize_normalize(x, (self.image_size, self.image_size), self.mean, self.std)
        want_sal = bool(self.want_saliency and self._hook is not None)
        if self._hook is not None:
            self._hook.active, self._hook.value = self.want_saliency, None
        try:
            po = self._graphed(x, want_sal) if self._graphs is not None else None
            if po is None and self._lean is not None:
                po = self._lean(x.to(self.dtype)).reshape(-1, self.hidden)
            elif po is None:
                out = self.model.model.get_video_features(x.to(self.dtype).unsqueeze(0))
                po = out.pooler_output if hasattr(out, "pooler_output") else out[0]
                po = po[0] if isinstance(po, (list, tuple)) else po
                po = po.reshape(-1, po.shape[-1])
                if po.shape[0] % T == 1:                    # some 5.x releases append the video's image_newline
                    po = po[:-1]
        finally:
            if self._hook is not None:
                self._hook.active = False
        n = po.shape[0] // T
        side = int(round(math.sqrt(n)))
        tokens = po.reshape(T, n, -1)
        sal = None
        if self._hook is not None and self._hook.value is not None:
            g = self.image_size // self.patch
            s = self._hook.value.view(T, 1, g, g)
            s = F.interpolate(s, size=(side, side), mode="bilinear").reshape(T, -1)
            sal = s if s.shape[1] == n else None
        return tokens, (side, n // side), sal

    def _vision_block(self, carrier: Carrier):
        newline = self.model.model.image_newline.detach().view(1, -1)
        return [self.video_id] * (carrier.M + 1), 0, newline
