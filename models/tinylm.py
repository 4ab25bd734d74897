"""Plain-torch forward passes for the two small text models of the lite profile, so that loading them does not
import transformers (about 3 s of imports on 2 cores, most of a cold `app.py ask`):

- `MiniBert`: the BERT encoder of all-MiniLM-L6-v2 (TextEmbedder's sentence keys), eager fp32 attention, and
  `MiniMPNet`, the MPNet encoder of all-mpnet-base-v2 (the answerer's meaning model: BERT's layers with a
  bucketed relative position bias in the attention scores);
- `TinyLlama`: a Llama-architecture causal LM (SmolLM2-135M, the bundled answerer) with a KV cache and
  greedy decoding under a repetition penalty, streaming text the way transformers' TextIteratorStreamer does.

They read the same files transformers does (config.json, model.safetensors, tokenizer.json, the chat template)
and compute the same things: tests/models/test_tinylm.py checks the embeddings and the generated tokens against
transformers' own models. Anything these classes do not recognise (`supports()` is False) stays on transformers.
VIGIL_TINYLM=0 turns them off. On a CPU the LLM's Linear layers run in bf16 where the CPU has native bf16
(VIGIL_TINYLM_PRECISION=fp32|bf16|int8 chooses; fp32 is transformers' exact computation).
"""
from __future__ import annotations

import json
import math
import os
import queue
import threading
import unicodedata
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F


def enabled() -> bool:
    return os.environ.get("VIGIL_TINYLM", "1").strip().lower() not in ("0", "off", "no", "false")


PRECISIONS = ("fp32", "bf16", "int8")


def precision_default(device) -> str:
    """The LLM's Linear layers' precision on a CPU: VIGIL_TINYLM_PRECISION (fp32, bf16 or int8), else bf16 where
    the CPU computes it natively (AVX512-BF16/AMX, through oneDNN), else fp32. GPUs keep fp32.

    Measured on the planted-fact questions of bench/cli_ask.py (bench/RESULTS.md): bf16 keeps every fact the fp32
    answers hold (13 of 15 answers identical) for ~40% less CPU per answer; int8 also keeps them,
    but only 4 of 15 answers stay identical (its own sentences fail the evidence check more often and the quote
    is given instead), and it quantizes each pass's input as a whole, so prompt-lookup drafts can change its
    tokens; it is offered, not the default."""
    if torch.device(device).type != "cpu":
        return "fp32"
    p = os.environ.get("VIGIL_TINYLM_PRECISION", "").strip().lower()
    if p:
        if p not in PRECISIONS:
            raise ValueError(f"VIGIL_TINYLM_PRECISION must be one of {', '.join(PRECISIONS)}, not {p!r}")
        return p
    try:
        return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    except (AttributeError, RuntimeError):
        return "fp32"


def low_precision_linear(weight: torch.Tensor, precision: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """y = x @ weight.T (fp32 in, fp32 out) with the weight held in bf16 or int8.

    bf16: weights and activations rounded to bfloat16 (oneDNN's bf16 kernels where the CPU has them).
    int8: PyTorch's dynamic quantized Linear: int8 weights (symmetric, one scale per output row), the input
    quantized per call (fbgemm/oneDNN int8 kernels). Either reads a half or a quarter of fp32's bytes per token,
    which is what bounds decoding on a CPU."""
    n, k = weight.shape
    if precision == "bf16":
        return bf16_linear(weight.detach().to(torch.bfloat16).contiguous())
    w = weight.detach().float()
    import warnings

    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    scale = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-8).double()
    with warnings.catch_warnings():  # quantized tensors are deprecated in favour of torchao (not installed)
        warnings.simplefilter("ignore", UserWarning)
        q = torch.quantize_per_channel(w, scale, torch.zeros(n, dtype=torch.long), 0, torch.qint8)
    lin = DynamicLinear(k, n, bias_=False, dtype=torch.qint8)
    lin.set_weight_bias(q, None)
    return lin


def bf16_linear(wb: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """x @ wb.T in bf16 (fp32 in and out). The weight is packed once into oneDNN's blocked layout (the op
    PyTorch's CPU compiler emits for a bf16 Linear): the same results as F.linear in bf16, which would otherwise
    re-layout the weight on every call (measured on this VM: 1.5-2x faster per decoding step). Falls back to
    F.linear where oneDNN's op is missing or fails."""
    n, k = wb.shape

    def plain(x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(torch.bfloat16), wb).float()

    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(wb, 1)

        def linear(x: torch.Tensor) -> torch.Tensor:
            y = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, k).to(torch.bfloat16), packed, None, "none", [], "")
            return y.reshape(*x.shape[:-1], n).float()

        probe = torch.linspace(-1, 1, 2 * k).reshape(2, k)
        if torch.equal(linear(probe), plain(probe)):
            return linear
    except (AttributeError, RuntimeError):
        pass
    return plain


def _config(path: Path) -> dict:
    try:
        return json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return {}


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _tokenizer(path: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path / "tokenizer.json"))


# ============================================================================ BERT (MiniLM)
class MiniBert:
    """BertModel's last hidden state for a batch of texts: `encode_batch(texts, max_length)` -> (hidden [B, L, D],
    attention mask [B, L]), tokenized like transformers (tokenizer.json, padding to the longest, truncation)."""

    @staticmethod
    def supports(path) -> bool:
        p = Path(path)
        c = _config(p)
        return (enabled() and c.get("model_type") == "bert" and c.get("hidden_act") == "gelu"
                and c.get("position_embedding_type", "absolute") == "absolute"
                and (p / "model.safetensors").exists() and (p / "tokenizer.json").exists())

    def __init__(self, path, device: str = "cpu", precision: str = "fp32"):
        """precision: the encoder layers' Linear weights in fp32 (transformers' exact computation), bf16 or int8
        (`low_precision_linear`; a CPU only)."""
        p = Path(path)
        self.cfg = _config(p)
        self.device = torch.device(device)
        if precision not in PRECISIONS or (precision != "fp32" and self.device.type != "cpu"):
            raise ValueError(f"precision must be fp32, or bf16/int8 on a CPU, not {precision!r} on {device}")
        self.precision = precision
        self.lowp: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
        w = _weights(p)
        pre = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
        self.w = {k[len(pre):]: v.to(self.device, torch.float32).clone()  # owned memory, not the file's pages
                  for k, v in w.items() if k.startswith(pre)}
        self._lower()
        self.tok = _tokenizer(p)
        self.pad_id = int(self.cfg.get("pad_token_id", 0) or 0)
        self.heads = int(self.cfg["num_attention_heads"])
        self.layers = int(self.cfg["num_hidden_layers"])
        self.eps = float(self.cfg.get("layer_norm_eps", 1e-12))

    def tokenize(self, texts: Sequence[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.tok.enable_truncation(max_length=max_length)
        self.tok.enable_padding(pad_id=self.pad_id, pad_token=self.tok.id_to_token(self.pad_id) or "[PAD]")
        enc = self.tok.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in enc], dtype=torch.long, device=self.device)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.long, device=self.device)
        return ids, mask

    def _ln(self, x, name):
        return F.layer_norm(x, x.shape[-1:], self.w[name + ".weight"], self.w[name + ".bias"], self.eps)

    def _lower(self) -> None:
        """The encoder layers' Linear weights held in `precision` (their fp32 copies dropped)."""
        if self.precision == "fp32":
            return
        for k in [k for k in self.w if k.startswith("encoder.layer.") and k.endswith(".weight")
                  and self.w[k].dim() == 2]:
            self.lowp[k[:-len(".weight")]] = low_precision_linear(self.w.pop(k), self.precision)

    def _lin(self, x, name):
        f = self.lowp.get(name)
        if f is None:
            return F.linear(x, self.w[name + ".weight"], self.w.get(name + ".bias"))
        b = self.w.get(name + ".bias")
        y = f(x)
        return y + b if b is not None else y

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L = ids.shape
        w = self.w
        x = (F.embedding(ids, w["embeddings.word_embeddings.weight"])
             + w["embeddings.position_embeddings.weight"][:L][None]
             + w["embeddings.token_type_embeddings.weight"][0][None, None])
        x = self._ln(x, "embeddings.LayerNorm")
        bias = torch.zeros(B, 1, 1, L, dtype=x.dtype, device=x.device)
        bias.masked_fill_(mask[:, None, None, :] == 0, torch.finfo(x.dtype).min)
        return self._encoder(x, bias)

    # the attention's weight names: query, key, value, output projection, the LayerNorm after attention
    ATTENTION = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                 "attention.output.LayerNorm")

    def _encoder(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """The post-LayerNorm transformer layers: x [B, L, D], bias added to the attention scores [B, H|1, L, L]."""
        B, L, D = x.shape
        hd = D // self.heads
        qn, kn, vn, on, ln = self.ATTENTION
        for i in range(self.layers):
            n = f"encoder.layer.{i}."
            q, k, v = (self._lin(x, n + t).view(B, L, self.heads, hd).transpose(1, 2) for t in (qn, kn, vn))
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            att = att.transpose(1, 2).reshape(B, L, D)
            x = self._ln(self._lin(att, n + on) + x, n + ln)
            h = F.gelu(self._lin(x, n + "intermediate.dense"))
            x = self._ln(self._lin(h, n + "output.dense") + x, n + "output.LayerNorm")
        return x


class MiniMPNet(MiniBert):
    """MPNetModel's last hidden state (transformers' modeling_mpnet): positions counted from the padding id + 1,
    no token types, and a relative position bias (T5's buckets, one table shared by all layers) added to every
    layer's attention scores."""

    ATTENTION = ("attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o", "attention.LayerNorm")

    @staticmethod
    def supports(path) -> bool:
        p = Path(path)
        c = _config(p)
        return (enabled() and c.get("model_type") == "mpnet" and c.get("hidden_act") == "gelu"
                and (p / "model.safetensors").exists() and (p / "tokenizer.json").exists())

    def __init__(self, path, device: str = "cpu", precision: str = "fp32"):
        super().__init__(path, device, precision)
        if "embeddings.word_embeddings.weight" not in self.w:  # saved from a head model: "mpnet." prefix
            self.w = {k[len("mpnet."):]: v for k, v in _weights(Path(path)).items() if k.startswith("mpnet.")}
            self.w = {k: v.to(self.device, torch.float32).clone() for k, v in self.w.items()}
            self.lowp = {}
            self._lower()
        self.buckets = int(self.cfg.get("relative_attention_num_buckets", 32))

    @staticmethod
    def bucket(rel: torch.Tensor, buckets: int = 32, max_distance: int = 128) -> torch.Tensor:
        """T5's bidirectional relative position buckets, as MPNet computes them."""
        half = buckets // 2
        n = -rel
        ret = (n < 0).long() * half
        n = n.abs()
        exact = half // 2
        large = exact + (torch.log(n.float().clamp(min=1) / exact) / math.log(max_distance / exact)
                         * (half - exact)).long()
        return ret + torch.where(n < exact, n, large.clamp(max=half - 1))

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L = ids.shape
        w = self.w
        keep = ids.ne(self.pad_id).long()
        pos = torch.cumsum(keep, 1) * keep + self.pad_id
        x = F.embedding(ids, w["embeddings.word_embeddings.weight"]) + F.embedding(
            pos, w["embeddings.position_embeddings.weight"])
        x = self._ln(x, "embeddings.LayerNorm")
        ar = torch.arange(L, device=x.device)
        rel = F.embedding(self.bucket(ar[None, :] - ar[:, None], self.buckets),
                          w["encoder.relative_attention_bias.weight"]).permute(2, 0, 1)[None]  # [1, H, L, L]
        bias = rel.expand(B, -1, -1, -1).clone()
        bias.masked_fill_(mask[:, None, None, :] == 0, torch.finfo(x.dtype).min)
        return self._encoder(x, bias)


# ============================================================================ Llama (SmolLM2)
class TextStream:
    """transformers' TextIteratorStreamer (5.x) over a `tokenizers` Tokenizer: letters, digits and spaces are
    released at once, symbols wait for the next space (they may be an incomplete character), a newline releases
    everything (keeping its token as context), and `end()` the rest. Iterate for the pieces; `delivered` is the
    number of tokens put up to the last piece taken (what a consumer that stops early has read)."""

    def __init__(self, decode: Callable[[list], str], timeout: float = 120.0):
        self.decode = decode
        self.timeout = timeout
        self.cache: list[int] = []
        self.print_len = 0
        self.q: queue.Queue = queue.Queue()
        self._stop = object()
        self.total = 0       # tokens put so far
        self.delivered = 0   # tokens put up to the last piece taken

    def put(self, ids: Sequence[int]) -> None:
        ids = [int(i) for i in ids]
        self.total += len(ids)
        self.cache.extend(ids)
        text = self.decode(self.cache)
        if text.endswith("\n"):
            piece = text[self.print_len:]
            self.cache = self.cache[-1:]
            self.print_len = len(self.decode(self.cache))
        elif text and _is_cjk(ord(text[-1])):
            piece = text[self.print_len:]
            self.print_len += len(piece)
        elif all(ch.isspace() or unicodedata.category(ch)[0] in "LMN" for ch in text[self.print_len:]):
            piece = text[self.print_len:]
            self.print_len += len(piece)
        else:
            piece = text[self.print_len: text.rfind(" ") + 1]
            self.print_len += len(piece)
        self.q.put((piece, self.total))

    def end(self) -> None:
        piece = self.decode(self.cache)[self.print_len:] if self.cache else ""
        self.cache, self.print_len = [], 0
        self.q.put((piece, self.total))
        self.q.put(self._stop)

    def __iter__(self):
        return self

    def __next__(self) -> str:
        item = self.q.get(timeout=self.timeout)
        if item is self._stop:
            raise StopIteration
        piece, self.delivered = item
        return piece


def _is_cjk(cp: int) -> bool:
    return any(a <= cp <= b for a, b in ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
                                         (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))


class TinyLlama:
    """A Llama-architecture causal LM from a transformers directory (fp32, CPU or one GPU; on a CPU its Linear
    layers and output head may run in bf16 or int8: precision=, or VIGIL_TINYLM_PRECISION).

    prompt_ids(messages) -> token ids (the chat template, as apply_chat_template renders it)
    generate(ids, max_new_tokens, eos_ids, repetition_penalty, on_tokens, cancel) -> generated ids (greedy)
    decode(ids) -> text without special tokens;  count_tokens(text)
    """

    @staticmethod
    def supports(path) -> bool:
        p = Path(path)
        c = _config(p)
        rope = c.get("rope_parameters") or c.get("rope_scaling") or {}
        return (enabled() and c.get("model_type") == "llama" and c.get("hidden_act") == "silu"
                and not c.get("attention_bias") and not c.get("mlp_bias") and c.get("pretraining_tp", 1) == 1
                and rope.get("rope_type", "default") == "default"
                and (p / "model.safetensors").exists() and (p / "tokenizer.json").exists()
                and ((p / "chat_template.jinja").exists() or "chat_template" in _tok_config(p)))

    def __init__(self, path, device: str = "cpu", template: Optional[str] = None, precision: Optional[str] = None):
        p = Path(path)
        c = self.cfg = _config(p)
        self.device = torch.device(device)
        w = _weights(p)
        self.w = {k[len("model."):] if k.startswith("model.") else k: v.to(self.device, torch.float32)
                  for k, v in w.items()}
        if "lm_head.weight" not in self.w:
            self.w["lm_head.weight"] = self.w["embed_tokens.weight"]  # tied embeddings
        self.layers = int(c["num_hidden_layers"])
        self.heads = int(c["num_attention_heads"])
        self.kv_heads = int(c.get("num_key_value_heads") or self.heads)
        self.hd = int(c.get("head_dim") or c["hidden_size"] // self.heads)
        self.precision = precision or precision_default(self.device)
        self.lowp: dict = self._quantize() if self.precision != "fp32" else {}
        self.eps = float(c.get("rms_norm_eps", 1e-6))
        rope = c.get("rope_parameters") or c.get("rope_scaling") or {}
        theta = float(rope.get("rope_theta", c.get("rope_theta", 10000.0)))
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, self.hd, 2, dtype=torch.int64).to(
            device=self.device, dtype=torch.float) / self.hd))
        self.tok = _tokenizer(p)
        tc = _tok_config(p)
        self.template = template or tc.get("chat_template") or (p / "chat_template.jinja").read_text()
        self.special = {k: tc.get(k) for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
        self._render = None
        self.keep_prefixes = 4            # recent prompts whose keys/values a new prompt may start from
        self._prefixes: list = []
        self._prefix_lock = threading.Lock()

    # ---- text ----
    def prompt_ids(self, messages: Sequence[dict]) -> list[int]:
        if self._render is None:
            from jinja2.ext import loopcontrols
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            def raise_exception(message):
                raise ValueError(message)

            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
            env.filters["tojson"] = lambda x, indent=None, **kw: json.dumps(x, ensure_ascii=False, indent=indent)
            env.globals["raise_exception"] = raise_exception
            self._render = env.from_string(self.template)
        text = self._render.render(messages=list(messages), add_generation_prompt=True,
                                   **{k: v for k, v in self.special.items() if v is not None})
        return self.tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=True)

    def count_tokens(self, text: str) -> int:
        return len(self.tok.encode(text, add_special_tokens=False).ids)

    def token_id(self, token: str) -> Optional[int]:
        return self.tok.token_to_id(token)

    # ---- model ----
    def _quantize(self) -> dict:
        """Low-precision versions of every Linear layer (q/k/v fused into one, gate/up into one) and of the output
        head; their fp32 weights are dropped (the embedding table stays fp32 for lookups)."""
        w, lowp = self.w, {}
        for i in range(self.layers):
            n = f"layers.{i}."
            parts = {"qkv": [n + f"self_attn.{x}_proj.weight" for x in "qkv"], "o": [n + "self_attn.o_proj.weight"],
                     "gate_up": [n + "mlp.gate_proj.weight", n + "mlp.up_proj.weight"],
                     "down": [n + "mlp.down_proj.weight"]}
            for key, names in parts.items():
                # (cast before joining: half the bytes copied at load for bf16)
                cast = torch.bfloat16 if self.precision == "bf16" else torch.float32
                lowp[n + key] = low_precision_linear(torch.cat([w[k].to(cast) for k in names], dim=0),
                                                     self.precision)
                for k in names:
                    del w[k]
        lowp["lm_head"] = low_precision_linear(w["lm_head.weight"], self.precision)
        if w["lm_head.weight"] is not w["embed_tokens.weight"]:
            del w["lm_head.weight"]
        return lowp

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        """Logits of final hidden states."""
        return self.lowp["lm_head"](h) if self.lowp else F.linear(h, self.w["lm_head.weight"])

    def _qkv(self, h: torch.Tensor, n: str) -> tuple:
        if self.lowp:
            return self.lowp[n + "qkv"](h).split([self.heads * self.hd, self.kv_heads * self.hd,
                                                self.kv_heads * self.hd], dim=-1)
        return tuple(F.linear(h, self.w[n + f"self_attn.{x}_proj.weight"]) for x in "qkv")

    def _attn_out(self, att: torch.Tensor, n: str) -> torch.Tensor:
        return self.lowp[n + "o"](att) if self.lowp else F.linear(att, self.w[n + "self_attn.o_proj.weight"])

    def _mlp(self, h: torch.Tensor, n: str) -> torch.Tensor:
        if self.lowp:
            gate, up = self.lowp[n + "gate_up"](h).chunk(2, dim=-1)
            return self.lowp[n + "down"](F.silu(gate) * up)
        w = self.w
        h = F.silu(F.linear(h, w[n + "mlp.gate_proj.weight"])) * F.linear(h, w[n + "mlp.up_proj.weight"])
        return F.linear(h, w[n + "mlp.down_proj.weight"])

    def _rms(self, x, name):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.w[name] * (x * torch.rsqrt(var + self.eps))

    def _rope(self, pos: torch.Tensor):
        freqs = (self.inv_freq[None, :, None].float() @ pos[None, None, :].float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos()[:, None], emb.sin()[:, None]  # [1, 1, L, hd]

    @staticmethod
    def _rotate(x):
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    def _forward(self, ids: torch.Tensor, cache: list, start: int, all_positions: bool = False) -> torch.Tensor:
        """Final hidden states (of the last position, or of all) for ids [1, L] at positions start..start+L-1;
        appends their keys and values to cache (one (k, v) per layer)."""
        L = ids.shape[1]
        w = self.w
        x = F.embedding(ids, w["embed_tokens.weight"])
        cos, sin = self._rope(torch.arange(start, start + L, device=self.device))
        rep = self.heads // self.kv_heads
        mask = None
        if L > 1 and start > 0:  # new positions see the cache and, causally, each other
            mask = (torch.arange(start + L, device=self.device)[None, :]
                    <= torch.arange(start, start + L, device=self.device)[:, None])
        for i in range(self.layers):
            n = f"layers.{i}."
            h = self._rms(x, n + "input_layernorm.weight")
            q, k, v = self._qkv(h, n)
            q = q.reshape(1, L, self.heads, self.hd).transpose(1, 2)
            k = k.reshape(1, L, self.kv_heads, self.hd).transpose(1, 2)
            v = v.reshape(1, L, self.kv_heads, self.hd).transpose(1, 2)
            q = q * cos + self._rotate(q) * sin
            k = k * cos + self._rotate(k) * sin
            if len(cache) > i:
                k = torch.cat([cache[i][0], k], dim=2)
                v = torch.cat([cache[i][1], v], dim=2)
                cache[i] = (k, v)
            else:
                cache.append((k, v))
            kk = k[:, :, None].expand(1, self.kv_heads, rep, k.shape[2], self.hd).reshape(1, self.heads, -1, self.hd)
            vv = v[:, :, None].expand(1, self.kv_heads, rep, v.shape[2], self.hd).reshape(1, self.heads, -1, self.hd)
            att = F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask, is_causal=L > 1 and mask is None,
                                                 scale=self.hd ** -0.5)
            att = att.transpose(1, 2).reshape(1, L, self.heads * self.hd)
            x = x + self._attn_out(att, n)
            x = x + self._mlp(self._rms(x, n + "post_attention_layernorm.weight"), n)
        return self._rms(x if all_positions else x[:, -1:], "norm.weight")

    def _pick(self, logits: torch.Tensor, seq: list, penalty: float) -> int:
        scores = logits.float()[None]
        if penalty != 1.0:
            ids = torch.tensor([seq], dtype=torch.long, device=self.device)
            score = torch.gather(scores, 1, ids)
            score = torch.where(score < 0, score * penalty, score / penalty)
            scores = scores.scatter(1, ids, score)
        return int(torch.argmax(scores, dim=-1))

    def _reuse_prefix(self, seq: list, cache: list) -> int:
        """Fill cache with the keys and values of the longest start of seq that an earlier prompt shared (at
        least one token of seq is left to compute). Returns its length."""
        best, entry = 0, None
        with self._prefix_lock:
            for toks, kv in self._prefixes:
                n = 0
                for a, b in zip(toks, seq[:-1]):
                    if a != b:
                        break
                    n += 1
                if n > best:
                    best, entry = n, kv
        if entry is not None:
            cache.extend((k[:, :, :best], v[:, :, :best]) for k, v in entry)
        return best

    def _remember_prefix(self, seq: list, cache: list) -> None:
        with self._prefix_lock:
            self._prefixes = [(list(seq), list(cache))] + self._prefixes[: self.keep_prefixes - 1]

    @staticmethod
    def _lookup(seq: list, k: int, max_ngram: int = 2) -> list:
        """Draft tokens from the sequence itself (prompt lookup): what followed the first earlier occurrence of
        its last n-gram (n = max_ngram … 1), as transformers' prompt-lookup candidate generator picks them."""
        n_seq = len(seq)
        for n in range(min(max_ngram, n_seq - 1), 0, -1):
            tail = seq[-n:]
            for i in range(n_seq - n):
                if seq[i:i + n] == tail and i + n < n_seq:
                    return seq[i + n: min(i + n + k, n_seq)]
        return []

    @torch.inference_mode()
    def generate(self, ids: Sequence[int], max_new_tokens: int, eos_ids: Sequence[int],
                 repetition_penalty: float = 1.0, on_tokens: Optional[Callable[[list], None]] = None,
                 cancel: Optional[threading.Event] = None, lookup: Optional[int] = None) -> list[int]:
        """Greedy decoding, as transformers' generate(do_sample=False, repetition_penalty=…) does it: the penalty
        divides positive (multiplies negative) logits of every token already in the sequence, prompt included.

        lookup: draft up to that many tokens from the text itself (answers quote their notes) and check them all
        in one forward pass; every token is still the greedy choice at its position, so the output is the same
        with fewer passes (default VIGIL_TINYLM_LOOKUP, 8; 0: one token per pass)."""
        if lookup is None:
            lookup = int(os.environ.get("VIGIL_TINYLM_LOOKUP", "8") or 0)
        seq = [int(i) for i in ids]
        eos = set(int(e) for e in eos_ids)
        cache: list = []
        out: list[int] = []

        def emit(tok: int) -> bool:
            out.append(tok)
            seq.append(tok)
            if on_tokens is not None:
                on_tokens([tok])
            return tok in eos or len(out) >= max_new_tokens

        if max_new_tokens <= 0:
            return out
        pos = self._reuse_prefix(seq, cache)  # keys and values of a prompt start seen before (the system prompt)
        h = self._forward(torch.tensor([seq[pos:]], dtype=torch.long, device=self.device), cache, pos)
        self._remember_prefix(seq, cache)
        pos = len(seq)
        done = emit(self._pick(self._head(h[0, -1:])[0], seq, repetition_penalty))
        while not done and not (cancel is not None and cancel.is_set()):
            draft = self._lookup(seq, min(lookup, max_new_tokens - len(out) - 1)) if lookup > 0 else []
            feed = [seq[-1]] + draft
            hs = self._forward(torch.tensor([feed], dtype=torch.long, device=self.device), cache, pos,
                               all_positions=len(feed) > 1)
            logits = self._head(hs[0])
            kept = 1
            for j in range(len(feed)):
                tok = self._pick(logits[j], seq, repetition_penalty)
                done = emit(tok)
                if done or j >= len(draft) or tok != draft[j]:
                    break
                kept += 1  # the draft token was the greedy choice: its keys and values stay in the cache
            pos += kept
            if len(feed) > kept:
                cache[:] = [(k[:, :, :pos], v[:, :, :pos]) for k, v in cache]
        return out


def _tok_config(p: Path) -> dict:
    try:
        return json.loads((p / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        return {}
