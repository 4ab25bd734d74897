"""Every registered reducer against the contract: budget, shapes, positions, determinism, bad input, devices."""
from __future__ import annotations

import pytest
import torch

from reducers import METHODS, REDUCERS, ReducerInputError, TokenGrid, get_reducer

from .clips import clip

T, H, W, D = 8, 6, 6, 32
N = H * W
# methods that fill the budget exactly on generic (non-redundant) input
EXACT = {"tome", "divprune", "fastervlm", "visionzip", "dycoke", "fastvid", "prunevid", "holitom", "residual_gate"}
# methods that pool frames to the largest grid that fits their share (M ≤ budget)
POOLED = {"pool2d", "pool2d_bilinear", "uniform", "framemerge", "carrier", "keyframe", "query"}
BUDGETS = [1, 5, 18, 72, T * N - 1]


def test_registry_is_complete():
    assert set(METHODS) == EXACT | POOLED
    assert set(REDUCERS) == set(METHODS)
    with pytest.raises(ReducerInputError, match="unknown reducer"):
        get_reducer("nope")


def check_carrier(grid: TokenGrid, c, budget: int) -> None:
    M = c.M
    assert 1 <= M <= budget
    assert c.tokens.shape == (M, grid.D) and c.tokens.dtype == grid.tokens.dtype
    for f in (c.pos, c.lo, c.hi):
        assert f.shape == (M, 3) and f.dtype == torch.long
    assert c.size.shape == (M,) and c.size.dtype == torch.long and bool((c.size >= 1).all())
    assert bool(((c.lo <= c.pos) & (c.pos <= c.hi)).all()), "pos outside its span"
    upper = torch.tensor([grid.T - 1, grid.hw[0] - 1, grid.hw[1] - 1])
    assert bool((c.lo >= 0).all()) and bool((c.hi <= upper).all()), "span outside the grid"
    vol = (c.hi - c.lo + 1).prod(-1)
    assert bool((c.size <= vol).all()), "a token stands for more originals than its span holds"
    assert torch.isfinite(c.tokens.float()).all()
    alone = (c.size == 1) & (c.lo == c.hi).all(-1)
    p = c.pos[alone]
    orig = grid.tokens[p[:, 0], p[:, 1] * grid.hw[1] + p[:, 2]]
    assert torch.equal(c.tokens[alone], orig), "a token kept alone differs from the original"
    # time order: (t, y, x) non-decreasing
    key = c.pos[:, 0] * 1_000_000 + c.pos[:, 1] * 1_000 + c.pos[:, 2]
    assert bool((key[1:] >= key[:-1]).all())


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("method", METHODS)
def test_budget_shapes_positions(method, budget):
    grid = clip("random", T, H, W, D, seed=budget, saliency=budget % 2 == 0, keys=budget % 3 == 0)
    c, _ = get_reducer(method)(grid, budget)
    check_carrier(grid, c, budget)
    if method in EXACT:
        assert c.M == budget, f"{method} used {c.M} of {budget}"
    if method not in POOLED:  # disjoint groups: the sizes add up to at most every original once
        assert int(c.size.sum()) <= T * N


@pytest.mark.parametrize("method", METHODS)
def test_deterministic_and_bf16(method):
    grid = clip("region", T, H, W, D, seed=3)
    f = get_reducer(method)
    a, _ = f(grid, 40)
    b, _ = f(grid, 40)
    for x, y in zip((a.tokens, a.pos, a.lo, a.hi, a.size), (b.tokens, b.pos, b.lo, b.hi, b.size)):
        assert torch.equal(x, y)
    g16 = TokenGrid(grid.tokens.bfloat16(), grid.hw)
    c, _ = f(g16, 40)
    check_carrier(g16, c, 40)


@pytest.mark.parametrize("method", METHODS)
def test_full_budget_returns_everything(method):
    grid = clip("random", 4, 3, 3, 8)
    for budget in (36, 100):
        c, st = get_reducer(method)(grid, budget, state=None)
        assert c.M == 36 and bool((c.size == 1).all())
        assert torch.equal(c.tokens, grid.tokens.reshape(-1, 8))


BAD = [
    ("budget 0", lambda g: (g, 0), "budget must be a positive integer"),
    ("budget -3", lambda g: (g, -3), "budget must be a positive integer"),
    ("budget 2.5", lambda g: (g, 2.5), "budget must be a positive integer"),
    ("budget True", lambda g: (g, True), "budget must be a positive integer"),
    ("nan", lambda g: (TokenGrid(g.tokens.index_fill(0, torch.tensor([1]), float("nan")), g.hw), 5), "NaN or inf"),
    ("inf", lambda g: (TokenGrid(g.tokens.index_fill(1, torch.tensor([2]), float("inf")), g.hw), 5), "NaN or inf"),
    ("empty T", lambda g: (TokenGrid(g.tokens[:0], g.hw), 5), "empty clip"),
    ("empty N", lambda g: (TokenGrid(g.tokens[:, :0], (0, 0)), 5), "empty clip"),
    ("2-D tokens", lambda g: (TokenGrid(g.tokens[0], g.hw), 5), r"\[T, N, D\]"),
    ("int tokens", lambda g: (TokenGrid(g.tokens.long(), g.hw), 5), "floating point"),
    ("grid mismatch", lambda g: (TokenGrid(g.tokens, (5, 5)), 5), "does not match N"),
    ("saliency shape", lambda g: (TokenGrid(g.tokens, g.hw, saliency=torch.rand(g.T, g.N - 1)), 5), "saliency shape"),
    ("saliency nan", lambda g: (TokenGrid(g.tokens, g.hw, saliency=torch.full((g.T, g.N), float("nan"))), 5), "saliency contains"),
    ("keys rows", lambda g: (TokenGrid(g.tokens, g.hw, frame_keys=torch.rand(g.T + 1, 4)), 5), "frame_keys must be"),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", BAD, ids=[b[0] for b in BAD])
def test_bad_input(method, case):
    _, make, msg = case
    grid, budget = make(clip("random", 4, 3, 3, 8))
    with pytest.raises(ReducerInputError, match=msg):
        get_reducer(method)(grid, budget)


def test_bad_query():
    grid = clip("random", 4, 3, 3, 8, keys=True)
    f = get_reducer("query")
    with pytest.raises(ReducerInputError, match="query has 5 dims"):
        f(grid, 5, query=torch.rand(5))
    with pytest.raises(ReducerInputError, match=r"\[K\] or \[1, K\]"):
        f(grid, 5, query=torch.rand(2, 8))
    with pytest.raises(ReducerInputError, match="query contains NaN"):
        f(grid, 5, query=torch.full((8,), float("nan")))


def _rows(c):
    return [tuple(r) for r in torch.cat([c.pos, c.lo, c.hi, c.size[:, None]], 1).tolist()]


def _agree(a, b, atol: float) -> None:
    """Same number of tokens; ≥ 90% of the (pos, span, size) rows identical, and their tokens close."""
    assert a.M == b.M
    ra, rb = _rows(a), _rows(b)
    common = set(ra) & set(rb)
    assert len(common) >= 0.9 * a.M, f"only {len(common)}/{a.M} tokens agree"
    ia = {r: i for i, r in enumerate(ra)}
    ib = {r: i for i, r in enumerate(rb)}
    idx_a = torch.tensor([ia[r] for r in common])
    idx_b = torch.tensor([ib[r] for r in common])
    torch.testing.assert_close(a.tokens[idx_a].float(), b.tokens[idx_b].float(), atol=atol, rtol=atol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("method", METHODS)
def test_cpu_cuda_agree(method, dtype):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    grid = clip("region", 16, 12, 12, 64, seed=5, saliency=True, keys=True)
    q = grid.frame_keys[3] if method == "query" else None
    cpu = TokenGrid(grid.tokens.to(dtype), grid.hw, grid.saliency, grid.frame_keys)
    gpu = TokenGrid(cpu.tokens.cuda(), grid.hw, grid.saliency.cuda(), grid.frame_keys.cuda())
    f = get_reducer(method)
    for budget in (60, 230):
        a, sa = f(cpu, budget, query=q)
        b, sb = f(gpu, budget, query=None if q is None else q.cuda())
        assert b.tokens.device.type == "cuda"
        _agree(a, b.to("cpu"), 1e-4 if dtype == torch.float32 else 2e-2)
        if isinstance(sb, dict):  # the state can be fed back on its device
            f(gpu, budget, state=sb)


def test_divprune_fused_kernel_matches_loop():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from reducers.divprune import HAVE_TRITON, maxmin_select
    if not HAVE_TRITON:
        pytest.skip("triton is not installed")
    x = torch.randn(16, 729, 64, generator=torch.Generator().manual_seed(0)).cuda()
    k = torch.full((16,), 73, device="cuda")
    assert torch.equal(maxmin_select(x, k, 73, "torch"), maxmin_select(x, k, 73, "triton"))


@pytest.mark.parametrize("method", METHODS)
def test_cuda_graph_replays_match_eager(method, monkeypatch):
    """On CUDA the launch-bound parts replay from CUDA graphs: the first call of a shape captures, later ones
    replay with new inputs. Replays must give what an eager run gives, on fresh inputs of the same shape."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    f = get_reducer(method)
    for seed in (11, 12, 13):  # first call captures, the next two replay on other inputs
        grid = clip("region", 16, 12, 12, 64, seed=seed, saliency=True, keys=True)
        gpu = TokenGrid(grid.tokens.cuda(), grid.hw, grid.saliency.cuda(), grid.frame_keys.cuda())
        q = gpu.frame_keys[3] if method == "query" else None
        a, _ = f(gpu, 60, query=q)
        monkeypatch.setenv("VIGIL_CUDA_GRAPHS", "0")
        b, _ = f(gpu, 60, query=q)
        monkeypatch.delenv("VIGIL_CUDA_GRAPHS")
        _agree(a.to("cpu"), b.to("cpu"), 1e-5)


def test_bad_input_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    g = clip("random", 4, 3, 3, 8)
    for v in (float("nan"), float("inf")):
        x = g.tokens.clone()
        x[1, 2, 3] = v
        with pytest.raises(ReducerInputError, match="NaN or inf"):
            get_reducer("tome")(TokenGrid(x.cuda(), g.hw), 5)


def test_dpc_and_segment_sum_kernels_match_torch():
    """The Triton row passes of DPC-kNN (prunevid) and the segment-sum kernel agree with the torch path (the
    k-NN sums may differ in the last bit, which random data does not turn into a different clustering)."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from reducers import ops
    if not ops.HAVE_TRITON:
        pytest.skip("triton is not installed")
    g = torch.Generator().manual_seed(0)
    for B, L, D in [(3, 37, 16), (4, 300, 32), (2, 729, 64), (1, 1, 4)]:
        x = torch.randn(B, L, D, generator=g)
        valid = torch.rand(B, L, generator=g) < 0.8
        nc = torch.randint(0, L + 1, (B,), generator=g)
        x, valid, nc = x.cuda(), valid.cuda(), nc.cuda()
        c1, a1 = ops._dpc_core(x, valid, nc, 7)
        c2, a2 = ops._dpc_core(x, valid, nc, 7, fused=True)
        assert torch.equal(c1, c2) and torch.equal(a1, a2)
    for T, N, D in [(16, 7, 40), (5, 3, 1152), (1, 4, 8)]:
        x = torch.randn(T, N, D, generator=g).cuda()
        seg = torch.tensor([0] * (T // 2) + [1] * (T - T // 2)).cuda()
        for norm in (False, True):
            v = ops.normed(x) if norm else x.float()
            ref = torch.zeros(T + 1, N, D, device="cuda").index_add_(0, seg, v)
            s, q = ops.segment_sums(x, seg, T + 1, normalize=norm, sums=True, sumsq=True)
            torch.testing.assert_close(s, ref, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(q, (ref * ref).sum(-1), atol=1e-4, rtol=1e-5)
