"""Time to first token THROUGH THE PRODUCT PATH: banks built by the product's ingest, questions through the same
`models.ask.ask` the CLI and the UI call, in one warm process (as the UI runs it). FULL-SIZE configs, RANDOM
weights (no download): speed and memory transfer to the real checkpoints; the answers are gibberish.

    # on a GPU (the H200 run in bench/RESULTS.md): all three models, JSON per model under $OUT
    PYTHONUNBUFFERED=1 python bench/ask_gpu.py --models qwen3b,ov05b,qwen7b --out $OUT/ask_gpu.json
    # on a CPU, end to end with tiny configs (what CI-less development runs before spending device time)
    python bench/ask_gpu.py --tiny --models qwen3b,ov05b --reps 4 --hours 0.1667,1,10

What one model's run does (progress on stdout, the ingest bar on stderr):
1. Random full-size model (bench/vlm_gpu.py's configs: Qwen2.5-VL-3B / -7B, LLaVA-OV-0.5B) and a random full-size
   SigLIP-so400m dual encoder (the `--retrieval` model, so a text question can search the clips) are saved with
   save_pretrained into --work, then loaded by `models.registry.load_profile(dir, retrieval=siglip_dir)`: what
   `python app.py ingest|ask --model DIR --retrieval SIGLIP_DIR` does. The tokenizer is a small byte-level BPE made
   in code; the LM head rows of ids it cannot print as text (specials, lone bytes, ids past its vocabulary) are
   zeroed, so the first generated token is the first streamed piece (a random head would otherwise often pick an
   unprintable id and delay the piece); FLOPs are unchanged.
2. Ingest: `app.ingest_into` (the CLI's ingest function) on a generated 392×392 video (moving square, a scene
   every 60 s, --minutes long) at 1 fps, 2 s clips, pool2d, --budget tokens per clip.
3. Memory sizes: 10 min as ingested; 1 h and 10 h by adding the ingested memories again under later times with
   MemoryBank.add_many (one group commit per copy; MemoryBank.add on a bank without it): carrier, keys, evidence
   and thumbnail of each, read back with bank.carrier / bank.key_of / the thumbnail file, into the same
   bank the warm process holds (the UI's way: one process ingests and asks).
4. At each size: warm-up asks, then --reps asks of rotating questions through `ask(bank, profile, q, k=K)`,
   iterating the AnswerStream; TTFT = question in → first streamed piece (query keys, search, carriers loaded,
   prompt built, prefill, first token). Reported: p50/p90, usage.visual_tokens (= Σ citations' tokens), prompt
   (prefill) tokens, the breakdown (retrieve_ms, the answerer's prepare and prefill+first-token times), peak GPU
   memory over that size's asks.
5. Full-token baseline, same process: a second bank holding ONE clip of 64 time steps × 196 tokens (128 s of the
   same kind of video for Qwen, whose steps are 2 frames; 64 s for OV), ingested with budget 12,544 (no
   reduction), asked with k=1 through the same `ask`.
6. Cold `python app.py ask --bank <10 h bank> Q --model DIR --retrieval SIGLIP_DIR --k K --json`: wall time of
   the whole process (imports, loading both models, retrieval, the full answer), with its own latency JSON.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

T0 = time.time()
QUESTIONS = [
    "When did the white square cross the middle of the screen, and what colour was the background then?",
    "What happened right after the scene changed to blue?",
    "Describe what moves in the video and where it goes.",
    "Was there a moment when the picture turned yellow? When?",
    "How many times did the background colour change?",
    "What was on screen just before the purple scene?",
]
STREAM = "cam0"
FULL_SIDE = 392          # Qwen: 392 = 14·28 → 14×14 merged tokens a step; OV: SigLIP 384 → 27² → pooled 14×14
BASELINE_STEPS = 64


def log(msg: str) -> None:
    print(f"[{time.time() - T0:7.1f}s] {msg}", flush=True)


def cuda() -> bool:
    return torch.cuda.is_available()


def sync() -> None:
    if cuda():
        torch.cuda.synchronize()


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


# ------------------------------------------------------------------------------------ models on disk
def printable_ids(tok) -> list[int]:
    """Ids the tokenizer decodes to non-empty, complete text on their own (no specials, no partial UTF-8)."""
    special = set(tok.all_special_ids)
    out = []
    for i in range(len(tok)):
        if i in special:
            continue
        s = tok.decode([i])
        if s and "\ufffd" not in s and s.strip():
            out.append(i)
    return out


def restrict_head(model, tok) -> int:
    """Zero the output-embedding rows of ids the bench tokenizer cannot print (tied embeddings: the same rows)."""
    w = model.get_output_embeddings().weight
    keep = torch.zeros(w.shape[0], dtype=torch.bool)
    keep[printable_ids(tok)] = True
    with torch.no_grad():
        w[~keep.to(w.device)] = 0
    return int(keep.sum())


def save_vlm(name: str, out_dir: str, tiny: bool) -> dict:
    """A random VLM of MODELS[name]'s full-size config (or the tiny test config) saved with save_pretrained."""
    from transformers import AutoTokenizer

    from bench.vlm_gpu import MODELS

    family = MODELS[name]["family"]
    if tiny:
        from tests.models.tiny import BUILDERS
        import transformers as tf

        BUILDERS[family](out_dir)
        cls = {"qwen2_5_vl": tf.Qwen2_5_VLForConditionalGeneration,
               "llava_onevision": tf.LlavaOnevisionForConditionalGeneration}[family]
        model = cls.from_pretrained(out_dir)
        tok = AutoTokenizer.from_pretrained(out_dir)
    else:
        from bench.vlm_gpu import random_model

        model, tok, tdir, _ = random_model(name, "cuda")
        for f in os.listdir(tdir):
            shutil.copy(os.path.join(tdir, f), out_dir)
        shutil.rmtree(tdir, ignore_errors=True)
        eos = tok.convert_tokens_to_ids("<|im_end|>")
        model.generation_config.eos_token_id = eos
        model.config.get_text_config().eos_token_id = eos
        if family == "qwen2_5_vl":
            pp = {"image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
                  "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2}
        else:
            pp = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
        with open(os.path.join(out_dir, "preprocessor_config.json"), "w") as f:
            json.dump(pp, f)
    n_print = restrict_head(model, tok)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out_dir)
    tc = model.config.get_text_config()
    info = {"params_b": round(params / 1e9, 3), "lm_hidden": tc.hidden_size, "lm_layers": tc.num_hidden_layers,
            "vocab": tc.vocab_size, "printable_ids": n_print, "dir_gb": round(dir_bytes(out_dir) / 1e9, 2)}
    del model
    gc.collect()
    if cuda():
        torch.cuda.empty_cache()
    return info


def save_siglip(out_dir: str, tiny: bool) -> dict:
    """A random SigLIP dual encoder (so400m@384 towers at full size) for --retrieval, saved with save_pretrained."""
    if tiny:
        from tests.models.tiny import tiny_retrieval

        tiny_retrieval(out_dir, "siglip")
        return {"tiny": True}
    from transformers import SiglipConfig, SiglipModel

    from bench.vlm_gpu import SIGLIP_SO400M, SIGLIP_TEXT
    from tests.models.tiny import CHATML, make_tokenizer

    tok = make_tokenizer(out_dir, ["<|endoftext|>", "<pad>"], CHATML, eos="<|endoftext|>", pad="<pad>")
    text = dict(SIGLIP_TEXT, pad_token_id=tok.convert_tokens_to_ids("<pad>"),
                eos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"))
    torch.manual_seed(1)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            vision = dict(SIGLIP_SO400M, num_hidden_layers=27)  # the whole so400m tower (OV uses 26 of its layers)
            model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision)).eval()
    finally:
        torch.set_default_dtype(prev)
    model.save_pretrained(out_dir)
    with open(os.path.join(out_dir, "preprocessor_config.json"), "w") as f:
        json.dump({"image_mean": [0.5] * 3, "image_std": [0.5] * 3, "size": {"height": 384, "width": 384}}, f)
    info = {"params_b": round(sum(p.numel() for p in model.parameters()) / 1e9, 3)}
    del model
    gc.collect()
    torch.cuda.empty_cache()
    return info


def dir_bytes(d: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)


# ------------------------------------------------------------------------------------ banks
def make_videos(work: str, minutes: float, given: str | None) -> tuple[str, str]:
    """The main video (a scene every 60 s) and the baseline's 130 s video without cuts (392×392, 2 fps, no audio)."""
    if given:
        main, base = given.split(",")
        return main, base
    from tests.fixtures.video import make_video

    main = os.path.join(work, f"video_{minutes:g}min.mp4")
    base = os.path.join(work, "video_baseline.mp4")
    secs = 60 * minutes
    make_video(main, seconds=secs, fps=2, size=(FULL_SIDE, FULL_SIDE), scenes=[60.0 * i for i in range(1, int(minutes))],
               audio_hz=None)
    make_video(base, seconds=2 * BASELINE_STEPS + 2, fps=2, size=(FULL_SIDE, FULL_SIDE), audio_hz=None)
    return main, base


def ingest(bank, profile, video: str, cfg) -> dict:
    """The CLI's ingest function (app.ingest_into) on one file; returns its stats and wall time."""
    from app import ingest_into
    from stream.sources import open_source

    source = open_source(video, fps=cfg.fps, stream_id=STREAM)
    t = time.perf_counter()
    s, interrupted = ingest_into(bank, source, profile, STREAM, cfg, video)
    wall = time.perf_counter() - t
    assert not interrupted
    return {"memories": s.memories, "media_s": round(s.last_t, 1), "frames_sampled": s.frames_sampled,
            "wall_s": round(wall, 2), "x_realtime": round(s.last_t / max(wall, 1e-9), 1),
            "ms_per_clip": round(1e3 * wall / max(1, s.memories), 1)}


class Grower:
    """Adds the ingested memories again, shifted by whole copies of the ingested span, through MemoryBank.add."""

    def __init__(self, bank):
        self.bank = bank
        self.src = bank.list(stream=STREAM)
        self.span = max(m.t1 for m in self.src) - min(m.t0 for m in self.src)
        self.period = 60.0 * round(self.span / 60.0) or self.span  # whole minutes: clip times stay aligned
        self.spaces = bank.key_spaces()
        self.copies = 1
        self.thumbs = {}
        for m in self.src:
            p = bank.thumbnail_path(m.id)
            self.thumbs[m.id] = open(p, "rb").read() if p and os.path.exists(p) else None

    def grow_to(self, seconds: float) -> dict:
        t = time.perf_counter()
        added = 0
        while self.copies < max(1, round(seconds / self.period)):  # 0.1667 h = 600 s: the ingested 10 min
            dt = self.copies * self.period
            items = []
            for m in self.src:
                keys = {sp: v for sp in self.spaces if (v := self.bank.key_of(m.id, sp)) is not None}
                items.append(dict(stream=STREAM, t0=m.t0 + dt, t1=m.t1 + dt, wall=(m.wall or 0.0) + dt,
                                  carrier=self.bank.carrier(m.id), keys=keys, reducer=m.reducer, budget=m.budget,
                                  space=m.space, thumbnail=self.thumbs[m.id], novelty=m.novelty, evidence=m.evidence))
            if hasattr(self.bank, "add_many"):  # one group commit per copy of the ingested span
                self.bank.add_many(items)
            else:
                for it in items:
                    self.bank.add(**it)
            added += len(items)
            self.copies += 1
        self.bank.flush(force=True)
        wall = time.perf_counter() - t
        return {"added": added, "memories": self.bank.count(), "covered_h": round(self.copies * self.period / 3600, 3),
                "add_wall_s": round(wall, 1), "ms_per_add": round(1e3 * wall / max(1, added), 2)}


# ------------------------------------------------------------------------------------ asks
class Stages:
    """Wall time of the ask path's stages, measured inside the real calls (thin wrappers around the functions
    `models.ask.ask` looks up at call time; nested: retrieve_for holds query_keys, time_windows and retrieve)."""

    def __init__(self):
        import memory.retrieval
        import models.ask
        from models.registry import Profile

        self.targets = [(models.ask, "check_carriers"), (models.ask, "retrieve_for"), (Profile, "query_keys"),
                        (models.ask, "time_windows"), (memory.retrieval, "retrieve"), (models.ask, "citations_of"),
                        (models.ask, "memory_views")]
        self.ms: dict = {}
        self._orig = []

    def __enter__(self):
        for owner, name in self.targets:
            fn = getattr(owner, name)
            self._orig.append((owner, name, fn))

            def wrapped(*args, _fn=fn, _name=name, **kw):
                t = time.perf_counter()
                try:
                    return _fn(*args, **kw)
                finally:
                    self.ms[_name] = self.ms.get(_name, 0.0) + 1e3 * (time.perf_counter() - t)

            setattr(owner, name, wrapped)
        return self

    def __exit__(self, *exc):
        for owner, name, fn in self._orig:
            setattr(owner, name, fn)


def one_ask(bank, profile, q: str, k: int, opts: dict) -> dict:
    from models.ask import ask

    sync()
    stages = Stages()
    t = time.perf_counter()
    with stages:
        ans, cites = ask(bank, profile, q, k=k, **opts)
    n = 0
    for _ in ans:
        n += 1
    sync()
    t_end = time.perf_counter()
    assert ans.answered and ans.first_piece is not None, "no streamed answer"
    u = ans.usage
    assert u.visual_tokens == sum(c["tokens"] for c in cites)
    tm = u.timing or {}
    return {"ttft_ms": 1e3 * (ans.first_piece - t), "retrieve_ms": ans.retrieve_ms,
            "prepare_ms": 1e3 * tm.get("prepare_s", 0.0), "prefill_first_ms": 1e3 * tm.get("ttft_s", 0.0),
            "total_ms": 1e3 * (t_end - t), "prompt_tokens": u.prompt_tokens, "visual_tokens": u.visual_tokens,
            "completion_tokens": u.completion_tokens, "citations": len(cites), "pieces": n,
            "slot_wait_ms": 1e3 * tm.get("slot_wait_s", 0.0),
            **{f"prepare_{k}_ms": v for k, v in (tm.get("prepare_ms") or {}).items()},
            **{f"stage_{k}_ms": v for k, v in stages.ms.items()}}


def time_asks(bank, profile, k: int, reps: int, warm: int, opts: dict, label: str) -> dict:
    if cuda():
        torch.cuda.reset_peak_memory_stats()
    for i in range(warm):
        one_ask(bank, profile, QUESTIONS[i % len(QUESTIONS)], k, opts)
    rows = [one_ask(bank, profile, QUESTIONS[i % len(QUESTIONS)], k, opts) for i in range(reps)]
    ttft = [r["ttft_ms"] for r in rows]
    med = {key: round(statistics.median(r.get(key, 0.0) for r in rows), 2)
           for key in ("retrieve_ms", "prepare_ms", "prefill_first_ms", "total_ms", "slot_wait_ms",
                       *sorted({k for r in rows for k in r if k.startswith(("stage_", "prepare_")) and k != "prepare_ms"}))}
    out = {"asks": reps, "ttft_p50_ms": round(statistics.median(ttft), 1), "ttft_p90_ms": round(pct(ttft, 0.9), 1),
           "ttft_min_ms": round(min(ttft), 1), "ttft_max_ms": round(max(ttft), 1),
           "visual_tokens": sorted({r["visual_tokens"] for r in rows}),
           "prompt_tokens": sorted({r["prompt_tokens"] for r in rows}),
           "citations": sorted({r["citations"] for r in rows}), "median_breakdown_ms": med,
           "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda() else None}
    log(f"   {label:<9} TTFT p50 {out['ttft_p50_ms']:7.1f} ms  p90 {out['ttft_p90_ms']:7.1f}  visual {out['visual_tokens']}"
        f"  prompt {out['prompt_tokens']}  peak {out['peak_gpu_gib']} GiB  [retrieve {med['retrieve_ms']} "
        f"prepare {med['prepare_ms']} prefill+1st {med['prefill_first_ms']} total {med['total_ms']}] pieces "
        f"{sorted({r['pieces'] for r in rows})}")
    log("             stages (median ms): " + ", ".join(f"{k[6:-3]} {v}" for k, v in med.items() if k.startswith("stage_")))
    log("             prompt build (median ms): " + ", ".join(f"{k[8:-3]} {v}" for k, v in med.items()
                                                            if k.startswith("prepare_") and k != "prepare_ms")
        + f"; slot wait {med['slot_wait_ms']}")
    out["faiss_search"] = faiss_diag(bank, profile, k)
    return out


def faiss_diag(bank, profile, k: int) -> dict:
    """MemoryBank.search alone, as ask calls it (k × 4 pool × 4), with FAISS's default OpenMP threads and with one."""
    import faiss

    q = profile.query_keys(QUESTIONS[0])
    space = next((s for s in q if s in bank.key_spaces()), None)
    if space is None:
        return {}
    kk = max(4 * k, 32) * 4
    out = {"k": kk, "memories": bank.count(), "omp_threads": faiss.omp_get_max_threads()}
    n0 = faiss.omp_get_max_threads()
    try:
        for label, n in (("default_threads", n0), ("one_thread", 1)):
            faiss.omp_set_num_threads(n)
            ts = []
            for _ in range(15):
                t = time.perf_counter()
                bank.search(q[space], k=kk, space=space)
                ts.append(1e3 * (time.perf_counter() - t))
            out[f"{label}_p50_ms"] = round(statistics.median(ts), 3)
            out[f"{label}_max_ms"] = round(max(ts), 3)
    finally:
        faiss.omp_set_num_threads(n0)
    log(f"             bank.search alone (k={kk}, {out['memories']} memories): {out}")
    return out


def cold_ask(bank_dir: str, model_dir: str, siglip_dir: str, k: int, device: str) -> dict:
    """`python app.py ask … --json` in a fresh process; wall time of the whole command."""
    cmd = [sys.executable, os.path.join(ROOT, "app.py"), "ask", "--bank", bank_dir, QUESTIONS[0], "--model", model_dir,
           "--retrieval", siglip_dir, "--k", str(k), "--json", "--device", device]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    wall = time.perf_counter() - t
    out = {"wall_s": round(wall, 2), "rc": p.returncode, "cmd": "python app.py ask --bank BANK Q --model DIR "
           f"--retrieval SIGLIP_DIR --k {k} --json --device {device}"}
    if p.returncode == 0:
        j = json.loads(p.stdout.strip().splitlines()[-1])
        out.update(latency=j["latency"], usage=j["usage"], citations=len(j["citations"]))
    else:
        out["stderr"] = p.stderr[-800:]
    log(f"   cold app.py ask: {out['wall_s']} s (rc {p.returncode}) {out.get('latency', out.get('stderr', ''))}")
    return out


# ------------------------------------------------------------------------------------ one model
def run_model(name: str, a, work: str, siglip_dir: str, videos: tuple[str, str]) -> dict:
    from memory.bank import MemoryBank
    from models.registry import load_profile
    from stream.pipeline import IngestConfig

    from bench.vlm_gpu import MODELS

    R: dict = {"weights": "RANDOM (full-size config)" if not a.tiny else "RANDOM (tiny test config)",
               "family": MODELS[name]["family"], "k": a.k, "budget": a.budget}
    mdir = os.path.join(work, name)
    os.makedirs(mdir, exist_ok=True)
    log(f"== {name}: saving a random model to {mdir}")
    t = time.perf_counter()
    R["model"] = save_vlm(name, mdir, a.tiny)
    R["model"]["save_s"] = round(time.perf_counter() - t, 1)
    log(f"   {R['model']}")
    dev = "cuda" if cuda() else "cpu"
    t = time.perf_counter()
    profile = load_profile(mdir, device=dev, retrieval=siglip_dir)
    sync()
    R["load_profile_s"] = round(time.perf_counter() - t, 1)
    R["weights_gib"] = round(torch.cuda.memory_allocated() / 2**30, 2) if cuda() else None
    log(f"   load_profile {R['load_profile_s']} s; GPU {R['weights_gib']} GiB after loading")
    opts = {"max_new_tokens": a.new_tokens}
    bank_dir = os.path.join(mdir, "bank")
    # the UI's way: one read-write bank in the process that ingests and asks. The FAISS files are rewritten only
    # when asked to (flush), so growing to 10 h does not rewrite the index every 64 adds
    bank = MemoryBank(bank_dir, flush_every=1 << 30, flush_seconds=1e9)
    try:
        cfg = IngestConfig(fps=1.0, clip_seconds=2.0, reducer="pool2d", budget=a.budget)
        log(f"   ingest {videos[0]} (budget {a.budget}) through app.ingest_into")
        R["ingest"] = ingest(bank, profile, videos[0], cfg)
        log(f"   ingest: {R['ingest']}")
        grower = Grower(bank)
        R["sizes"] = {}
        for h in a.hours:
            label = f"{h:g} h" if h >= 1 else f"{round(h * 60)} min"
            g = grower.grow_to(h * 3600)
            if g["added"]:
                log(f"   grew to {label}: {g}")
            res = time_asks(bank, profile, a.k, a.reps, a.warm, opts, label)
            res["bank"] = g
            R["sizes"][label] = res
            save_partial(a, name, R)
    finally:
        bank.close()
    # full-token baseline: one clip of 64 steps × 196 tokens, no reduction, same ask
    steps_frames = profile.encoder.temporal_patch
    base_secs = BASELINE_STEPS * steps_frames
    base_dir = os.path.join(mdir, "bank_baseline")
    bbank = MemoryBank(base_dir)
    try:
        full = BASELINE_STEPS * (FULL_SIDE // 28) ** 2 if not a.tiny else 10 ** 6
        bcfg = IngestConfig(fps=1.0, clip_seconds=float(base_secs), reducer="pool2d", budget=full, scene_cut=None,
                            duration=float(base_secs))
        log(f"   baseline: ingest {base_secs} s as one clip, budget {full}")
        R["baseline_ingest"] = ingest(bbank, profile, videos[1], bcfg)
        R["baseline"] = time_asks(bbank, profile, 1, a.reps, a.warm, opts, "baseline")
    finally:
        bbank.close()
    b = R["baseline"]
    for label, res in R["sizes"].items():
        res["baseline_over_ttft_p50"] = round(b["ttft_p50_ms"] / res["ttft_p50_ms"], 2)
        # conservative: the baseline without its carrier load from the bank (prompt build + prefill + first token)
        bp = b["median_breakdown_ms"]["prepare_ms"] + b["median_breakdown_ms"]["prefill_first_ms"]
        res["baseline_prefill_over_ttft_p50"] = round(bp / res["ttft_p50_ms"], 2)
    save_partial(a, name, R)
    del profile
    gc.collect()
    if cuda():
        torch.cuda.empty_cache()
    if not a.no_cold:
        R["cold_ask"] = cold_ask(bank_dir, mdir, siglip_dir, a.k, dev)
    save_partial(a, name, R)
    if not a.keep:
        shutil.rmtree(mdir, ignore_errors=True)
    return R


RESULTS: dict = {}


def save_partial(a, name: str, R: dict) -> None:
    RESULTS.setdefault("models", {})[name] = R
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(RESULTS, f, indent=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="qwen3b,ov05b,qwen7b")
    ap.add_argument("--tiny", action="store_true", help="tiny test configs on any device (a dry run of the whole path)")
    ap.add_argument("--k", type=int, default=32, help="memories retrieved per question (default 32)")
    ap.add_argument("--budget", type=int, default=36, help="ingest budget: carrier tokens per clip (default 36: pool2d "
                                                          "keeps 6×6 of a Qwen step, 2×4×4 of two OV frames)")
    ap.add_argument("--minutes", type=float, default=10.0, help="minutes of video ingested through the product")
    ap.add_argument("--hours", default="0.1667,1,10", help="memory sizes timed (the first is the ingested one)")
    ap.add_argument("--reps", type=int, default=20, help="timed asks per size")
    ap.add_argument("--warm", type=int, default=6, help="warm-up asks per size")
    ap.add_argument("--new-tokens", type=int, default=8, help="max_new_tokens of each timed answer")
    ap.add_argument("--videos", default=None, help="MAIN,BASELINE video files made by tests/fixtures/video.py "
                                                   "(default: generate them in --work)")
    ap.add_argument("--work", default=None, help="models and banks (default: /dev/shm/vigil_ask_gpu when there)")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold `app.py ask`")
    ap.add_argument("--keep", action="store_true", help="keep models and banks in --work")
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "ask_gpu.json"))
    a = ap.parse_args()
    a.hours = [float(h) for h in a.hours.split(",")]
    if not a.tiny:
        assert cuda(), "full-size configs need a CUDA GPU (use --tiny on a CPU)"
        torch.backends.cuda.matmul.allow_tf32 = True
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    shm_ok = os.access("/dev/shm", os.W_OK) and shutil.disk_usage("/dev/shm").free > (1 << 30 if a.tiny else 40 << 30)
    work = a.work or ("/dev/shm/vigil_ask_gpu" if shm_ok else os.path.join(tempfile.gettempdir(), "vigil_ask_gpu"))
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    import transformers
    RESULTS.update({"device": torch.cuda.get_device_name() if cuda() else "cpu", "torch": torch.__version__,
                    "transformers": transformers.__version__, "work": work, "tiny": a.tiny,
                    "note": "RANDOM WEIGHTS, " + ("TINY" if a.tiny else "FULL-SIZE") + " CONFIGS: speed/memory only",
                    "settings": {"k": a.k, "budget": a.budget, "ingested_minutes": a.minutes, "hours": a.hours,
                                 "reps": a.reps, "warm": a.warm, "max_new_tokens": a.new_tokens,
                                 "fps": 1.0, "clip_seconds": 2.0, "reducer": "pool2d", "video": f"{FULL_SIDE}x{FULL_SIDE}"}})
    t = time.perf_counter()
    videos = make_videos(work, a.minutes, a.videos)
    log(f"videos: {videos} ({time.perf_counter() - t:.1f} s)")
    siglip_dir = os.path.join(work, "siglip")
    os.makedirs(siglip_dir)
    t = time.perf_counter()
    RESULTS["retrieval_model"] = {"config": "tiny SigLIP" if a.tiny else "SigLIP-so400m@384: vision 27 layers × 1152, "
                                  "text 27 layers × 1152, 1152-d keys",
                                  **save_siglip(siglip_dir, a.tiny), "save_s": round(time.perf_counter() - t, 1)}
    log(f"retrieval model saved: {RESULTS['retrieval_model']}")
    for name in a.models.split(","):
        try:
            run_model(name, a, work, siglip_dir, videos)
        except Exception as e:  # noqa: BLE001 - keep going with the next model
            import traceback

            traceback.print_exc()
            RESULTS.setdefault("models", {}).setdefault(name, {})["error"] = f"{type(e).__name__}: {e}"[:400]
            save_partial(a, name, RESULTS["models"][name])
        gc.collect()
        if cuda():
            torch.cuda.empty_cache()
    log("done")
    print(json.dumps(RESULTS)[:4000])


if __name__ == "__main__":
    main()
