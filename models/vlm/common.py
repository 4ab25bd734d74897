"""What every VLM family adapter shares: frame preprocessing, prompt assembly around memory
placeholders, and a streaming generation loop that feeds the LLM our own `inputs_embeds` and
position ids.

Why our own loop and not `model.generate`: carrier tokens are merged/pruned, so their positions
(Qwen's 3D rotary ids) cannot be derived from input_ids by transformers' `get_rope_index`, and
how `generate` carries custom 3D position ids across steps changed between transformers 5.x
releases (the H100 image has 5.17, this machine 5.23). Calling the decoder ourselves with an
explicit KV cache and explicit `position_ids` behaves the same on every 5.x release and costs
nothing extra: prefill is one forward, each decode step one forward, exactly what `generate` does.
Tokens stream through a `TextIteratorStreamer` fed from a worker thread.

Concurrent answers (the UI runs up to 4 asks at once) share the loaded model and nothing else: each decodes in a
KV-cache slot of its own (FastLM's slot pool; on transformers' path, a DynamicCache of its own), one forward pass
at a time; per-call results (timings, token counts) travel in the call's `Usage`. Closing an answer's iterator
stops its decoding before the next forward pass and joins its worker thread.
"""
from __future__ import annotations

import functools
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers import TextIteratorStreamer

from engine.timefmt import hms as fmt_ts  # noqa: F401  (the one time format: engine/timefmt.py)
from engine.timefmt import span as fmt_span
from models.base import Consumes, MemoryView, ModelError, Usage, stream_from_worker
from reducers.base import Carrier, TokenGrid

SYSTEM_PROMPT = (
    "You are Vigil, an assistant that answers questions about video the user has recorded. "
    "You are given retrieved video memories in time order; each starts with its time span "
    "[hh:mm:ss–hh:mm:ss]. Answer from them and cite the times you rely on."
)

_MARK = "<<VIGIL_MEM_{}>>"
_MARK_RE = re.compile(r"<<VIGIL_MEM_(\d+)>>")
_USER_SLOT = "\x1eVIGIL_USER_CONTENT\x1e"  # where the user's content goes in a rendered chat template


def timestamp_line(t0: float, t1: float) -> str:
    """`[00:12:30–00:12:32]` (en dash), the line placed before each clip (engine/timefmt.py's one format)."""
    return fmt_span(t0, t1)


# image normalization of the two tower families, when a checkpoint's preprocessor config names none
HALF = (0.5, 0.5, 0.5)  # SigLIP, SigLIP2, Idefics3/SmolVLM
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # CLIP, Qwen2-VL / Qwen2.5-VL
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def norm_stats(pp: dict, mean: tuple = HALF, std: tuple = HALF) -> tuple[tuple, tuple]:
    """(image_mean, image_std) of a preprocessor config, else the given family defaults."""
    return tuple(pp.get("image_mean") or mean), tuple(pp.get("image_std") or std)


def read_json(model_dir: str, name: str) -> dict:
    p = os.path.join(model_dir, name)
    if os.path.isfile(p):
        try:
            with open(p) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}
    return {}


def frames_to_tensor(frames: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """T RGB uint8 [H, W, 3] arrays (or tensors) -> float32 [T, 3, H, W] in [0, 1] on device."""
    if len(frames) == 0:
        raise ModelError("encode() got no frames")
    if isinstance(frames, torch.Tensor):
        x = frames
    else:
        x = torch.from_numpy(np.ascontiguousarray(np.stack([np.asarray(f) for f in frames])))
    if x.dim() != 4 or x.shape[-1] != 3:
        raise ModelError(f"frames must be [H, W, 3] RGB arrays, got stack of shape {tuple(x.shape)}")
    x = x.to(device, non_blocking=True).permute(0, 3, 1, 2)
    return x.float().div_(255.0)


def resize_normalize(x: torch.Tensor, size: tuple[int, int], mean, std) -> torch.Tensor:
    """[T, 3, H, W] in [0, 1] -> resized (bicubic, antialiased) and normalized."""
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp_(0, 1)
    m, s = _norm_tensors(tuple(mean), tuple(std), x.device, x.dtype)
    return (x - m) / s


@functools.lru_cache(maxsize=16)
def _norm_tensors(mean: tuple, std: tuple, device: torch.device, dtype: torch.dtype):
    """mean and std as [1, 3, 1, 1] tensors on the device, made once (not one host-to-device copy per batch)."""
    return (torch.tensor(mean, device=device, dtype=dtype).view(1, 3, 1, 1),
            torch.tensor(std, device=device, dtype=dtype).view(1, 3, 1, 1))


class _TokenStreamer(TextIteratorStreamer):
    """TextIteratorStreamer that releases text after every token (the stock one waits for a space),
    holding back only incomplete UTF-8 sequences."""

    def put(self, value):
        if value.dim() > 1:
            value = value[0]
        self.token_cache.extend(value.tolist())
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        if text.endswith("\ufffd"):
            return
        new = text[self.print_len:]
        self.print_len = len(text)
        if new:
            self.on_finalized_text(new)

    def end(self):
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs) if self.token_cache else ""
        new = text[self.print_len:]
        self.token_cache, self.print_len = [], 0
        self.on_finalized_text(new, stream_end=True)


@dataclass
class Prepared:
    """An assembled prompt, ready for prefill."""

    input_ids: torch.Tensor            # [1, L]
    inputs_embeds: torch.Tensor        # [1, L, D]
    position_ids: torch.Tensor         # [3, 1, L] (Qwen) or [1, L]
    next_pos: int                      # text position of the first generated token
    debug: dict = field(default_factory=dict)


class VLMAdapter:
    """A loaded VLM: `encode(frames) -> TokenGrid` (Encoder protocol) and
    `answer(question, memories, history) -> Iterator[str]` (Answerer protocol).

    Attributes: family, space ("<model_type>:<hidden>"), key_dim, hidden, temporal_patch (frames per
    TokenGrid time step), prompt_debug (last prompt: text, per-memory placeholder counts, ...),
    last_timing (prepare/ttft/decode of the last answer), gen (default generation options).
    prompt_debug and last_timing describe whichever call finished last: conveniences for a single caller (tests,
    benchmarks); concurrent callers read their own call's figures from its Usage (`usage.timing`).
    """

    family = "base"
    placeholder_token = ""
    temporal_patch = 1
    uses_mrope = False
    accepts_tensors = True   # encode() also takes a uint8 [T, H, W, 3] tensor on the device (the encoder worker's)

    def __init__(self, model, tokenizer, model_dir: str, device: torch.device, dtype: torch.dtype,
                 name: str = "", retrieval=None, saliency: bool = True):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.model_dir = model_dir
        self.device = device
        self.dtype = dtype
        self.name = name or model_dir
        self.config = model.config
        self.text_config = self.config.get_text_config()
        self.hidden = int(self.text_config.hidden_size)
        self.space = f"{self.config.model_type}:{self.hidden}"
        # the ask path hands it the carrier tokens stored in its own space, and the clips' text evidence
        self.consumes = Consumes(carriers=True, evidence=True, space=self.space, width=self.hidden)
        self.retrieval = retrieval
        self.want_saliency = saliency
        self.key_dim = retrieval.key_dim if retrieval is not None else self.hidden
        self.prompt_debug: dict = {}
        self.last_timing: dict = {}
        self.gen = dict(max_new_tokens=256, min_new_tokens=0, temperature=0.0, top_p=1.0)
        self.system_prompt = SYSTEM_PROMPT
        self._chat_template = self._find_chat_template()
        self._around: dict = {}     # conversation shape -> (text before, text after) the last message's content
        self._sentinel_tok: Optional[tuple] = None  # (token, id) marking vision blocks in one tokenizer call
        self._stop_ids = self._find_stop_ids()
        self._fast = None
        self._fast_init = threading.Lock()
        self._hf_lock = threading.Lock()   # transformers' path: one forward pass at a time on the model
        self._staging: list = []  # free (pinned host buffer, cuda event of its last copy) pairs for carrier tokens
        self._staging_lock = threading.Lock()
        self._encode_lock = threading.Lock()  # the vision tower's saliency hooks keep per-call state on the adapter

    @property
    def key_encoder(self):
        """The RetrievalEncoder whose space the frame keys live in (None: keys are pooled tokens)."""
        return self.retrieval

    @torch.inference_mode()
    def encode_images(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """Query-by-example keys [T, key_dim] in the same space as encode()'s frame_keys."""
        if self.retrieval is not None:
            return self.retrieval.encode_images(frames)
        out = []
        for f in frames:
            x = frames_to_tensor([f] * max(1, self.temporal_patch), self.device)
            tokens, _, _ = self._encode_tokens_nosal(x)
            out.append(F.normalize(tokens.float().mean(1), dim=-1)[0].cpu())
        return torch.stack(out)

    def _encode_tokens_nosal(self, x):
        with self._encode_lock:  # want_saliency and the saliency hooks' state are per call: one encode at a time
            keep, self.want_saliency = self.want_saliency, False
            try:
                return self._encode_tokens(x)
            finally:
                self.want_saliency = keep

    # ---------------------------------------------------------------- family hooks
    def _encode_tokens(self, pixels_01: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int], Optional[torch.Tensor]]:
        """[T, 3, H, W] in [0,1] on device -> (tokens [T', N, D], (h, w), saliency [T', N] or None)."""
        raise NotImplementedError

    def _vision_block(self, carrier: Carrier) -> tuple[list[int], "int | np.ndarray", Optional[torch.Tensor]]:
        """Token ids of one memory's vision block; where the carrier tokens go inside it: the index where
        they start (one contiguous run) or an int array of their M indices (a block that wraps each frame's
        tokens, e.g. SmolVLM); and extra embeddings placed right after the last carrier token (e.g.
        LLaVA-OV's newline)."""
        raise NotImplementedError

    def language_model(self):
        return self.model.model.language_model

    # ---------------------------------------------------------------- Encoder protocol
    @torch.inference_mode()
    def encode(self, frames: Sequence[np.ndarray]) -> TokenGrid:
        """T RGB frames -> TokenGrid in this LLM's input space. For Qwen, T frames become ceil(T/2)
        time steps (temporal patch 2; an odd last frame is repeated), and `times` are not set here
        (the pipeline knows them); `temporal_patch` says how many frames one step covers."""
        x = frames_to_tensor(frames, self.device)
        with self._encode_lock:  # a query-by-example encode (an ask) may run beside the ingest's encoder
            tokens, hw, sal = self._encode_tokens(x)
        keys = None
        if self.retrieval is not None:
            keys = self.retrieval.encode_images(frames)
            if self.temporal_patch > 1:
                Tp = tokens.shape[0]
                idx = torch.arange(Tp) * self.temporal_patch
                keys = F.normalize(torch.stack([keys[i:i + self.temporal_patch].mean(0) for i in idx.tolist()]), dim=-1)
        else:
            keys = F.normalize(tokens.float().mean(1), dim=-1).cpu()
        return TokenGrid(tokens=tokens.float().cpu() if self.device.type == "cpu" else tokens,
                         hw=hw, saliency=None if sal is None else sal.float(),
                         frame_keys=keys, space=self.space)

    # ---------------------------------------------------------------- prompt assembly
    def _find_chat_template(self) -> Optional[str]:
        t = getattr(self.tokenizer, "chat_template", None)
        if isinstance(t, dict):
            t = t.get("default") or next(iter(t.values()), None)
        if t:
            return t
        p = os.path.join(self.model_dir, "chat_template.jinja")
        if os.path.isfile(p):
            return open(p).read()
        j = read_json(self.model_dir, "chat_template.json")
        if j.get("chat_template"):
            return j["chat_template"]
        j = read_json(self.model_dir, "processor_config.json")
        return j.get("chat_template")

    def _find_stop_ids(self) -> set[int]:
        ids: set[int] = set()
        for src in (getattr(self.model, "generation_config", None), self.text_config, self.config):
            e = getattr(src, "eos_token_id", None) if src is not None else None
            if isinstance(e, int):
                ids.add(e)
            elif isinstance(e, (list, tuple)):
                ids.update(int(i) for i in e)
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        for tok in ("<|im_end|>", "<end_of_utterance>", "<|eot_id|>"):
            i = self.tokenizer.convert_tokens_to_ids(tok)
            if isinstance(i, int) and i != self.tokenizer.unk_token_id and i is not None and i >= 0:
                ids.add(i)
        return ids

    def _render_chat(self, messages: list[dict]) -> str:
        """Chat template to text, the template rendered once per conversation shape: the text around the last
        message's content is kept (checked once against a full render) and the content put between."""
        key = tuple((m["role"], m["content"]) for m in messages[:-1]) + (messages[-1]["role"],)
        around = self._around.get(key)
        if around is None:
            slot = [*messages[:-1], {"role": messages[-1]["role"], "content": _USER_SLOT}]
            probe, text = self._render_template(slot), self._render_template(messages)
            around = False
            if probe.count(_USER_SLOT) == 1:
                pre, post = probe.split(_USER_SLOT)
                if pre + messages[-1]["content"] + post == text:
                    around = (pre, post)
            if len(self._around) >= 64:
                self._around.clear()
            self._around[key] = around
            return text
        if around is False:  # a template that changes the content itself: rendered every time
            return self._render_template(messages)
        return around[0] + messages[-1]["content"] + around[1]

    def _render_template(self, messages: list[dict]) -> str:
        """Chat template to text. Tries list-of-parts content (processor templates), then plain
        strings (tokenizer templates), then a generic format; the markers must survive."""
        marks = [m for msg in messages for m in _MARK_RE.findall(msg["content"])]
        if self._chat_template:
            for as_parts in (True, False):
                msgs = [{"role": m["role"], "content": [{"type": "text", "text": m["content"]}] if as_parts else m["content"]}
                        for m in messages]
                try:
                    text = self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True,
                                                              chat_template=self._chat_template)
                except Exception:  # noqa: BLE001 - a template that rejects this content shape
                    continue
                if isinstance(text, str) and len(_MARK_RE.findall(text)) == len(marks) and messages[-1]["content"][-20:] in text:
                    return text
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n".join(lines) + "\nAssistant:"

    def _clean(self, text: str) -> str:
        """Text from outside (a question, a transcript, a slide) without our memory markers or the family's vision
        placeholder token: neither may open a vision block the prompt does not have."""
        text = _MARK_RE.sub("", text)
        return text.replace(self.placeholder_token, "") if self.placeholder_token else text

    def _user_content(self, question: str, memories: Sequence[MemoryView]) -> str:
        question = self._clean(question)
        streams = {m.stream for m in memories}
        parts = []
        if memories:
            parts.append("Video memories, in time order:")
        for i, m in enumerate(memories):
            line = timestamp_line(m.t0, m.t1)
            if len(streams) > 1 and m.stream:
                line += f" ({m.stream})"
            parts.append(line)
            if m.carrier is not None and m.carrier.M > 0:
                parts.append(_MARK.format(i))
            ev = m.evidence or {}
            for key, label in (("asr", "Speech"), ("ocr", "On screen"), ("tags", "Tags")):
                if ev.get(key):
                    parts.append(f"{label}: {self._clean(str(ev[key]))}")
        parts.append(f"Question: {question}" if memories else question)
        return "\n".join(parts)

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(ids)

    def _positions(self, segments: list, L: int) -> tuple[torch.Tensor, int]:
        """1D positions for non-Qwen families: 0..L-1."""
        return torch.arange(L, device=self.device).view(1, L), L

    def build_inputs(self, question: str, memories: Sequence[MemoryView], history: Sequence[dict] = ()) -> Prepared:
        t_start = time.perf_counter()
        memories = list(memories)
        messages = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        for h in history or ():
            if h.get("role") in ("user", "assistant") and isinstance(h.get("content"), str):
                messages.append({"role": h["role"], "content": self._clean(h["content"])})
        messages.append({"role": "user", "content": self._user_content(question, memories)})
        text = self._render_chat(messages)

        # split at markers; tokenize text pieces; splice in vision blocks
        segments: list = []        # ("text", ids) | ["vision", ids, start, carrier, extra, memory, pos, steps]
        pos = 0
        pieces: list[str] = []
        for mt in _MARK_RE.finditer(text):
            if mt.start() > pos:
                segments.append(("text", len(pieces)))
                pieces.append(text[pos:mt.start()])
            mem = memories[int(mt.group(1))]
            carrier = mem.carrier
            if carrier.tokens.shape[-1] != self.hidden:
                raise ModelError(f"memory {mem.memory_id} has carrier tokens of size {carrier.tokens.shape[-1]}, "
                                 f"but this answerer ({self.space}) takes {self.hidden}; re-ingest with the same --model")
            segments.append(["vision", None, 0, carrier, None, mem, None, 1])
            pos = mt.end()
        if pos < len(text):
            segments.append(("text", len(pieces)))
            pieces.append(text[pos:])
        vis = [s for s in segments if s[0] == "vision"]
        if vis:
            # one host copy of every carrier's (t, y, x) and time span: time order is checked, and the rope
            # ids built, on numpy arrays rather than with small tensor ops per memory
            ph = torch.cat([torch.cat([s[3].pos, s[3].hi[:, :1]], 1).to("cpu", torch.long) for s in vis]).numpy()
            ends = np.cumsum([s[3].M for s in vis])
            starts = ends - np.array([s[3].M for s in vis])
            key = ph[:, 0] * 1_000_000 + ph[:, 1] * 1_000 + ph[:, 2]
            down = np.flatnonzero(np.diff(key) < 0) + 1  # a decrease inside a carrier means it is out of order
            for vi in set(np.searchsorted(ends, down, side="right").tolist()):
                if vi < len(vis) and down[(down > starts[vi]) & (down < ends[vi])].size:
                    c = vis[vi][3].time_order()
                    vis[vi][3] = c
                    ph[starts[vi]:ends[vi]] = torch.cat([c.pos, c.hi[:, :1]], 1).to("cpu", torch.long).numpy()
            for vi, sg in enumerate(vis):
                sg[6] = ph[starts[vi]:ends[vi], :3]
                kept = int(ph[starts[vi]:ends[vi], 3].max()) + 1 if ends[vi] > starts[vi] else 1
                sg[7] = max(kept, int(sg[5].steps or 0))  # the clip's own step count when stored (pruned ends)
                sg[1], sg[2], sg[4] = self._vision_block(sg[3])
        placeholder_counts = [sg[3].M for sg in vis]
        t_tpl = time.perf_counter()
        enc = self._tokenize_prompt(text, pieces)
        t_tok = time.perf_counter()
        segments = [("text", enc[s[1]]) if s[0] == "text" else tuple(s) for s in segments]
        bos = self.tokenizer.bos_token_id
        if bos is not None and getattr(self.tokenizer, "add_bos_token", False) and not text.startswith(self.tokenizer.bos_token or "\0"):
            segments.insert(0, ("text", [bos]))

        all_ids: list[int] = []
        vis_spans = []  # (indices of the carrier tokens in the prompt, carrier, extra)
        for seg in segments:
            if seg[0] == "vision":
                at_c = (np.arange(seg[2], seg[2] + seg[3].M) if np.ndim(seg[2]) == 0
                        else np.asarray(seg[2], dtype=np.int64))
                vis_spans.append((len(all_ids) + at_c, seg[3], seg[4]))
            all_ids.extend(seg[1])
        L = len(all_ids)
        ids_t = torch.from_numpy(np.asarray(all_ids, dtype=np.int64)).view(1, L).to(self.device)
        emb = self._embed(ids_t)
        if vis_spans:
            # every carrier token in one copy (pinned staging for CPU carriers) and one index_copy_
            at = np.concatenate([a for a, _, _ in vis_spans])
            toks = self._gather_tokens([c.tokens for _, c, _ in vis_spans], emb.dtype)
            emb[0].index_copy_(0, torch.from_numpy(at).to(self.device), toks)
            extras = [(int(a[-1]) + 1, x) for a, c, x in vis_spans if x is not None and c.M]
            if extras:
                xat = np.concatenate([np.arange(o, o + x.shape[0]) for o, x in extras])
                emb[0].index_copy_(0, torch.from_numpy(xat).to(self.device),
                                   torch.cat([x.to(self.device, emb.dtype) for _, x in extras]))
        t_emb = time.perf_counter()
        position_ids, next_pos = self._positions(segments, L)
        t_pos = time.perf_counter()
        shown = _MARK_RE.sub(lambda m: f"<{self.placeholder_token}×{memories[int(m.group(1))].carrier.M}>", text)
        debug = {"text": shown, "placeholders": placeholder_counts, "placeholder_token": self.placeholder_token,
                 "n_tokens": L, "n_visual": sum(placeholder_counts),
                 "input_ids": ids_t, "position_ids": position_ids, "prepare_s": time.perf_counter() - t_start,
                 "prepare_ms": {"template_split": round(1e3 * (t_tpl - t_start), 2), "tokenize": round(1e3 * (t_tok - t_tpl), 2),
                                "ids_embed_carriers": round(1e3 * (t_emb - t_tok), 2),
                                "positions": round(1e3 * (t_pos - t_emb), 2)}}
        return Prepared(ids_t, emb, position_ids, next_pos, debug)

    def _sentinel(self) -> Optional[tuple]:
        """(token, id) of the family's placeholder when the tokenizer keeps it whole wherever it stands (an added
        token), so a prompt can be tokenized in one call with it standing for each vision block; else None."""
        if self._sentinel_tok is None:
            self._sentinel_tok = ()
            tok, bt = self.placeholder_token, getattr(self.tokenizer, "backend_tokenizer", None)
            if tok and bt is not None:
                try:
                    i = self.tokenizer.convert_tokens_to_ids(tok)
                    ids = bt.encode(f"a\n{tok}\nb {tok}{tok}c", add_special_tokens=False).ids
                    if isinstance(i, int) and i >= 0 and i != self.tokenizer.unk_token_id and ids.count(i) == 3:
                        self._sentinel_tok = (tok, i)
                except Exception:  # noqa: BLE001 - an unusual backend: piece by piece
                    pass
        return self._sentinel_tok or None

    def _tokenize_prompt(self, text: str, pieces: list[str]) -> list[list[int]]:
        """Token ids of the text pieces between the memory markers of `text`: one tokenizer call over the whole
        prompt with each marker replaced by the placeholder token (an added token, so the text on each side is
        tokenized as it would be alone, as processors do), split there; piece by piece when that is not possible."""
        sent = self._sentinel()
        if sent is not None and sent[0] not in text:  # external text was cleaned; the template has none
            parts = _MARK_RE.split(text)[::2]          # the text around and between the markers
            ids = self.tokenizer.backend_tokenizer.encode(_MARK_RE.sub(sent[0], text), add_special_tokens=False).ids
            cuts = [j for j, x in enumerate(ids) if x == sent[1]]
            if len(cuts) == len(parts) - 1:
                bounds = [-1, *cuts, len(ids)]
                chunks = [ids[a + 1:b] for a, b in zip(bounds, bounds[1:])]
                out = [c for c, p in zip(chunks, parts) if p]
                if len(out) == len(pieces):
                    return out
        return self._tokenize(pieces)

    def _tokenize(self, pieces: list[str]) -> list[list[int]]:
        """Token ids of each text piece (no special tokens added). One sequential encode per piece through
        the Rust tokenizer: a batch call starts a thread pool, which costs more than these short pieces."""
        if not pieces:
            return []
        bt = getattr(self.tokenizer, "backend_tokenizer", None)
        if bt is not None:
            try:
                return [bt.encode(p, add_special_tokens=False).ids for p in pieces]
            except Exception:  # noqa: BLE001 - an unusual backend: the tokenizer's own batch call
                pass
        return self.tokenizer(pieces, add_special_tokens=False)["input_ids"]

    def _gather_tokens(self, parts: list, dtype: torch.dtype) -> torch.Tensor:
        """Concatenate carrier token blocks onto the device: device blocks directly, CPU blocks through a reused
        pinned buffer and one asynchronous copy. Each call takes a buffer from a free list and gives it back after
        queuing its copy, so concurrent asks never write into a buffer another call's copy is still reading."""
        if self.device.type != "cuda" or all(t.device == self.device for t in parts):
            return torch.cat([t.to(self.device, dtype) for t in parts])
        cpu = [t for t in parts if t.device.type == "cpu"]
        n = sum(t.shape[0] for t in cpu)
        D = cpu[0].shape[-1]
        with self._staging_lock:
            st = self._staging.pop(0) if self._staging else None  # the oldest: its copy is the likeliest done
        try:
            if st is not None:
                st[1].synchronize()  # the previous copy out of this buffer has finished
            if st is None or st[0].numel() < n * D or st[0].dtype != cpu[0].dtype:
                st = (torch.empty(max(n, 4096) * D, dtype=cpu[0].dtype).pin_memory(), torch.cuda.Event())
            buf = st[0][:n * D].view(n, D)
            torch.cat(cpu, out=buf)
            dev_cpu = buf.to(self.device, non_blocking=True)
            st[1].record()
        finally:
            if st is not None:
                with self._staging_lock:
                    self._staging.append(st)
        it = iter(dev_cpu.split([t.shape[0] for t in cpu]))
        return torch.cat([next(it) if t.device.type == "cpu" else t.to(self.device) for t in parts]).to(dtype)

    # ---------------------------------------------------------------- generation
    def fast_lm(self):
        """Our decoder pass with static KV caches (a pool of slots, one per request in flight; CUDA-graphed on GPU),
        or None when the model's layout is not the supported Llama/Qwen2 one (then transformers' forward is used)."""
        if self._fast is None:
            with self._fast_init:  # two first asks at once build one decoder, not two
                if self._fast is None:
                    from .fastlm import FastLM
                    lm = self.language_model()
                    head = getattr(self.model, "lm_head", None)
                    ok = os.environ.get("VIGIL_FAST_LM", "1") != "0" and FastLM.supports(lm, head, self.text_config)
                    self._fast = FastLM(lm, head, self.model.get_input_embeddings(), self.text_config, self.device,
                                        self.dtype) if ok else False
        return self._fast or None

    def _lm_forward(self, embeds: torch.Tensor, position_ids: torch.Tensor, cache, last_only: bool = True):
        """One forward pass -> (logits [1, 1 or L, V] float32, cache). A prefill of the last token's logits (cache
        None) runs on our decoder in a KV-cache slot of its own; anything else on transformers' forward."""
        fast = self.fast_lm() if (cache is None and last_only) else None
        if fast is not None:
            with fast.slot() as kv:
                return kv.prefill(embeds, position_ids, 0)[:, None], None
        return self._hf_forward(embeds, position_ids, cache, last_only)

    def _hf_forward(self, embeds: torch.Tensor, position_ids: torch.Tensor, cache, last_only: bool = True,
                    cancel: Optional[threading.Event] = None):
        """transformers' own forward; the caller's DynamicCache (None: a new one) is its own, the model is shared,
        so one pass at a time (fastlm.Cancelled when `cancel` is set while waiting for it)."""
        from .fastlm import hold
        with hold(self._hf_lock, cancel):
            out = self.language_model()(inputs_embeds=embeds, position_ids=position_ids, past_key_values=cache,
                                        use_cache=True)
            h = out.last_hidden_state
            if last_only:
                h = h[:, -1:]
            return self.model.lm_head(h).float(), out.past_key_values

    def _step_positions(self, p: int) -> torch.Tensor:
        if self.uses_mrope:
            return torch.full((3, 1, 1), p, device=self.device, dtype=torch.long)
        return torch.full((1, 1), p, device=self.device, dtype=torch.long)

    def _pick(self, logits: torch.Tensor, step: int, opts: dict, gen: Optional[torch.Generator]) -> int:
        logits = logits[0, -1]
        if step < opts["min_new_tokens"] and self._stop_ids:
            logits[list(self._stop_ids)] = -float("inf")
        if opts["temperature"] and opts["temperature"] > 0:
            probs = torch.softmax(logits / opts["temperature"], -1)
            if opts["top_p"] < 1.0:
                sp, si = torch.sort(probs, descending=True)
                keep = sp.cumsum(0) - sp <= opts["top_p"]
                probs = torch.zeros_like(probs).scatter_(0, si[keep], sp[keep])
            return int(torch.multinomial(probs, 1, generator=gen))
        return int(torch.argmax(logits))

    @torch.inference_mode()
    def generate_ids(self, prep: Prepared, streamer=None, cancel: Optional[threading.Event] = None,
                     **opts) -> list[int]:
        """Greedy (or sampled) decoding from a Prepared prompt; returns new ids, feeds `streamer`. Safe from several
        threads at once (each call decodes in a cache of its own). cancel: checked before every forward pass; once
        set, no further pass starts. Leaves this call's timings in `last_timing` (see `decode` for a caller's own)."""
        out, timing = self.decode(prep, streamer, cancel, **opts)
        self.last_timing = timing
        return out

    @torch.inference_mode()
    def decode(self, prep: Prepared, streamer=None, cancel: Optional[threading.Event] = None,
               **opts) -> tuple[list[int], dict]:
        """`generate_ids`, returning (new ids, this call's timings) and touching no shared state. With our decoder,
        the call holds a KV-cache slot from its prefill to its last token (waiting for one when all are held)."""
        t0 = time.perf_counter()
        fast = self.fast_lm()
        if fast is None:
            return self._decode_in(None, prep, streamer, cancel, t0, opts)
        with fast.slot(cancel) as kv:
            if kv is None:  # stopped while waiting for a slot
                return [], self._timing(prep, t0, None, [], 0.0, True)
            return self._decode_in(kv, prep, streamer, cancel, t0, opts)

    def _timing(self, prep: Prepared, t0: float, ttft: Optional[float], out: list, dec: float, stopped: bool,
                slot_wait: float = 0.0) -> dict:
        return {"prefill_tokens": int(prep.input_ids.shape[1]), "ttft_s": ttft or 0.0,
                "decode_tokens": max(0, len(out) - 1),
                "decode_tok_s": (len(out) - 1) / dec if len(out) > 1 and dec > 0 else 0.0,
                "prepare_s": prep.debug.get("prepare_s", 0.0), "prepare_ms": dict(prep.debug.get("prepare_ms") or {}),
                "slot_wait_s": slot_wait, "stopped": bool(stopped)}

    def _decode_in(self, kv, prep: Prepared, streamer, cancel: Optional[threading.Event], t0: float,
                   opts: dict) -> tuple[list[int], dict]:
        """The decoding loop, in KV-cache slot `kv` (None: transformers' forward with a DynamicCache)."""
        o = dict(self.gen)
        o.update({k: v for k, v in opts.items() if v is not None})
        n_new = int(o["max_new_tokens"])
        L = prep.inputs_embeds.shape[1]
        slot_wait = time.perf_counter() - t0
        out: list[int] = []
        from .fastlm import Cancelled
        try:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            if kv is not None:
                logits = kv.prefill(prep.inputs_embeds, prep.position_ids, n_new)[:, None]
            else:
                logits, cache = self._hf_forward(prep.inputs_embeds, prep.position_ids, None, cancel=cancel)
        except Cancelled:
            return out, self._timing(prep, t0, None, out, 0.0, True, slot_wait)
        sync = torch.cuda.current_stream(self.device).synchronize if self.device.type == "cuda" else (lambda: None)
        p = prep.next_pos
        ttft = None
        t_dec = t0
        greedy = not (o["temperature"] and o["temperature"] > 0)
        stop = tuple(sorted(self._stop_ids))
        stopped = False
        nxt = None
        for step in range(n_new):
            tok = nxt if nxt is not None else self._pick(logits, step, o, None)
            if ttft is None:
                sync()  # this request's work only (a device-wide sync would also wait on the other requests')
                ttft = time.perf_counter() - t0
                t_dec = time.perf_counter()
            if tok in self._stop_ids:
                break
            out.append(tok)
            if streamer is not None:
                streamer.put(torch.tensor([tok]))
            if step + 1 >= n_new:
                break
            if cancel is not None and cancel.is_set():  # the consumer stopped: no further forward pass
                stopped = True
                break
            try:
                if kv is not None and greedy:  # argmax on the GPU, one token read back per step
                    nxt = kv.step_greedy(tok, p, L + step, stop if step + 1 < o["min_new_tokens"] else ())
                elif kv is not None:
                    logits = kv.step(tok, p, L + step)[:, None]
                else:
                    emb = self._embed(torch.tensor([[tok]], device=self.device))
                    logits, cache = self._hf_forward(emb, self._step_positions(p), cache, cancel=cancel)
            except Cancelled:  # stopped while waiting for the model behind other requests
                stopped = True
                break
            p += 1
        sync()
        dec = time.perf_counter() - t_dec if ttft is not None else 0.0
        return out, self._timing(prep, t0, ttft, out, dec, stopped, slot_wait)

    # ---------------------------------------------------------------- Answerer protocol
    def answer(self, question: str, memories: Sequence[MemoryView], history: Sequence[dict] = (),
               usage: Optional[Usage] = None, cancel: Optional[threading.Event] = None, **opts) -> Iterator[str]:
        """Stream the answer. Memories should be in time order (they are sorted here anyway); the
        ones with a carrier are spliced in as placeholder blocks, each after its timestamp line.
        usage: filled with the prompt length, the carrier tokens placed per memory, the generated tokens and this
        answer's timings (usage.timing). Closing the returned iterator (or setting `cancel`) stops decoding before
        its next forward pass; closing also waits for the worker thread to end."""
        memories = sorted(memories, key=lambda m: (m.t0, m.stream))
        prep = self.build_inputs(question, memories, history)
        self.prompt_debug = prep.debug  # the last prompt built (a single caller's convenience)
        if usage is not None:
            usage.prompt_tokens = int(prep.input_ids.shape[1])
            usage.placed = {m.memory_id: m.carrier.M for m in memories if m.carrier is not None and m.carrier.M > 0}
            usage.visual_tokens = sum(usage.placed.values())
        streamer = _TokenStreamer(self.tokenizer, skip_prompt=False, skip_special_tokens=True, timeout=600)
        cancel = cancel if cancel is not None else threading.Event()

        def work() -> None:
            out, timing = self.decode(prep, streamer, cancel, **opts)
            self.last_timing = timing
            if usage is not None:
                usage.completion_tokens = len(out)
                usage.timing = timing

        yield from stream_from_worker(work, streamer, on_stop=cancel.set)
