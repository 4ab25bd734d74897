"""Meeting benchmark (lite profile), per component, on this CPU.

    python -m bench.meeting [--duration 600] [--slides 6] [--facts 50] [--llms smollm2-135m,gemma3-270m]
                            [--questions 20] [--no-write] [--json out.json]

Measures:
- ASR realtime factor (streaming 2-s clips through models.asr.Transcriber) and spoken-fact recall in the transcript;
- OCR seconds per keyframe and slide-title/fact recall;
- text embedder throughput;
- each LLM candidate side by side: load time (GGUF conversion and cached), answer exact-match on planted facts
  given gold evidence (LLM alone and LLM + extractive fallback), first-token and total latency p50/p95;
- extractive-only exact-match as the floor.
A full-pipeline function (ingest -> bank -> ask) can be plugged in with `register_pipeline(fn)`: fn(truth, facts)
must return a dict of metrics (e.g. ingest_rtf, recall@1, recall@5, answer_em, ask_p50, ask_p95); they are
reported in the same section. Results go to bench/RESULTS.md between <!-- meeting:start --> and <!-- meeting:end -->.
Note: the machine may be shared with other jobs; the load average at the start and end is recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.base import MemoryView  # noqa: E402
from tests.fixtures.meeting import MeetingTruth, contains_answer, load_audio, make_meeting  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
START, END = "<!-- meeting:start -->", "<!-- meeting:end -->"
_PIPELINE: Optional[Callable[[MeetingTruth, list], dict]] = None


def register_pipeline(fn: Callable[[MeetingTruth, list], dict]) -> None:
    """Plug in the full ingest -> retrieve -> answer pipeline (the lead's): fn(truth, facts) -> metrics dict."""
    global _PIPELINE
    _PIPELINE = fn


def pct(xs, p):
    return float(np.percentile(xs, p)) if len(xs) else float("nan")


def loadavg() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def bench_asr(truth: MeetingTruth) -> dict:
    from models.asr import Transcriber

    t = time.perf_counter()
    asr = Transcriber()
    load = time.perf_counter() - t
    audio = load_audio(truth.path)
    t = time.perf_counter()
    segs = []
    for i in range(0, len(audio), 32000):
        asr.insert(audio[i:i + 32000], i / 16000)
        segs += asr.process()
    segs += asr.finish()
    el = time.perf_counter() - t
    hit = sum(contains_answer(" ".join(s.text for s in segs if s.t1 > f.t0 - 1 and s.t0 < f.t1 + 1), f.answer)
              for f in truth.spoken_facts)
    owners = sum(a.owner.lower() in " ".join(s.text for s in segs if s.t1 > a.t0 - 1 and s.t0 < a.t1 + 1).lower()
                 for a in truth.action_items)
    return dict(load_s=load, audio_s=len(audio) / 16000, compute_s=el, rtf=el / (len(audio) / 16000),
                segments=len(segs), spoken_fact_recall=hit / max(1, len(truth.spoken_facts)),
                owner_recall=owners / max(1, len(truth.action_items)), _segs=segs, _asr=asr)


def bench_ocr(truth: MeetingTruth) -> dict:
    from models.ocr import SlideReader
    from tests.fixtures.meeting import frame_at

    r = SlideReader()
    times, titles, facts, lines_all = [], 0, 0, {}
    for s in truth.slides:
        img = frame_at(truth.path, (s.t0 + s.t1) / 2)
        t = time.perf_counter()
        lines = r.read(img)
        times.append(time.perf_counter() - t)
        lines_all[s.index] = lines
        titles += s.title in lines
        facts += sum(b in lines for b in s.bullets)
    return dict(per_keyframe_p50=pct(times, 50), per_keyframe_max=max(times), keyframes=len(times),
                title_recall=titles / len(truth.slides),
                bullet_recall=facts / max(1, sum(len(s.bullets) for s in truth.slides)),
                resolution=f"{truth.size[0]}x{truth.size[1]}", _lines=lines_all)


def bench_embed(texts: list[str]) -> dict:
    from models.text_embed import TextEmbedder

    t = time.perf_counter()
    e = TextEmbedder()
    load = time.perf_counter() - t
    e.encode(texts[:4])
    t = time.perf_counter()
    e.encode(texts)
    el = time.perf_counter() - t
    q = time.perf_counter()
    for x in texts[:20]:
        e.encode([x])
    one = (time.perf_counter() - q) / min(20, len(texts))
    return dict(load_s=load, texts=len(texts), per_text_batched_ms=1000 * el / len(texts), per_query_ms=1000 * one,
                _emb=e)


def gold_memories(truth: MeetingTruth, segs, lines_by_slide, f, distractors: int = 6, rng=None) -> list[MemoryView]:
    """Evidence as retrieval would give it at best: the clip holding the fact (real ASR/OCR text) plus
    distractor clips from elsewhere in the meeting, in time order."""
    rng = rng or np.random.default_rng(0)
    mems = []

    def asr_mem(i, t0, t1):
        txt = " ".join(s.text for s in segs if s.t1 > t0 - 0.5 and s.t0 < t1 + 0.5)
        return MemoryView(i, "m", t0, t1, 1.0, evidence={"asr": txt}) if txt else None

    if f.source == "slide":
        s = next(x for x in truth.slides if f.id in x.fact_ids)
        mems.append(MemoryView(0, "m", s.t0, s.t0 + 2, 1.0, evidence={"ocr": "\n".join(lines_by_slide[s.index])}))
    else:
        m = asr_mem(0, f.t0, f.t1)
        if m:
            mems.append(m)
    others = [u for u in truth.utterances if not (u.t1 > f.t0 and u.t0 < f.t1)]
    for j, k in enumerate(rng.choice(len(others), size=min(distractors, len(others)), replace=False)):
        u = others[int(k)]
        m = asr_mem(j + 1, u.t0, u.t1)
        if m:
            mems.append(m)
    oth = [s for s in truth.slides if f.id not in s.fact_ids]
    if oth:
        s = oth[int(rng.integers(len(oth)))]
        mems.append(MemoryView(99, "m", s.t0, s.t0 + 2, 1.0, evidence={"ocr": "\n".join(lines_by_slide[s.index])}))
    return sorted(mems, key=lambda m: m.t0)


def bench_answers(truth, segs, lines_by_slide, facts, llm_names, embedder) -> dict:
    from models.assistant import LiteAnswerer
    from models.llm import TextLLM, available

    rng = np.random.default_rng(1)
    evid = [gold_memories(truth, segs, lines_by_slide, f, rng=rng) for f in facts]
    ex = LiteAnswerer(None, embedder=embedder)
    ex_ok = sum(contains_answer("".join(ex.answer(f.question, m)), f.answer) for f, m in zip(facts, evid))
    # can the fact be answered from the evidence at all (the ASR may have misheard it)?
    answerable = [any(contains_answer(json.dumps(x.evidence), f.answer) for x in m) for f, m in zip(facts, evid)]
    out = dict(extractive_em=ex_ok / len(facts), answerable=sum(answerable) / len(facts), n=len(facts), llms={})
    for name in llm_names:
        if name not in available():
            out["llms"][name] = dict(error="not installed")
            continue
        from models.llm import cache_root

        cache = cache_root() / "llm" / name
        cold = None
        if not (cache / "config.json").exists():
            t = time.perf_counter()
            TextLLM(name)
            cold = time.perf_counter() - t
        t = time.perf_counter()
        llm = TextLLM(name)
        warm = time.perf_counter() - t
        a = LiteAnswerer(llm, embedder=embedder, max_new_tokens=60)
        llm_ok = hyb_ok = 0
        first, total, rows = [], [], []
        for f, m in zip(facts, evid):
            t = time.perf_counter()
            got, ft = "", None
            for p in a.answer(f.question, m):
                if ft is None:
                    ft = time.perf_counter() - t
                got += p
            total.append(time.perf_counter() - t)
            first.append(ft or total[-1])
            lo = contains_answer(a.last.llm_text, f.answer)
            llm_ok += lo
            hyb_ok += contains_answer(got, f.answer)
            rows.append(dict(q=f.question, gold=f.answer, llm=a.last.llm_text[:200], fallback=a.last.fallback_used))
        out["llms"][name] = dict(load_cold_s=cold, load_cached_s=warm, llm_em=llm_ok / len(facts),
                                 hybrid_em=hyb_ok / len(facts), first_token_p50=pct(first, 50),
                                 first_token_p95=pct(first, 95), answer_p50=pct(total, 50),
                                 answer_p95=pct(total, 95), samples=rows[:5])
        del llm, a
    return out


def bench_summarize(truth, segs, lines_by_slide, llm_name: Optional[str]) -> dict:
    from models.assistant import summarize
    from models.llm import TextLLM, available

    mems = []
    for s in truth.slides:
        mems.append(MemoryView(len(mems), "m", s.t0, s.t0 + 2, 1.0, evidence={"ocr": "\n".join(lines_by_slide[s.index])}))
    for g in segs:
        mems.append(MemoryView(len(mems), "m", g.t0, g.t1, 1.0, evidence={"asr": g.text}))
    res = {}
    for use in ([None] + ([llm_name] if llm_name and llm_name in available() else [])):
        llm = TextLLM(use) if use else None
        t = time.perf_counter()
        mn = summarize(mems, llm)
        el = time.perf_counter() - t
        titles = sum(any(s.title == x.title for x in mn.sections) for s in truth.slides) / len(truth.slides)
        owners = {a.owner for a in mn.action_items}
        own = sum(a.owner in owners for a in truth.action_items) / max(1, len(truth.action_items))
        res[use or "rules-only"] = dict(seconds=el, title_recall=titles, action_owner_recall=own,
                                        decisions=len(mn.decisions), true_decisions=len(truth.decisions))
    return res


def run(args) -> dict:
    tmp = Path(args.workdir or tempfile.mkdtemp(prefix="vigil-bench-meeting-"))
    mp4 = tmp / f"meeting_{int(args.duration)}s.mp4"
    t = time.perf_counter()
    truth = make_meeting(mp4, args.duration, args.slides, args.seed)
    gen = time.perf_counter() - t
    res = dict(machine=f"{platform.machine()} {os.cpu_count()} cores", load_before=loadavg(),
               meeting=dict(duration_s=args.duration, slides=args.slides, facts=len(truth.facts),
                            spoken_facts=len(truth.spoken_facts), action_items=len(truth.action_items),
                            generate_s=gen))
    print(f"meeting {args.duration:.0f}s generated in {gen:.1f}s: {len(truth.facts)} facts", flush=True)
    asr = bench_asr(truth)
    segs = asr.pop("_segs")
    asr.pop("_asr")
    res["asr"] = asr
    print("asr", {k: round(v, 3) if isinstance(v, float) else v for k, v in asr.items()}, flush=True)
    ocr = bench_ocr(truth)
    lines = ocr.pop("_lines")
    res["ocr"] = ocr
    print("ocr", ocr, flush=True)
    emb = bench_embed([s.text for s in segs] or ["x"])
    e = emb.pop("_emb")
    res["embed"] = emb
    print("embed", emb, flush=True)
    facts = truth.facts[: args.facts]
    res["answers"] = bench_answers(truth, segs, lines, facts[: args.questions], args.llms.split(","), e)
    print("answers", json.dumps(res["answers"], indent=1, default=str)[:3000], flush=True)
    if not args.skip_summary:
        res["summarize"] = bench_summarize(truth, segs, lines, args.llms.split(",")[0])
        print("summarize", res["summarize"], flush=True)
    if _PIPELINE is not None:
        res["pipeline"] = _PIPELINE(truth, facts)
    res["load_after"] = loadavg()
    return res


def to_markdown(r: dict) -> str:
    a, o, e, q = r["asr"], r["ocr"], r["embed"], r["answers"]
    m = r["meeting"]
    out = [
        "## Meeting (lite profile)", "",
        f"`python -m bench.meeting --duration {m['duration_s']:.0f} --slides {m['slides']}` on {r['machine']} "
        f"(load average before/after: {r['load_before']} / {r['load_after']}; the machine was shared with other "
        "jobs, so latencies are upper bounds). Generated meeting: "
        f"{m['duration_s']:.0f} s, {m['slides']} slides, {m['facts']} planted facts ({m['spoken_facts']} spoken), "
        f"{m['action_items']} action items; espeak-ng speech.", "",
        "| component | measure | value |", "|---|---|---|",
        f"| ASR (faster-whisper tiny.en int8, VAD, 2 s clips streamed) | realtime factor (compute s / audio s) | {a['rtf']:.3f} |",
        f"| | spoken-fact recall in transcript / owner names heard | {a['spoken_fact_recall']:.0%} / {a['owner_recall']:.0%} |",
        f"| | model load | {a['load_s']:.2f} s |",
        f"| OCR (RapidOCR PP-OCRv4, det ≤960 px, no cls) | seconds per {o['resolution']} keyframe, p50 (max) | {o['per_keyframe_p50']:.2f} ({o['per_keyframe_max']:.2f}) |",
        f"| | slide title / bullet recall (exact line) | {o['title_recall']:.0%} / {o['bullet_recall']:.0%} |",
        f"| Text embedder (MiniLM-L6) | ms per text batched / per single query | {e['per_text_batched_ms']:.1f} / {e['per_query_ms']:.1f} |",
        f"| Extractive answerer (no LLM), gold evidence | exact match on {q['n']} planted facts | {q['extractive_em']:.0%} (facts present in evidence after ASR/OCR: {q['answerable']:.0%}) |",
        "", "LLM candidates side by side (same gold evidence: the fact's clip + 7 distractor clips, real ASR/OCR text; "
        "greedy, ≤60 new tokens). *LLM EM*: the model's own text contains the fact; *hybrid EM*: after the extractive "
        "fallback that quotes the best evidence sentence when the model misses it (what `LiteAnswerer` returns).", "",
        "| LLM | load (GGUF→cache / cached) | LLM EM | hybrid EM | first token p50 / p95 | answer p50 / p95 |",
        "|---|---|---|---|---|---|",
    ]
    for name, x in q["llms"].items():
        if "error" in x:
            out.append(f"| {name} | {x['error']} | | | | |")
            continue
        cold = f"{x['load_cold_s']:.0f} s" if x["load_cold_s"] else "(cached earlier)"
        out.append(f"| {name} | {cold} / {x['load_cached_s']:.1f} s | {x['llm_em']:.0%} | {x['hybrid_em']:.0%} | "
                   f"{x['first_token_p50']:.2f} / {x['first_token_p95']:.2f} s | {x['answer_p50']:.2f} / {x['answer_p95']:.2f} s |")
    if "summarize" in r:
        out += ["", "| summarize | seconds | slide titles found | action-item owners found | decisions found / planted |",
                "|---|---|---|---|---|"]
        for k, v in r["summarize"].items():
            out.append(f"| {k} | {v['seconds']:.1f} | {v['title_recall']:.0%} | {v['action_owner_recall']:.0%} | "
                       f"{v['decisions']} / {v['true_decisions']} |")
    if "pipeline" in r:
        out += ["", "Full pipeline:", "", "| metric | value |", "|---|---|"]
        out += [f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in r["pipeline"].items()]
    return "\n".join(out) + "\n"


def write_results(md: str, path: Path = RESULTS) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    block = f"{START}\n{md}{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--slides", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--facts", type=int, default=50)
    ap.add_argument("--questions", type=int, default=30, help="facts asked of each LLM")
    ap.add_argument("--llms", default="smollm2-135m,gemma3-270m")
    ap.add_argument("--skip-summary", action="store_true")
    ap.add_argument("--workdir")
    ap.add_argument("--json")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    r = run(args)
    md = to_markdown(r)
    print(md)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1, default=str))
    if not args.no_write:
        write_results(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
