"""Our own decoder pass over a loaded HF language model: same modules, same math as transformers' SDPA path,
with preallocated KV caches and, on CUDA, CUDA-graphed prefill and decode steps.

Why: with transformers' eager forward, the 3B answerer on the H100 host spent more time launching kernels
than running them (≈40 small ops per layer, 36 layers, plus DynamicCache concatenation and 3D-rope
recomposition on every call): prefill was launch-bound and decode ran at 12–20 tok/s. Here

- prefill runs the prompt padded to a length bucket (zeros after the prompt; attention is causal, so the
  real tokens never see the padding) from a CUDA graph captured once per bucket;
- each decode step is one CUDA graph replay: embedding, rope, every layer (K/V written in place at the
  step's slot, attention over a window of the cache with a mask of the filled slots), final norm, lm_head;
- on CPU (and with VIGIL_CUDA_GRAPHS=0) the same functions run eagerly over exact slices of the cache.

Concurrent requests (the UI answers up to 4 questions at once) never share a cache: `FastLM` owns a pool of
up to `VIGIL_KV_SLOTS` (default 4) `KVSlot`s, each with its own KV cache, its own static graph inputs/outputs
and its own captured graphs (a graph bakes in the addresses of the buffers it reads and writes). A request
holds one slot from prefill to its last token (`with fast.slot(cancel) as kv:`); a request beyond the pool
waits for a slot to be released. Slots are created, and their caches sized, lazily. Every forward pass (and
every capture) runs under one lock, so requests interleave step by step and the GPU runs one graph at a time;
a greedy step reads its token back after releasing the lock, so the next request's step is already queued.
Each request runs exactly the computation it would run alone (same bucket, same decode window, batch of one,
same kernels), so its tokens do not depend on what else is running. The graphs of all slots share one CUDA
graph memory pool: safe because replays never overlap (one stream, one lock) and every graph copies its
results into buffers outside the pool.

Supported layout: Llama/Qwen2-style decoder layers (input_layernorm, self_attn.{q,k,v,o}_proj,
post_attention_layernorm, mlp), full attention only, 1D or Qwen's 3D (mRoPE) rotary positions. Anything else
(or a capture failure) falls back to transformers' own forward.
"""
from __future__ import annotations

import os
import threading
import warnings
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
import torch.nn.functional as F


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


class Cancelled(Exception):
    """The request was stopped while it waited for the model (no forward pass was started)."""


@contextmanager
def hold(lock: threading.Lock, cancel: Optional[threading.Event] = None):
    """`with lock:`, giving up with Cancelled once `cancel` is set. A stopped request never sits waiting for the
    model behind others, and a thread that holds the lock and stops a request (e.g. a dropped answer finalized by
    the garbage collector in that thread, which joins its worker) cannot deadlock with the worker it waits for."""
    if cancel is None:
        lock.acquire()
    else:
        while not lock.acquire(timeout=0.02):
            if cancel.is_set():
                raise Cancelled()
    try:
        yield
    finally:
        lock.release()


class FastLM:
    """The decoder pass over `lm` (the adapter's language model), shared by every request on one adapter: the
    modules, one lock per forward pass, the graph memory pool and the pool of KV-cache slots."""

    PREFILL_BUCKET = 128      # prompt lengths are padded to multiples of this (1024 beyond 4096)
    DECODE_WINDOW = 512       # decode attends over the cache in windows of this many slots
    SLOTS = 4                 # concurrent requests with a cache of their own (VIGIL_KV_SLOTS overrides)

    def __init__(self, lm, lm_head, embed, text_config, device: torch.device, dtype: torch.dtype,
                 slots: Optional[int] = None):
        self.lm, self.lm_head, self.embed = lm, lm_head, embed
        self.layers = list(lm.layers)
        self.norm = lm.norm
        self.rotary = lm.rotary_emb
        self.device, self.dtype = device, dtype
        tc = text_config
        self.H = int(tc.num_attention_heads)
        self.KV = int(getattr(tc, "num_key_value_heads", None) or self.H)
        self.hd = int(getattr(tc, "head_dim", None) or tc.hidden_size // self.H)
        self.D = int(tc.hidden_size)
        self.V = int(lm_head.weight.shape[0])
        a0 = self.layers[0].self_attn
        self.scaling = float(getattr(a0, "scaling", None) or self.hd ** -0.5)
        rs = getattr(tc, "rope_scaling", None) or getattr(tc, "rope_parameters", None) or {}
        self.mrope_section = list(rs.get("mrope_section") or []) if isinstance(rs, dict) else []
        self.graph_ok = device.type == "cuda" and os.environ.get("VIGIL_CUDA_GRAPHS", "1") != "0"
        self.pool = None          # the graph memory pool of every slot's graphs
        self.n_graphs = 0         # live graphs in it (a pool whose graphs are all gone takes no new captures)
        self.lock = threading.Lock()  # held for each forward pass / capture
        self.max_slots = max(1, int(slots or os.environ.get("VIGIL_KV_SLOTS") or self.SLOTS))
        self.slots: list[KVSlot] = []
        self._free: list[KVSlot] = []
        self._cv = threading.Condition()
        self._solo_slot: Optional[KVSlot] = None

    # ------------------------------------------------------------------ support check
    @staticmethod
    def supports(lm, lm_head, text_config) -> bool:
        try:
            layers = list(lm.layers)
            lm.norm, lm.rotary_emb  # noqa: B018
            for layer in layers:
                a = layer.self_attn
                a.q_proj, a.k_proj, a.v_proj, a.o_proj, layer.input_layernorm, layer.post_attention_layernorm, layer.mlp  # noqa: B018
                if hasattr(a, "q_norm") or hasattr(a, "k_norm") or getattr(a, "sliding_window", None):
                    return False
        except (AttributeError, TypeError):
            return False
        types = getattr(text_config, "layer_types", None)
        if types and any(t != "full_attention" for t in types):
            return False
        if getattr(text_config, "use_sliding_window", False):
            return False
        return lm_head is not None and len(layers) > 0

    # ------------------------------------------------------------------ slots
    @contextmanager
    def slot(self, cancel: Optional[threading.Event] = None) -> Iterator[Optional["KVSlot"]]:
        """Hold a KV-cache slot for one request: a free one (the most recently used, whose cache and graphs are
        warm), a new one while fewer than `max_slots` exist, else wait until one is released. Yields None when
        `cancel` is set before a slot came free."""
        s = None
        with self._cv:
            while s is None:
                if self._free:
                    s = self._free.pop()
                elif len(self.slots) < self.max_slots:
                    s = KVSlot(self, len(self.slots))
                    self.slots.append(s)
                elif cancel is not None and cancel.is_set():
                    break
                else:
                    self._cv.wait(0.02 if cancel is not None else None)
            if s is not None:
                s.cancel = cancel
        try:
            yield s
        finally:
            if s is not None:
                s.cancel = None
                with self._cv:
                    self._free.append(s)
                    self._cv.notify()

    # one private slot, outside the pool, for a single caller that drives the cache by hand (benchmarks'
    # teacher-forced checks): requests go through slot()
    def _solo(self) -> "KVSlot":
        with self._cv:
            if self._solo_slot is None:
                self._solo_slot = KVSlot(self, -1)
            return self._solo_slot

    def prefill(self, emb: torch.Tensor, pos: torch.Tensor, max_new: int) -> torch.Tensor:
        """KVSlot.prefill on the private single-caller slot (not for concurrent requests: use slot())."""
        return self._solo().prefill(emb, pos, max_new)

    def step(self, tok: int, pos: int, slot: int) -> torch.Tensor:
        """KVSlot.step on the private single-caller slot."""
        return self._solo().step(tok, pos, slot)

    @property
    def in_use(self) -> int:
        """Slots held by requests right now."""
        with self._cv:
            return len(self.slots) - len(self._free)

    def _disable_graphs(self) -> None:
        """A capture failed: every slot decodes eagerly from now on (their caches stay valid). Under the lock."""
        self.graph_ok = False
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # no replay of another slot is still running on the GPU
        for s in self.slots + ([self._solo_slot] if self._solo_slot is not None else []):
            s._drop_graphs()

    # ------------------------------------------------------------------ pieces (no cache state)
    def rope(self, x: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin [1, L, hd] for positions [3, 1, L] (mRoPE) or [1, L]."""
        cos, sin = self.rotary(x, pos)
        if cos.dim() == 4:  # transformers versions that leave the mRoPE recomposition to the attention
            sec = self.mrope_section * 2
            cos = torch.cat([m[i % 3] for i, m in enumerate(cos.split(sec, dim=-1))], dim=-1)
            sin = torch.cat([m[i % 3] for i, m in enumerate(sin.split(sec, dim=-1))], dim=-1)
        return cos, sin

    def _qkv(self, layer, x, cos, sin):
        B, L, _ = x.shape
        a = layer.self_attn
        q = a.q_proj(x).view(B, L, -1, self.hd).transpose(1, 2)
        k = a.k_proj(x).view(B, L, -1, self.hd).transpose(1, 2)
        v = a.v_proj(x).view(B, L, -1, self.hd).transpose(1, 2)
        c, s = cos.unsqueeze(1), sin.unsqueeze(1)
        q = (q * c) + (_rotate_half(q) * s)
        k = (k * c) + (_rotate_half(k) * s)
        return q, k, v

    def _finish(self, layer, h, o):
        B, L = h.shape[:2]
        h = h + layer.self_attn.o_proj(o.transpose(1, 2).reshape(B, L, -1))
        return h + layer.mlp(layer.post_attention_layernorm(h))

    def _attend_one(self, q, K, V, mask):
        """One query token: pack the query heads of each KV head as rows (no K/V repetition)."""
        g = self.H // self.KV
        qp = q.reshape(1, self.KV, g, self.hd)
        o = F.scaled_dot_product_attention(qp, K, V, attn_mask=mask, scale=self.scaling)
        return o.reshape(1, self.H, 1, self.hd)

    def _pos(self, p: torch.Tensor) -> torch.Tensor:
        """[P, 1, L] static positions -> what the rotary embedding takes: [3, 1, L] or [1, L]."""
        return p if self.mrope_section else p[0]

    def _logits(self, h_last):
        return self.lm_head(self.norm(h_last)).float()


class KVSlot:
    """One request's KV cache, its static graph buffers and its captured graphs. Held by one request at a time
    (FastLM.slot); every method that touches the GPU/cache runs under the owner's lock."""

    def __init__(self, owner: FastLM, index: int):
        self.o = owner
        self.index = index
        self.cap = 0
        self.k = self.v = None
        self.graphs: dict = {}
        self._next = None         # (tok, pos, slot) the decode graph left in its inputs
        self._ban = None
        self.steps = 0            # forward passes run in this slot (prefill + decode steps)
        self.cancel: Optional[threading.Event] = None  # the holding request's stop signal

    @property
    def graph_ok(self) -> bool:
        return self.o.graph_ok

    # ------------------------------------------------------------------ cache
    def _drop_graphs(self) -> None:
        o = self.o
        o.n_graphs -= len(self.graphs)
        self.graphs.clear()
        self._next = None
        if o.n_graphs <= 0:
            o.n_graphs = 0
            o.pool = None  # a pool whose graphs are all gone cannot take new captures: start a fresh one

    def ensure(self, need: int) -> None:
        """KV cache for at least `need` positions (reallocating drops this slot's captured graphs)."""
        if need <= self.cap:
            return
        o = self.o
        cap = _round_up(max(need, 2048), 2048)
        self._drop_graphs()
        self.k = self.v = None
        shape = (len(o.layers), 1, o.KV, cap, o.hd)
        self.k = torch.zeros(shape, device=o.device, dtype=o.dtype)
        self.v = torch.zeros(shape, device=o.device, dtype=o.dtype)
        self.cap = cap
        if o.graph_ok:
            P = 3 if o.mrope_section else 1
            dev = o.device
            self.s_emb = torch.zeros(1, cap, o.D, device=dev, dtype=o.dtype)
            self.s_pos = torch.zeros(P, 1, cap, device=dev, dtype=torch.long)  # [P, 1, cap]
            self.s_last = torch.zeros(1, device=dev, dtype=torch.long)
            self.s_tok = torch.zeros(1, 1, device=dev, dtype=torch.long)
            self.s_dpos = torch.zeros(P, 1, 1, device=dev, dtype=torch.long)
            self.s_w = torch.zeros(1, device=dev, dtype=torch.long)
            self.s_next = torch.zeros(1, device=dev, dtype=torch.long)
            self.s_bias = torch.zeros(o.V, device=dev)  # -inf at stop ids while min_new_tokens is not reached
            self._ban = ()
            self.s_logits = torch.zeros(1, o.V, device=dev)
            self.h_next = torch.zeros(1, dtype=torch.long).pin_memory()  # the greedy token, read back
            self.ev_next = torch.cuda.Event()

    # ------------------------------------------------------------------ eager bodies
    def _prefill_body(self, emb, pos, L: int):
        o = self.o
        h = emb
        cos, sin = o.rope(h, pos)
        for i, layer in enumerate(o.layers):
            q, k, v = o._qkv(layer, layer.input_layernorm(h), cos, sin)
            self.k[i, :, :, :L].copy_(k)
            self.v[i, :, :, :L].copy_(v)
            if o.KV != o.H:  # repeat K/V heads (cheap at prompt length; keeps SDPA on its flash kernel)
                g = o.H // o.KV
                k = k[:, :, None].expand(-1, -1, g, -1, -1).reshape(1, o.H, L, o.hd)
                v = v[:, :, None].expand(-1, -1, g, -1, -1).reshape(1, o.H, L, o.hd)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=o.scaling)
            h = o._finish(layer, h, a)
        return h

    def _step_body(self, emb, pos, slot, W: int, mask):
        """slot: int (eager: attend over exactly slot+1 cache entries) or a [1] tensor (graph: window W, mask)."""
        o = self.o
        h = emb
        cos, sin = o.rope(h, pos)
        for i, layer in enumerate(o.layers):
            q, k, v = o._qkv(layer, layer.input_layernorm(h), cos, sin)
            if isinstance(slot, int):
                self.k[i, :, :, slot:slot + 1].copy_(k)
                self.v[i, :, :, slot:slot + 1].copy_(v)
                K, V = self.k[i, :, :, :slot + 1], self.v[i, :, :, :slot + 1]
            else:
                self.k[i].index_copy_(2, slot, k)
                self.v[i].index_copy_(2, slot, v)
                K, V = self.k[i, :, :, :W], self.v[i, :, :, :W]
            h = o._finish(layer, h, o._attend_one(q, K, V, mask))
        return o._logits(h[:, -1:])[:, 0]

    # ------------------------------------------------------------------ graphs
    def _capture(self, key, body, keep=()):
        """Warm up `body` on a side stream, then capture it into the shared pool; returns the graph (None when
        capture fails: then every slot decodes eagerly). `keep`: static inputs the body advances, restored after
        the warm-up."""
        o = self.o
        saved = [t.clone() for t in keep]
        s = torch.cuda.Stream(o.device)
        s.wait_stream(torch.cuda.current_stream(o.device))
        with torch.cuda.stream(s):
            body()
        torch.cuda.current_stream(o.device).wait_stream(s)
        for t, v in zip(keep, saved):
            t.copy_(v)
        if o.pool is None:
            o.pool = torch.cuda.graph_pool_handle()
        g = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(g, pool=o.pool, capture_error_mode="thread_local"):
                body()
        except Exception as e:  # noqa: BLE001 - fall back to eager for good
            warnings.warn(f"CUDA graph capture failed, decoding eagerly: {type(e).__name__}: {e}"[:300])
            o._disable_graphs()
            return None
        self.graphs[key] = g
        o.n_graphs += 1
        return g

    def _prefill_graph(self, Lp: int):
        g = self.graphs.get(("prefill", Lp))
        if g is not None:
            return g

        def body():
            h = self._prefill_body(self.s_emb[:, :Lp], self.o._pos(self.s_pos[..., :Lp]), Lp)
            self.s_logits.copy_(self.o._logits(h.index_select(1, self.s_last))[:, 0])
        return self._capture(("prefill", Lp), body)

    def _step_graph(self, W: int):
        g = self.graphs.get(("step", W))
        if g is not None:
            return g
        o = self.o

        def body():
            mask = (torch.arange(W, device=o.device) <= self.s_w).view(1, 1, 1, W)
            out = self._step_body(o.embed(self.s_tok), o._pos(self.s_dpos), self.s_w, W, mask)
            self.s_logits.copy_(out)
            # greedy next token (stop ids banned through s_bias while min_new_tokens is not reached), and the
            # inputs of the next step: the graph feeds itself, the host only reads the token
            nxt = (out + self.s_bias).argmax(-1)
            self.s_next.copy_(nxt)
            self.s_tok.copy_(nxt.view(1, 1))
            self.s_dpos.add_(1)
            self.s_w.add_(1)
        return self._capture(("step", W), body, keep=(self.s_tok, self.s_dpos, self.s_w))

    # ------------------------------------------------------------------ API
    @torch.inference_mode()
    def prefill(self, emb: torch.Tensor, pos: torch.Tensor, max_new: int) -> torch.Tensor:
        """emb [1, L, D], pos [3, 1, L] or [1, L] -> logits of the last prompt token [1, V] (float32); the
        cache then holds the prompt's K/V, ready for `step` from slot L."""
        L = emb.shape[1]
        with hold(self.o.lock, self.cancel):
            self.steps += 1
            self._next = None
            if self.o.graph_ok:
                Lp = _round_up(L, self.o.PREFILL_BUCKET if L <= 4096 else 1024)
                self.ensure(max(Lp, L + max_new + 1))
                self.s_emb[:, :L].copy_(emb)
                if Lp > L:
                    self.s_emb[:, L:Lp].zero_()  # finite padding (causal: the prompt never attends to it)
                self.s_pos[..., :L].copy_(pos.view(self.s_pos.shape[0], 1, L))
                self.s_last.fill_(L - 1)
                g = self._prefill_graph(Lp)
                if g is not None:
                    g.replay()
                    return self.s_logits.clone()
            self.ensure(L + max_new + 1)
            h = self._prefill_body(emb, pos, L)
            return self.o._logits(h[:, -1:])[:, 0]

    def _graph_step(self, tok: int, pos: int, slot: int, ban: tuple) -> bool:
        """Replay the decode graph for (tok, pos, slot); False when graphs are off or capture failed."""
        if not self.o.graph_ok:
            return False
        W = min(self.cap, _round_up(slot + 1, self.o.DECODE_WINDOW))
        if self._next != (tok, pos, slot):  # the graph did not leave these inputs in place: set them
            self.s_tok.fill_(tok)
            self.s_dpos.fill_(pos)
            self.s_w.fill_(slot)
        if self._ban != ban:
            self.s_bias.zero_()
            if ban:
                self.s_bias[list(ban)] = float("-inf")
            self._ban = ban
        g = self._step_graph(W)
        if g is None:
            return False
        g.replay()
        return True

    @torch.inference_mode()
    def step(self, tok: int, pos: int, slot: int) -> torch.Tensor:
        """Feed token `tok` at text position `pos` into cache slot `slot` -> next-token logits [1, V]."""
        with hold(self.o.lock, self.cancel):
            if slot >= self.cap:
                raise RuntimeError("KV cache full")
            self.steps += 1
            self._next = None
            if self._graph_step(tok, pos, slot, ()):
                return self.s_logits.clone()
            return self._eager_step(tok, pos, slot)

    @torch.inference_mode()
    def step_greedy(self, tok: int, pos: int, slot: int, ban: tuple = ()) -> int:
        """`step`, then the argmax token (ids in `ban` excluded): one graph replay and one 8-byte read, taken
        after the lock is released so that another request's step queues behind this one meanwhile."""
        with hold(self.o.lock, self.cancel):
            if slot >= self.cap:
                raise RuntimeError("KV cache full")
            self.steps += 1
            graphed = self._graph_step(tok, pos, slot, tuple(ban))
            if graphed:
                self.h_next.copy_(self.s_next, non_blocking=True)
                self.ev_next.record()
            else:
                self._next = None
                logits = self._eager_step(tok, pos, slot)
        if graphed:
            self.ev_next.synchronize()
            nxt = int(self.h_next)
            self._next = (nxt, pos + 1, slot + 1)
            return nxt
        if ban:
            logits[:, list(ban)] = float("-inf")
        return int(logits.argmax(-1))

    def _eager_step(self, tok: int, pos: int, slot: int) -> torch.Tensor:
        o = self.o
        P = 3 if o.mrope_section else 1
        e = o.embed(torch.tensor([[tok]], device=o.device))
        p = torch.full((P, 1, 1) if P == 3 else (1, 1), pos, device=o.device, dtype=torch.long)
        return self._step_body(e, p, slot, slot + 1, None)
