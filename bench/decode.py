"""File decoding through FileSource: one decoder vs keyframe-aligned parallel segments, side by side in one run.

    python bench/decode.py [--minutes 10] [--gop 250 --gop 30] [--sample-fps 1 --sample-fps 8] [--budget 60]
    python bench/decode.py --pipeline   # also the full lite pipeline (EfficientNet-Lite0) both ways

A one-minute 720p30 H.264 unit (libx264 preset veryfast: B-frames, `--gop` keyframe interval; libx264's default is
250) with a 16 kHz AAC track is encoded once per GOP setting and repeated (stream copy) to `--minutes`. Each row
reads the file through `stream.sources.FileSource` (the product's file source) and counts the frames it hands out:
  - one decoder, exact: the decoder before this work (frame threads, every frame decoded);
  - one decoder: the same with the skip rule (non-reference or keyframe-only decoding when the sampling allows);
  - parallel: keyframe-aligned segments on `workers` threads (stream/decode.py), skip rule on.
A row stops after `--budget` (`--budget-serial`) wall seconds; its media minutes say how far it got. Prints a Markdown table and,
with --json, writes the rows there.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_unit(path: str, seconds: float, w: int, h: int, fps: int, gop: int) -> None:
    """A short textured clip with a moving square, a new scene every 10 s, and a tone."""
    from tests.fixtures.video import make_long_video

    make_long_video(path, seconds, (w, h), fps, preset="veryfast", crf=23, keyint=gop, scene_every=10.0, band=True,
                    grain=True)


def repeat(unit: str, path: str, times: int, seconds: float) -> None:
    """`unit` played `times` times in a row, by stream copy (timestamps shifted by `seconds` each time)."""
    import av

    with av.open(unit) as inp, av.open(path, "w") as out:
        ins = [inp.streams.video[0], inp.streams.audio[0]]
        outs = {s.index: out.add_stream_from_template(s) for s in ins}
        last = {s.index: None for s in ins}
        for k in range(times):
            inp.seek(0)
            for p in inp.demux(*ins):
                if p.dts is None:
                    continue
                i, shift = p.stream.index, int(round(k * seconds / p.time_base))
                if last[i] is not None and p.dts + shift <= last[i]:
                    continue  # the audio's tail overlaps the next copy's priming
                p.pts, p.dts = p.pts + shift, p.dts + shift
                last[i] = p.dts
                p.stream = outs[i]
                out.mux(p)


def read(path: str, budget: float, **kw) -> dict:
    """Frames FileSource hands out (kw: fps, workers, exact), for at most `budget` wall seconds."""
    from stream.sources import FileSource
    from stream.types import Frame

    src = FileSource(path, **kw)
    n, t_last = 0, 0.0
    w0, c0 = time.perf_counter(), time.process_time()
    for item in src:
        if isinstance(item, Frame):
            n, t_last = n + 1, item.t
            if time.perf_counter() - w0 > budget:
                src.close()
                break
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"frames": n, "media_s": t_last, "wall_s": wall, "cpu_s": cpu, "decoded": src.stats.frames_decoded,
            "notes": src.stats.notes}


def pipeline(path: str, fps: float, bank_dir: str, **kw) -> dict:
    """The full lite pipeline (EfficientNet-Lite0, pool2d 32 tokens, the bank) with FileSource(**kw)."""
    from memory.bank import MemoryBank
    from models.efficientnet import EfficientNetLite0Encoder
    from stream.pipeline import IngestConfig, IngestPipeline
    from stream.sources import FileSource

    src = FileSource(path, fps=fps, **kw)
    enc = EfficientNetLite0Encoder(device="cpu")
    with MemoryBank(bank_dir) as bank:
        pipe = IngestPipeline(src, bank, enc, stream_id="bench", config=IngestConfig(fps=fps, reducer="pool2d", budget=32))
        w0, c0 = time.perf_counter(), time.process_time()
        pipe.run()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        count = bank.count()
    return {"frames": pipe.stats.frames_sampled, "media_s": src.duration or 0.0, "wall_s": wall, "cpu_s": cpu,
            "decoded": src.stats.frames_decoded, "memories": count}



def row_line(r: dict, digits: int) -> str:
    """One Markdown table row of a result (sampled frames/s and realtime × with `digits` decimals)."""
    return (f"| {r['gop']} | {r['sample_fps']:g} | {r['reader']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
            f"{r['media_s'] / 60:.1f} | {r['decoded'] / r['wall_s']:.0f} | {r['frames'] / r['wall_s']:.{digits}f} | "
            f"{r['media_s'] / r['wall_s']:.{digits}f}× |")


def save(path, rows: list) -> None:
    """The rows so far as JSON (after each row: a run cut short keeps what it measured)."""
    if path:
        with open(path, "w") as f:
            json.dump(rows, f, indent=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--unit", type=float, default=60.0, help="seconds encoded once, then repeated")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--gop", type=int, action="append", help="keyframe interval(s) in frames (default 250)")
    ap.add_argument("--sample-fps", type=float, action="append", help="sampling rate(s) (default 1 and 8)")
    ap.add_argument("--workers", type=int, default=None, help="parallel decoder threads (default: the cores, <= 16)")
    ap.add_argument("--budget", type=float, default=60.0, help="wall seconds per parallel row at most")
    ap.add_argument("--budget-serial", type=float, default=None, help="wall seconds per one-decoder row at most")
    ap.add_argument("--rows", default="parallel,exact,serial", help="which readers, comma-separated")
    ap.add_argument("--deadline", type=float, default=None, help="skip the rows left after this many seconds")
    ap.add_argument("--pipeline", action="store_true", help="also the full lite pipeline, one decoder vs parallel")
    ap.add_argument("--pipeline-rows", default="exact,parallel", help="which readers the pipeline rows use, in order")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--video", default=None, help="read this file instead of generating one (--gop is ignored)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    from stream.decode import decode_workers

    w, h = map(int, args.size.split("x"))
    tmp = args.dir or tempfile.mkdtemp(prefix="vigil-decode-")
    os.makedirs(tmp, exist_ok=True)
    workers = decode_workers(args.workers)
    readers = {"exact": ("one decoder, exact (before)", {"workers": 1, "exact": True}),
               "serial": ("one decoder, skip rule", {"workers": 1}),
               "parallel": (f"parallel, {workers} workers, skip rule" if workers > 1 else
                            "default here: one decoder, skip rule", {"workers": workers})}
    rows, start = [], time.perf_counter()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores. Video: {args.size} H.264 (libx264 veryfast, crf 23) "
          f"{args.fps} fps + 16 kHz AAC, a {args.unit:g} s unit repeated to {args.minutes:g} min.", flush=True)
    for gop in [0] if args.video else args.gop or [250]:
        unit, path = os.path.join(tmp, f"unit_g{gop}.mp4"), args.video or os.path.join(tmp, f"long_g{gop}.mp4")
        t0 = time.perf_counter()
        if not os.path.exists(path):
            make_unit(unit, args.unit, w, h, args.fps, gop)
            repeat(unit, path, max(1, int(round(args.minutes * 60 / args.unit))), args.unit)
        mb = os.path.getsize(path) / 1e6
        print(f"gop {gop}: {path} ({mb:.0f} MB, {mb * 8 / (args.minutes * 60):.2f} Mbit/s) made in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        for sfps in args.sample_fps or [1.0, 8.0]:
            for key in [k for k in args.rows.split(",") if k]:
                if args.deadline and time.perf_counter() - start > args.deadline:
                    print(f"(deadline: {key} at gop {gop}, {sfps:g} fps skipped)", flush=True)
                    continue
                name, kw = readers[key]
                budget = args.budget if key == "parallel" else (args.budget_serial or args.budget)
                r = read(path, budget, fps=sfps, **kw)
                r.update(gop=gop, sample_fps=sfps, reader=name)
                rows.append(r)
                print(row_line(r, 0), flush=True)
                save(args.json, rows)
            if args.pipeline:
                for key in args.pipeline_rows.split(","):
                    name, kw = readers[key]
                    r = pipeline(path, sfps, os.path.join(tmp, f"bank-{gop}-{sfps:g}-{key}"), **kw)
                    r.update(gop=gop, sample_fps=sfps, reader="lite pipeline, " + name)
                    rows.append(r)
                    print(row_line(r, 1), flush=True)
            save(args.json, rows)
    print("\ncolumns: | gop | sample fps | reader | wall s | CPU s | media min read | decoded frames/s | "
          "sampled frames/s | realtime × |")


if __name__ == "__main__":
    main()
