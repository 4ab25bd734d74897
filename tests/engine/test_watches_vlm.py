"""The VLM check of a watch: P(yes) of the question asked as yes/no over the new clip's carrier tokens, in one
forward pass, on a tiny random Qwen2.5-VL built in code (tests/models/tiny.py); and through the engine."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.models import tiny


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    return tiny.BUILDERS["qwen2_5_vl"](str(tmp_path_factory.mktemp("qwen25")))


def test_yes_probability_is_one_forward_pass_over_the_memorys_carrier(qwen_dir):
    from engine.watches import vlm_yes_probability, yes_no_ids
    from models.base import MemoryView
    from models.vlm import load_vlm
    from reducers import get_reducer

    ad = load_vlm(qwen_dir, device="cpu")
    g = ad.encode(tiny.frames(4))
    carrier, _ = get_reducer("pool2d")(g, 6)
    view = MemoryView(7, "door", 40.0, 42.0, 1.0, carrier=carrier, evidence={})
    calls = []
    forward = ad._lm_forward

    def counted(*a, **kw):
        calls.append(a[0].shape)
        return forward(*a, **kw)

    ad._lm_forward = counted
    p, dbg = vlm_yes_probability(ad, "Is the door open?", view)
    assert len(calls) == 1 and 0.0 < p < 1.0
    # the prompt's visual tokens are exactly this memory's carrier, in the adapter's own placeholder block
    prep = dbg["prepared"]
    assert dbg["placeholders"] == [carrier.M] and dbg["n_visual"] == carrier.M
    at = (prep.input_ids[0] == ad.video_id).nonzero().flatten()
    assert at.numel() == carrier.M
    torch.testing.assert_close(prep.inputs_embeds[0, at].float(), carrier.tokens.to(prep.inputs_embeds.dtype).float())
    assert "Is the door open? Answer yes or no." in dbg["text"]
    # the same probability from the model's own forward over the same embeddings and positions
    with torch.inference_mode():
        logits = ad.model(inputs_embeds=prep.inputs_embeds, position_ids=prep.position_ids).logits[0, -1].float()
    y, n = yes_no_ids(ad.tokenizer)
    lp = torch.log_softmax(logits, -1)
    ref = float(torch.sigmoid(torch.logsumexp(lp[y], 0) - torch.logsumexp(lp[n], 0)))
    assert abs(p - ref) < 1e-4
    assert not set(y) & set(n)


def test_vlm_watch_through_the_engine(qwen_dir, tmp_path):
    from engine import Engine
    from tests.fixtures.watch_media import make_dock

    make_dock(tmp_path / "dock.mp4", duration=6.0)
    with Engine(str(tmp_path / "bank"), model=qwen_dir, device="cpu") as eng:
        low = eng.add_watch("is a box crossing the loading dock", kind="vlm", threshold=0.01, cooldown=0)
        never = eng.add_watch("is it raining", kind="vlm", threshold=1.0)
        eng.start(str(tmp_path / "dock.mp4"), stream="dock")
        assert eng.wait("dock", 120).state == "finished"
        assert eng.drain_alerts(60)
        alerts = eng.alerts()
        mems = eng.bank.list(stream="dock")
    fired = [a for a in alerts if a["watch_id"] == low["id"]]
    assert len(fired) == len(mems) >= 2          # every clip was asked (cooldown 0), one alert each
    assert {a["memory_id"] for a in fired} == {m.id for m in mems}
    for a in fired:
        p = float(a["evidence"].rsplit("P=", 1)[1])
        assert 0.0 < p < 1.0 and abs(p - a["score"]) < 0.01
    assert not [a for a in alerts if a["watch_id"] == never["id"]]
    assert np.isfinite([a["score"] for a in fired]).all()
