"""Shared tensor ops for the reducers: saliency/keys with fallbacks, budget allocation, ranking, DPC-kNN.

All functions are pure torch, vectorized over tokens, deterministic (ties broken by index) and device-agnostic.
Similarities are computed in float32 whatever the input dtype.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
import warnings
from collections import OrderedDict
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import TokenGrid


class GraphCache:
    """Replays a pure device function from CUDA graphs, one per key (input shapes, dtypes, host arguments).

    The reducers are bound by kernel-launch overhead on the GPU (a few hundred small kernels per clip), not by
    GPU work. A function whose output shapes are fixed by its key (no host sync, no data-dependent shape) is
    captured once per key and then replayed: its inputs are copied into static buffers, one graph launch
    runs every kernel, and the outputs are cloned. Same kernels, same results as eager, deterministic.
    CPU tensors, or VIGIL_CUDA_GRAPHS=0, run the function eagerly. The first call of a key runs eagerly
    (as the warm-up) and captures; at most `size` keys are kept (least recently used dropped). Each key keeps
    its static inputs (a copy of the clip's tokens, ~27 MB at 16×729×1152 bf16); intermediates share one pool.
    """

    _pools: dict = {}

    def __init__(self, fn: Callable, size: int = 12):
        self.fn, self.size = fn, size
        self.cache: OrderedDict = OrderedDict()
        self.failed: set = set()
        self.lock = threading.Lock()

    @staticmethod
    def enabled(t: Tensor) -> bool:
        return t.is_cuda and os.environ.get("VIGIL_CUDA_GRAPHS", "1") != "0" and not torch.cuda.is_current_stream_capturing()

    def __call__(self, *tensors: Tensor, rows: int = 0, **kw):
        """fn(*tensors, **kw) -> tuple of tensors. rows > 0: every input and output has a batch dim 0, and the
        graph is keyed on (and run at) `rows` rows, the inputs zero-padded (few graphs for varying batches)."""
        if not self.enabled(tensors[0]):
            return self.fn(*tensors, **kw)
        n = tensors[0].shape[0]
        R = max(rows, n) if rows else n
        shapes = tuple(((R,) + tuple(t.shape[1:]) if rows else tuple(t.shape), t.dtype) for t in tensors)
        full = (shapes, tuple(sorted(kw.items())), tensors[0].device)
        if full in self.failed:
            return self.fn(*tensors, **kw)
        with self.lock:
            e = self.cache.get(full)
            if e is not None:
                self.cache.move_to_end(full)
                g, sin, sout = e
                for a, b in zip(sin, tensors):
                    if rows:
                        a[:n].copy_(b)
                        if R > n:
                            a[n:].zero_()
                    else:
                        a.copy_(b)
                g.replay()
                return tuple((o[:n] if rows else o).clone() for o in sout)
            dev = tensors[0].device
            sin = []
            for t, (shp, _) in zip(tensors, shapes):
                a = t.new_zeros(shp)
                a[:t.shape[0]].copy_(t)
                sin.append(a)
            cur = torch.cuda.current_stream(dev)
            side = torch.cuda.Stream(dev)
            side.wait_stream(cur)
            with torch.cuda.stream(side):
                out = self.fn(*sin, **kw)  # warm-up (allocator, library handles), and this call's result
            cur.wait_stream(side)
            g = torch.cuda.CUDAGraph()
            pool = self._pools.setdefault(dev, torch.cuda.graph_pool_handle())
            try:
                with torch.cuda.graph(g, pool=pool, capture_error_mode="thread_local"):
                    sout = self.fn(*sin, **kw)
            except Exception as e:  # noqa: BLE001 - an op that cannot be captured: stay eager for this key
                self.failed.add(full)
                warnings.warn(f"CUDA graph capture of {getattr(self.fn, '__name__', self.fn)} failed, running "
                              f"eagerly: {type(e).__name__}: {e}"[:300])
                torch.cuda.synchronize(dev)
                return tuple(o[:n] for o in out) if rows else out
            self.cache[full] = (g, sin, sout)
            while len(self.cache) > self.size:
                self.cache.popitem(last=False)
            return tuple(o[:n] for o in out) if rows else out


def normed(x: Tensor) -> Tensor:
    """L2-normalised float32 copy of x along the last dim."""
    return F.normalize(x.float(), dim=-1)


def saliency_of(grid: TokenGrid) -> Tensor:
    """[T, N] float32 saliency: grid.saliency when given, else a fallback.

    Fallback (no [CLS] / attention available): 1 − cos(x_{t,n}, mean_n x_{t,n}), how unlike its frame's
    mean a token is. It costs O(T·N·D) and, like [CLS] attention, ranks distinctive objects above the
    uniform background that averaging already represents.
    """
    if grid.saliency is not None:
        return grid.saliency.float()
    x = normed(grid.tokens)
    m = F.normalize(x.mean(1, keepdim=True), dim=-1)
    return 1.0 - (x * m).sum(-1)


def frame_keys_of(grid: TokenGrid) -> Tensor:
    """[T, K] float32 frame keys: grid.frame_keys when given, else the mean token of each frame."""
    if grid.frame_keys is not None:
        return grid.frame_keys.float()
    return grid.tokens.float().mean(1)


def adjacent_cos(x: Tensor) -> Tensor:
    """Cosine of consecutive rows. x: [T, ...K] -> [T-1, ...] (last dim reduced)."""
    xn = normed(x)
    return (xn[1:] * xn[:-1]).sum(-1)


def split_even(total: int, parts: int, device) -> Tensor:
    """total split into `parts` near-equal integer shares (earlier parts get the remainder) -> [parts] long."""
    i = torch.arange(parts, device=device)
    return total // parts + (i < total % parts).long()


def allocate(cap: Tensor, budget: int | Tensor) -> Tensor:
    """Share a budget across groups in proportion to their capacities, exactly.

    cap: [G] long ≥ 0 -> counts [G] long with counts ≤ cap and Σcounts = min(budget, Σcap).
    counts_g = ⌊budget·cap_g / Σcap⌋, the remainder to the largest fractions (ties: lower index).
    Integer arithmetic only, no host sync.
    """
    cap = cap.long()
    S = cap.sum()
    b = torch.as_tensor(budget, device=cap.device, dtype=torch.long)
    b = torch.minimum(b, S)
    Sc = S.clamp(min=1)
    num = b * cap
    base = num // Sc
    frac = num - base * Sc
    rem = b - base.sum()
    G = cap.numel()
    # order by fraction descending, index ascending (stable)
    order = torch.argsort(-frac, stable=True)
    rank = torch.empty_like(order).scatter_(0, order, torch.arange(G, device=cap.device))
    extra = (rank < rem) & (frac > 0)
    return base + extra.long()


def rank_rows(score: Tensor, valid: Optional[Tensor] = None) -> Tensor:
    """Rank of each entry within its row by descending score (0 = best; ties: lower index first).

    score: [B, L], valid: [B, L] bool (invalid entries rank last) -> [B, L] long.
    """
    s = score.float()
    if valid is not None:
        s = s.masked_fill(~valid, float("-inf"))
    order = torch.argsort(s, dim=-1, descending=True, stable=True)
    B, L = s.shape
    return torch.empty_like(order).scatter_(1, order, torch.arange(L, device=s.device).expand(B, L))


def top_per_row(score: Tensor, k: Tensor, valid: Optional[Tensor] = None) -> Tensor:
    """Mask of the top-k[b] entries of each row (variable k). score: [B, L], k: [B] long -> [B, L] bool."""
    r = rank_rows(score, valid)
    m = r < k[:, None]
    if valid is not None:
        m &= valid
    return m


def dpc_knn(x: Tensor, valid: Tensor, n_centres: Tensor, k: int = 7) -> tuple[Tensor, Tensor]:
    """Density-peak clustering with k-NN density (DPC-kNN), batched with padding; see `_dpc_core`.

    On CUDA it replays a CUDA graph per (batch rounded up to a multiple of 4, L, D, k): the padded rows
    have no valid token and do not affect the others.
    """
    if GraphCache.enabled(x):
        B = x.shape[0]
        return _DPC(x.float(), valid, n_centres.long(), rows=-(-B // 4) * 4, k=k)
    return _dpc_core(x, valid, n_centres, k)


@contextmanager
def exact_tf32(on: bool = True):
    """Let float32 matrix products use TF32 inside the block. Only for operands that hold bfloat16 values:
    their 8-bit mantissas fit TF32's 10 bits, so every product is exact and the sums stay float32, i.e. the
    result is the float32 one up to summation order, ~8× faster on tensor cores."""
    if not on:
        yield
        return
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev


def _dpc_core(x: Tensor, valid: Tensor, n_centres: Tensor, k: int = 7, bf16_from: Optional[int] = None,
              fused: bool = False) -> tuple[Tensor, Tensor]:
    """Density-peak clustering with k-NN density (DPC-kNN), batched with padding.

    x: [B, L, D], valid: [B, L] bool, n_centres: [B] long (clamped to the valid count)
    -> centre [B, L] bool, assign [B, L] long (index in L of each token's centre; -1 when invalid).
    bf16_from: batch rows from this one on hold bfloat16 values (see `exact_tf32`).

    d = cdist/√D; ρ = exp(−mean of the k smallest squared distances); δ = distance to the nearest denser
    token (ties in ρ: the lower index counts as denser), max distance for the densest; centres are the top
    ρ·δ; every valid token joins its nearest centre (a centre joins itself).

    Works on squared distances d² = (|a|² + |b|² − 2a·b)/D from one baddbmm (invalid pairs +inf through the
    norms), so no [B, L, L] square root; the max distance is needed for the densest token of each row only.

    fused: on CUDA with Triton, the three row passes over d² (k-NN density, nearest denser token, nearest
    centre) run as one Triton kernel each (`_knn_sum_triton`, `_delta2_triton`, `_assign_triton`), which
    apply the clamp and the diagonal on the fly: no torch.topk, no [B, L, L] temporaries. Same function;
    the k smallest squared distances are summed in ascending order (torch.topk's order is unspecified), so ρ
    can differ in the last bit.
    """
    B, L, D = x.shape
    dev = x.device
    inf = float("inf")
    xf = x.float()
    sq = torch.where(valid, (xf * xf).sum(-1), inf)  # [B, L]; inf marks invalid rows and columns
    base = sq[:, :, None] + sq[:, None, :]
    if bf16_from is None or not x.is_cuda:
        d2 = torch.baddbmm(base, xf, xf.transpose(1, 2), beta=1.0 / D, alpha=-2.0 / D)
    else:  # rows from bf16_from on hold bfloat16 values: their Gram matrix on TF32 tensor cores is exact
        s0 = max(0, min(bf16_from, B))
        d2 = torch.empty_like(base)
        if s0 > 0:
            torch.baddbmm(base[:s0], xf[:s0], xf[:s0].transpose(1, 2), beta=1.0 / D, alpha=-2.0 / D, out=d2[:s0])
        if s0 < B:
            with exact_tf32():
                torch.baddbmm(base[s0:], xf[s0:], xf[s0:].transpose(1, 2), beta=1.0 / D, alpha=-2.0 / D, out=d2[s0:])
    nvalid = valid.sum(-1)
    kk = max(1, min(k, L - 1))
    if fused and HAVE_TRITON and x.is_cuda and L <= _TRITON_MAX_L:
        return _dpc_fused_tail(d2, valid, nvalid, n_centres, kk)
    d2.clamp_(min=0)
    d2.diagonal(dim1=1, dim2=2).fill_(inf)  # a token is not its own neighbour (nor denser than itself)
    knn = torch.topk(d2, kk, dim=-1, largest=False, sorted=False).values  # [B, L, kk] squared distances
    # a valid token has min(k, n_valid − 1) finite neighbours
    msq = knn.nan_to_num(posinf=0.0).sum(-1) / (nvalid - 1).clamp(min=1, max=kk)[:, None]
    rho = torch.where(valid, torch.exp(-msq), -1.0)
    # "denser" = higher ρ, ties to the lower index: compare ranks of a stable descending sort
    order = torch.argsort(rho, dim=-1, descending=True, stable=True)
    ar = torch.arange(L, device=dev).expand(B, L)
    rank = torch.empty_like(order).scatter_(1, order, ar)
    delta2 = torch.where(rank[:, None, :] < rank[:, :, None], d2, inf).amin(-1)
    # the densest token of each row: its largest distance to another valid token (0 when it is alone)
    far = d2.gather(1, order[:, :1, None].expand(B, 1, L)).squeeze(1).nan_to_num(posinf=0.0).amax(-1)
    delta2 = torch.where(rank == 0, far[:, None], delta2)
    score = torch.where(valid, rho * delta2.sqrt(), -inf)
    nc = torch.minimum(n_centres.long(), nvalid)
    srank = torch.empty_like(order).scatter_(1, torch.argsort(score, dim=-1, descending=True, stable=True), ar)
    centre = (srank < nc[:, None]) & valid
    assign = torch.where(centre[:, None, :], d2, inf).argmin(-1)
    assign = torch.where(centre, ar, assign)
    return centre, torch.where(valid & (nc > 0)[:, None], assign, -1)


_DPC = GraphCache(_dpc_core, size=16)


# ------------------------------------------------------------------ optional Triton kernels (CUDA only)
# Row passes over a squared-distance matrix d² [B, L, L] as `_dpc_core` uses it (entries read raw from the
# baddbmm: clamped at 0 and the diagonal set to +inf on the fly), and a contiguous-segment sum. Each program
# handles ROWS rows of one batch entry with the whole row in registers (L ≤ _TRITON_MAX_L).
_TRITON_MAX_L = 4096
try:
    import triton
    import triton.language as tl

    @triton.jit
    def _d2_rows(d2_ptr, b, rows, cols, L):
        rmask = rows < L
        cmask = cols < L
        base = d2_ptr + b.to(tl.int64) * L * L
        v = tl.load(base + rows[:, None].to(tl.int64) * L + cols[None, :], mask=rmask[:, None] & cmask[None, :],
                    other=float("inf"))
        v = tl.maximum(v, 0.0)
        return tl.where(rows[:, None] == cols[None, :], float("inf"), v)

    @triton.jit
    def _knn_sum_kernel(d2_ptr, out_ptr, L, KK: tl.constexpr, ROWS: tl.constexpr, BLOCK: tl.constexpr):
        nrb = tl.cdiv(L, ROWS)
        pid = tl.program_id(0)
        b = pid // nrb
        rows = (pid % nrb) * ROWS + tl.arange(0, ROWS)
        cols = tl.arange(0, BLOCK)
        v = _d2_rows(d2_ptr, b, rows, cols, L)
        acc = tl.zeros([ROWS], tl.float32)
        for _ in tl.static_range(KK):  # the KK smallest, ascending; one occurrence removed per step
            m, i = tl.min(v, axis=1, return_indices=True, return_indices_tie_break_left=True)
            acc += tl.where(m < float("inf"), m, 0.0)
            v = tl.where(cols[None, :] == i[:, None], float("inf"), v)
        tl.store(out_ptr + b.to(tl.int64) * L + rows, acc, mask=rows < L)

    @triton.jit
    def _delta2_kernel(d2_ptr, rank_ptr, out_ptr, L, ROWS: tl.constexpr, BLOCK: tl.constexpr):
        nrb = tl.cdiv(L, ROWS)
        pid = tl.program_id(0)
        b = pid // nrb
        rows = (pid % nrb) * ROWS + tl.arange(0, ROWS)
        cols = tl.arange(0, BLOCK)
        v = _d2_rows(d2_ptr, b, rows, cols, L)
        rk = rank_ptr + b.to(tl.int64) * L
        rj = tl.load(rk + cols, mask=cols < L, other=L)
        ri = tl.load(rk + rows, mask=rows < L, other=L)
        near = tl.min(tl.where(rj[None, :] < ri[:, None], v, float("inf")), axis=1)
        far = tl.max(tl.where(v < float("inf"), v, 0.0), axis=1)
        tl.store(out_ptr + b.to(tl.int64) * L + rows, tl.where(ri == 0, far, near), mask=rows < L)

    @triton.jit
    def _assign_kernel(d2_ptr, centre_ptr, out_ptr, L, ROWS: tl.constexpr, BLOCK: tl.constexpr):
        nrb = tl.cdiv(L, ROWS)
        pid = tl.program_id(0)
        b = pid // nrb
        rows = (pid % nrb) * ROWS + tl.arange(0, ROWS)
        cols = tl.arange(0, BLOCK)
        v = _d2_rows(d2_ptr, b, rows, cols, L)
        c = tl.load(centre_ptr + b.to(tl.int64) * L + cols, mask=cols < L, other=0)
        _, i = tl.min(tl.where(c[None, :] != 0, v, float("inf")), axis=1, return_indices=True,
                      return_indices_tie_break_left=True)
        tl.store(out_ptr + b.to(tl.int64) * L + rows, i.to(tl.int64), mask=rows < L)

    @triton.jit(do_not_specialize=["T", "N"])
    def _seg_sum_kernel(x_ptr, seg_ptr, sum_ptr, sq_ptr, T, N, D, eps,
                        NORMALIZE: tl.constexpr, WRITE_SUM: tl.constexpr, WRITE_SQ: tl.constexpr, BLOCK: tl.constexpr):
        n = tl.program_id(0)
        offs = tl.arange(0, BLOCK)
        dm = offs < D
        acc = tl.zeros([BLOCK], tl.float32)
        prev = tl.load(seg_ptr)
        for t in range(T):  # branch-free: a run's sum is stored (masked) when the next run starts
            s = tl.load(seg_ptr + t)
            end = (offs * 0 + s) != prev  # [BLOCK], all lanes alike
            if WRITE_SUM:
                tl.store(sum_ptr + (prev.to(tl.int64) * N + n) * D + offs, acc, mask=dm & end)
            if WRITE_SQ:
                q = tl.zeros([BLOCK], tl.float32) + tl.sum(acc * acc, axis=0)  # stored from lane 0
                tl.store(sq_ptr + prev.to(tl.int64) * N + n + offs * 0, q, mask=(offs == 0) & end)
            v = tl.load(x_ptr + (t * N + n) * D + offs, mask=dm, other=0.0).to(tl.float32)  # numel < 2³¹
            if NORMALIZE:
                nrm = tl.sqrt_rn(tl.sum(v * v, axis=0))
                v = tl.math.div_rn(v, tl.maximum(nrm, eps))
            acc = tl.where(end, 0.0, acc) + v
            prev = s
        if WRITE_SUM:
            tl.store(sum_ptr + (prev.to(tl.int64) * N + n) * D + offs, acc, mask=dm)
        if WRITE_SQ:
            tl.store(sq_ptr + prev.to(tl.int64) * N + n, tl.sum(acc * acc, axis=0))

    HAVE_TRITON = True
except Exception:  # pragma: no cover - no triton on this machine
    HAVE_TRITON = False


def _rows_cfg(L: int) -> tuple[int, int, int]:
    block = max(16, 1 << (L - 1).bit_length())
    rows = max(1, min(8, 4096 // block))
    return rows, block, 4 if block <= 2048 else 8


def _knn_sum_triton(d2: Tensor, kk: int) -> Tensor:
    """Σ of the kk smallest entries of each row of clamp(d², 0) off the diagonal (+inf counted as 0) -> [B, L]."""
    B, L, _ = d2.shape
    out = torch.empty(B, L, device=d2.device)
    rows, block, nw = _rows_cfg(L)
    _knn_sum_kernel[(B * triton.cdiv(L, rows),)](d2, out, L, KK=kk, ROWS=rows, BLOCK=block, num_warps=nw)
    return out


def _delta2_triton(d2: Tensor, rank: Tensor) -> Tensor:
    """min of d²[i, j] over the denser j (rank[j] < rank[i]); for rank 0 the largest finite d²[i, j]."""
    B, L, _ = d2.shape
    out = torch.empty(B, L, device=d2.device)
    rows, block, nw = _rows_cfg(L)
    _delta2_kernel[(B * triton.cdiv(L, rows),)](d2, rank.contiguous(), out, L, ROWS=rows, BLOCK=block, num_warps=nw)
    return out


def _assign_triton(d2: Tensor, centre: Tensor) -> Tensor:
    """Index of each row's nearest centre (first on ties; 0 when there is none) -> [B, L] long."""
    B, L, _ = d2.shape
    out = torch.empty(B, L, device=d2.device, dtype=torch.long)
    rows, block, nw = _rows_cfg(L)
    _assign_kernel[(B * triton.cdiv(L, rows),)](d2, centre.contiguous().view(torch.uint8), out, L,
                                                ROWS=rows, BLOCK=block, num_warps=nw)
    return out


def _dpc_fused_tail(d2: Tensor, valid: Tensor, nvalid: Tensor, n_centres: Tensor, kk: int) -> tuple[Tensor, Tensor]:
    """The part of `_dpc_core` after the raw d² (not yet clamped, diagonal not set), with the Triton row passes."""
    B, L, _ = d2.shape
    dev = d2.device
    inf = float("inf")
    d2 = d2.contiguous()
    msq = _knn_sum_triton(d2, kk) / (nvalid - 1).clamp(min=1, max=kk)[:, None]
    rho = torch.where(valid, torch.exp(-msq), -1.0)
    order = torch.argsort(rho, dim=-1, descending=True, stable=True)
    ar = torch.arange(L, device=dev).expand(B, L)
    rank = torch.empty_like(order).scatter_(1, order, ar)
    delta2 = _delta2_triton(d2, rank)
    score = torch.where(valid, rho * delta2.sqrt(), -inf)
    nc = torch.minimum(n_centres.long(), nvalid)
    srank = torch.empty_like(order).scatter_(1, torch.argsort(score, dim=-1, descending=True, stable=True), ar)
    centre = (srank < nc[:, None]) & valid
    assign = torch.where(centre, ar, _assign_triton(d2, centre))
    return centre, torch.where(valid & (nc > 0)[:, None], assign, -1)


def segment_sums(x: Tensor, seg: Tensor, rows: int, normalize: bool = False, sums: bool = True,
                 sumsq: bool = False) -> tuple[Optional[Tensor], Optional[Tensor]]:
    """Per-segment sums over dim 0 of x [T, N, D] (of the L2-normalised rows when `normalize`), for segments
    that are contiguous runs of seg [T] (each value in one run; values < rows) -> (sums [rows, N, D] float32,
    Σ_d sums² [rows, N]); rows no run names stay 0. Summed in frame order from 0, as index_add_ on the CPU
    does; on CUDA with Triton one deterministic kernel (no atomics; the norms are its own, not F.normalize's
    reduction order), else index_add_."""
    T, N, D = x.shape
    dev = x.device
    if HAVE_TRITON and x.is_cuda and D <= 16384 and x.numel() < 2 ** 31:
        s = torch.zeros(rows, N, D, device=dev) if sums else None
        q = torch.zeros(rows, N, device=dev) if sumsq else None
        block = max(16, 1 << (D - 1).bit_length())
        dummy = torch.empty(1, device=dev)
        _seg_sum_kernel[(N,)](x.contiguous(), seg.contiguous(), dummy if s is None else s, dummy if q is None else q,
                              T, N, D, 1e-12, NORMALIZE=normalize, WRITE_SUM=sums, WRITE_SQ=sumsq, BLOCK=block,
                              num_warps=4 if block <= 2048 else 8)
        return s, q
    v = normed(x) if normalize else x.float()
    s = torch.zeros(rows, N, D, device=dev).index_add_(0, seg, v)
    return (s if sums else None), ((s * s).sum(-1) if sumsq else None)


def batched_nearest(x: Tensor, targets: Tensor, target_valid: Tensor) -> Tensor:
    """Index of each row's most similar (cosine) valid target. x: [B, L, D], targets: [B, C, D],
    target_valid: [B, C] bool -> [B, L] long."""
    s = torch.bmm(normed(x), normed(targets).transpose(1, 2))
    s = s.masked_fill(~target_valid[:, None, :], float("-inf"))
    return s.argmax(-1)


CONTINUE_TAU = 0.9  # mean positional cosine above which a clip's first frame continues the previous clip's last


def state_tensor(state, key: str, shape: tuple[int, ...], device) -> Optional[Tensor]:
    """state[key] moved to `device` when state is a dict holding a tensor of that shape, else None."""
    if not isinstance(state, dict):
        return None
    v = state.get(key)
    if not isinstance(v, Tensor) or tuple(v.shape) != tuple(shape):
        return None
    return v.to(device)


def positional_cos(a: Tensor, b: Tensor) -> Tensor:
    """Cosine of tokens at the same positions. a, b: [..., N, D] -> [..., N] float32."""
    return (normed(a) * normed(b)).sum(-1)


def allocate_host(cap: list[int], budget: int) -> list[int]:
    """`allocate` on host integers (same result): share a budget across groups in proportion to capacity."""
    S = sum(cap)
    b = min(budget, S)
    Sc = max(S, 1)
    base = [b * c // Sc for c in cap]
    frac = [b * c - q * Sc for c, q in zip(cap, base)]
    rem = b - sum(base)
    order = sorted(range(len(cap)), key=lambda g: -frac[g])  # stable: ties keep the lower index first
    out = list(base)
    for g in order[:max(0, rem)]:
        if frac[g] > 0:
            out[g] += 1
    return out


def ints_to(device, *lists) -> list[Tensor]:
    """Host int lists -> long tensors on `device` with a single host-to-device copy (one per call, not per list)."""
    sizes = [len(v) for v in lists]
    flat = torch.tensor([i for v in lists for i in v], dtype=torch.long).to(device)
    return list(torch.split(flat, sizes))
