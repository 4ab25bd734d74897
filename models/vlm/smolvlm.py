"""SmolVLM / SmolVLM2 (model_type "smolvlm") and Idefics3 (model_type "idefics3").

Encode: each frame is resized to the tower's square image_size (512 for SmolVLM2-256M/500M, 384
for 2.2B) and normalized (0.5/0.5 unless the checkpoint says otherwise); the model's own SigLIP
tower and connector (pixel shuffle by `scale_factor`, then the projection) give (side/scale)²
tokens per frame: 64 for 512/16/4, 81 for 384/14/3. Grid hw is that shuffled grid.
(SmolVLM's processor would split large images into tiles plus a global image; video frames are
handled as single global images here, like its video path.)

Saliency: mean attention received in the last tower layer, summed over the scale² patches that
pixel shuffle puts into one token (the same shuffle applied to the saliency map).

Answer: SmolVLM shows frames as images; after its timestamp line each memory becomes one image block
per frame its carrier tokens stand for, `<fake_token_around_image><global-img><image>×m_t<fake_token_around_image>`
(m_t = the kept tokens of frame t), back to back: with every token kept this is exactly the prompt
SmolVLM's/Idefics3's processor builds for those frames as consecutive unsplit images.
Positions are plain 1D.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from reducers.base import Carrier

from .common import VLMAdapter, norm_stats, read_json, resize_normalize
from .llava_ov import SaliencyHook


class SmolVLMAdapter(VLMAdapter):
    family = "smolvlm"
    placeholder_token = "<image>"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        vc = self.config.vision_config
        self.image_size = int(vc.image_size)
        self.patch = int(vc.patch_size)
        self.scale = int(getattr(self.config, "scale_factor", 2))
        pp = read_json(self.model_dir, "preprocessor_config.json")
        self.mean, self.std = norm_stats(pp)
        tok = self.tokenizer
        self.image_id = int(self.config.image_token_id)
        unk = tok.unk_token_id

        def tid(s):
            i = tok.convert_tokens_to_ids(s)
            return None if i is None or i == unk or i < 0 else int(i)

        self.fake_id = tid("<fake_token_around_image>")
        self.global_id = tid("<global-img>")
        self._hook = None
        try:
            self._hook = SaliencyHook(self.model.model.vision_model.encoder.layers[-1].self_attn)
        except (AttributeError, IndexError):
            self._hook = None

    def language_model(self):
        m = self.model.model
        return getattr(m, "text_model", None) or m.language_model

    def _encode_tokens(self, x):
        T = x.shape[0]
        x = resize_normalize(x, (self.image_size, self.image_size), self.mean, self.std).to(self.dtype)
        m = self.model.model
        if self._hook is not None:
            self._hook.active, self._hook.value = self.want_saliency, None
        try:
            g = self.image_size // self.patch
            pam = torch.ones(T, g, g, dtype=torch.bool, device=x.device)
            hs = m.vision_model(pixel_values=x, patch_attention_mask=pam).last_hidden_state
        finally:
            if self._hook is not None:
                self._hook.active = False
        feats = m.connector(hs)                                  # [T, n, D]
        n = feats.shape[1]
        side = int(round(math.sqrt(n)))
        sal = None
        if self._hook is not None and self._hook.value is not None:
            s = m.connector.pixel_shuffle(self._hook.value.unsqueeze(-1).float(), self.scale).sum(-1)
            sal = s if s.shape == (T, n) else None
        return feats, (side, n // side), sal

    def _vision_block(self, carrier: Carrier):
        """One image block per frame the carrier's tokens stand for (their t, in time order), each
        `<fake_token_around_image><global-img><image>×m_t<fake_token_around_image>`: the layout the
        processor gives consecutive unsplit images, so full tokens are exactly the native prompt."""
        pre = [i for i in (self.fake_id, self.global_id) if i is not None]
        post = [self.fake_id] if self.fake_id is not None else []
        t = carrier.pos[:, 0].cpu().numpy()
        counts = np.diff(np.flatnonzero(np.r_[True, t[1:] != t[:-1], True]))  # runs of one t (tokens are time-ordered)
        ids: list[int] = []
        slots = []
        for m in counts.tolist():
            ids += pre
            slots.append(np.arange(len(ids), len(ids) + m))
            ids += [self.image_id] * m + post
        return ids, np.concatenate(slots), None
