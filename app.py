"""Vigil command line: ingest, ask, info, summarize, ui (the default with no arguments).

Only wiring lives here: sources (stream/), models (models/), the bank (memory/), the UI (ui/).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from typing import Optional

from models.ask import hms

DEFAULT_BANK = os.environ.get("VIGIL_BANK", os.path.join(os.path.expanduser("~"), ".vigil", "bank"))


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


def positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {s}")
    return v


def positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {s!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {s}")
    return v


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="hub id or local directory of a VLM (default: the offline lite profile)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the model's own code to run (off by default)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: CUDA when present)")
    p.add_argument("--text-evidence", action="store_true",
                   help="with --model: also transcribe speech, read on-screen text (bundled models) and search that "
                        "text (hybrid retrieval); give it to ingest and ask")
    p.add_argument("--retrieval", default=None, metavar="ID_OR_DIR",
                   help="SigLIP/CLIP model for clip keys, so a bank can be searched by text (give the same at ingest and ask)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="app.py", description="Vigil: a streaming video assistant with a persistent memory bank.")
    sub = p.add_subparsers(dest="cmd")

    ing = sub.add_parser("ingest", help="watch a file, RTSP camera or webcam and store compressed memories")
    ing.add_argument("source", help="a video file path, rtsp://… URL or webcam:N")
    ing.add_argument("--bank", required=True, help="bank directory (created if missing)")
    ing.add_argument("--fps", type=positive_float, default=1.0, help="frames sampled per second (default 1)")
    ing.add_argument("--clip-seconds", type=positive_float, default=2.0, help="clip length in seconds (default 2)")
    ing.add_argument("--reducer", default="pool2d", help="token reducer (default pool2d)")
    ing.add_argument("--budget", type=positive_int, default=32, help="carrier tokens per clip (default 32)")
    ing.add_argument("--duration", type=positive_float, default=None, help="stop after this many seconds of media")
    ing.add_argument("--realtime", action="store_true", help="replay a file at its real speed")
    ing.add_argument("--start", type=float, default=0.0, help="start this many seconds into a file")
    ing.add_argument("--skim", action="store_true", help="decode keyframes only (fast, coarse)")
    ing.add_argument("--stream", default=None, help="stream id in the bank (default: from the source)")
    ing.add_argument("--no-scene-cut", action="store_true", help="never cut clips at scene changes")
    ing.add_argument("--connect-timeout", type=positive_float, default=10.0, help="give up on a camera that never answers")
    add_model_args(ing)

    ask = sub.add_parser("ask", help="ask a question about the bank")
    ask.add_argument("question", nargs="?", default="", help="the question")
    ask.add_argument("--bank", required=True)
    ask.add_argument("--k", type=positive_int, default=5, help="memories to retrieve (default 5)")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument("--image", default=None, help="query by an example image")
    ask.add_argument("--stream", action="append", default=None, help="only these streams (repeatable)")
    add_model_args(ask)

    info = sub.add_parser("info", help="what a bank holds")
    info.add_argument("--bank", required=True)
    info.add_argument("--json", action="store_true")

    summ = sub.add_parser("summarize", help="meeting minutes of a recording or a bank")
    summ.add_argument("source", nargs="?", default=None,
                      help="a video or audio file: ingested first (into a bank of its own, reused while it covers "
                           "the file; or into --bank)")
    summ.add_argument("--bank", default=None, help="summarize this bank (or ingest SOURCE into it)")
    summ.add_argument("--out", default=None, help="write the minutes (Markdown) here")
    summ.add_argument("--json", action="store_true", help="print the minutes as one JSON object")
    summ.add_argument("--stream", default=None, help="which stream of the bank (default: its only one)")
    add_model_args(summ)

    ui = sub.add_parser("ui", help="start the web UI (the default)")
    ui.add_argument("--bank", default=DEFAULT_BANK)
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=7860)
    ui.add_argument("--auth", default=os.environ.get("VIGIL_AUTH"), help="user:pass (required with a non-local --host)")
    ui.add_argument("--media-dir", default=os.environ.get("VIGIL_MEDIA_DIR"), help="server paths allowed for replay")
    add_model_args(ui)
    return p


# ---- ingest --------------------------------------------------------------------------------------

def default_stream_id(source: str) -> str:
    if source.startswith(("rtsp://", "rtsps://")):
        rest = source.split("://", 1)[1].split("@")[-1]
        return "rtsp:" + rest.split("?")[0]
    if source.startswith("webcam:") or source.startswith("/dev/video"):
        return source
    return os.path.basename(source) or source


def cmd_ingest(args) -> int:
    from memory.bank import MemoryBank
    from models.registry import load_profile
    from reducers import get_reducer
    from stream.pipeline import IngestConfig
    from stream.sources import open_source

    get_reducer(args.reducer)  # unknown names fail before anything heavy starts
    stream_id = args.stream or default_stream_id(args.source)
    source = open_source(args.source, fps=args.fps, realtime=args.realtime, start=args.start, skim=args.skim,
                         stream_id=stream_id, connect_timeout=args.connect_timeout)
    if hasattr(source, "probe"):
        source.probe()  # an unreachable camera fails now, not after the models load
    bank = MemoryBank(args.bank)
    try:
        if getattr(source, "live", False):  # a camera back under a known id goes on with that stream's clock
            last_t, offset = bank.resume_point(stream_id)
            if offset > 0:
                from stream.sources import ShiftedSource

                source = ShiftedSource(source, offset)
                bank.note_restart(stream_id, last_t, offset)
                print(f"vigil: note: continuing stream {stream_id!r} at {hms(offset)}", file=sys.stderr)
        profile = load_profile(args.model, trust_remote_code=args.trust_remote_code, device=args.device,
                               retrieval=args.retrieval, text_evidence=args.text_evidence, answerer=False)
        cfg = IngestConfig(fps=args.fps, clip_seconds=args.clip_seconds, reducer=args.reducer, budget=args.budget,
                           scene_cut=None if args.no_scene_cut else 0.25, duration=args.duration)
        for note in bank.repairs:
            print(f"vigil: repaired bank: {note}", file=sys.stderr)
        s, interrupted = ingest_into(bank, source, profile, stream_id, cfg, args.source)
        word = "interrupted; " if interrupted else ""
        print(f"{word}stored {s.memories} memories from {stream_id!r} ({s.last_t:.1f}s of media, "
              f"{s.frames_sampled} frames sampled, {s.dropped} dropped) in {bank.path}")
        return 0
    finally:
        bank.close()


def ingest_into(bank, source, profile, stream_id: str, cfg, label: str):
    """Run one source into the bank with progress and its notes on stderr. Returns (stats, interrupted)."""
    from stream.pipeline import IngestPipeline

    pipe = IngestPipeline(source, bank, profile.encoder, stream_id=stream_id, config=cfg, evidence=profile.evidence,
                          text_embedder=profile.text_embedder, key_encoder=profile.key_encoder, source_label=label)
    if pipe.audio_only:
        print(f"vigil: note: {label!r} has no video stream: storing transcript-only memories", file=sys.stderr)
    interrupted = run_with_progress(pipe, source)
    s = pipe.stats
    if s.error:
        raise CliError(s.error)
    for note in s.notes:
        if not (pipe.audio_only and note.startswith("no video stream")):
            print(f"vigil: note: {note}", file=sys.stderr)
    return s, interrupted


def run_with_progress(pipe, source) -> bool:
    """Run the pipeline in a thread; show a progress bar (files) or a status line (streams). True if interrupted."""
    interrupted = threading.Event()

    def on_signal(signum, frame):
        interrupted.set()
        pipe.stop(wait=0)

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    pipe.start()
    total = source.duration if not getattr(source, "live", False) else None
    if pipe.cfg.duration and (total is None or pipe.cfg.duration < total):
        total = pipe.cfg.duration if total is not None else None
    bar = None
    try:
        if total:
            from tqdm import tqdm

            bar = tqdm(total=round(total, 1), unit="s", desc="ingest", file=sys.stderr, dynamic_ncols=True,
                       bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f}s media [{elapsed}<{remaining}] {postfix}")
        while pipe.running:
            pipe._thread.join(0.5)
            s = pipe.stats
            if bar is not None:
                bar.n = round(min(s.last_t, total), 1)  # absolute: summing rounded steps drifts below 100%
                bar.set_postfix_str(f"{s.memories} memories")
            else:
                state = "connected" if s.connected else "waiting for video"
                sys.stderr.write(f"\r{pipe.stream_id}: {state} | t={hms(s.last_t)} | in {s.fps_in:.1f} fps, "
                                 f"out {s.fps_out:.1f} fps | dropped {s.dropped} | reconnects {s.reconnects} | "
                                 f"{s.memories} memories   ")
                sys.stderr.flush()
        if bar is None:
            sys.stderr.write("\n")
        elif not interrupted.is_set() and not pipe.stats.error:
            bar.n = bar.total  # the source reached its end
    finally:
        if bar is not None:
            bar.close()
        for sig, h in old.items():
            signal.signal(sig, h)
    return interrupted.is_set()


# ---- ask / info ----------------------------------------------------------------------------------

def load_image(path: str):
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise CliError(f"no such image: {path!r}")
    try:
        return np.asarray(Image.open(path).convert("RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise CliError(f"cannot read image {path!r}: {e}") from None


def cmd_ask(args) -> int:
    from memory.bank import MemoryBank
    from models.ask import AskError, ask, moments_answer
    from models.registry import load_profile

    if not args.question and not args.image:
        raise CliError("ask needs a QUESTION or --image PATH")
    image = load_image(args.image) if args.image else None
    t_start = time.perf_counter()
    bank = MemoryBank(args.bank, readonly=True)
    try:
        profile = load_profile(args.model, trust_remote_code=args.trust_remote_code, device=args.device,
                               retrieval=args.retrieval, text_evidence=args.text_evidence,
                               evidence=False)  # asking reads evidence, never extracts it
        t_loaded = time.perf_counter()
        try:
            pieces, citations = ask(bank, profile, args.question, k=args.k, image=image, streams=args.stream)
        except AskError as e:
            raise CliError(str(e)) from None
        t_retrieved = time.perf_counter()
        for piece in pieces:
            if not args.json:
                sys.stdout.write(piece)
                sys.stdout.flush()
        if not args.json:
            print()
        t_end = time.perf_counter()
        if args.json:
            print(json.dumps({"answer": pieces.text, "citations": citations, "usage": pieces.usage.as_dict(), "latency": {
                "load_ms": round((t_loaded - t_start) * 1000, 1),
                "retrieve_ms": round((t_retrieved - t_loaded) * 1000, 1),
                "first_token_ms": round(((pieces.first_piece or t_end) - t_retrieved) * 1000, 1),
                "total_ms": round((t_end - t_loaded) * 1000, 1)}}))
        elif pieces.answered:
            print("\nCited moments:")
            print(moments_answer(pieces.memories))
        return 0
    finally:
        bank.close()


def cmd_info(args) -> int:
    from memory.bank import MemoryBank

    bank = MemoryBank(args.bank, readonly=True)
    try:
        streams = bank.streams()
        data = {"bank": bank.path, "memories": bank.count(), "bytes": bank.bytes_on_disk(), "streams": streams,
                "key_spaces": bank.key_spaces(), "consistent": bank.check()["ok"],
                "events": len(bank.events())}
    finally:
        bank.close()
    if args.json:
        print(json.dumps(data))
        return 0
    print(f"bank {data['bank']}: {data['memories']} memories, {data['bytes'] / 1e6:.1f} MB on disk, "
          f"key spaces: {', '.join(data['key_spaces']) or 'none'}")
    for s in streams:
        span = f"{hms(s['first_t'] or 0)}–{hms(s['last_t'] or 0)}" if s["memories"] else "empty"
        print(f"  {s['stream']}: {s['memories']} memories, {s['covered_s']:.1f}s covered ({span}), source {s['source']}")
    return 0


def summary_bank_dir(source: str) -> str:
    """The bank `summarize SOURCE` uses for a file: $VIGIL_BANKS (default ~/.cache/vigil/banks)/<name>-<hash of path>."""
    import hashlib

    root = os.environ.get("VIGIL_BANKS") or os.path.join(
        os.environ.get("VIGIL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "vigil"), "banks")
    real = os.path.realpath(source)
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in os.path.basename(real))[:60]
    return os.path.join(root, f"{stem}-{hashlib.sha1(real.encode()).hexdigest()[:12]}")


def _file_stamp(path: str) -> dict:
    st = os.stat(path)
    return {"path": os.path.realpath(path), "size": st.st_size, "mtime": round(st.st_mtime, 3)}


def _media_seconds(path: str) -> float:
    try:
        import av

        with av.open(path) as c:
            return c.duration / 1_000_000 if c.duration else float("inf")
    except Exception:  # noqa: BLE001 - unreadable: never "covered"
        return float("inf")


def ingest_for_summary(args, load_profile, bank_dir: str, stream_id: str, derived: bool):
    """Ingest args.source into bank_dir unless the bank already covers this file (same size and mtime, ingested to
    the end). Says which on stderr. A derived bank that does not cover the file is rebuilt. Returns the profile it
    loaded (load_profile()) to ingest, or None when the bank was reused."""
    import shutil

    from memory.bank import MemoryBank
    from stream.pipeline import IngestConfig
    from stream.sources import open_source

    stamp = _file_stamp(args.source)
    key = f"summary_source:{stream_id}"
    if os.path.isdir(bank_dir):
        with MemoryBank(bank_dir, readonly=True) as b:
            have = b.get_meta(key)
            streams = {x["stream"]: x for x in b.streams()}
        st = streams.get(stream_id) or {}
        covered = bool(st.get("memories")) and (have == stamp or (  # or `ingest` stored this file to its end
            st.get("source") and os.path.realpath(st["source"]) == stamp["path"]
            and (st.get("last_t") or 0) >= _media_seconds(args.source) - 2.5))
        if covered:
            print(f"vigil: reusing bank {bank_dir} (it already covers {args.source!r})", file=sys.stderr)
            return None
        if stream_id in streams and streams[stream_id]["memories"]:
            if not derived:
                raise CliError(f"bank {bank_dir!r} already holds a stream {stream_id!r} that does not cover this file "
                               "completely; choose another --stream or bank")
            print(f"vigil: bank {bank_dir} does not cover {args.source!r} (changed or interrupted): rebuilding it",
                  file=sys.stderr)
            shutil.rmtree(bank_dir)
    source = open_source(args.source, fps=1.0, stream_id=stream_id)
    profile = load_profile()
    print(f"vigil: ingesting {args.source!r} into {bank_dir}", file=sys.stderr)
    bank = MemoryBank(bank_dir)
    try:
        s, interrupted = ingest_into(bank, source, profile, stream_id, IngestConfig(), args.source)
        if interrupted:
            print(f"vigil: interrupted after {s.last_t:.0f}s of media: summarizing that part", file=sys.stderr)
        else:
            bank.set_meta(key, stamp)  # the bank covers the file: a later summarize reuses it
        print(f"vigil: stored {s.memories} memories ({s.last_t:.1f}s of media)", file=sys.stderr)
    finally:
        bank.close()
    return profile


def cmd_summarize(args) -> int:
    from memory.bank import MemoryBank
    from models.meeting import stream_minutes
    from models.registry import load_profile

    if not args.source and not args.bank:
        raise CliError("summarize needs a SOURCE file to ingest or --bank DIR")
    if args.out and os.path.isdir(args.out):
        raise CliError(f"--out {args.out!r} is a directory; give a file name")
    bank_dir, stream = args.bank, args.stream
    profile = None
    if args.source:
        stream = args.stream or default_stream_id(args.source)
        bank_dir = args.bank or summary_bank_dir(args.source)
        if args.source.startswith(("rtsp://", "rtsps://", "webcam:", "/dev/video")):
            raise CliError("summarize SOURCE takes a recording (a file); for a live stream run ingest, then "
                           "summarize --bank")
        if not os.path.isfile(args.source):
            raise CliError(f"no such file: {args.source!r}")
        profile = ingest_for_summary(args, lambda: load_profile(
            args.model, trust_remote_code=args.trust_remote_code, device=args.device, retrieval=args.retrieval,
            text_evidence=args.text_evidence),
            bank_dir, stream, derived=not args.bank)
    bank = MemoryBank(bank_dir, readonly=True)
    try:
        if profile is None:  # a bank alone: no speech/OCR models needed
            profile = load_profile(args.model, trust_remote_code=args.trust_remote_code, device=args.device,
                                   retrieval=args.retrieval, text_evidence=args.text_evidence, evidence=False)
        from tqdm import tqdm

        with tqdm(total=1, desc="summarize", unit="step", file=sys.stderr, dynamic_ncols=True,
                  bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}") as bar:
            def progress(done: float, total: int, what: str = "") -> None:
                bar.total = max(total, 1)
                bar.n = int(done)  # the overview's steps are fractions of its one unit
                bar.set_postfix_str(what)
                bar.refresh()

            minutes = stream_minutes(bank, profile, stream, progress)
            bar.n = bar.total
            bar.refresh()
    finally:
        bank.close()
    text = json.dumps(minutes.to_dict()) if args.json else minutes.to_markdown()
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(minutes.to_markdown())
        except OSError as e:
            raise CliError(f"cannot write {args.out!r}: {e.strerror or e}") from None
        print(f"vigil: wrote minutes to {args.out}", file=sys.stderr)
    if args.json or not args.out:
        print(text)
    return 0


def cmd_ui(args) -> int:
    from ui.app import launch

    return launch(args)


COMMANDS = {"ingest": cmd_ingest, "ask": cmd_ask, "info": cmd_info, "summarize": cmd_summarize, "ui": cmd_ui}


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # weight-loading bars of every model would bury Vigil's own progress; VIGIL_DEBUG keeps them
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "0" if os.environ.get("VIGIL_DEBUG") else "1")
    parser = build_parser()
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["ui", *argv]  # no subcommand: the UI, with any flags given
    args = parser.parse_args(argv)
    from memory.bank import BankError
    from models.base import ModelError
    from reducers.base import ReducerInputError
    from stream.sources import SourceError

    try:
        return COMMANDS[args.cmd](args)
    except (CliError, SourceError, BankError, ModelError, ReducerInputError) as e:
        print(f"vigil: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except Exception as e:  # never a traceback for a user; VIGIL_DEBUG=1 shows it
        if os.environ.get("VIGIL_DEBUG"):
            raise
        print(f"vigil: error: {type(e).__name__}: {e} (set VIGIL_DEBUG=1 for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
