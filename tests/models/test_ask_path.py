"""The one ask path, end to end from the bank on disk to a VLM's prompt (tiny random models built in code):
the prompt holds exactly the retrieved memories' stored carrier tokens, in order, and usage counts them."""
from __future__ import annotations

import json

import pytest
import torch

from memory.bank import MemoryBank
from memory.carriers import to_carrier, to_record
from models.ask import AskError, ask
from models.base import ModelError
from models.registry import Profile
from models.vlm import load_vlm
from stream.pipeline import IngestConfig, IngestPipeline
from stream.sources import open_source
from tests.conftest import run_cli
from tests.models import tiny


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from tests.fixtures.video import make_video
    return make_video(str(tmp_path_factory.mktemp("v") / "v.mp4"), seconds=8, size=(160, 120))


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    d = tiny.tiny_qwen25(str(tmp_path_factory.mktemp("qwen")))
    return d, load_vlm(d, device="cpu")


def _ingest(bank_dir, video, vlm, budget=8, dtype="float16", stream="v"):
    bank = MemoryBank(bank_dir)
    prof = Profile(name="tiny", encoder=vlm, answerer=vlm)
    src = open_source(video, fps=2.0)
    pipe = IngestPipeline(src, bank, vlm, stream_id=stream,
                          config=IngestConfig(fps=2.0, budget=budget, reducer="pool2d", carrier_dtype=dtype))
    pipe.run()
    return bank, prof


def test_carrier_roundtrip_exact_in_both_dtypes():
    g = torch.Generator().manual_seed(0)
    tok = torch.randn(7, 12, generator=g)
    pos = torch.randint(0, 9, (7, 3), generator=g)
    from reducers.base import Carrier
    c = Carrier(tok, pos, pos, pos + 1, torch.arange(1, 8))
    for dt, exact in (("float32", tok), ("float16", tok.half().float())):
        rec = to_record(c, dt)
        back = to_carrier(type(rec).from_bytes(rec.to_bytes(), 7, 12))
        assert torch.equal(back.tokens.float(), exact)
        assert torch.equal(back.pos, pos) and torch.equal(back.hi, pos + 1) and torch.equal(back.size, c.size)


def test_vlm_prompt_holds_exactly_the_retrieved_carrier_tokens(tmp_path, video, qwen):
    _, vlm = qwen
    bank, prof = _ingest(str(tmp_path / "b"), video, vlm, dtype="float32")
    try:
        img = tiny.frames(1, 120, 160)[0]
        answer, cites = ask(bank, prof, "what happened?", k=3, image=img, max_new_tokens=4, min_new_tokens=4)
        text = "".join(answer)
        assert text and len(cites) == 3
        dbg = vlm.prompt_debug
        # every cited memory's stored tokens, in time order, are the embeddings at the video placeholders
        stored = [to_carrier(bank.carrier(c["id"])) for c in cites]
        assert dbg["placeholders"] == [s.M for s in stored]
        ids = dbg["input_ids"][0]
        at = (ids == vlm.video_id).nonzero().flatten()
        emb = vlm._embed(dbg["input_ids"])[0]  # text embeddings; rebuild the prompt to read the spliced ones
        prep = vlm.build_inputs("what happened?", answer_views(bank, prof, cites))
        got = prep.inputs_embeds[0, at]
        want = torch.cat([s.tokens.float() for s in stored])
        assert torch.equal(got, want)
        assert not torch.equal(emb[at], want)  # the placeholders' own embeddings were replaced
        # usage and citations agree, and count exactly those tokens
        u = answer.usage.as_dict()
        assert u["visual_tokens"] == sum(s.M for s in stored) == sum(c["tokens"] for c in cites) > 0
        assert [c["tokens"] for c in cites] == [s.M for s in stored]
        assert u["prompt_tokens"] == ids.numel() and u["completion_tokens"] == 4
        # the timestamp line before each block is the citation's own span
        for c in cites:
            from models.vlm import timestamp_line
            assert timestamp_line(c["start"], c["end"]) in dbg["text"]
    finally:
        bank.close()


def answer_views(bank, prof, cites):
    from models.ask import memory_views
    return memory_views(bank, prof, bank.get([c["id"] for c in cites]))


def test_bank_of_another_model_is_refused_naming_both(tmp_path, video, qwen):
    mdir, vlm = qwen
    bank, _ = _ingest(str(tmp_path / "b"), video, vlm)
    bank.close()
    other = load_vlm(tiny.tiny_llava_ov(str(tmp_path / "llava")), device="cpu")
    with MemoryBank(str(tmp_path / "b"), readonly=True) as b:
        with pytest.raises(AskError) as e:
            ask(b, Profile(name="llava", encoder=other, answerer=other), "what?", image=tiny.frames(1)[0])
    msg = str(e.value)
    assert "qwen2_5_vl:32" in msg and "llava_onevision:32" in msg and "\n" not in msg


def test_text_only_model_dir_is_refused(tmp_path):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    Qwen2ForCausalLM(Qwen2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)).save_pretrained(str(tmp_path / "lm"))
    with pytest.raises(ModelError, match="text-only"):
        load_vlm(str(tmp_path / "lm"), device="cpu")


def test_cli_usage_counts_the_cited_carriers_and_grows_with_budget(tmp_path, video, qwen):
    from PIL import Image
    mdir, _ = qwen
    img = str(tmp_path / "q.png")
    Image.fromarray(tiny.frames(1, 120, 160)[0]).save(img)
    visual = {}
    for budget in (4, 16):
        bank = str(tmp_path / f"bank{budget}")
        r = run_cli("ingest", video, "--bank", bank, "--model", mdir, "--budget", str(budget), timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        r = run_cli("ask", "--bank", bank, "what happened?", "--model", mdir, "--image", img, "--k", "3", "--json",
                    timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        out = json.loads(r.stdout.strip().splitlines()[-1])
        with MemoryBank(bank, readonly=True) as b:
            sizes = {m.id: m.m for m in b.get([c["id"] for c in out["citations"]])}
        assert out["usage"]["visual_tokens"] == sum(sizes.values()) == sum(c["tokens"] for c in out["citations"])
        assert all(c["tokens"] == sizes[c["id"]] > 0 for c in out["citations"])
        assert out["usage"]["prompt_tokens"] > out["usage"]["visual_tokens"] and out["usage"]["completion_tokens"] > 0
        visual[budget] = out["usage"]["visual_tokens"]
    assert visual[16] > visual[4]
    # asked with another model: one line naming both sides, exit 1
    other = tiny.tiny_llava_ov(str(tmp_path / "llava"))
    r = run_cli("ask", "--bank", str(tmp_path / "bank4"), "what?", "--model", other, "--image", img, timeout=300)
    assert r.returncode == 1 and "qwen2_5_vl:32" in r.stderr and "llava_onevision:32" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_qwen25_time_ids_use_the_clips_stored_step_count(qwen):
    """A reducer that drops a clip's last steps must not stretch the kept ones: with the clip's step count stored
    (bank column `steps`), Qwen2.5-VL's time ids are t · tokens_per_second · (clip seconds / steps)."""
    from models.base import MemoryView
    from reducers.base import Carrier, grid_positions
    _, vlm = qwen
    g = vlm.encode(tiny.frames(8))                       # 4 time steps
    assert g.T == 4
    pos = grid_positions(g.T, *g.hw).reshape(-1, 3)
    keep = (pos[:, 0] < 2).nonzero().flatten()            # only the first two steps survive
    c = Carrier(g.tokens.reshape(-1, g.D)[keep], pos[keep], pos[keep], pos[keep], torch.ones(keep.numel(), dtype=torch.long))
    for steps, interval in ((4, vlm.tokens_per_second * 8.0 / 4), (None, vlm.tokens_per_second * 8.0 / 2)):
        prep = vlm.build_inputs("q?", [MemoryView(1, "cam", 0.0, 8.0, 1.0, carrier=c, steps=steps)])
        ids = prep.input_ids[0]
        vid = (ids == vlm.video_id).nonzero().flatten()
        P = prep.position_ids[:, 0]
        s = int(P[0, vid[0] - 1]) + 1
        assert torch.equal(P[0, vid], (pos[keep][:, 0] * interval).long() + s)


def test_pipeline_stores_the_step_count(tmp_path, video, qwen):
    _, vlm = qwen
    bank, _ = _ingest(str(tmp_path / "b"), video, vlm)
    try:
        ms = bank.list()
        assert ms and all(m.steps == 2 for m in ms[:-1])   # 2 s clips at 2 fps: 4 frames -> 2 steps
    finally:
        bank.close()
