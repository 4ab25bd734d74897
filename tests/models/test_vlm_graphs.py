"""The vision path as CUDA graphs (models/vlm/graphs.py through the LLaVA-OV adapter and the encoder worker): the
same tokens and saliency as the eager tower at every batch size, padded batches included, one replay per batch.
Tiny random config built in code, saved and loaded back through load_vlm (tests/models/tiny.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.vlm import load_vlm
from stream.batcher import EncoderWorker
from tests.models import tiny

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def ov_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("ov"))
    tiny.BUILDERS["llava_onevision"](d)
    return d


def test_graphs_stay_off_on_the_cpu(ov_dir):
    ad = load_vlm(ov_dir, device="cpu")
    assert ad.use_graphs() is False and ad._graphs is None
    assert EncoderWorker(ad, batch=True).graphs is False


@cuda
@pytest.mark.parametrize("saliency", [True, False])
def test_graphed_tower_equals_the_eager_one(ov_dir, saliency):
    ad = load_vlm(ov_dir, device="cuda")
    ad.want_saliency = saliency
    frames = [np.asarray(f) for f in tiny.frames(T=40, H=64, W=80, seed=3)]
    sizes = [1, 3, 4, 5, 9, 17, 40]
    eager = [ad.encode(frames[:n]) for n in sizes]
    assert ad.use_graphs() is True
    graphed = [ad.encode(frames[:n]) for n in sizes]
    g = ad._graphs[saliency]
    assert g.replays == len(sizes) and set(g.captured) >= {4, 8, 16, 24, 48}
    for n, a, b in zip(sizes, eager, graphed):
        assert b.tokens.shape == a.tokens.shape == (n, *a.tokens.shape[1:])
        torch.testing.assert_close(b.tokens.float(), a.tokens.float(), rtol=1e-2, atol=1e-2)
        torch.testing.assert_close(b.frame_keys, a.frame_keys, rtol=1e-2, atol=1e-2)
        assert (a.saliency is None) == (b.saliency is None) == (not saliency)
        if saliency:
            torch.testing.assert_close(b.saliency, a.saliency, rtol=1e-2, atol=1e-3)
    a2 = ad.encode(frames[:5])   # outputs are copies: a later replay does not change an earlier result
    torch.testing.assert_close(graphed[3].tokens, a2.tokens)


@cuda
def test_the_worker_runs_the_graphs_and_captures_them_in_its_warm_up(ov_dir, monkeypatch):
    monkeypatch.setenv("VIGIL_CUDA_GRAPHS", "1")
    ad = load_vlm(ov_dir, device="cuda")
    w = EncoderWorker(ad, linger=0.2)
    assert w.graphs is True
    w.warm_up(frames=8, side=64)
    g = ad._graphs[bool(ad.want_saliency)]
    assert g.captured == g.sizes      # every size captured before the first clip
    frames = [np.asarray(f) for f in tiny.frames(T=9, H=64, W=80, seed=7)]
    futs = [w.submit(frames[:3]), w.submit(frames[3:5]), w.submit(frames[5:])]
    got = [f.result(30) for f in futs]
    assert [x.tokens.shape[0] for x in got] == [3, 2, 4]
    w.close()


def test_a_failing_graph_turns_itself_off_and_the_eager_tower_answers(ov_dir):
    ad = load_vlm(ov_dir, device="cpu")
    frames = [np.asarray(f) for f in tiny.frames(T=3, H=64, W=80, seed=5)]
    want = ad.encode(frames)

    def broken(x):
        raise RuntimeError("operation not permitted when stream is capturing")

    ad._graphs = {True: broken, False: broken}   # what use_graphs() installs on CUDA
    got = ad.encode(frames)
    assert ad._graphs is None
    torch.testing.assert_close(got.tokens, want.tokens)
    assert (got.saliency is None) == (want.saliency is None)
    if want.saliency is not None:
        torch.testing.assert_close(got.saliency, want.saliency)
