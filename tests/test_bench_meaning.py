"""bench.meaning: the separation measure on hand-made rows, with an exact toy encoder (no model)."""
import numpy as np

from bench.meaning import separation

VEC = {"q": [1, 0], "right": [0.9, 0.436], "wrong": [0, 1], "absent q": [0, 1], "far": [1, 0]}


def _enc(texts):
    v = np.array([VEC[t] for t in texts], np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_separation_counts_the_answering_line_first_and_the_auc():
    rows = [{"kind": "fact", "q": "q", "cands": [{"text": "T — wrong", "label": 0}, {"text": "right", "label": 1}]},
            {"kind": "absent", "q": "absent q", "cands": [{"text": "far", "label": 0}]}]
    r = separation(_enc, rows)
    assert r["first"] == 1 and r["facts"] == 1
    assert r["auc"] == 1.0  # the answering line (0.9) above the absent question's best line (0.0)
