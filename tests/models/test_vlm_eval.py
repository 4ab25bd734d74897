"""bench/eval_video_qa.py on a tiny generated dataset with a tiny random model: MECHANICS ONLY
(random weights answer at chance; this checks the data flow, streaming cut-off and the report)."""
from __future__ import annotations

import json

import numpy as np

from tests.models import tiny


def test_eval_harness_mechanics(tmp_path):
    from bench.eval_video_qa import main
    from models.retrieval import RetrievalEncoder  # noqa: F401  (import check)
    d = tmp_path / "ds"
    d.mkdir()
    np.save(d / "v1.npy", np.stack(tiny.frames(8, 64, 64)))
    json.dump({"videos": {"v1": {"path": "v1.npy", "fps": 1.0}},
               "questions": [
                   {"id": "q1", "video": "v1", "type": "mc", "question": "What colour is the square?",
                    "options": ["A. red", "B. blue"], "answer": "A"},
                   {"id": "q2", "video": "v1", "type": "open", "question": "What moves?", "answer": "a red square"},
                   {"id": "q3", "video": "v1", "type": "mc", "at": 4.0, "question": "What is shown?",
                    "options": ["A. a car", "B. a square"], "answer": "B"}]},
              open(d / "questions.json", "w"))
    mdir = tiny.tiny_qwen25(str(tmp_path / "m"))
    rdir = tiny.tiny_retrieval(str(tmp_path / "r"))
    out = tmp_path / "res.json"
    assert main(["--data", str(d), "--model", mdir, "--reducer", "pool2d", "--budget", "0.5,1.0", "--k", "2",
                 "--max-new-tokens", "4", "--retrieval", rdir, "--device", "cpu", "--out", str(out)]) == 0
    res = json.load(open(out))
    assert [r["budget"] for r in res["rows"]] == [0.5, 1.0]
    for r in res["rows"]:
        assert r["questions"] == 3 and r["mc_accuracy"] is not None and r["open_f1"] is not None
        assert r["ttft_p50_ms"] > 0


def test_streaming_question_sees_only_the_past(tmp_path):
    from bench.eval_video_qa import evaluate
    from models.vlm import load_vlm
    d = tmp_path / "ds"
    d.mkdir()
    np.save(d / "v.npy", np.stack(tiny.frames(8, 64, 64)))
    json.dump({"videos": {"v": {"path": "v.npy", "fps": 1.0}},
               "questions": [{"id": "s", "video": "v", "type": "open", "at": 4.0, "question": "so far?", "answer": "x"}]},
              open(d / "questions.json", "w"))
    model = load_vlm(tiny.tiny_llava_ov(str(tmp_path / "m")), device="cpu")
    seen = {}

    def retrieve(q, allowed, k):
        seen["t1"] = max(m.t1 for m in allowed)
        return allowed[:k]

    evaluate(model, str(d), ["pool2d"], [0.5], k=8, max_new_tokens=2, retrieve=retrieve, log=lambda *_: None)
    assert seen["t1"] <= 4.0
    assert model.prompt_debug["text"].count("[00:00:0") == 2          # two 2 s clips before t=4
