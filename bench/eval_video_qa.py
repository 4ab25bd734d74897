"""Video QA evaluation for users with real weights: accuracy and latency per reducer and budget.

    python bench/eval_video_qa.py --data DIR --model Qwen/Qwen2.5-VL-3B-Instruct \
        --reducer pool2d,holitom --budget 0.1,0.25 [--retrieval google/siglip-so400m-patch14-384] [--k 16]

Dataset directory (MLVU / VideoMME style multiple choice and open-ended, plus StreamingBench /
OVO-Bench style questions asked at a timestamp):

    DIR/questions.json
    {
      "videos": {"v1": {"path": "v1.mp4"}, "v2": {"path": "v2.npy", "fps": 2.0}},
      "questions": [
        {"id": "q1", "video": "v1", "type": "mc", "question": "What colour is the car?",
         "options": ["A. red", "B. blue", "C. green", "D. white"], "answer": "A"},
        {"id": "q2", "video": "v1", "type": "open", "question": "What does the sign say?", "answer": "exit 12"},
        {"id": "q3", "video": "v2", "type": "mc", "at": 30.0, "question": "...", "options": [...], "answer": "C"}
      ]
    }

- `path`: a video file (decoded with PyAV at --fps) or a .npy array [T, H, W, 3] uint8 sampled at `fps`.
- `type`: "mc" (scored by the first option letter in the answer) or "open" (token F1 against `answer`,
  and exact containment).
- `at` (optional): streaming question, asked at that media second; only clips that end by then are
  in memory (the stream is "ingested only up to that point").
Flow per video: sample → clips of --clip-seconds → model.encode (vision tower + projector) →
reducer at budget (fraction of each clip's tokens) → memories (carriers kept in CPU memory) → per
question: retrieval of --k memories (by a SigLIP/CLIP --retrieval encoder when given, else evenly
spaced over the allowed time range) → model.answer. The data flow is plain Python so it stays
independent of the bank's on-disk format; plug another retriever with `retrieve=`.
Reports accuracy (mc), F1 (open) and time-to-first-token per reducer × budget; writes --out JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from typing import Callable, Optional

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from models.base import MemoryView  # noqa: E402


def load_frames(path: str, fps: float, meta_fps: Optional[float]) -> tuple[list[np.ndarray], list[float]]:
    if path.endswith(".npy"):
        arr = np.load(path)
        src = float(meta_fps or fps)
        step = max(1, int(round(src / fps)))
        idx = list(range(0, arr.shape[0], step))
        return [arr[i] for i in idx], [i / src for i in idx]
    import av  # only for real video files
    frames, times, next_t = [], [], 0.0
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for f in c.decode(s):
            t = float(f.time or 0.0)
            if t + 1e-6 >= next_t:
                frames.append(f.to_ndarray(format="rgb24"))
                times.append(t)
                next_t += 1.0 / fps
    return frames, times


def build_memories(model, frames, times, reducer: str, budget: float, clip_seconds: float, stream: str):
    from reducers import get_reducer
    red = get_reducer(reducer)
    mems, state = [], None
    per = 0
    i = 0
    while i < len(frames):
        t0 = times[i]
        j = i
        while j < len(frames) and times[j] < t0 + clip_seconds - 1e-6:
            j += 1
        j = max(j, i + 1)
        g = model.encode(frames[i:j])
        tokens = max(1, int(round(budget * g.T * g.N)))
        try:
            c, state = red(g, tokens, state=state)
        except TypeError:
            c, state = red(g, tokens)
        c = c.to("cpu")
        t1 = times[j] if j < len(times) else times[j - 1] + clip_seconds / max(1, j - i)
        mems.append(MemoryView(len(mems), stream, float(t0), float(t1), 0.0, carrier=c,
                               evidence={}))
        per += c.M
        i = j
    return mems


def even_pick(mems, k):
    if len(mems) <= k:
        return list(mems)
    idx = np.linspace(0, len(mems) - 1, k).round().astype(int)
    return [mems[i] for i in sorted(set(idx.tolist()))]


def mc_prompt(q):
    return q["question"] + "\n" + "\n".join(q["options"]) + "\nAnswer with the option's letter."


def parse_letter(text: str) -> str:
    m = re.search(r"\b([A-H])\b", text.strip().upper())
    return m.group(1) if m else ""


def f1(pred: str, gold: str) -> float:
    p, g = re.findall(r"\w+", pred.lower()), re.findall(r"\w+", gold.lower())
    if not p or not g:
        return 0.0
    common = sum(min(p.count(w), g.count(w)) for w in set(g))
    if common == 0:
        return 0.0
    prec, rec = common / len(p), common / len(g)
    return 2 * prec * rec / (prec + rec)


def evaluate(model, data_dir: str, reducers, budgets, *, fps=1.0, clip_seconds=2.0, k=16, max_new_tokens=32,
             retrieval=None, retrieve: Optional[Callable] = None, log=print) -> dict:
    spec = json.load(open(os.path.join(data_dir, "questions.json")))
    videos = {}
    for vid, meta in spec["videos"].items():
        videos[vid] = load_frames(os.path.join(data_dir, meta["path"]), fps, meta.get("fps"))
    results = {"model": getattr(model, "name", "?"), "rows": []}
    for reducer in reducers:
        for b in budgets:
            t_ing = time.perf_counter()
            banks = {vid: build_memories(model, fr, ts, reducer, b, clip_seconds, vid) for vid, (fr, ts) in videos.items()}
            keys = {}
            if retrieval is not None:
                for vid, (fr, ts) in videos.items():
                    # one key per memory: mean of its frames' keys
                    fk = retrieval.encode_images(fr)
                    tarr = np.array(ts)
                    keys[vid] = torch.stack([torch.nn.functional.normalize(
                        fk[torch.from_numpy((tarr >= m.t0 - 1e-6) & (tarr < m.t1 - 1e-6))].mean(0), dim=0)
                        for m in banks[vid]])
            ingest_s = time.perf_counter() - t_ing
            mc_ok, mc_n, open_f1, open_hit, ttfts, totals = 0, 0, [], [], [], []
            per_q = []
            for q in spec["questions"]:
                mems = banks[q["video"]]
                at = q.get("at")
                allowed = [m for m in mems if at is None or m.t1 <= at + 1e-6]
                if retrieve is not None:
                    chosen = retrieve(q, allowed, k)
                elif retrieval is not None and allowed:
                    qk = retrieval.encode_text([q["question"]])[0]
                    kk = keys[q["video"]][[m.memory_id for m in allowed]]
                    top = torch.topk(kk @ qk, min(k, len(allowed))).indices.tolist()
                    chosen = [allowed[i] for i in top]
                else:
                    chosen = even_pick(allowed, k)
                text_q = mc_prompt(q) if q.get("type", "mc") == "mc" else q["question"]
                t0 = time.perf_counter()
                out = "".join(model.answer(text_q, chosen, max_new_tokens=max_new_tokens))
                totals.append(time.perf_counter() - t0)
                ttfts.append(model.last_timing.get("ttft_s", 0.0) + model.last_timing.get("prepare_s", 0.0))
                if q.get("type", "mc") == "mc":
                    ok = parse_letter(out) == str(q["answer"]).strip().upper()[:1]
                    mc_ok += ok
                    mc_n += 1
                    per_q.append({"id": q["id"], "pred": out[:200], "correct": bool(ok)})
                else:
                    s = f1(out, q["answer"])
                    open_f1.append(s)
                    open_hit.append(float(q["answer"].lower() in out.lower()))
                    per_q.append({"id": q["id"], "pred": out[:200], "f1": s})
            row = {"reducer": reducer, "budget": b, "questions": len(spec["questions"]),
                   "mc_accuracy": mc_ok / mc_n if mc_n else None,
                   "open_f1": statistics.mean(open_f1) if open_f1 else None,
                   "open_contains": statistics.mean(open_hit) if open_hit else None,
                   "ttft_p50_ms": 1e3 * statistics.median(ttfts) if ttfts else None,
                   "answer_p50_ms": 1e3 * statistics.median(totals) if totals else None,
                   "ingest_s": ingest_s, "per_question": per_q}
            results["rows"].append(row)
            log(f"{reducer:<12} budget {b:<5} mc_acc {row['mc_accuracy']}  open_f1 {row['open_f1']}  "
                f"ttft p50 {row['ttft_p50_ms']:.1f} ms")
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="dataset directory with questions.json")
    ap.add_argument("--model", required=True, help="VLM hub id or local directory")
    ap.add_argument("--reducer", default="pool2d", help="comma-separated reducer names")
    ap.add_argument("--budget", default="0.1", help="comma-separated fractions of each clip's tokens")
    ap.add_argument("--retrieval", default=None, help="SigLIP/CLIP hub id or directory for text retrieval")
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--fps", type=float, default=1.0)
    ap.add_argument("--clip-seconds", type=float, default=2.0)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--device", default=None)
    ap.add_argument("--trust-remote-code", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    from models.base import ModelError
    from models.vlm import load_vlm
    try:
        model = load_vlm(a.model, trust_remote_code=a.trust_remote_code, device=a.device)
        ret = None
        if a.retrieval:
            from models.retrieval import RetrievalEncoder
            ret = RetrievalEncoder.from_pretrained(a.retrieval, device=a.device)
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    res = evaluate(model, a.data, a.reducer.split(","), [float(x) for x in a.budget.split(",")], fps=a.fps,
                   clip_seconds=a.clip_seconds, k=a.k, max_new_tokens=a.max_new_tokens, retrieval=ret)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
