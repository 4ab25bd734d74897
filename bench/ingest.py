"""Ingest throughput on this machine: decode only, decode + encode, the full pipeline, and skim mode.

    python bench/ingest.py [--minutes 10] [--size 1280x720] [--fps 30] [--sample-fps 1]

Generates an H.264 file (moving shapes, scene cuts, AAC tone) once, then times each stage in one run
so the numbers compare side by side. Prints a Markdown table for bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_long_video(path: str, minutes: float, w: int, h: int, fps: int) -> None:
    """A cheap-to-generate long video: a few textured backgrounds, a moving square, a scene every 30 s."""
    from tests.fixtures.video import make_long_video as make

    make(path, minutes * 60, (w, h), fps, preset="ultrafast", crf=28, gop=fps * 2)


def stage_decode(path, sample_fps, skim=False):
    from stream.sources import FileSource
    from stream.types import Frame

    src = FileSource(path, fps=sample_fps, skim=skim)
    n = 0
    t0 = time.perf_counter()
    for item in src:
        n += isinstance(item, Frame)
    return time.perf_counter() - t0, src.stats.frames_decoded, n


def stage_encode(path, sample_fps, encoder):
    from stream.sources import FileSource
    from stream.types import Frame

    src = FileSource(path, fps=sample_fps)
    batch, n = [], 0
    t0 = time.perf_counter()
    for item in src:
        if isinstance(item, Frame):
            batch.append(item.image)
            if len(batch) == 2:
                encoder.encode(batch)
                n += len(batch)
                batch = []
    if batch:
        encoder.encode(batch)
    return time.perf_counter() - t0, src.stats.frames_decoded, n


def stage_pipeline(path, sample_fps, encoder, bank_dir, skim=False, reducer="pool2d", budget=32):
    from memory.bank import MemoryBank
    from stream.pipeline import IngestConfig, IngestPipeline
    from stream.sources import FileSource

    src = FileSource(path, fps=sample_fps, skim=skim)
    with MemoryBank(bank_dir) as bank:
        pipe = IngestPipeline(src, bank, encoder, stream_id="bench", config=IngestConfig(fps=sample_fps, reducer=reducer, budget=budget))
        t0 = time.perf_counter()
        pipe.run()
        dt = time.perf_counter() - t0
        nbytes = bank.bytes_on_disk()
        count = bank.count()
    return dt, src.stats.frames_decoded, pipe.stats.frames_sampled, nbytes, count


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--sample-fps", type=float, default=1.0)
    ap.add_argument("--video", default=None, help="use this file instead of generating one")
    args = ap.parse_args()
    import torch

    from models.efficientnet import EfficientNetLite0Encoder

    w, h = map(int, args.size.split("x"))
    tmp = tempfile.mkdtemp(prefix="vigil-bench-")
    path = args.video or os.path.join(tmp, f"bench_{args.size}_{args.minutes:g}min.mp4")
    if not args.video:
        t0 = time.perf_counter()
        make_long_video(path, args.minutes, w, h, args.fps)
        print(f"generated {path} in {time.perf_counter() - t0:.0f}s ({os.path.getsize(path) / 1e6:.0f} MB)", file=sys.stderr)
    from stream.sources import FileSource
    media_s = FileSource(path).duration
    enc = EfficientNetLite0Encoder(device="cpu")
    rows = []
    dt, dec, out = stage_decode(path, args.sample_fps)
    rows.append(("decode only (+RGB of sampled frames)", dt, dec, out, None))
    dt, dec, out = stage_decode(path, args.sample_fps, skim=True)
    rows.append(("decode only, skim (keyframes)", dt, dec, out, None))
    dt, dec, out = stage_encode(path, args.sample_fps, enc)
    rows.append(("decode + encode (EfficientNet-Lite0)", dt, dec, out, None))
    dt, dec, out, nbytes, count = stage_pipeline(path, args.sample_fps, enc, os.path.join(tmp, "bank"))
    rows.append(("decode + encode + reduce (pool2d, 32 tok) + store", dt, dec, out, (nbytes, count)))
    dt, dec, out, nbytes2, count2 = stage_pipeline(path, args.sample_fps, enc, os.path.join(tmp, "bank-skim"), skim=True)
    rows.append(("full pipeline, skim", dt, dec, out, (nbytes2, count2)))
    print(f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads). Video: {args.size} H.264 {args.fps} fps, {media_s / 60:.1f} min, "
          f"sampled at {args.sample_fps:g} fps. Encoder: EfficientNet-Lite0, real ImageNet weights, CPU fp32.\n")
    print("| stage | wall s | decoded frames/s | sampled frames/s | realtime × |")
    print("|---|---|---|---|---|")
    for name, dt, dec, out, _ in rows:
        print(f"| {name} | {dt:.1f} | {dec / dt:.0f} | {out / dt:.1f} | {media_s / dt:.1f}× |")
    nbytes, count = rows[3][4]
    print(f"\nBank: {count} memories, {nbytes / 1e6:.1f} MB for {media_s / 60:.1f} min -> "
          f"{nbytes / media_s * 3600 / 1e6:.0f} MB per hour of video (pool2d, budget 32, fp16 carriers + 320 px thumbnails + keys).")


if __name__ == "__main__":
    main()
