"""The encoder worker (stream/batcher.py): one batch of several streams' clips gives each stream exactly the tokens it
would get alone, in its own order; live requests keep their deadline beside a file flooding the worker; a device
out-of-memory error splits the batch and retries it. Tiny random VLMs are built in code, saved with save_pretrained
and loaded back through `load_vlm` (tests/models/tiny.py), CPU fp32; the worker is forced on (batch=True)."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from memory.bank import MemoryBank
from models.vlm import load_vlm
from stream.batcher import EncoderWorker, wants_batching, worker_for
from stream.pipeline import IngestConfig, IngestPipeline
from stream.sources import FileSource
from tests.fixtures.video import make_video
from tests.models import tiny

FIELDS = ("tokens", "saliency", "frame_keys")


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    out = {}
    for fam in ("llava_onevision", "qwen2_5_vl", "smolvlm"):
        d = str(tmp_path_factory.mktemp(fam))
        tiny.BUILDERS[fam](d)
        out[fam] = load_vlm(d, device="cpu")
    return out


def clips_of(frames, sizes):
    out, i = [], 0
    for n in sizes:
        out.append(frames[i:i + n])
        i += n
    return out


@pytest.mark.parametrize("family", ["llava_onevision", "qwen2_5_vl", "smolvlm"])
def test_one_batch_gives_each_clip_its_own_tokens(adapters, family):
    ad = adapters[family]
    frames = [np.asarray(f) for f in tiny.frames(T=9, H=64, W=80)]
    clips = clips_of(frames, [3, 2, 1, 3])   # odd clips: Qwen pads each to whole time steps, as alone
    alone = [ad.encode(c) for c in clips]
    w = EncoderWorker(ad, batch=True, linger=0.3)
    futs = [w.submit(c) for c in clips]
    got = [f.result(10) for f in futs]
    assert w.stats.batches == 1 and w.stats.requests == 4      # one pass of the tower for all four clips
    for a, b in zip(alone, got):
        assert b.hw == a.hw and b.space == a.space and b.T == a.T == -(-len(b.tokens) // 1)
        for name in FIELDS:
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None) == (y is None)
            if x is None:
                continue
            assert x.shape == y.shape
            # equal up to fp32 rounding: a matmul over more rows may round differently (Qwen's patch embedding here,
            # ~2e-8; other CPUs' BLAS for the others); on this VM LLaVA-OV and SmolVLM come out bit-equal
            torch.testing.assert_close(y, x, rtol=0, atol=1e-6)
    # and the clips differ from each other (a worker handing every clip the first grid would fail above)
    assert not torch.allclose(got[0].tokens[0], got[1].tokens[0])
    w.close()


class Slow:
    """The tiny encoder with a fixed cost per frame, as a GPU has; optionally out of memory above `limit` frames."""

    def __init__(self, inner, per_frame: float = 0.0, limit: int = 10 ** 9):
        self.inner, self.per_frame, self.limit = inner, per_frame, limit
        self.calls: list[int] = []
        self.space, self.temporal_patch = inner.space, inner.temporal_patch

    def encode(self, frames):
        self.calls.append(len(frames))
        if len(frames) > self.limit:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {len(frames)} frames")
        time.sleep(self.per_frame * len(frames))
        return self.inner.encode(frames)


def test_out_of_memory_splits_the_batch_and_retries(adapters):
    ad = adapters["qwen2_5_vl"]
    enc = Slow(ad, limit=4)
    frames = [np.asarray(f) for f in tiny.frames(T=10, H=64, W=80, seed=3)]
    clips = clips_of(frames, [4, 3, 3])
    w = EncoderWorker(enc, batch=True, linger=0.3)
    got = [f.result(10) for f in [w.submit(c) for c in clips]]
    for c, g in zip(clips, got):
        torch.testing.assert_close(g.tokens, ad.encode(c).tokens, rtol=0, atol=1e-6)
    assert w.stats.oom_splits >= 1 and w.max_frames <= 4
    assert enc.calls[0] == 12 and all(n % 2 == 0 for n in enc.calls)   # halves of whole Qwen time steps
    assert any("out of memory" in n and "split and retried" in n for n in w.stats.notes)
    # a single clip that is too big even alone still fails with the device's own error (nothing to split)
    w1 = EncoderWorker(Slow(ad, limit=1), batch=True, linger=0.0)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        w1.submit(frames[:2]).result(10)


def test_live_requests_keep_their_deadline_beside_a_file(adapters):
    enc = Slow(adapters["llava_onevision"], per_frame=0.004)   # 0.5 s per 128-frame batch, as a slow GPU
    w = EncoderWorker(enc, batch=True, max_frames=128, live_frames=32, linger=0.02)
    frames = [np.asarray(f) for f in tiny.frames(T=16, H=64, W=80, seed=5)]
    w.submit(frames[:2], live=True).result(10)                # the live stream runs first (as cameras do)
    files = [w.submit(frames) for _ in range(48)]            # 768 file frames queued
    time.sleep(0.05)
    live_waits = []
    for i in range(4):                                        # a live clip every 0.25 s while the file runs
        t = time.monotonic()
        g = w.submit(frames[:2], live=True).result(10)
        live_waits.append(time.monotonic() - t)
        assert torch.equal(g.tokens, adapters["llava_onevision"].encode(frames[:2]).tokens)
        time.sleep(0.25)
    for f in files:
        f.result(30)
    assert max(live_waits) <= 0.5, live_waits                 # the batch in progress (≤ 0.5 s) + its own small one
    assert max(w.stats.file_waits) > 1.0                      # the file's later clips did wait behind the live ones
    assert w.stats.largest <= 64 and len(w.stats.live_waits) == 5   # batches sized to ~0.2 s while live runs
    # a lone live clip is not held for a batch to fill: it goes after `linger`
    w2 = EncoderWorker(adapters["llava_onevision"], batch=True, max_frames=1000, linger=0.05)
    t = time.monotonic()
    w2.submit(frames[:2], live=True).result(10)
    assert time.monotonic() - t < 0.5


def test_a_file_that_comes_in_slowly_is_encoded_in_few_full_batches(adapters):
    """File requests wait up to `file_linger` for company (fewer fixed costs per frame); never longer."""
    enc = Slow(adapters["llava_onevision"])
    w = EncoderWorker(enc, batch=True, linger=0.01, file_linger=0.3)
    frames = [np.asarray(f) for f in tiny.frames(T=2, H=64, W=80, seed=9)]
    t = time.monotonic()
    futs = []
    for _ in range(5):                  # a clip every 40 ms, as a decoder slower than the tower hands them in
        futs.append(w.submit(frames))
        time.sleep(0.04)
    for f in futs:
        f.result(10)
    assert enc.calls == [10] and time.monotonic() - t < 1.0
    assert 0.25 <= max(w.stats.file_waits) <= 0.8   # the first clip waited the linger, not for a full batch


def memories(bank: MemoryBank, stream: str) -> list[tuple]:
    out = []
    for m in sorted(bank.list(stream=stream), key=lambda m: m.t0):
        c = bank.carrier(m.id)
        out.append((round(m.t0, 4), round(m.t1, 4), c.tokens.tobytes(), c.pos.tobytes(), m.steps,
                    bank.key_of(m.id, bank.default_space()).tobytes()))
    return out


def test_streams_sharing_one_worker_get_what_they_get_alone(adapters, tmp_path):
    ad = adapters["llava_onevision"]
    videos = {f"cam{i}": make_video(str(tmp_path / f"v{i}.mp4"), seconds=8, fps=10, size=(96 + 32 * i, 64),
                                    scenes=(3.0 + i,), audio_hz=None) for i in range(3)}
    cfg = dict(fps=4.0, reducer="tome", budget=6, carrier_dtype="float32")
    shared = EncoderWorker(ad, batch=True, max_frames=64, linger=0.1)
    with MemoryBank(str(tmp_path / "together")) as bank:
        pipes = [IngestPipeline(FileSource(p, fps=4.0), bank, ad, stream_id=s, config=IngestConfig(**cfg),
                                worker=shared) for s, p in videos.items()]
        for p in pipes:
            p.start()
        for p in pipes:
            p._thread.join(120)
            assert p.stats.state == "finished", p.stats.error
        together = {s: memories(bank, s) for s in videos}
    assert shared.stats.requests > shared.stats.batches     # clips were batched
    for s, path in videos.items():
        with MemoryBank(str(tmp_path / f"alone-{s}")) as bank:
            IngestPipeline(FileSource(path, fps=4.0), bank, ad, stream_id=s, config=IngestConfig(**cfg),
                           worker=EncoderWorker(ad, batch=False)).run()
            alone = memories(bank, s)
        assert len(alone) >= 4 and together[s] == alone, s


def test_the_lite_path_encodes_each_clip_ahead_on_one_thread(adapters, monkeypatch):
    """A CPU encoder is not batched and gets no batching thread, but each clip is encoded as soon as it is submitted,
    on the worker's one `vigil-encode` thread: submit returns at once and the pipeline goes on (reading the screen,
    embedding text) while its next clips are encoded. The grid is the encoder's own."""
    monkeypatch.delenv("VIGIL_BATCH", raising=False)
    from models.registry import LazyLiteEncoder

    lite = LazyLiteEncoder()
    assert not wants_batching(lite) and lite._enc is None    # deciding did not load EfficientNet
    ad = adapters["llava_onevision"]
    assert not wants_batching(ad)   # on the CPU
    w = worker_for(ad)
    assert worker_for(ad) is w        # one worker per encoder
    frames = [np.full((64, 80, 3), v, np.uint8) for v in (0, 90, 180, 250)]
    expected = ad.encode(frames[:2]).tokens
    started, release, threads = threading.Event(), threading.Event(), []
    own = ad.encode

    def encode(fr):
        threads.append(threading.current_thread().name)
        started.set()
        assert release.wait(30)
        return own(fr)

    monkeypatch.setattr(ad, "encode", encode)
    first, second = w.submit(frames[:2]), w.submit(frames[2:])
    assert started.wait(10) and not first.done()   # encoding began with nobody asking, and submit did not wait
    release.set()
    assert torch.equal(first.result(30).tokens, expected) and second.result(30).T == 2
    assert len(threads) == 2 and all(n.startswith("vigil-encode") for n in threads)
    assert w._thread is None and w.stats.requests >= 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_the_gpu_clips_are_uploaded_by_their_submitters_and_batched(tmp_path):
    """On CUDA the worker is on by default and each clip goes to the device as a uint8 tensor in the submitting
    thread; the batched grids match each clip encoded alone (bf16: to bf16 rounding; reported if bit-equal)."""
    d = str(tmp_path / "ov")
    tiny.BUILDERS["llava_onevision"](d)
    ad = load_vlm(d, device="cuda")
    w = EncoderWorker(ad, linger=0.3)
    assert w.batching and w.upload is not None and w.upload.type == "cuda"
    frames = [np.asarray(f) for f in tiny.frames(T=9, H=64, W=80, seed=7)]
    clips = clips_of(frames, [3, 2, 4])
    got = [f.result(30) for f in [w.submit(c) for c in clips]]
    assert w.stats.batches == 1 and w.stats.requests == 3
    for c, g in zip(clips, got):
        a = ad.encode(c)
        assert g.tokens.device.type == "cuda" and g.tokens.shape == a.tokens.shape
        torch.testing.assert_close(g.tokens.float(), a.tokens.float(), rtol=2e-2, atol=2e-2)
        print("bit-equal:", torch.equal(g.tokens, a.tokens))
