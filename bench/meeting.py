"""Meeting benchmark (lite profile) on this CPU: the full pipeline through the real bank, and its components.

    python -m bench.meeting [--duration 1800] [--slides 10] [--facts 50] [--llms smollm2-135m,gemma3-270m]
                            [--components] [--no-summary] [--no-write] [--json out.json] [--workdir DIR]

Full pipeline (always):
- ingest a generated meeting with the CLI's defaults (IngestPipeline: 1 fps, 2-s clips, EfficientNet-Lite0 tokens +
  tags, faster-whisper ASR, RapidOCR of changed keyframes, MiniLM text keys) into a real MemoryBank; realtime factor
  = wall seconds / media seconds, with the ASR and OCR shares;
- each planted fact asked through `models.ask.ask` (the CLI's and the UI's path: retrieval, rerank, answer) with each
  answerer side by side (extractive = no LLM; each installed LLM candidate): retrieval recall@1 / @5 (a retrieved
  memory overlaps the fact's true interval; the stricter "evidence" variant needs the fact's text in it), answer
  exact-match (normalized substring), how often the LLM's own sentence was accepted, refusals on absent topics,
  ask latency p50 / p95 (first piece and whole answer);
- summarize (models.meeting.stream_minutes) rules-only and with each LLM: time, slide titles and action-item owners
  found.
--components adds the per-component measurements on gold evidence (ASR, OCR, embedder, LLMs given the right clip).
Results go to bench/RESULTS.md between <!-- meeting:start --> and <!-- meeting:end -->. The machine may be shared
with other jobs: the load average at the start and end is recorded. This meeting comes from the generator the code
was developed on: its figures are dev figures.

    python -m bench.meeting --styles [--splits dev,heldout] [--style-list template,dense,scroll,speaker,human]
                            [--llm smollm2-135m|none] [--workdir DIR]

--styles is the held-out evaluation over five meeting styles (bench/styles.py says what it measures). Results go
between <!-- styles:start --> and <!-- styles:end -->; dev and held-out are reported separately.
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
from typing import Optional

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.base import MemoryView  # noqa: E402
from bench.absent import ABSENT  # noqa: E402
from tests.fixtures.meeting import MeetingTruth, contains_answer, load_audio, make_meeting  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
START, END = "<!-- meeting:start -->", "<!-- meeting:end -->"


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
    from models.answer.lite import LiteAnswerer
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
    from models.minutes import summarize
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


def overlaps(m, f) -> bool:
    return m.t1 > f.t0 and m.t0 < f.t1


def ingest_bank(truth: MeetingTruth, bank_dir: Path) -> tuple[dict, object]:
    """Ingest the meeting like `app.py ingest` does (same defaults), timing the whole and the ASR/OCR parts."""
    import shutil

    from memory.bank import MemoryBank
    from models.evidence import AsrEvidence, OcrEvidence
    from models.registry import load_profile
    from stream.pipeline import IngestConfig, IngestPipeline
    from stream.sources import open_source

    shutil.rmtree(bank_dir, ignore_errors=True)
    t = time.perf_counter()
    profile = load_profile(None)
    load = time.perf_counter() - t
    source = open_source(truth.path, fps=1.0, stream_id="meeting")
    bank = MemoryBank(str(bank_dir))
    pipe = IngestPipeline(source, bank, profile.encoder, stream_id="meeting", config=IngestConfig(),
                          evidence=profile.evidence, text_embedder=profile.text_embedder, source_label=truth.path)
    import resource

    t = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    stats = pipe.run()
    wall = time.perf_counter() - t
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)  # all threads: the work, whatever the load
    n = bank.count()
    bank.close()
    asr = next((e.asr for e in profile.evidence if isinstance(e, AsrEvidence)), None)
    ocr = next((e for e in profile.evidence if isinstance(e, OcrEvidence)), None)
    out = dict(model_load_s=load, media_s=truth.duration, wall_s=wall, rtf=wall / truth.duration, memories=n,
               cpu_s=cpu, cpu_per_media_s=cpu / truth.duration,
               error=stats.error,
               asr_s=getattr(asr, "compute_seconds", float("nan")),
               ocr_s=getattr(getattr(ocr, "reader", None), "seconds", float("nan")),
               ocr_calls=getattr(ocr, "calls", 0))
    # a file's speech is recognized on a thread of its own beside the encoder and OCR (Transcriber.background), so
    # the parts overlap: "other" is what the store thread did besides OCR while speech ran beside it (a lower bound)
    out["asr_background"] = bool(getattr(asr, "background", False))
    out["other_s"] = max(0.0, wall - out["ocr_s"] - (0.0 if out["asr_background"] else out["asr_s"]))
    return out, profile


def bench_asks(bank_dir: Path, profile, truth: MeetingTruth, facts, answerers: list[str], k: int = 5) -> dict:
    """Every fact (and a few absent topics) through models.ask.ask, once per answerer."""
    from memory.bank import MemoryBank
    from models.ask import ask
    from models.answer.lite import NOT_FOUND, LiteAnswerer
    from models.llm import TextLLM, available

    bank = MemoryBank(str(bank_dir), readonly=True)
    mems = bank.list()

    def heard(f):  # the fact's answer is in the bank's evidence (ASR/OCR got it) somewhere in its interval
        return any(contains_answer(json.dumps(m.evidence), f.answer) for m in mems if overlaps(m, f))

    res: dict = {"answerable": sum(map(heard, facts)) / len(facts), "n": len(facts), "k": k, "answerers": {}}
    retrieval = None
    for name in answerers:
        if name != "extractive" and name not in available():
            res["answerers"][name] = dict(error="not installed")
            continue
        t = time.perf_counter()
        llm = TextLLM(name) if name != "extractive" else None
        load = time.perf_counter() - t
        profile.answerer = LiteAnswerer(llm=llm, embedder=profile.text_embedder)
        r1 = r5 = e1 = e5 = em = llm_ok = accepted = cited = 0
        first, total, rows = [], [], []
        for f in facts:
            t = time.perf_counter()
            pieces, cits = ask(bank, profile, f.question, k=k)
            ft = None
            text = ""
            for p in pieces:
                ft = ft if ft is not None else time.perf_counter() - t
                text += p
            total.append(time.perf_counter() - t)
            first.append(ft if ft is not None else total[-1])
            ranked = sorted(pieces.memories, key=lambda m: m.rank)
            r1 += bool(ranked) and overlaps(ranked[0], f)
            r5 += any(overlaps(m, f) for m in ranked)
            has = [contains_answer(json.dumps(m.evidence), f.answer) for m in ranked]
            e1 += bool(has) and has[0]
            e5 += any(has)
            ok = contains_answer(text, f.answer) and not text.startswith(NOT_FOUND)  # a refusal is no answer
            em += ok
            tr = profile.answerer.last
            cited += tr.best is not None and tr.best.t1 > f.t0 and tr.best.t0 < f.t1
            if llm is not None:
                llm_ok += contains_answer(tr.llm_text, f.answer)
                accepted += not tr.fallback_used and not tr.weak
            if not ok and len(rows) < 6:
                rows.append(dict(q=f.question, gold=f.answer, answer=text[:160], llm=tr.llm_text[:120],
                                 rejected=tr.rejected))
        refusals = 0
        for q in ABSENT:
            pieces, _ = ask(bank, profile, q, k=k)
            refusals += "".join(pieces).startswith(NOT_FOUND)
        n = len(facts)
        row = dict(load_s=load, em=em / n, cited_right=cited / n, absent_refused=refusals / len(ABSENT),
                   first_p50=pct(first, 50), first_p95=pct(first, 95), ask_p50=pct(total, 50), ask_p95=pct(total, 95),
                   misses=rows)
        if llm is not None:
            row.update(llm_em=llm_ok / n, llm_accepted=accepted / n)
        res["answerers"][name] = row
        retrieval = dict(recall_at_1=r1 / n, recall_at_5=r5 / n, evidence_at_1=e1 / n, evidence_at_5=e5 / n)
        print(name, {k_: (round(v, 3) if isinstance(v, float) else v) for k_, v in row.items() if k_ != "misses"},
              flush=True)
        del llm
    res["retrieval"] = retrieval
    bank.close()
    return res


def bench_minutes(bank_dir: Path, profile, truth: MeetingTruth, llms: list[str]) -> dict:
    from memory.bank import MemoryBank
    from models.answer.lite import LiteAnswerer
    from models.llm import TextLLM, available
    from models.meeting import stream_minutes

    out = {}
    bank = MemoryBank(str(bank_dir), readonly=True)
    for name in ["rules-only"] + [n for n in llms if n in available()]:
        profile.answerer = LiteAnswerer(llm=TextLLM(name) if name != "rules-only" else None)
        t = time.perf_counter()
        mn = stream_minutes(bank, profile, "meeting")
        el = time.perf_counter() - t
        titles = [" ".join(x.title.lower().split()) for x in mn.sections]
        title_ok = sum(" ".join(s.title.lower().split()) in titles for s in truth.slides) / len(truth.slides)
        got = [(a.owner, set(a.task.lower().split())) for a in mn.action_items]

        def found(a):  # the owner, with most of the task's words (the ASR may mishear one: "login mug")
            w = set(a.task.lower().split())
            return any(o == a.owner and len(w & tw) >= 0.6 * len(w) for o, tw in got)

        own = sum(map(found, truth.action_items))
        out[name] = dict(seconds=el, sections=len(mn.sections), title_recall=title_ok,
                         action_recall=own / max(1, len(truth.action_items)), decisions=len(mn.decisions),
                         true_decisions=len(truth.decisions), overview=bool(mn.overview and name != "rules-only" and
                                                                            len(mn.overview) > len(mn.sections)))
        print("summarize", name, out[name], flush=True)
    bank.close()
    return out


def run(args) -> dict:
    tmp = Path(args.workdir or tempfile.mkdtemp(prefix="vigil-bench-meeting-"))
    tmp.mkdir(parents=True, exist_ok=True)
    mp4 = tmp / f"meeting_{int(args.duration)}s_{args.slides}_{args.seed}.mp4"
    js = Path(str(mp4) + ".json")
    t = time.perf_counter()
    if mp4.exists() and js.exists():
        truth = MeetingTruth.from_dict(json.loads(js.read_text()))
    else:
        truth = make_meeting(mp4, args.duration, args.slides, args.seed)
        truth.save_json(js)
    gen = time.perf_counter() - t
    facts = truth.facts[: args.facts]
    res = dict(machine=f"{platform.machine()} {os.cpu_count()} cores", load_before=loadavg(),
               meeting=dict(duration_s=args.duration, slides=args.slides, facts=len(facts),
                            spoken_facts=sum(f.source == "speech" for f in facts),
                            action_items=len(truth.action_items), generate_s=gen))
    print(f"meeting {args.duration:.0f}s ready in {gen:.1f}s: {len(truth.facts)} facts", flush=True)
    llms = [x for x in args.llms.split(",") if x]
    ing, profile = ingest_bank(truth, tmp / "bank")
    res["ingest"] = ing
    res["load_after_ingest"] = loadavg()
    print("ingest", ing, flush=True)
    res["asks"] = bench_asks(tmp / "bank", profile, truth, facts, ["extractive"] + llms)
    res["load_after_asks"] = loadavg()
    if not args.no_summary:
        res["minutes"] = bench_minutes(tmp / "bank", profile, truth, llms)
    if args.components:
        asr = bench_asr(truth)
        segs = asr.pop("_segs")
        asr.pop("_asr")
        res["asr"] = asr
        ocr = bench_ocr(truth)
        lines = ocr.pop("_lines")
        res["ocr"] = ocr
        emb = bench_embed([s.text for s in segs] or ["x"])
        e = emb.pop("_emb")
        res["embed"] = emb
        res["answers"] = bench_answers(truth, segs, lines, facts[: args.questions], llms, e)
    res["load_after"] = loadavg()
    return res


def f2(x, fmt="{:.2f}"):
    return "n/a" if x is None or (isinstance(x, float) and x != x) else fmt.format(x)


def to_markdown(r: dict) -> str:
    m, g, a = r["meeting"], r["ingest"], r["asks"]
    rt = a["retrieval"] or {}
    out = [
        "## Meeting (lite profile) — dev material", "",
        "*On the generator the code was developed and tuned on (`tests/fixtures/meeting.py`): dev figures. The "
        "held-out evaluation is `--styles`.*", "",
        f"`python -m bench.meeting --duration {m['duration_s']:.0f} --slides {m['slides']}` on {r['machine']}. "
        f"Load average (1/5/15 min) before: {r['load_before']}; after ingest: {r['load_after_ingest']}; after the "
        f"questions: {r['load_after_asks']}; at the end: {r['load_after']} (the machine was shared with other jobs, "
        "so times are upper bounds). Generated meeting: "
        f"{m['duration_s'] / 60:.0f} min, {m['slides']} slides, {m['facts']} planted facts ({m['spoken_facts']} "
        f"spoken, the rest on slides), {m['action_items']} action items; espeak-ng speech, H.264 + AAC.", "",
        "**Ingest** through the real bank with `app.py ingest`'s defaults (1 fps, 2-s clips, EfficientNet-Lite0 tokens "
        "+ tags, faster-whisper ASR (Whisper base unless VIGIL_ASR_MODEL says otherwise), RapidOCR on changed keyframes, MiniLM text keys):", "",
        "| media | wall | realtime factor | ASR (beside the rest when on its own thread) | OCR | tokens, tags, text keys, "
        "bank | memories | models load |",
        "|---|---|---|---|---|---|---|---|",
        f"| {g['media_s'] / 60:.0f} min | {g['wall_s']:.0f} s | **{g['rtf']:.3f}** | {g['asr_s']:.0f} s | "
        f"{g['ocr_s']:.0f} s ({g['ocr_calls']} keyframes) | {g['other_s']:.0f} s | {g['memories']} | "
        f"{g['model_load_s']:.1f} s |", "",
        f"**Questions** through `models.ask.ask` (the CLI's and UI's path: MiniLM retrieval of a pool, rerank by "
        f"evidence words, answer), k={a['k']}, {a['n']} planted facts. Retrieval: **recall@1 {rt.get('recall_at_1', 0):.0%}, "
        f"recall@5 {rt.get('recall_at_5', 0):.0%}** (a retrieved memory overlaps the fact's true interval); with "
        f"the fact's text in the retrieved memory's evidence: @1 {rt.get('evidence_at_1', 0):.0%}, @5 "
        f"{rt.get('evidence_at_5', 0):.0%}. Facts present anywhere in their interval's evidence after ASR/OCR "
        f"(the ceiling): {a['answerable']:.0%}.", "",
        "| answerer | answer EM | answer names the right moment | LLM's own text has the fact / accepted by the "
        "evidence check | absent topics refused | first piece p50 / p95 | ask p50 / p95 | LLM load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, x in a["answerers"].items():
        if "error" in x:
            out.append(f"| {name} | {x['error']} | | | | | | |")
            continue
        llm = f"{x['llm_em']:.0%} / {x['llm_accepted']:.0%}" if "llm_em" in x else "—"
        out.append(f"| {name} | **{x['em']:.0%}** | {x['cited_right']:.0%} | {llm} | {x['absent_refused']:.0%} | "
                   f"{x['first_p50']:.2f} / {x['first_p95']:.2f} s | {x['ask_p50']:.2f} / {x['ask_p95']:.2f} s | "
                   f"{x['load_s']:.1f} s |")
    if "minutes" in r:
        out += ["", "**Summarize** (`stream_minutes`, the CLI's and UI's path) of the same bank:", "",
                "| summarizer | seconds | sections | slide titles found | action items (owner + task) found | "
                "decisions found / planted | LLM overview kept |", "|---|---|---|---|---|---|---|"]
        for k_, v in r["minutes"].items():
            out.append(f"| {k_} | {v['seconds']:.0f} | {v['sections']} | {v['title_recall']:.0%} | "
                       f"{v['action_recall']:.0%} | {v['decisions']} / {v['true_decisions']} | "
                       f"{'yes' if v['overview'] else 'no'} |")
    if "asr" in r:
        c, o, e, q = r["asr"], r["ocr"], r["embed"], r["answers"]
        out += ["", "Components on gold evidence:", "", "| component | measure | value |", "|---|---|---|",
                f"| ASR (file audio in 2-s chunks) | realtime factor / spoken-fact recall | {c['rtf']:.3f} / "
                f"{c['spoken_fact_recall']:.0%} |",
                f"| OCR | s per {o['resolution']} keyframe p50 / title, bullet recall | {o['per_keyframe_p50']:.2f} / "
                f"{o['title_recall']:.0%}, {o['bullet_recall']:.0%} |",
                f"| MiniLM | ms per text batched / single query | {e['per_text_batched_ms']:.1f} / {e['per_query_ms']:.1f} |",
                f"| extractive on gold evidence | EM | {q['extractive_em']:.0%} |"]
        for name, x in q["llms"].items():
            if "error" not in x:
                out.append(f"| {name} on gold evidence | LLM EM / returned EM | {x['llm_em']:.0%} / {x['hybrid_em']:.0%} |")
    return "\n".join(out) + "\n"


def write_results(md: str, path: Path = RESULTS, start: str = START, end: str = END) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    block = f"{start}\n{md}{end}"
    if start in text and end in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=1800)
    ap.add_argument("--slides", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--facts", type=int, default=50)
    ap.add_argument("--questions", type=int, default=30, help="facts asked of each LLM in --components")
    ap.add_argument("--llms", default="smollm2-135m,gemma3-270m")
    ap.add_argument("--components", action="store_true", help="also measure ASR/OCR/embedder/LLMs on gold evidence")
    ap.add_argument("--no-summary", action="store_true")
    ap.add_argument("--workdir")
    ap.add_argument("--json")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--styles", action="store_true", help="the dev/held-out evaluation over five meeting styles")
    ap.add_argument("--splits", default="dev,heldout")
    ap.add_argument("--style-list", default="template,dense,scroll,speaker,human")
    ap.add_argument("--llm", default="smollm2-135m", help="LLM for --styles minutes (none: rules only)")
    ap.add_argument("--reuse-banks", action="store_true",
                    help="--styles: ask the banks an earlier run left in --workdir (no ingest, no ingest figures)")
    ap.add_argument("--llm-asks", action="store_true", help="--styles: also answer every question with the LLM")
    args = ap.parse_args(argv)
    if args.styles:
        from bench.styles import run_styles, styles_markdown

        r = run_styles(args)
        if args.json:
            Path(args.json).write_text(json.dumps(r, indent=1, default=str))
        md = styles_markdown(r, None if args.llm in ("", "none") else args.llm)
        print(md)
        if not args.no_write:
            write_results(md, start="<!-- styles:start -->", end="<!-- styles:end -->")
        return 0
    r = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1, default=str))
    md = to_markdown(r)
    print(md)
    if not args.no_write:
        write_results(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
