"""Ingest at GPU speed THROUGH THE PRODUCT PATH (issue 14): the engine `python app.py ingest VIDEO --model DIR` runs
(Engine(bank, model=DIR, parts=("ingest",)).start(...), the one encoder worker per device, group commit, the bank on
disk). FULL-SIZE LLaVA-OneVision-0.5B config with RANDOM weights (no download): speed transfers to the real
checkpoint; the memories are meaningless. Model load and torch.compile's compilation are timed apart; with
--compile the fps8 file is ingested eagerly first, then with the compiled tower.

    # on the H200 (bench/RESULTS.md): everything, JSON under $OUT
    PYTHONUNBUFFERED=1 python bench/ingest_gpu.py --compile --out $OUT/ingest_gpu.json
    # on a CPU, end to end with the tiny config and short videos (a smoke run before spending device time)
    python bench/ingest_gpu.py --tiny

Parts (--parts, comma-separated):
  fps8  a 720p30 H.264 file (--fps8-minutes long) sampled at 8 fps: sampled frames/s end to end (decode, encode,
        reduce, store: from start() to the stream's end, every memory committed). Target >= 450.
  hour  a 1-hour 720p30 H.264 file (a generated --base-minutes file remuxed --hour-minutes/--base-minutes times,
        no re-encode) at 1 fps: seconds after model load. Target <= 10 s.
  live  4 live streams (720p30, 2 fps sampling) plus the fps8 file on the same GPU: the live streams are realtime
        replays of a 720p30 file (FileSource(realtime=True), what `ingest --realtime` does) unless an RTSP server
        can run on the host (checked and reported); the max live wait (clip handed to the encoder worker -> its
        tokens back; and the clip's last frame -> its memory committed) and the file's speed vs its solo run (fps8).
        Targets: live wait <= 1 s, file >= 80 % of solo.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


# ---- media -------------------------------------------------------------------------------------

def make_file(path: str, minutes: float, size: tuple[int, int], fps: int = 30, preset: str = "veryfast") -> str:
    """H.264 (x264 `preset`: veryfast makes B-frames, as most encoders' files have; GOP 2 s) + AAC tone: textured
    scenes changing every 30 s and a moving square (bench/ingest.py's picture generator)."""
    from tests.fixtures.video import make_long_video

    t = time.time()
    w, h = size
    make_long_video(path, minutes * 60, (w, h), fps, preset=preset, crf=28, gop=fps * 2)
    log(f"made {os.path.basename(path)} ({minutes:g} min {w}x{h}, x264 {preset}, "
        f"{os.path.getsize(path) / 1e6:.0f} MB) in {time.time() - t:.0f} s")
    return path


def remux_copies(src: str, dst: str, copies: int) -> str:
    """`copies` back-to-back copies of src in one file, packets copied (no re-encode), each stream's timestamps
    moved on by the copy's span in that stream (its first dts to its last dts + duration), so they keep rising."""
    import av

    t = time.time()
    lo: dict[int, int] = {}
    hi: dict[int, int] = {}
    with av.open(src) as inp:
        for pkt in inp.demux():
            if pkt.dts is None:
                continue
            i = pkt.stream.index
            lo[i] = min(lo.get(i, pkt.dts), pkt.dts)
            hi[i] = max(hi.get(i, pkt.dts), pkt.dts + (pkt.duration or 0))
    with av.open(dst, "w") as out:
        with av.open(src) as first:
            outs = {s.index: out.add_stream_from_template(s) for s in first.streams}
        for k in range(copies):
            with av.open(src) as inp:
                for pkt in inp.demux():
                    if pkt.dts is None:
                        continue
                    i = pkt.stream.index
                    shift = k * (hi[i] - lo[i])
                    pkt.pts = None if pkt.pts is None else pkt.pts + shift
                    pkt.dts += shift
                    pkt.stream = outs[i]
                    out.mux(pkt)
    log(f"remuxed {copies} copies into {os.path.basename(dst)} ({os.path.getsize(dst) / 1e6:.0f} MB) "
        f"in {time.time() - t:.0f} s")
    return dst


def rtsp_available() -> str:
    """What on this host could serve RTSP (the tests' GStreamer server, mediamtx, ffmpeg), or ''."""
    found = [n for n in ("mediamtx", "ffmpeg", "gst-launch-1.0") if shutil.which(n)]
    try:
        r = subprocess.run(["/usr/bin/python3", "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
                           capture_output=True, timeout=20)
        if r.returncode == 0:
            found.append("python3-gi GstRtspServer")
    except (OSError, subprocess.TimeoutExpired):
        pass
    return ", ".join(found)


# ---- runs through the engine -----------------------------------------------------------------------

def engine(bank: str, model_dir: str):
    from engine import Engine

    return Engine(bank, model=model_dir, parts=("ingest",))


STACKS = False   # --stacks: sample every thread's stack during each ingest (bench/stacks.py)


def ingest_file(eng, path: str, stream: str, fps: float) -> dict:
    """One file through eng.start (what `app.py ingest` calls), waited for; wall from start() to the end."""
    from bench.stacks import StackSampler

    w0 = worker_summary(eng)
    sampler = StackSampler() if STACKS else None
    if sampler is not None:
        sampler.start()
    t, c = time.perf_counter(), cpu_s()
    info = eng.start(path, stream=stream, fps=fps, probe=True)
    s = eng.wait(info.stream)
    wall, cpu = time.perf_counter() - t, cpu_s() - c
    if sampler is not None:
        sampler.__exit__()
        stacks = sampler.summary()
    assert s.state == "finished", (s.state, s.error)
    pipe = eng.handle(stream).pipeline
    return {"stream": stream, "fps": fps, "media_s": round(s.last_t, 1), "frames_sampled": s.frames_sampled,
            "frames_decoded": s.frames_in, "memories": s.new_memories, "commits": pipe.commits,
            "wall_s": round(wall, 2), "cpu_s": round(cpu, 1), "sampled_fps": round(s.frames_sampled / wall, 1),
            "x_realtime": round(s.last_t / wall, 1), "worker": worker_delta(w0, worker_summary(eng)),
            "notes": s.notes, **({"stacks": stacks} if sampler is not None else {})}


def decode_only(path: str, fps: float) -> dict:
    """The file through FileSource alone (the decoder the engine opens: parallel keyframe decode where committed)."""
    from stream.sources import FileSource
    from stream.types import Frame

    src = FileSource(path, fps=fps)
    t, n = time.perf_counter(), 0
    for item in src:
        n += isinstance(item, Frame)
    dt = time.perf_counter() - t
    return {"media_s": round(src.duration or 0, 1), "wall_s": round(dt, 2), "frames_decoded": src.stats.frames_decoded,
            "frames_sampled": n, "decoded_fps": round(src.stats.frames_decoded / dt), "sampled_fps": round(n / dt, 1)}


def worker_summary(eng) -> dict:
    from stream.batcher import worker_for

    w = worker_for(eng.profile().encoder)
    return {"batches": w.stats.batches, "frames": w.stats.frames, "busy_s": w.stats.busy_s, "gpu_s": w.stats.gpu_s, **{
        k: v for k, v in w.stats.summary().items() if k in ("largest", "oom_splits")}}


def worker_delta(a: dict, b: dict) -> dict:
    n = b["batches"] - a["batches"]
    f = b["frames"] - a["frames"]
    return {"batches": n, "frames": f, "mean_batch": round(f / max(1, n), 1), "largest": b["largest"],
            "encode_busy_s": round(b["busy_s"] - a["busy_s"], 2), "encode_gpu_s": round(b["gpu_s"] - a["gpu_s"], 2),
            "oom_splits": b["oom_splits"]}


def live_run(eng, live_src: str, file_src: str, n_live: int, seconds: float, lead: float, file_fps: float) -> dict:
    """n_live realtime replays at 2 fps, then the file at file_fps beside them; live waits and the file's speed."""
    from stream.batcher import worker_for

    w = worker_for(eng.profile().encoder)
    w.stats.live_waits.clear()
    commit_lat: list[float] = []
    lock = threading.Lock()
    ids = [f"live{i}" for i in range(n_live)]
    for sid in ids:
        eng.start(live_src, stream=sid, fps=2.0, realtime=True, duration=seconds, probe=True)
        pipe = eng.handle(sid).pipeline
        prev = pipe.on_clip

        def hook(mid, clip, _prev=prev):
            with lock:
                commit_lat.append(time.time() - clip.frames[-1].wall)
            if _prev is not None:
                _prev(mid, clip)
        pipe.on_clip = hook
    time.sleep(lead)
    f = ingest_file(eng, file_src, "replay", file_fps)
    for sid in ids:
        eng.wait(sid)
    waits = sorted(w.stats.live_waits)
    lat = sorted(commit_lat)

    def q(xs, p):
        return round(xs[min(len(xs) - 1, int(p * len(xs)))], 3) if xs else None
    infos = [eng.stream(s) for s in ids]
    return {"live_streams": n_live, "live_seconds": seconds, "file": f,
            "live_encode_wait_s": {"p50": q(waits, 0.5), "p99": q(waits, 0.99), "max": q(waits, 1.0), "n": len(waits)},
            "live_frame_to_commit_s": {"p50": q(lat, 0.5), "p99": q(lat, 0.99), "max": q(lat, 1.0), "n": len(lat)},
            "live_dropped": sum(i.dropped for i in infos), "live_memories": sum(i.new_memories for i in infos),
            "live_states": sorted({i.state for i in infos})}


# ---- main ---------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true", help="tiny random config and short small videos (CPU smoke run)")
    ap.add_argument("--parts", default="fps8,hour,live")
    ap.add_argument("--fps8-minutes", type=float, default=5.0)
    ap.add_argument("--base-minutes", type=float, default=2.0)
    ap.add_argument("--hour-minutes", type=float, default=60.0)
    ap.add_argument("--live-seconds", type=float, default=25.0)
    ap.add_argument("--compile", action="store_true", help="torch.compile the tower after an eager fps8 run "
                    "(what VIGIL_COMPILE=1 does when the engine starts the worker); compile time reported apart")
    ap.add_argument("--no-eager", action="store_true", help="with --compile, skip the eager fps8 run")
    ap.add_argument("--graphs-ab", action="store_true", help="first ingest the fps8 file eagerly with the tower's "
                    "CUDA graphs off, then on (same process, side by side)")
    ap.add_argument("--work", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--stacks", action="store_true", help="sample every thread's stack during each ingest")
    a = ap.parse_args()
    global STACKS
    STACKS = a.stacks
    if a.tiny:
        a.fps8_minutes, a.base_minutes, a.hour_minutes, a.live_seconds = 0.25, 0.25, 0.5, 8.0
        os.environ.setdefault("VIGIL_BATCH", "1")   # the worker's batching on the CPU too
    size = (320, 180) if a.tiny else (1280, 720)
    parts = a.parts.split(",")
    work = a.work or tempfile.mkdtemp(prefix="vigil-ingest-gpu-")
    os.makedirs(work, exist_ok=True)
    import torch

    from bench.ask_gpu import save_vlm

    R: dict = {"machine": {"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)",
                           "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
               "model": "LLaVA-OneVision-0.5B full-size config, RANDOM weights, bf16" if not a.tiny else
               "tiny random LLaVA-OV (CPU smoke run)", "path": "engine.start/wait (what app.py ingest calls)",
               "compile": a.compile}
    import transformers

    R["machine"]["transformers"] = transformers.__version__
    try:
        import stream.decode as dec  # helper H2a's parallel keyframe decode, when committed
        R["decode"] = f"stream/decode.py parallel keyframe decode ({dec.decode_workers()} workers)"
    except ImportError:
        R["decode"] = "FileSource serial decode (PyAV, AUTO threads)"
    log(f"machine {R['machine']}; decode: {R['decode']}")
    model_dir = os.path.join(work, "ov05b")
    if not os.path.exists(os.path.join(model_dir, "config.json")):
        os.makedirs(model_dir, exist_ok=True)
        R["model_info"] = save_vlm("ov05b", model_dir, a.tiny)
    f8 = make_file(os.path.join(work, "f8.mp4"), a.fps8_minutes, size)
    # model load apart: the first engine loads the profile (process cache: later engines share it)
    t = time.perf_counter()
    eng = engine(os.path.join(work, "bank-fps8"), model_dir)
    prof = eng.profile()
    R["model_load_s"] = round(time.perf_counter() - t, 2)
    from stream.batcher import worker_for

    w = worker_for(prof.encoder)
    R["worker"] = {"batching": w.batching, "max_frames": w.max_frames, "linger_s": w.linger, "file_linger_s": w.file_linger,
                   "uploads_in_submitter": w.upload is not None, "cuda_graphs": w.graphs}
    R["warm_up_eager_s"] = round(w.warm_up(frames=64), 2)
    log(f"model load {R['model_load_s']} s; worker {R['worker']}")
    save(a.out, R)
    if "fps8" in parts and a.graphs_ab and hasattr(prof.encoder, "use_graphs") and w.cuda_stream is not None:
        default = w.graphs
        w.graphs = prof.encoder.use_graphs(False)
        R["fps8_eager_no_graphs"] = ingest_file(eng, f8, "fps8-nographs", 8.0)
        log(f"fps8 eager, no CUDA graphs: { {k: v for k, v in R['fps8_eager_no_graphs'].items() if k != 'stacks'} }")
        w.graphs = prof.encoder.use_graphs(True)
        t = time.perf_counter()
        w.warm_up(frames=64)
        R["graph_capture_s"] = round(time.perf_counter() - t, 2)
        R["fps8_eager_graphs"] = ingest_file(eng, f8, "fps8-graphs", 8.0)
        log(f"fps8 eager, CUDA graphs: { {k: v for k, v in R['fps8_eager_graphs'].items() if k != 'stacks'} } "
            f"(capture {R['graph_capture_s']} s)")
        w.graphs = prof.encoder.use_graphs(default)
        save(a.out, R)
    if "fps8" in parts and a.compile and not a.no_eager:
        R["fps8_eager"] = ingest_file(eng, f8, "fps8-eager", 8.0)
        log(f"fps8 eager: {R['fps8_eager']}")
        save(a.out, R)
    if a.compile:
        t = time.perf_counter()
        R["worker"]["compiled"] = w.compile()
        w.warm_up(frames=64)
        R["compile_warm_up_s"] = round(time.perf_counter() - t, 2)   # both compilations
        log(f"compiled: {R['worker']['compiled']}, compile + warm-up {R['compile_warm_up_s']} s")
        save(a.out, R)
    if "fps8" in parts:
        R["fps8"] = ingest_file(eng, f8, "fps8", 8.0)
        log(f"fps8: { {k: v for k, v in R['fps8'].items() if k != 'stacks'} }")
        save(a.out, R)
    eng.close()
    if "hour" in parts:
        base = make_file(os.path.join(work, "base.mp4"), a.base_minutes, size)
        hour = remux_copies(base, os.path.join(work, "hour.mp4"), int(round(a.hour_minutes / a.base_minutes)))
        R["decode_only_base_1fps"] = decode_only(base, 1.0)
        R["decode_only_f8_8fps"] = decode_only(f8, 8.0)
        log(f"decode only: base at 1 fps {R['decode_only_base_1fps']}, f8 at 8 fps {R['decode_only_f8_8fps']}")
        R["decode_only_hour_1fps"] = decode_only(hour, 1.0)
        log(f"decode only, the hour at 1 fps: {R['decode_only_hour_1fps']}")
        with engine(os.path.join(work, "bank-hour"), model_dir) as e:
            R["hour"] = ingest_file(e, hour, "hour", 1.0)
        log(f"hour: { {k: v for k, v in R['hour'].items() if k != 'stacks'} }")
        save(a.out, R)
    if "live" in parts:
        R["rtsp_on_host"] = rtsp_available() or "nothing (no mediamtx, ffmpeg, GStreamer RTSP server)"
        R["live_source"] = "realtime replay of a 720p30 file (FileSource realtime=True, as ingest --realtime)"
        with engine(os.path.join(work, "bank-live"), model_dir) as e:
            R["live"] = live_run(e, f8, f8, 4, a.live_seconds, lead=3.0, file_fps=8.0)
        if "fps8" in R:
            R["live"]["file_vs_solo"] = round(R["live"]["file"]["sampled_fps"] / R["fps8"]["sampled_fps"], 3)
        log(f"live: {R['live']}")
    if torch.cuda.is_available():
        R["gpu_peak_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 1)
        save(a.out, R)
    print(json.dumps(R, indent=1))


def save(path, R) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(R, f, indent=1)


if __name__ == "__main__":
    main()
