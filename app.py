"""Vigil command line: ingest, ask, info, forget, summarize, ui (the default with no arguments).

Parsing and printing only: everything else is the engine's (engine/), the same one the UI and the HTTP API use.
`ask` goes to the engine serving the bank when one runs on this machine (found through <bank>/server.json, or
given with --server), and loads the models in this process otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import urllib.parse
from typing import Optional

from engine.errors import EngineError  # light: nothing heavy is imported before a command needs it
from engine.timefmt import hms

DEFAULT_BANK = os.environ.get("VIGIL_BANK", os.path.join(os.path.expanduser("~"), ".vigil", "bank"))


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


def note(text: str) -> None:
    print(f"vigil: note: {text}", file=sys.stderr)


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
    p.add_argument("--model", default=None, help="hub id or local directory of a VLM (default: the bank's saved "
                                                 "setting, else the offline lite profile)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the model's own code to run (off by default)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: CUDA when present)")
    p.add_argument("--text-evidence", action="store_true",
                   help="with --model: also transcribe speech, read on-screen text (bundled models) and search that "
                        "text (hybrid retrieval); give it to ingest and ask")
    p.add_argument("--retrieval", default=None, metavar="ID_OR_DIR",
                   help="SigLIP/CLIP model for clip keys, so a bank can be searched by text (give the same at ingest and ask)")


def model_list(s: str) -> list[str]:
    """--models a,b: the models the UI (and serve) may switch to, comma-separated."""
    out = [m.strip() for m in str(s).split(",") if m.strip()]
    if not out:
        raise argparse.ArgumentTypeError("expected model names separated by commas, e.g. lite,HuggingFaceTB/SmolVLM2")
    return out


def add_allow_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", type=model_list, default=[], metavar="A,B",
                   help="the models Vigil may switch to (the UI's Settings tab) besides lite and --model, checked "
                        "at launch; any other is refused and nothing else loads")


def model_kw(args) -> dict:
    return dict(model=args.model, device=args.device, trust_remote_code=args.trust_remote_code,
                retrieval=args.retrieval, text_evidence=args.text_evidence)


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
    ing.add_argument("--replace", action="store_true",
                     help="forget what the stream holds and store the file afresh (default: a file the stream holds "
                          "already resumes after what is stored, or is skipped when it is covered)")
    ing.add_argument("--skim", action="store_true", help="decode keyframes only (fast, coarse)")
    ing.add_argument("--stream", default=None, help="stream id in the bank (default: from the source)")
    ing.add_argument("--meeting", action="store_true", help="mark the stream as a meeting (listed for minutes)")
    ing.add_argument("--no-scene-cut", action="store_true", help="never cut clips at scene changes")
    ing.add_argument("--connect-timeout", type=positive_float, default=10.0, help="give up on a camera that never answers")
    add_model_args(ing)
    ing.add_argument("--watch", action="append", default=[], metavar="TEXT",
                     help="alert when this happens in the stream (repeatable), e.g. \"tell me when someone mentions the "
                          "budget\"; stored in the bank (see `watch list`)")
    ing.add_argument("--watch-image", action="append", default=[], metavar="PNG",
                     help="alert when the stream looks like this example picture (repeatable)")
    ing.add_argument("--webhook", action="append", default=[], metavar="URL",
                     help="POST every alert of this run to URL as JSON (repeatable)")

    ask = sub.add_parser("ask", help="ask a question about the bank")
    ask.add_argument("question", nargs="?", default="", help="the question")
    ask.add_argument("--bank", required=True)
    ask.add_argument("--k", type=positive_int, default=5, help="memories to retrieve (default 5)")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument("--image", default=None, help="query by an example image")
    ask.add_argument("--stream", action="append", default=None, help="only these streams (repeatable)")
    ask.add_argument("--server", default=None, metavar="URL",
                     help="ask the Vigil server at URL (default: the one serving --bank on this machine, if any)")
    ask.add_argument("--local", action="store_true", help="answer in this process even when a server serves the bank")
    ask.add_argument("--api-token", default=os.environ.get("VIGIL_API_TOKEN"),
                     help="bearer token of a server that needs one (or VIGIL_API_TOKEN)")
    add_model_args(ask)

    info = sub.add_parser("info", help="what a bank holds")
    info.add_argument("--bank", required=True)
    info.add_argument("--json", action="store_true")

    fg = sub.add_parser("forget", help="remove a stream (or a time range of it) from a bank, reclaiming its disk")
    fg.add_argument("--bank", required=True)
    fg.add_argument("--stream", required=True, help="the stream id (see `info`)")
    fg.add_argument("--start", type=float, default=None, help="only memories from this media second on")
    fg.add_argument("--end", type=float, default=None, help="only memories up to this media second")
    fg.add_argument("--json", action="store_true")

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
    ui.add_argument("--api-token", default=os.environ.get("VIGIL_API_TOKEN"),
                    help="bearer token for the /v1 API (needed to serve it on a non-local --host)")
    add_model_args(ui)
    add_allow_list(ui)

    srv = sub.add_parser("serve", help="serve the HTTP API (/v1: streams, memories, ask, summaries, OpenAI-compatible "
                                       "chat completions; MCP tools at /mcp)")
    srv.add_argument("--bank", default=DEFAULT_BANK)
    srv.add_argument("--media-dir", default=os.environ.get("VIGIL_MEDIA_DIR"),
                     help="stream sources given by file name resolve inside this directory only (default ./media)")
    srv.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--api-token", default=os.environ.get("VIGIL_API_TOKEN"),
                     help="bearer token every request must carry (required with a non-local --host; or VIGIL_API_TOKEN)")
    srv.add_argument("--no-mcp", dest="mcp", action="store_false", help="do not serve the MCP tools at /mcp")
    add_model_args(srv)
    add_allow_list(srv)
    add_watch_commands(sub)
    return p


# ---- ingest --------------------------------------------------------------------------------------

def engine_for(bank: str, args, **kw):
    from engine import Engine

    return Engine(bank, **model_kw(args), **kw)


def cmd_ingest(args) -> int:
    with engine_for(args.bank, args, parts=("ingest",)) as eng:
        for text in eng.repairs:
            print(f"vigil: repaired bank: {text}", file=sys.stderr)
        last_alert = setup_watches(eng, args)
        info = eng.start(args.source, stream=args.stream, realtime=args.realtime, start=args.start, skim=args.skim,
                         duration=args.duration, fps=args.fps, clip_seconds=args.clip_seconds, reducer=args.reducer,
                         budget=args.budget, scene_cut=not args.no_scene_cut, meeting=args.meeting,
                         connect_timeout=args.connect_timeout, probe=True, replace=args.replace)
        if info.action == "skipped":
            for text in info.notes:
                note(text)
            print(f"nothing new: {info.stream!r} already holds {info.memories} memories of this file in {eng.path}")
            return 0
        if info.action == "resumed" and info.kind == "file" and info.resumed_from:
            note(f"stream {info.stream!r} holds this file up to {hms(info.resumed_from)}: resuming there "
                 "(--replace stores it afresh)")
        elif info.action == "replaced":
            note(f"replaced what stream {info.stream!r} held")
        s, interrupted = follow(eng, info, args.source)
        word = "interrupted; " if interrupted else ""
        total = f"; {s.memories} in the stream" if s.memories != s.new_memories else ""
        print(f"{word}stored {s.new_memories} memories from {s.stream!r} ({hms(s.last_t)} of media reached, "
              f"{s.frames_sampled} frames sampled, {s.dropped} dropped{total}) in {eng.path}")
        report_alerts(eng, last_alert)
    return 0


def follow(eng, info, label: str):
    """Print a started stream's progress until it ends (a bar for files, a status line for live sources), then
    its notes. Ctrl-C stops it (its memories are kept). Returns (final StreamInfo, interrupted)."""
    if info.action == "skipped":  # the stream holds the file already: nothing runs
        return info, False
    if info.t_offset > 0:
        note(f"continuing stream {info.stream!r} at {hms(info.t_offset)}")
    if info.settings:  # what the stream is stored with (not a note: notes are how a stream degraded)
        print(f"vigil: stream {info.stream!r}: {settings_text(info.settings)}", file=sys.stderr)
    if info.audio_only:
        note(f"{label!r} has no video stream: storing transcript-only memories")
    interrupted = threading.Event()

    def on_signal(signum, frame):
        interrupted.set()
        eng.stop(info.stream, wait=0)

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    total, bar, s = info.duration, None, info
    try:
        if total:
            from tqdm import tqdm

            bar = tqdm(total=round(total, 1), unit="s", desc="ingest", file=sys.stderr, dynamic_ncols=True,
                       bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f}s media [{elapsed}<{remaining}] {postfix}")
        while s.state in ("starting", "connecting", "running"):
            s = eng.wait(info.stream, 0.5)
            if bar is not None:
                # absolute: summing rounded steps drifts below 100%
                bar.n = round(min((s.progress or 0.0) * total, total), 1)
                bar.set_postfix_str(f"{s.new_memories} memories")
            else:
                state = "connected" if s.connected else ("connecting" if s.state == "connecting" else
                                                         "waiting for video")
                sys.stderr.write(f"\r{s.stream}: {state} | t={hms(s.last_t)} | in {s.fps_in:.1f} fps, "
                                 f"out {s.fps_out:.1f} fps | dropped {s.dropped} | reconnects {s.reconnects} | "
                                 f"{s.memories} memories   ")
                sys.stderr.flush()
        if bar is None:
            sys.stderr.write("\n")
        elif not interrupted.is_set() and not s.error:
            bar.n = bar.total  # the source reached its end
    finally:
        if bar is not None:
            bar.close()
        for sig, h in old.items():
            signal.signal(sig, h)
    s = eng.wait(info.stream)
    if s.error:
        raise CliError(s.error)
    for text in s.notes:
        if not (s.audio_only and text.startswith("no video stream")):
            note(text)
    return s, interrupted.is_set()


def ingest_into(bank, source, profile, stream_id: str, cfg, label: str):
    """Ingest an opened source into an open bank with a loaded profile, as `ingest` does (the engine's rules,
    this progress display). For scripts (bench/): returns (final StreamInfo, interrupted)."""
    from engine import Engine

    eng = Engine(bank, profile=profile)
    try:
        return follow(eng, eng.start_source(source, stream=stream_id, config=cfg, label=label), label)
    finally:
        eng.close()


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


def server_for(args) -> Optional[tuple[str, Optional[str]]]:
    """(url, token) of the engine to ask, or None to answer in this process. A server found through the bank
    answers only what it can answer as this process would: a text question with the bank's own profile."""
    if args.local:
        return None
    if args.server:
        return args.server, args.api_token
    if args.image or args.model or args.retrieval or args.text_evidence or args.device:
        return None
    from engine import discovery

    found = discovery.find(args.bank)
    if found is None:
        return None
    if found.get("token_sha256") and discovery.token_hash(args.api_token) != found["token_sha256"]:
        note(f"the server at {found['url']} needs its --api-token; answering in this process")
        return None
    return found["url"], args.api_token


def cmd_ask(args) -> int:
    if not args.question and not args.image:
        raise CliError("ask needs a QUESTION or --image PATH")
    server = server_for(args)
    if server is not None:
        done = ask_server(args, *server)
        if done is not None:
            return done
    image = load_image(args.image) if args.image else None
    from engine import Engine

    with Engine(args.bank, readonly=True, parts=("ask",), **model_kw(args)) as eng:
        answer = eng.ask(args.question, k=args.k, image=image, streams=args.stream)
        if args.json:
            print(json.dumps(answer.collect().to_dict()))
            return 0
        for piece in answer:
            sys.stdout.write(piece)
            sys.stdout.flush()
        print()
        print_moments(answer.citations, answer.answered)
    return 0


def ask_server(args, url: str, token: Optional[str]) -> Optional[int]:
    """Ask through a running server; None when it cannot be reached (and was not named with --server)."""
    from api import client

    body = {"question": args.question, "k": args.k, "streams": args.stream}
    started = False
    try:
        if args.json:
            out = client.ask(url, body, token=token, bank=args.bank)
            out.setdefault("latency", {})["server"] = url
            print(json.dumps(out))
            return 0
        for event in client.ask_stream(url, body, token=token, bank=args.bank):
            if event.get("type") == "text":
                started = True
                sys.stdout.write(event["text"])
                sys.stdout.flush()
            elif event.get("type") == "answer":
                print()
                print_moments(event.get("citations") or [], bool(event.get("answered")))
        return 0
    except client.ServerError as e:
        if e.reachable or args.server or started:
            raise CliError(str(e)) from None
        return None


HEADINGS = {"source": "Sources", "closest": "Closest moments (they do not answer it)",
            "looks_like": "Moments that look like it", "retrieved": "Retrieved moments"}


def print_moments(citations: list, answered: bool) -> None:
    """After an answerer's text, the moments that go with it, best first, under what they are to the answer (the
    engine's citation labels): its sources when it names them, else the closest or retrieved moments. Without an
    answerer the text is that list already."""
    if not answered or not citations:
        return
    sources = [c for c in citations if c.get("label") == "source"]
    groups = [("source", sources)] if sources else []
    for label in ("looks_like", "closest", "retrieved"):
        group = [c for c in citations if c.get("label", "retrieved") == label and (not sources or c.get("used"))]
        if group:
            groups.append((label, group))
    for label, group in groups:
        print(f"\n{HEADINGS[label]}:")
        for i, c in enumerate(group, 1):
            ev = f" — {c['evidence']}" if c.get("evidence") else ""
            print(f"{i}. [{hms(c['start'])}–{hms(c['end'])}] {c['stream']} (score {c['score']:.2f}){ev}")


def settings_text(st: dict) -> str:
    """A stream's stored settings in words: `pool2d reducer, 32 tokens per clip, 2 s clips at 1 fps`."""
    if not st:
        return "settings not recorded"
    return (f"{st.get('reducer', '?')} reducer, {st.get('budget', '?')} tokens per clip, "
            f"{float(st.get('clip_seconds', 0)):g} s clips at {float(st.get('fps', 0)):g} fps")


def cmd_info(args) -> int:
    from engine import Engine

    with Engine(args.bank, readonly=True) as eng:
        data = eng.info()
    if args.json:
        print(json.dumps(data))
        return 0
    print(f"bank {data['bank']}: {data['memories']} memories, {data['bytes'] / 1e6:.1f} MB on disk, "
          f"key spaces: {', '.join(data['key_spaces']) or 'none'}")
    for s in data["streams"]:
        span = f"{hms(s['first_t'] or 0)}–{hms(s['last_t'] or 0)}" if s["memories"] else "empty"
        print(f"  {s['stream']}: {s['memories']} memories, {hms(s['covered_s'])} covered ({span}), "
              f"{settings_text(s.get('settings') or {})}; source {s['source']}")
    return 0


def cmd_forget(args) -> int:
    from engine import Engine

    if not os.path.isfile(os.path.join(args.bank, "bank.sqlite")):
        raise CliError(f"no memory bank at {args.bank!r}")
    with Engine(args.bank, parts=()) as eng:
        out = eng.forget(args.stream, args.start, args.end)
    if args.json:
        print(json.dumps(out))
        return 0
    what = f"stream {out['stream']!r}" if out["whole"] else (
        f"{out['stream']!r} from {hms(args.start or 0)} to " + (hms(args.end) if args.end is not None else "its end"))
    print(f"forgot {what}: {out['deleted']} memories, {out['freed_bytes'] / 1e6:.1f} MB freed")
    return 0


# ---- summarize -----------------------------------------------------------------------------------

def cmd_summarize(args) -> int:
    from engine import Engine

    if not args.source and not args.bank:
        raise CliError("summarize needs a SOURCE file to ingest or --bank DIR")
    if args.out and os.path.isdir(args.out):
        raise CliError(f"--out {args.out!r} is a directory; give a file name")
    if args.source:
        from engine import recordings

        rec = recordings.prepare(args.source, args.bank, args.stream)
        for text in rec.notes:
            print(f"vigil: {text}", file=sys.stderr)
        if rec.reuse:
            eng = Engine(rec.bank_dir, readonly=True, parts=("ask",), **model_kw(args))
        else:
            eng = Engine(rec.bank_dir, **model_kw(args))
            print(f"vigil: ingesting {args.source!r} into {rec.bank_dir}", file=sys.stderr)
            try:
                s, interrupted = follow(eng, eng.start(args.source, stream=rec.stream), args.source)
            except BaseException:
                eng.close()
                raise
            if interrupted:
                print(f"vigil: interrupted after {s.last_t:.0f}s of media: summarizing that part", file=sys.stderr)
            else:
                recordings.mark_covered(eng, rec)  # the bank covers the file: a later summarize reuses it
            print(f"vigil: stored {s.memories} memories ({s.last_t:.1f}s of media)", file=sys.stderr)
        stream = rec.stream
    else:
        eng = Engine(args.bank, readonly=True, parts=("ask",), **model_kw(args))  # reads evidence, extracts none
        stream = args.stream
    with eng:
        summary = summarize_with_bar(eng, stream)
    text = json.dumps(summary.minutes) if args.json else summary.markdown
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(summary.markdown)
        except OSError as e:
            raise CliError(f"cannot write {args.out!r}: {e.strerror or e}") from None
        print(f"vigil: wrote minutes to {args.out}", file=sys.stderr)
    if args.json or not args.out:
        print(text)
    return 0


def summarize_with_bar(eng, stream: Optional[str]):
    from tqdm import tqdm

    with tqdm(total=100, desc="summarize", unit="%", file=sys.stderr, dynamic_ncols=True,
              bar_format="{l_bar}{bar}| [{elapsed}<{remaining}] {postfix}") as bar:
        def progress(fraction: float, what: str = "") -> None:
            bar.n = int(round(fraction * 100))
            bar.set_postfix_str(what)
            bar.refresh()

        return eng.summarize(stream, progress, save=False)


def cmd_ui(args) -> int:
    from ui.app import launch

    return launch(args)


COMMANDS = {"ingest": cmd_ingest, "ask": cmd_ask, "info": cmd_info, "forget": cmd_forget, "summarize": cmd_summarize,
            "ui": cmd_ui}


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # weight-loading bars of every model would bury Vigil's own progress; VIGIL_DEBUG keeps them
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "0" if os.environ.get("VIGIL_DEBUG") else "1")
    parser = build_parser()
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["ui", *argv]  # no subcommand: the UI, with any flags given
    args = parser.parse_args(argv)
    from engine.errors import part_errors

    try:
        return COMMANDS[args.cmd](args)
    except (CliError, EngineError) as e:
        print(f"vigil: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except Exception as e:  # never a traceback for a user; VIGIL_DEBUG=1 shows it
        if isinstance(e, part_errors()):  # a part's own one-line error the engine did not wrap
            print(f"vigil: error: {e}", file=sys.stderr)
            return 1
        if os.environ.get("VIGIL_DEBUG"):
            raise
        print(f"vigil: error: {type(e).__name__}: {e} (set VIGIL_DEBUG=1 for details)", file=sys.stderr)
        return 1


def cmd_serve(args) -> int:
    from api.server import serve

    return serve(args)


COMMANDS["serve"] = cmd_serve


# ---- watches and alerts --------------------------------------------------------------------------

def add_watch_commands(sub) -> None:
    w = sub.add_parser("watch", help="standing questions: alert when something happens (add, list, remove)")
    wsub = w.add_subparsers(dest="watch_cmd", required=True)
    add = wsub.add_parser("add", help="add a watch (it applies to every stream ingested from now on)")
    add.add_argument("text", nargs="?", default="", help='e.g. "tell me when someone mentions the budget"')
    add.add_argument("--bank", required=True)
    add.add_argument("--image", default=None, metavar="PNG", help="an example picture to look for")
    add.add_argument("--stream", default=None, help="only this stream (default: all streams)")
    add.add_argument("--threshold", type=float, default=None, help="score in (0, 1] at which it alerts")
    add.add_argument("--cooldown", type=float, default=None, help="seconds between two alerts on one stream (60)")
    add.add_argument("--kind", default="auto", help="auto, speech, screen, text, image, motion, people or vlm")
    add.add_argument("--webhook", default=None, metavar="URL", help="POST this watch's alerts to URL")
    add.add_argument("--json", action="store_true")
    ls = wsub.add_parser("list", help="the bank's watches")
    ls.add_argument("--bank", required=True)
    ls.add_argument("--json", action="store_true")
    rm = wsub.add_parser("remove", help="remove a watch (its alerts stay)")
    rm.add_argument("id", help="the watch's id (see `watch list`)")
    rm.add_argument("--bank", required=True)
    for sp in (add, rm):
        sp.add_argument("--api-token", default=os.environ.get("VIGIL_API_TOKEN"),
                        help="bearer token of the server that serves the bank, when one runs (or VIGIL_API_TOKEN)")
    al = sub.add_parser("alerts", help="the alerts the bank's watches raised")
    al.add_argument("--bank", required=True)
    al.add_argument("--json", action="store_true", help="print a JSON list")
    al.add_argument("--since", type=positive_float, default=None, metavar="SECONDS", help="only the last SECONDS")
    al.add_argument("--stream", default=None, help="only this stream")
    al.add_argument("--limit", type=positive_int, default=200, help="at most this many, the newest (200)")


def watch_line(w: dict) -> str:
    where = f"stream {w['stream']!r}" if w["stream"] else "all streams"
    hook = f", webhook {w['webhook']}" if w.get("webhook") else ""
    pic = f", example {w['image']}" if w.get("image") else ""
    return (f"{w['id']}: {w['text'] or '(example image)'!r} ({w['kind']}, threshold {w['threshold']:g}, "
            f"cooldown {w['cooldown']:g}s, {where}{pic}{hook})")


def alert_line(a: dict) -> str:
    ev = f" — {a['evidence']}" if a.get("evidence") else ""
    return f"[{hms(a['start'])}–{hms(a['end'])}] {a['stream']}: {a['watch']!r} (score {a['score']:.2f}){ev}"


def setup_watches(eng, args) -> int:
    """ingest --watch/--watch-image/--webhook: everything checked first, then stored (for this stream). Returns
    the id of the bank's last alert so far."""
    from engine.sources import stream_id_for

    sid = stream_id_for(args.source, args.stream)
    for url in args.webhook:
        from engine.watches import check_webhook

        check_webhook(url)
    specs = [dict(text="", image=p) for p in args.watch_image] + [dict(text=t) for t in args.watch]
    for spec in specs:
        eng.add_watch(**spec, stream=sid, dry_run=True)
    for url in args.webhook:
        eng.add_webhook(url)
    for spec in specs:
        note(f"watching for {watch_line(eng.add_watch(**spec, stream=sid))}")
    old = eng.alerts(limit=1)
    return old[-1]["id"] if old else 0


def report_alerts(eng, after: int) -> None:
    """After an ingest: wait for the last checks and webhook deliveries, then list this run's alerts."""
    if not eng.watches():
        return
    if not eng.drain_alerts(60.0):
        note("some watch checks or webhook deliveries had not finished after 60 s")
    new = eng.alerts(after=after, limit=None)
    st = eng.alert_stats()
    print(f"{len(new)} alert(s)" + (":" if new else ""))
    for a in new:
        print("  " + alert_line(a))
    if st["dropped"]:
        note(f"{st['dropped']} memories were not checked against the watches (the check queue was full)")
    if st["webhooks_failed"]:
        note(f"{st['webhooks_failed']} webhook deliveries failed: {st['last_error']}")


def cmd_watch(args) -> int:
    from engine import Engine

    if args.watch_cmd == "list":
        if not os.path.exists(os.path.join(args.bank, "bank.sqlite")):
            rows = []
        else:
            with Engine(args.bank, readonly=True) as eng:
                rows = eng.watches()
        if args.json:
            print(json.dumps(rows))
        elif not rows:
            print("no watches (add one with `watch add TEXT --bank DIR`)")
        for w in rows if not args.json else []:
            print(watch_line(w))
        return 0
    w = watch_through_server(args)  # a running server holds the bank: it adds (or removes) the watch
    if w is None:
        with Engine(args.bank) as eng:
            if args.watch_cmd == "add":
                w = eng.add_watch(args.text, image=args.image, stream=args.stream, threshold=args.threshold,
                                  cooldown=args.cooldown, kind=args.kind, webhook=args.webhook)
            else:
                w = eng.remove_watch(args.id)
    if args.watch_cmd == "add":
        print(json.dumps(w) if args.json else f"watch {watch_line(w)}")
    else:
        print(f"removed watch {w['id']}: {w['text'] or '(example image)'!r}")
    return 0


def watch_through_server(args) -> Optional[dict]:
    """`watch add|remove` on a bank a running server (the UI, `serve`) holds: through its /v1/watches, so the
    running streams check the watch at once. None when no server serves the bank."""
    from api import client
    from engine import discovery

    found = discovery.find(args.bank)
    if found is None:
        return None
    try:
        if args.watch_cmd == "remove":
            return client.call(found["url"], "DELETE", f"/v1/watches/{urllib.parse.quote(str(args.id), safe='')}",
                               token=args.api_token, bank=args.bank)["watch"]
        body = {"text": args.text, "stream": args.stream, "threshold": args.threshold, "cooldown": args.cooldown,
                "kind": args.kind, "webhook": args.webhook}
        if args.image:
            import base64

            if not os.path.isfile(args.image):
                raise CliError(f"no such image: {args.image!r}")
            with open(args.image, "rb") as f:
                body["image"] = base64.b64encode(f.read()).decode()
        return client.call(found["url"], "POST", "/v1/watches", body, token=args.api_token, bank=args.bank)
    except client.ServerError as e:
        if not e.reachable:
            return None
        raise CliError(str(e)) from None


def cmd_alerts(args) -> int:
    from engine import Engine

    if not os.path.exists(os.path.join(args.bank, "bank.sqlite")):
        raise CliError(f"no memory bank at {args.bank!r}")
    with Engine(args.bank, readonly=True) as eng:
        rows = eng.alerts(since=args.since, stream=args.stream, limit=args.limit)
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no alerts" + (f" in the last {args.since:g} s" if args.since else ""))
    for a in rows:
        print(alert_line(a) + (f"\n    clip: {a['clip']}" if a.get("clip") else ""))
    return 0


COMMANDS.update(watch=cmd_watch, alerts=cmd_alerts)


def exit_now(status) -> None:
    """End the process with `status` as sys.exit would, without the interpreter's teardown: every command has
    stored, closed and printed what it does before it returns, and unloading torch, onnxruntime and CTranslate2
    took 0.6-0.7 s of each command on 2 cores (a 2-second ingest: 8.7-9.7 s with it, 7.7-7.8 s without)."""
    import logging

    if status is not None and not isinstance(status, int):
        print(status, file=sys.stderr)
        status = 1
    logging.shutdown()
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can reach it
            pass
    os._exit(status or 0)


if __name__ == "__main__":
    exit_now(main())
