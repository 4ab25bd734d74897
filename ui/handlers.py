"""What the page's events do: each handler is a few lines around one Engine call (sources, the polled live panel,
the chat, the timeline, minutes, settings). No pipeline or ask logic: that is the engine's."""
from __future__ import annotations

import os
import time

import gradio as gr

from engine import EngineError
from engine.timefmt import hms

from . import timeline as tl

KIND_NAMES = {"push": "webcam", "rtsp": "rtsp", "webcam": "webcam", "file": "file"}


def msg_ok(s: str) -> str:
    return f"OK: {s}"


def msg_err(e) -> str:
    return f"Error: {e}"


def continues(info) -> str:
    """A restarted live stream goes on with its own clock (see MemoryBank.resume_point)."""
    return f" (continuing the stream at {hms(info.t_offset)})" if info.t_offset > 0 else ""


def mb(b: float) -> str:
    return f"{b / 1e6:.1f} MB" if b < 1e9 else f"{b / 1e9:.2f} GB"


def text_of(content) -> str:
    """Chatbot message content (a string, or Gradio 6's list of typed parts) -> its text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return ""


def small(img, width: int = 640):
    import numpy as np

    h, w = img.shape[:2]
    if w <= width:
        return img
    step = int(np.ceil(w / width))
    return img[::step, ::step]


def row_of(info) -> dict:
    """A StreamInfo as the live panel shows it."""
    return {"stream": info.stream, "kind": KIND_NAMES.get(info.kind, info.kind) + (" (meeting)" if info.meeting else ""),
            "state": info.state, "frames_in": info.frames_in, "fps_in": info.fps_in, "fps_out": info.fps_out,
            "dropped": info.dropped, "memories": info.memories, "t": round(info.last_t, 1),
            "error": info.error or "", "notes": "; ".join(info.notes)}


class Handlers:
    """The event handlers of one page, over one engine."""

    def __init__(self, engine):
        self.engine = engine

    # ---- sources -------------------------------------------------------------------------------

    def start_webcam(self, sid, meeting):
        try:
            info = self.engine.start("push", stream=sid or "webcam", meeting=bool(meeting))
            return msg_ok(f"webcam source **{info.stream}** started{continues(info)}: press Record on the camera")
        except EngineError as e:
            return msg_err(e)

    def push_frame(self, frame, sid):
        self.engine.push_frame(sid or "webcam", frame)

    def start_rtsp(self, url, sid, meeting):
        url = (url or "").strip()
        if not url.startswith(("rtsp://", "rtsps://")):
            return msg_err("enter an rtsp:// or rtsps:// URL")
        try:
            info = self.engine.start(url, stream=sid, meeting=bool(meeting))
            return msg_ok(f"camera **{info.stream}** connecting{continues(info)}")
        except EngineError as e:
            return msg_err(e)

    def start_file(self, upload, server_path, sid, mode, start, meeting):
        try:
            if upload:
                name = self.engine.accept_upload(upload, os.path.basename(upload))
            elif server_path:
                name = server_path
            else:
                raise EngineError("upload a video or choose one from the media directory")
            info = self.engine.start(name, stream=sid, realtime=(mode == "real time"), start=float(start or 0),
                                     meeting=bool(meeting))
            return msg_ok(f"replaying **{os.path.basename(info.source)}** as stream **{info.stream}** "
                          f"({mode}, from {hms(float(start or 0))})"), gr.update(choices=self.engine.list_media())
        except (EngineError, ValueError) as e:
            return msg_err(e), gr.skip()

    def refresh_media(self):
        return gr.update(choices=self.engine.list_media())

    def stop_stream(self, sid):
        if not sid:
            return msg_err("choose a running source to stop")
        try:
            info = self.engine.stop(sid)
            return msg_ok(f"stopped **{sid}**: {info.memories} memories, {info.last_t:.1f}s of media")
        except EngineError as e:
            return msg_err(e)

    # ---- live panel (polled) -------------------------------------------------------------------

    def poll(self, watch, seen):
        eng = self.engine
        seen = dict(seen or {})
        frame = eng.latest_frame(watch or None)
        frame_out = gr.skip()
        if frame is not None and id(frame) != seen.get("frame"):
            seen["frame"] = id(frame)
            frame_out = small(frame)
        rows = [row_of(i) for i in eng.streams()]
        bank = eng.bank_summary()
        running = [r for r in rows if r["state"] in ("starting", "running")]
        shown = next((r for r in rows if r["stream"] == watch), running[-1] if running else (rows[-1] if rows else None))
        if shown is not None:
            stats = (f"**{shown['stream']}** ({shown['kind']}, {shown['state']}) · frames in "
                     f"<span id='frames-in'>{shown['frames_in']}</span> · {shown['fps_in']} fps in / "
                     f"{shown['fps_out']} fps out · dropped {shown['dropped']} · t={hms(shown['t'])}"
                     + (f" · **error:** {shown['error']}" if shown["error"] else "")
                     + (f" · note: {shown['notes']}" if shown.get("notes") else ""))
        else:
            stats = "No source running. Start the webcam, a camera or a file."
        stats += (f"\n\n**Bank:** <span id='memory-count'>{bank['memories']}</span> memories · {mb(bank['bytes'])}"
                  f" · {bank['streams']} stream(s) · `{eng.path}`")
        table = [[r["stream"], r["kind"], r["state"], r["frames_in"], r["fps_in"], r["fps_out"], r["dropped"],
                  r["memories"], r["t"], r["error"] or r.get("notes", "")] for r in rows]
        clips_out = gr.skip()
        latest = eng.memories(limit=8, newest_first=True)
        key = tuple(c["id"] for c in latest)
        if key != tuple(seen.get("clips", ())):
            seen["clips"] = key
            clips_out = [(c["thumbnail"], f"{c['stream']} · {hms(c['start'])}–{hms(c['end'])}") for c in latest
                         if c["thumbnail"]]
        sysd = eng.system()
        sys_md = f"CPU {sysd['cpu_pct']:.0f}% · RAM {sysd['ram_used_pct']:.0f}% used · process {sysd['rss_mb']:.0f} MB"
        if "gpu_alloc_mb" in sysd:
            sys_md += (f" · GPU {sysd['gpu_alloc_mb']:.0f} MB allocated / {sysd['gpu_reserved_mb']:.0f} MB reserved"
                       f" of {sysd['gpu_total_mb']:.0f} MB")
        else:
            sys_md += " · no GPU"
        streams = eng.stream_ids()
        running_ids = eng.running()
        upd = [gr.skip()] * 5
        if (streams, running_ids) != (seen.get("streams"), seen.get("running")):
            seen["streams"], seen["running"] = streams, running_ids
            upd = [gr.update(choices=streams), gr.update(choices=streams), gr.update(choices=streams),
                   gr.update(choices=streams), gr.update(choices=eng.started())]
        return [frame_out, stats, table, clips_out, sys_md, *upd, seen]

    # ---- chat ----------------------------------------------------------------------------------

    def ask(self, question, history, k, streams, use_frame, watch):
        question = (question or "").strip()
        history = list(history or [])
        image = self.engine.latest_frame(watch or None) if use_frame else None
        if not question and image is None:
            yield history, gr.skip(), gr.skip(), ""
            return
        prior = [{"role": m["role"], "content": text_of(m.get("content"))} for m in history
                 if isinstance(m, dict) and m.get("role") in ("user", "assistant") and text_of(m.get("content"))]
        history.append({"role": "user", "content": question or "(search with the current frame)"})
        history.append({"role": "assistant", "content": ""})
        yield history, gr.skip(), gr.skip(), ""
        try:
            answer = self.engine.ask(question, k=int(k), streams=streams or None, image=image, history=prior)
        except EngineError as e:
            history[-1]["content"] = f"Error: {e}"
            yield history, [], [], ""
            return
        cites = answer.citations
        gallery = [(c["thumbnail"], f"{c['stream']} · {hms(c['start'])}–{hms(c['end'])}") for c in cites
                   if c.get("thumbnail")]
        yield history, gallery, cites, ""
        last = 0.0
        try:
            for piece in answer:
                history[-1]["content"] += piece
                now = time.monotonic()
                if now - last > 0.05:
                    last = now
                    yield history, gr.skip(), gr.skip(), ""
        except Exception as e:  # noqa: BLE001  (a failing answerer must not kill the page)
            history[-1]["content"] += f"\n\nError: answering failed: {e}"
        if cites and answer.answered:
            refs = "; ".join(f"[{hms(c['start'])}] {c['stream']}" for c in cites)
            history[-1]["content"] += f"\n\n*Sources: {refs}*"
        yield history, gallery, cites, ""

    def open_citation(self, cites, evt: gr.SelectData):
        i = evt.index if isinstance(evt.index, int) else (evt.index or [0])[0]
        shown = [c for c in (cites or []) if c.get("thumbnail")]
        if not (0 <= i < len(shown)):
            return gr.skip(), gr.skip(), gr.skip()
        try:
            return tl.opened(self.engine.memory(shown[i]["id"]))
        except EngineError as e:
            return gr.skip(), None, msg_err(e)

    # ---- timeline ------------------------------------------------------------------------------

    def timeline(self, stream, t_from, t_to):
        import pandas as pd

        t_range = tl.window_of(t_from, t_to)
        start, end = t_range if t_range is not None else (None, None)
        rows = tl.rows_of(self.engine.memories(stream or None, start, end, limit=5000))
        df = pd.DataFrame(rows, columns=["id", "stream", "t0", "t1", "novelty", "evidence"])
        return tl.timeline_svg(rows, t_range), df, tl.caption(rows, stream, t_range)

    def open_row(self, df, evt: gr.SelectData):
        try:
            r = evt.index[0] if isinstance(evt.index, (list, tuple)) else int(evt.index)
            return tl.opened(self.engine.memory(int(df.iloc[r]["id"])))
        except (EngineError, IndexError, KeyError, ValueError, TypeError) as e:
            return gr.skip(), None, msg_err(e)

    def open_point(self, evt: gr.SelectData):
        try:
            return tl.opened(self.engine.memory(int(evt.index)))
        except (EngineError, ValueError, TypeError) as e:
            return gr.skip(), None, msg_err(e)

    # ---- meeting and settings ------------------------------------------------------------------

    def summarize(self, stream, progress=gr.Progress()):
        progress(0, desc="starting")
        try:
            s = self.engine.summarize(stream or "", lambda f, d="": progress(f, desc=d))
        except EngineError as e:
            return msg_err(e), None
        return s.markdown, s.path

    def save_settings(self, model, reducer, budget, clip_seconds, fps):
        try:
            s = self.engine.save_settings(model=model, reducer=reducer, budget=budget, clip_seconds=clip_seconds,
                                          fps=fps)
        except EngineError as e:
            return msg_err(e)
        return msg_ok(f"saved for this bank: model {s['model']}, reducer {s['reducer']} ({s['budget']} tokens), "
                      f"{s['clip_seconds']} s clips at {s['fps']} fps (applies to sources started from now on)")
