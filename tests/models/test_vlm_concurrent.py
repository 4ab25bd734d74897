"""Concurrent asks on one loaded VLM, through the product's ask path (models.ask.ask), on tiny random models on the
CPU: answers asked at the same time equal the same questions asked one by one, token for token (no request's KV
cache is overwritten by another's); a request beyond the slot pool waits for a slot; a stopped ask ends within one
decoding step and its worker thread ends with it."""
from __future__ import annotations

import os
import threading
import time

import pytest
import torch

from memory.bank import MemoryBank
from models.ask import ask
from models.registry import Profile
from models.vlm import load_vlm
from models.vlm.fastlm import KVSlot
from stream.pipeline import IngestConfig, IngestPipeline
from stream.sources import open_source
from tests.models import tiny

N_NEW = 12
# four different questions, each over a different 2 s clip of the video (k=1 within its own time window)
QUESTIONS = [("what happened at the door?", (0.0, 2.0)), ("is there a red car?", (2.0, 4.0)),
             ("who walks the dog?", (4.0, 6.0)), ("what is on screen?", (6.0, 8.0))]


def _load(mdir):
    """load_vlm, then the language model's layers re-drawn at unit scale (seeded: the same weights on every load).
    At tiny.py's initializer range the answer hardly depends on the prompt (every question gets the same tokens),
    so an answer decoded over another request's KV cache could not be told apart; the vision tower, and so the
    bank's carriers and keys, are untouched."""
    vlm = load_vlm(mdir, device=os.environ.get("VIGIL_TEST_DEVICE", "cpu"))  # the H200 run sets cuda
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, p in sorted(vlm.language_model().layers.named_parameters()):
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
    return vlm


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tests.fixtures.video import make_video
    root = tmp_path_factory.mktemp("conc")
    video = make_video(str(root / "v.mp4"), seconds=8, size=(160, 120))
    mdir = tiny.tiny_qwen25(str(root / "qwen"))
    vlm = _load(mdir)
    bank = MemoryBank(str(root / "bank"))
    pipe = IngestPipeline(open_source(video, fps=2.0), bank, vlm, stream_id="v",
                          config=IngestConfig(fps=2.0, budget=8, reducer="pool2d", carrier_dtype="float32"))
    pipe.run()
    yield mdir, vlm, bank
    bank.close()


def _record_ids(monkeypatch, vlm) -> dict:
    """prompt text -> the token ids its answer decoded (spying on the adapter's decode)."""
    got: dict = {}
    orig = vlm.decode

    def spy(prep, *a, **kw):
        out, timing = orig(prep, *a, **kw)
        got[prep.debug["text"]] = list(out)
        return out, timing

    monkeypatch.setattr(vlm, "decode", spy)
    return got


def _ask(bank, prof, q, tr, **kw):
    answer, cites = ask(bank, prof, q, k=1, image=tiny.frames(1, 120, 160)[0], t_range=tr,
                        max_new_tokens=N_NEW, min_new_tokens=N_NEW, **kw)
    pieces = list(answer)
    return {"pieces": pieces, "usage": answer.usage.as_dict(), "cites": [c["id"] for c in cites],
            "prompt": answer.usage.prompt_tokens}


def _concurrently(fn, n=4):
    """Run fn(i) for i < n in n threads started together; returns results by i (re-raises a thread's error)."""
    res, errs = {}, []
    start = threading.Barrier(n, timeout=60)

    def run(i):
        try:
            start.wait()
            res[i] = fn(i)
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            errs.append(e)

    ths = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(120)
    assert not any(t.is_alive() for t in ths), "an ask hung"
    if errs:
        raise errs[0]
    return res


def _max_in_use(monkeypatch, fast, hold: threading.Barrier | None = None) -> list:
    """Track the most KV-cache slots held at once; with `hold`, every request waits after its prefill until all
    have prefilled (so their caches are all live while they decode)."""
    peak = [0]
    orig = KVSlot.prefill

    def prefill(self, *a, **kw):
        out = orig(self, *a, **kw)
        peak[0] = max(peak[0], fast.in_use)
        if hold is not None:
            hold.wait()
        return out

    monkeypatch.setattr(KVSlot, "prefill", prefill)
    return peak


def _sequential_then_concurrent(monkeypatch, bank, vlm, setup_concurrency):
    prof = Profile(name="tiny", encoder=vlm, answerer=vlm)
    ids = _record_ids(monkeypatch, vlm)
    seq = [_ask(bank, prof, q, tr) for q, tr in QUESTIONS]
    seq_ids = dict(ids)
    ids.clear()
    setup_concurrency()
    conc = _concurrently(lambda i: _ask(bank, prof, *QUESTIONS[i]))
    # four different prompts over four different memories, each answered in full
    assert len({tuple(r["cites"]) for r in seq}) == 4 and len(seq_ids) == 4
    assert all(len(v) == N_NEW for v in seq_ids.values())
    assert len({tuple(v) for v in seq_ids.values()}) == 4  # each prompt gets its own answer
    for i, s in enumerate(seq):
        assert conc[i] == s, f"question {i}: concurrent answer differs from its sequential one"
        assert s["usage"]["completion_tokens"] == N_NEW and s["usage"]["visual_tokens"] > 0
    assert ids == seq_ids  # token for token
    return seq


def test_four_concurrent_asks_equal_sequential(setup, monkeypatch):
    _, vlm, bank = setup
    fast = vlm.fast_lm()
    assert fast is not None and fast.max_slots >= 4
    peak = []

    def overlap():
        # every request prefills, then waits for the others: four caches are live while all four decode
        peak.append(_max_in_use(monkeypatch, fast, hold=threading.Barrier(4, timeout=60)))

    _sequential_then_concurrent(monkeypatch, bank, vlm, overlap)
    assert peak[0][0] == 4
    assert fast.in_use == 0 and len(fast.slots) == 4


def test_requests_beyond_the_pool_wait_for_a_slot(setup, monkeypatch):
    mdir, _, bank = setup
    monkeypatch.setenv("VIGIL_KV_SLOTS", "2")
    vlm = _load(mdir)  # same weights, a decoder with a pool of two slots
    fast = vlm.fast_lm()
    assert fast.max_slots == 2
    peak = []
    orig = KVSlot.step_greedy

    def slow_step(self, *a, **kw):  # keep requests in flight long enough to contend for the two slots
        time.sleep(0.02)
        return orig(self, *a, **kw)

    def contend():
        monkeypatch.setattr(KVSlot, "step_greedy", slow_step)
        peak.append(_max_in_use(monkeypatch, fast))

    _sequential_then_concurrent(monkeypatch, bank, vlm, contend)
    assert peak[0][0] == 2 and len(fast.slots) == 2 and fast.in_use == 0


def test_transformers_path_concurrent_equals_sequential(setup, monkeypatch):
    mdir, _, bank = setup
    vlm = _load(mdir)
    monkeypatch.setattr(vlm, "_fast", False)  # transformers' forward, a DynamicCache per request
    orig = vlm._hf_forward

    def slow(*a, **kw):
        time.sleep(0.005)  # interleave the four requests' forward passes
        return orig(*a, **kw)

    _sequential_then_concurrent(monkeypatch, bank, vlm, lambda: monkeypatch.setattr(vlm, "_hf_forward", slow))


def _generate_threads() -> list:
    return [t for t in threading.enumerate() if t.name == "vigil-generate" and t.is_alive()]


@pytest.mark.parametrize("path", ["fast", "transformers"])
def test_stopped_ask_ends_within_one_step(setup, monkeypatch, path):
    mdir, _, bank = setup
    vlm = _load(mdir)
    prof = Profile(name="tiny", encoder=vlm, answerer=vlm)
    stop = threading.Event()  # the ask's cancel event: set when the consumer closes the answer
    got_first = threading.Event()
    calls = {"before": 0, "after": 0}
    if path == "fast":
        orig, owner, name = KVSlot.step_greedy, KVSlot, "step_greedy"
    else:
        monkeypatch.setattr(vlm, "_fast", False)
        orig, owner, name = vlm._hf_forward, vlm, "_hf_forward"

    def counted(*a, **kw):
        calls["after" if stop.is_set() else "before"] += 1
        if got_first.is_set():
            stop.wait(30)  # hold the worker mid-answer until the consumer has stopped
        return orig(*a, **kw)

    monkeypatch.setattr(owner, name, counted)
    before = set(_generate_threads())
    answer, _ = ask(bank, prof, "what happened?", k=2, image=tiny.frames(1, 120, 160)[0],
                    max_new_tokens=400, min_new_tokens=400, cancel=stop)
    assert next(answer)
    got_first.set()
    answer.close()  # the UI's stop: sets the cancel event, waits for the worker
    assert stop.is_set()
    # forward passes started after the stop: at most the one already under way
    assert calls["after"] <= 1, calls
    assert not (set(_generate_threads()) - before), "the generation thread outlived the stopped ask"
    assert answer.usage.completion_tokens <= calls["before"] + calls["after"] + 1 < 400  # + the prefill's token
    assert answer.usage.timing["stopped"]
    if path == "fast":
        assert vlm.fast_lm().in_use == 0  # the slot went back to the pool



def test_stopped_while_waiting_for_a_slot(setup, monkeypatch):
    """With every slot held, a stopped request gives up waiting at once; the holder's answer is untouched."""
    mdir, _, bank = setup
    monkeypatch.setenv("VIGIL_KV_SLOTS", "1")
    vlm = _load(mdir)
    prof = Profile(name="tiny", encoder=vlm, answerer=vlm)
    want = _ask(bank, prof, *QUESTIONS[0])
    release = threading.Event()
    orig = KVSlot.step_greedy

    def held(self, *a, **kw):
        release.wait(30)  # the holder pauses mid-answer, keeping the only slot
        return orig(self, *a, **kw)

    monkeypatch.setattr(KVSlot, "step_greedy", held)
    before = set(_generate_threads())
    got = {}
    holder = threading.Thread(target=lambda: got.update(a=_ask(bank, prof, *QUESTIONS[0])))
    holder.start()
    fast = vlm.fast_lm()
    for _ in range(3000):
        if fast.in_use == 1:
            break
        time.sleep(0.01)
    stop = threading.Event()
    waiter = threading.Thread(target=lambda: got.update(b=_ask(bank, prof, *QUESTIONS[1], cancel=stop)))
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive()  # waiting for the slot
    stop.set()
    waiter.join(10)
    assert not waiter.is_alive() and got["b"]["pieces"] == [] and got["b"]["usage"]["completion_tokens"] == 0
    release.set()
    holder.join(60)
    assert got["a"] == want
    assert not (set(_generate_threads()) - before) and fast.in_use == 0
