"""What the page's events do: each handler is a few lines around one Engine call (sources, the polled live panel,
the chat, the timeline, minutes, settings). No pipeline or ask logic: that is the engine's."""
from __future__ import annotations

import os
import time

import gradio as gr

from engine import EngineError
from engine.timefmt import duration, hms

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


SOURCE_HEADERS = ["stream", "kind", "state", "progress", "memories", "frames in", "fps in / out", "dropped",
                  "stored as", "error / notes"]
TYPING = "⏳ _Searching the memories…_"


def settings_text(st: dict) -> str:
    """A stream's stored settings, short: `pool2d · 32 tok · 2 s clips · 1 fps`."""
    if not st:
        return ""
    return (f"{st.get('reducer', '?')} · {st.get('budget', '?')} tok · {float(st.get('clip_seconds', 0)):g} s clips"
            f" · {float(st.get('fps', 0)):g} fps")


def progress_text(info) -> str:
    """A file's share done and the time left at its current speed; a live stream's clock."""
    if info.progress is None:
        return f"live · {hms(info.last_t)}" if info.kind != "file" else hms(info.last_t)
    text = f"{info.progress * 100:.0f}%"
    if info.state in ("starting", "running") and info.eta_s is not None:
        text += f" · {duration(info.eta_s)} left"
    return text


def row_of(info) -> dict:
    """A StreamInfo as the live panel shows it."""
    return {"stream": info.stream, "kind": KIND_NAMES.get(info.kind, info.kind) + (" (meeting)" if info.meeting else ""),
            "state": info.state, "frames_in": info.frames_in, "fps_in": info.fps_in, "fps_out": info.fps_out,
            "dropped": info.dropped, "memories": info.memories, "t": round(info.last_t, 1),
            "progress": progress_text(info), "settings": settings_text(info.settings),
            "error": info.error or "", "notes": "; ".join(info.notes)}


def table_row(r: dict) -> list:
    return [r["stream"], r["kind"], r["state"], r["progress"], r["memories"], r["frames_in"],
            f"{r['fps_in']} / {r['fps_out']}", r["dropped"], r["settings"], r["error"] or r.get("notes", "")]


def status_of(info) -> str:
    """One line on what a source started from this page is doing now (the message under the Sources heading)."""
    name = f"**{info.stream}**"
    if info.state == "error":
        return msg_err(f"{name}: {info.error}")
    if info.state == "connecting":
        if info.kind == "push":
            return f"webcam source {name}: waiting for frames from the browser (press Record on the camera)"
        why = next((n for n in info.notes if n.startswith("retrying:")), "")
        return f"Connecting to {name}…" + (f" ({why})" if why else "")
    if info.state in ("starting", "running"):
        if info.kind == "file":
            return f"Replaying {name}: {progress_text(info)} · {info.memories} memories"
        return f"{name} running: {info.frames_in} frames in · {info.memories} memories"
    if info.state == "finished":
        return msg_ok(f"{name} finished: {info.memories} memories ({info.new_memories} new)")
    return msg_ok(f"{name} stopped: {info.memories} memories")


def caption(c: dict) -> str:
    """A moment under an answer or in the latest clips: its time first (what tells moments apart), then its stream."""
    return f"{hms(c['start'])}–{hms(c['end'])} · {c['stream']}"


class Handlers:
    """The event handlers of one page, over one engine."""

    def __init__(self, engine):
        self.engine = engine

    # ---- sources -------------------------------------------------------------------------------

    def start_webcam(self, sid, meeting):
        try:
            info = self.engine.start("push", stream=sid or "webcam", meeting=bool(meeting))
            return (msg_ok(f"webcam source **{info.stream}** started{continues(info)}: press Record on the camera"),
                    {"stream": info.stream})
        except EngineError as e:
            return self._failed(e), {}

    def push_frame(self, frame, sid):
        self.engine.push_frame(sid or "webcam", frame)

    def start_rtsp(self, url, sid, meeting):
        url = (url or "").strip()
        if not url.startswith(("rtsp://", "rtsps://")):
            return self._failed("enter an rtsp:// or rtsps:// URL"), {}
        try:
            info = self.engine.start(url, stream=sid, meeting=bool(meeting))
            return msg_ok(f"camera **{info.stream}** connecting{continues(info)}"), {"stream": info.stream}
        except EngineError as e:
            return self._failed(e), {}

    def start_file(self, upload, server_path, sid, mode, start, meeting, replace=False):
        try:
            if upload:
                name = self.engine.accept_upload(upload, os.path.basename(upload))
            elif server_path:
                name = server_path
            else:
                raise EngineError("upload a video or choose one from the media directory")
            try:
                start = float(start or 0)
            except (TypeError, ValueError):
                raise EngineError("the start must be a number of seconds") from None
            info = self.engine.start(name, stream=sid, realtime=(mode == "real time"), start=start,
                                     meeting=bool(meeting), replace=bool(replace))
        except EngineError as e:
            return self._failed(e), gr.skip(), {}
        media = gr.update(choices=self.engine.list_media())
        what = f"**{os.path.basename(info.source)}** as stream **{info.stream}**"
        if info.action == "skipped":
            return (msg_ok(f"nothing to add: stream **{info.stream}** already holds all of "
                           f"**{os.path.basename(info.source)}** ({info.memories} memories). Tick “Replace what the "
                           "stream holds” to store it again."), media, {})
        if info.action == "resumed":
            return (msg_ok(f"resuming {what} at {hms(info.resumed_from or 0)}, after the {info.memories} memories "
                           f"it holds ({mode})"), media, {"stream": info.stream})
        how = "replaced what the stream held; replaying" if info.action == "replaced" else "replaying"
        return (msg_ok(f"{how} {what} ({mode}, from {hms(start)})"), media, {"stream": info.stream})

    def refresh_media(self):
        return gr.update(choices=self.engine.list_media())

    def stop_stream(self, sid):
        if not sid:
            return self._failed("choose a running source to stop")
        try:
            info = self.engine.stop(sid)
            return msg_ok(f"stopped **{sid}**: {info.memories} memories, {hms(info.last_t)} of media")
        except EngineError as e:
            return self._failed(e)

    def forget(self, sid, t_from, t_to):
        """Remove a stream (or a time range of it) from the bank."""
        if not sid:
            return self._failed("choose a stream to remove"), gr.skip()
        try:
            lo, hi = tl.parse_time(t_from), tl.parse_time(t_to)
            if (lo or 0) <= 0 and not hi:
                lo = hi = None  # no range: the whole stream
            out = self.engine.forget(sid, lo, hi)
        except (EngineError, ValueError) as e:
            return self._failed(e), gr.skip()
        what = f"stream **{sid}**" if out["whole"] else f"**{sid}** from {hms(lo or 0)} to " + (
            hms(hi) if hi else "its end")
        ids = self.engine.stream_ids()
        return (msg_ok(f"removed {what}: {out['deleted']} memories, {mb(out['freed_bytes'])} freed"),
                gr.update(choices=ids, value=None))

    @staticmethod
    def _failed(e) -> str:
        """An error where the user looks: the message under the Sources heading, and a toast."""
        text = msg_err(e)
        try:
            gr.Warning(str(e))
        except Exception:  # noqa: BLE001 - outside an event (tests calling handlers directly)
            pass
        return text

    # ---- live panel (polled) -------------------------------------------------------------------

    def poll(self, watch, seen, mine=None):
        eng = self.engine
        seen = dict(seen or {})
        mine = mine or {}
        frame = eng.latest_frame(watch or None)
        frame_out = gr.skip()
        if frame is not None and id(frame) != seen.get("frame"):
            seen["frame"] = id(frame)
            frame_out = small(frame)
        infos = eng.streams()
        rows = [row_of(i) for i in infos]
        bank = eng.bank_summary()
        running = [r for r in rows if r["state"] in ("starting", "connecting", "running")]
        shown = next((r for r in rows if r["stream"] == watch), running[-1] if running else (rows[-1] if rows else None))
        if shown is not None:
            stats = (f"**{shown['stream']}** ({shown['kind']}, {shown['state']}) · {shown['progress']} · frames in "
                     f"<span id='frames-in'>{shown['frames_in']}</span> · {shown['fps_in']} fps in / "
                     f"{shown['fps_out']} fps out · dropped {shown['dropped']}"
                     + (f" · **error:** {shown['error']}" if shown["error"] else "")
                     + (f" · note: {shown['notes']}" if shown.get("notes") else ""))
        else:
            stats = "No source running. Start the webcam, a camera or a file."
        stats += (f"\n\n**Bank:** <span id='memory-count'>{bank['memories']}</span> memories · {mb(bank['bytes'])}"
                  f" · {bank['streams']} stream(s) · `{os.path.basename(eng.path)}`")
        table = [table_row(r) for r in rows]
        msg_out = gr.skip()  # the message under Sources follows the source this page started last
        mine_info = next((i for i in infos if i.stream == mine.get("stream")), None)
        if mine_info is not None:
            text = status_of(mine_info)
            if text != seen.get("msg"):
                seen["msg"] = msg_out = text
        clips_out = gr.skip()
        latest = eng.memories(limit=8, newest_first=True)
        key = tuple(c["id"] for c in latest)
        if key != tuple(seen.get("clips", ())):
            seen["clips"] = key
            clips_out = [(c["thumbnail"], caption(c)) for c in latest if c["thumbnail"]]
        sysd = eng.system()
        sys_md = f"CPU {sysd['cpu_pct']:.0f}% · RAM {sysd['ram_used_pct']:.0f}% used · process {sysd['rss_mb']:.0f} MB"
        if "gpu_alloc_mb" in sysd:
            sys_md += (f" · GPU {sysd['gpu_alloc_mb']:.0f} MB allocated / {sysd['gpu_reserved_mb']:.0f} MB reserved"
                       f" of {sysd['gpu_total_mb']:.0f} MB")
        else:
            sys_md += " · no GPU"
        streams = eng.stream_ids()
        running_ids = eng.running()
        upd = [gr.skip()] * 6
        if (streams, running_ids) != (seen.get("streams"), seen.get("running")):
            seen["streams"], seen["running"] = streams, running_ids
            meetings = [m for m in eng.meetings() if m in streams]
            upd = [gr.update(choices=streams), gr.update(choices=streams), gr.update(choices=streams),
                   gr.update(choices=meetings + [x for x in streams if x not in meetings]),
                   gr.update(choices=eng.started()), gr.update(choices=streams)]
        return [frame_out, stats, table, clips_out, sys_md, *upd, seen, msg_out]

    # ---- chat ----------------------------------------------------------------------------------

    def ask(self, question, history, k, streams, use_frame, watch):
        question = (question or "").strip()
        history = list(history or [])
        image = self.engine.latest_frame(watch or None) if use_frame else None
        if not question and image is None:
            self._failed("type a question first" if not use_frame else
                         "type a question, or start a source so there is a current frame to search with")
            yield history, gr.skip(), gr.skip(), ""
            return
        prior = [{"role": m["role"], "content": text_of(m.get("content"))} for m in history
                 if isinstance(m, dict) and m.get("role") in ("user", "assistant") and text_of(m.get("content"))]
        history.append({"role": "user", "content": question or "(search with the current frame)"})
        history.append({"role": "assistant", "content": TYPING})  # until the first words arrive
        yield history, gr.update(value=[], label="Moments"), [], ""
        try:
            answer = self.engine.ask(question, k=int(k), streams=streams or None, image=image, history=prior)
        except EngineError as e:
            history[-1]["content"] = f"Error: {e}"
            yield history, [], [], ""
            return
        cites = answer.citations
        history[-1]["content"] = f"⏳ _Reading {len(cites)} moment(s)…_" if cites else TYPING
        yield history, gr.update(value=self._gallery(cites), label="Retrieved moments"), cites, ""
        started, last = False, 0.0
        try:  # closed however it ends: a client that goes away stops the answerer
            for piece in answer:
                history[-1]["content"] = (history[-1]["content"] if started else "") + piece
                started = True
                now = time.monotonic()
                if now - last > 0.05:
                    last = now
                    yield history, gr.skip(), gr.skip(), ""
        except Exception as e:  # noqa: BLE001  (a failing answerer must not kill the page)
            history[-1]["content"] = (history[-1]["content"] if started else "") + f"\n\nError: answering failed: {e}"
            started = True
        finally:
            answer.close()
        if not started:
            history[-1]["content"] = "(no answer)"
        used = [c for c in answer.citations if c.get("label") == "source"]
        if used:
            refs = "; ".join(f"{caption(c)}" for c in used)
            history[-1]["content"] += f"\n\n*Sources: {refs}*"
        shown = answer.shown
        yield history, gr.update(value=self._gallery(shown), label=f"{answer.heading} (click to open)"), shown, ""

    @staticmethod
    def _gallery(cites: list) -> list:
        return [(c["thumbnail"], caption(c)) for c in cites if c.get("thumbnail")]

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

        try:
            t_range = tl.window_of(t_from, t_to)
        except ValueError as e:
            return gr.skip(), gr.skip(), msg_err(e)
        start, end = t_range if t_range is not None else (None, None)
        rows = tl.rows_of(self.engine.memories(stream or None, start, end, limit=5000))
        df = pd.DataFrame(tl.table_rows(rows), columns=tl.COLUMNS)
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
        stream = stream or self.engine.default_meeting()
        if not stream:
            return msg_err("choose a stream to summarize"), None
        try:
            s = self.engine.summarize(stream, lambda f, d="": progress(f, desc=d))
        except EngineError as e:
            return msg_err(e), None
        return s.markdown, s.path

    def meeting_tab(self, stream):
        """Opening the Meeting tab picks the only meeting (or the only stream) when none is chosen."""
        if stream:
            return gr.skip()
        only = self.engine.default_meeting()
        return gr.update(value=only) if only else gr.skip()

    def save_settings(self, model, reducer, budget, clip_seconds, fps):
        try:
            s = self.engine.save_settings(model=model, reducer=reducer, budget=budget, clip_seconds=clip_seconds,
                                          fps=fps)
        except EngineError as e:
            return msg_err(e)
        return msg_ok(f"saved for this bank: model {s['model']}, reducer {s['reducer']} ({s['budget']} tokens), "
                      f"{s['clip_seconds']} s clips at {s['fps']} fps (applies to sources started from now on)")
