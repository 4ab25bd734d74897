"""The Gradio app: sources, live panel, chat with citations, timeline, meeting minutes, settings.

`python app.py` (or `app.py ui`) calls `launch(args)`. Binds 127.0.0.1 unless told otherwise; a non-local
host needs --auth. The page only drives ui/runtime.py's Controller (the same pipeline, bank and ask code as
the CLI); ingestion runs in background threads and a gr.Timer polls its status, so no UI event ever waits
on ingestion and a slow answer only occupies its own queue worker.
"""
from __future__ import annotations

import html
import os
import sys
import time
import urllib.parse
from typing import Optional

import gradio as gr

from .runtime import DEFAULT_MAX_UPLOAD, Controller, UIError, list_media

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

CSS = """
#live-stats p {margin: 0}
#source-msg {min-height: 1.5em}
#player video {width: 100%; max-height: 360px; background: #000}
#timeline-plot svg {width: 100%; height: auto; font: 11px sans-serif}
#timeline-plot circle[data-mid] {cursor: pointer}
#timeline-plot circle[data-mid]:hover, #timeline-plot circle.sel {stroke: #111; stroke-width: 2}
#timeline-plot .legend {display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 2px 0 4px 64px; font-size: 12px}
#timeline-plot .legend i {display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 4px}
"""

# Clicking a point of the timeline sends that memory's id as a select event (evt.index).
TIMELINE_JS = """
element.addEventListener('click', (e) => {
  const p = e.target.closest('[data-mid]');
  if (!p) return;
  element.querySelectorAll('circle.sel').forEach((c) => c.classList.remove('sel'));
  p.classList.add('sel');
  trigger('select', {index: Number(p.getAttribute('data-mid')), value: p.getAttribute('data-mid'), selected: true});
});
"""
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def check_exposure(host: str, auth: str | None) -> tuple[str, str] | None:
    """A non-local bind needs credentials; returns (user, pass) or None."""
    if host not in LOCAL_HOSTS:
        if not auth or ":" not in auth:
            raise SystemExit("vigil: error: --host other than 127.0.0.1 requires --auth user:pass (or VIGIL_AUTH)")
        print(f"vigil: warning: the UI is reachable from the network on {host}; protect it", file=sys.stderr)
    if auth:
        user, _, pw = auth.partition(":")
        return user, pw
    return None


def _hms(t: float) -> str:
    from models.ask import hms

    return hms(t)


def _mb(b: float) -> str:
    return f"{b / 1e6:.1f} MB" if b < 1e9 else f"{b / 1e9:.2f} GB"


def player_html(path: Optional[str], t: float = 0.0) -> str:
    """An HTML5 player for a media-dir file, seeked to t with a media fragment (served via allowed_paths)."""
    if not path:
        return "<div id='vigil-player-empty'>Click a citation or a timeline row to open it here.</div>"
    url = "gradio_api/file=" + urllib.parse.quote(path)
    return (f"<video id='vigil-player' data-t='{t:.2f}' src='{html.escape(url)}#t={t:.2f}' controls preload='auto' "
            f"muted playsinline></video><div>{html.escape(os.path.basename(path))} @ {_hms(t)}</div>")


def _continues(r) -> str:
    """A restarted live stream goes on with its own clock (see MemoryBank.resume_point)."""
    return f" (continuing the stream at {_hms(r.t_offset)})" if getattr(r, "t_offset", 0) > 0 else ""


def _nice_step(span: float, n: int = 5) -> float:
    """A 1/2/5 x 10^k step giving about n ticks over span."""
    import math

    raw = max(span, 1e-9) / n
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def timeline_svg(rows: list[dict], t_range: Optional[tuple[float, float]] = None, width: int = 960,
                 height: int = 280) -> str:
    """The timeline as an inline SVG: one point per stored clip at (clip start, novelty), a colour and a line per
    stream, labelled axes, a legend, and a tooltip per point. Each point carries its memory id (data-mid), which
    TIMELINE_JS sends back as a select event."""
    if not rows:
        return "<div class='timeline-empty'>No clips in this selection yet.</div>"
    import math

    L, R, T, B = 64, 16, 12, 44
    pw, ph = width - L - R, height - T - B
    lo = min(r["t0"] for r in rows)
    hi = max(r["t1"] for r in rows)
    if t_range is not None:
        lo, hi = max(lo, t_range[0]), min(hi, t_range[1]) if t_range[1] < 1e11 else hi
    if hi - lo < 1.0:
        hi = lo + 1.0
    # Novelty spans decades (near-identical slides differ by 1e-4, a new scene by 0.3, a stream's first clip
    # is 1 by convention), so the y axis is logarithmic, from the smallest decade present (>= 1e-4) to 1.
    pos = [r["novelty"] for r in rows if r["novelty"] > 0]
    ylo = min(0.1, max(1e-4, 10 ** math.floor(math.log10(min(pos))))) if pos else 1e-4
    yhi = max([1.0] + [r["novelty"] for r in rows])
    llo, lhi = math.log10(ylo), math.log10(yhi)

    def x(t):
        return L + (min(max(t, lo), hi) - lo) / (hi - lo) * pw

    def y(v):
        return T + ph - (math.log10(min(max(v, ylo), yhi)) - llo) / (lhi - llo) * ph

    streams: dict[str, list[dict]] = {}
    for r in rows:
        streams.setdefault(r["stream"], []).append(r)
    color = {sid: PALETTE[i % len(PALETTE)] for i, sid in enumerate(streams)}
    out = ["<div class='legend' id='timeline-legend'>"]
    out += [f"<span data-stream='{html.escape(sid)}'><i style='background:{color[sid]}'></i>{html.escape(sid)} "
            f"({len(rs)} clips)</span>" for sid, rs in streams.items()]
    out.append("</div>")
    out.append(f"<svg viewBox='0 0 {width} {height}' role='img' aria-label='Timeline: novelty per clip'>")
    # grid, ticks and labels
    step = next((s for s in TIME_STEPS if (hi - lo) / s <= 8), TIME_STEPS[-1])
    t = -(-lo // step) * step
    while t <= hi + 1e-9:
        out.append(f"<line x1='{x(t):.1f}' x2='{x(t):.1f}' y1='{T}' y2='{T + ph}' stroke='#e5e5e5'/>"
                   f"<text x='{x(t):.1f}' y='{T + ph + 14}' text-anchor='middle' fill='#555'>{_hms(t)}</text>")
        t += step
    for k in range(round(llo), math.floor(lhi) + 1):
        v = 10.0 ** k
        out.append(f"<line x1='{L}' x2='{L + pw}' y1='{y(v):.1f}' y2='{y(v):.1f}' stroke='#e5e5e5'/>"
                   f"<text x='{L - 6}' y='{y(v) + 4:.1f}' text-anchor='end' fill='#555'>{v:g}</text>")
    out.append(f"<line x1='{L}' x2='{L}' y1='{T}' y2='{T + ph}' stroke='#888'/>"
               f"<line x1='{L}' x2='{L + pw}' y1='{T + ph}' y2='{T + ph}' stroke='#888'/>")
    out.append(f"<text class='axis-title' x='{L + pw / 2:.0f}' y='{height - 6}' text-anchor='middle' fill='#222'>"
               "clip start (media time from the stream's start, h:mm:ss)</text>")
    out.append(f"<text class='axis-title' transform='translate(14 {T + ph / 2:.0f}) rotate(-90)' text-anchor='middle'"
               " fill='#222'>novelty (1 − cosine to the previous clip, log)</text>")
    for sid, rs in streams.items():  # lines first, under every point
        pts = " ".join(f"{x(r['t0']):.1f},{y(r['novelty']):.1f}" for r in rs)
        out.append(f"<polyline points='{pts}' fill='none' stroke='{color[sid]}' stroke-opacity='0.35' "
                   "pointer-events='none'/>")
    for sid, rs in streams.items():
        for r in rs:
            tip = (f"{r['stream']} · {_hms(r['t0'])}–{_hms(r['t1'])} · novelty {r['novelty']:.2g} · memory #{r['id']}"
                   + (f"\n{r['evidence']}" if r.get("evidence") else ""))
            out.append(f"<circle data-mid='{int(r['id'])}' cx='{x(r['t0']):.1f}' cy='{y(r['novelty']):.1f}' r='4.5' "
                       f"fill='{color[sid]}' stroke='#fff'><title>{html.escape(tip)}</title></circle>")
    out.append("</svg>")
    return "".join(out)


def _evidence_md(d: dict) -> str:
    ev = d.get("evidence") or {}
    if isinstance(ev, str):
        ev = {"evidence": ev} if ev else {}
    lines = [f"**{html.escape(d['stream'])}** · {_hms(d['t0'])}–{_hms(d['t1'])} · memory #{d['id']}"]
    for k, v in ev.items():
        if v:
            lines.append(f"- **{k}**: {html.escape(str(v))}")
    if len(lines) == 1:
        lines.append("_no text evidence for this clip_")
    return "\n".join(lines)


def build(ctl: Controller):
    """The Blocks page around a Controller."""
    from reducers import METHODS

    def stream_choices():
        return ctl.streams()

    # ---- sources -------------------------------------------------------------------------------

    def msg_ok(s: str) -> str:
        return f"OK: {s}"

    def msg_err(e: Exception) -> str:
        return f"Error: {e}"

    def start_webcam(sid, meeting):
        try:
            r = ctl.start_webcam(sid or "webcam", meeting=bool(meeting))
            return msg_ok(f"webcam source **{r.stream_id}** started{_continues(r)}: press Record on the camera")
        except UIError as e:
            return msg_err(e)

    def push_frame(frame, sid):
        ctl.push_webcam(sid or "webcam", frame)

    def start_rtsp(url, sid, meeting):
        try:
            r = ctl.start_rtsp(url, stream_id=sid, meeting=bool(meeting))
            return msg_ok(f"camera **{r.stream_id}** connecting{_continues(r)}")
        except UIError as e:
            return msg_err(e)

    def start_file(upload, server_path, sid, mode, start, meeting):
        try:
            if upload:
                name = ctl.accept_upload(upload, os.path.basename(upload))
            elif server_path:
                name = server_path
            else:
                raise UIError("upload a video or choose one from the media directory")
            r = ctl.start_file(name, stream_id=sid, realtime=(mode == "real time"), start=float(start or 0),
                               meeting=bool(meeting))
            return msg_ok(f"replaying **{os.path.basename(r.media_path)}** as stream **{r.stream_id}** "
                          f"({mode}, from {_hms(float(start or 0))})"), gr.update(choices=list_media(ctl.media_dir))
        except UIError as e:
            return msg_err(e), gr.skip()
        except ValueError as e:
            return msg_err(e), gr.skip()

    def stop_stream(sid):
        if not sid:
            return msg_err("choose a running source to stop")
        try:
            r = ctl.stop(sid)
            s = r.pipeline.stats
            return msg_ok(f"stopped **{sid}**: {s.memories} memories, {s.last_t:.1f}s of media")
        except UIError as e:
            return msg_err(e)

    # ---- live panel (polled) ---------------------------------------------------------------------

    def poll(watch, seen):
        seen = dict(seen or {})
        frame = ctl.latest_frame(watch or None)
        frame_out = gr.skip()
        if frame is not None and id(frame) != seen.get("frame"):
            seen["frame"] = id(frame)
            frame_out = _small(frame)
        rows = ctl.status()
        bank = ctl.bank_summary()
        running = [r for r in rows if r["state"] in ("starting", "running")]
        shown = next((r for r in rows if r["stream"] == watch), running[-1] if running else (rows[-1] if rows else None))
        if shown is not None:
            stats = (f"**{shown['stream']}** ({shown['kind']}, {shown['state']}) · frames in "
                     f"<span id='frames-in'>{shown['frames_in']}</span> · {shown['fps_in']} fps in / "
                     f"{shown['fps_out']} fps out · dropped {shown['dropped']} · t={_hms(shown['t'])}"
                     + (f" · **error:** {shown['error']}" if shown["error"] else "")
                     + (f" · note: {shown['notes']}" if shown.get("notes") else ""))
        else:
            stats = "No source running. Start the webcam, a camera or a file."
        stats += (f"\n\n**Bank:** <span id='memory-count'>{bank['memories']}</span> memories · {_mb(bank['bytes'])}"
                  f" · {bank['streams']} stream(s) · `{ctl.bank.path}`")
        table = [[r["stream"], r["kind"], r["state"], r["frames_in"], r["fps_in"], r["fps_out"], r["dropped"],
                  r["memories"], r["t"], r["error"] or r.get("notes", "")] for r in rows]
        clips_out = gr.skip()
        latest = ctl.latest_clips(8)
        key = tuple(c["id"] for c in latest)
        if key != tuple(seen.get("clips", ())):
            seen["clips"] = key
            clips_out = [(c["thumbnail"], c["caption"]) for c in latest if c["thumbnail"]]
        sysd = ctl.system()
        sys_md = f"CPU {sysd['cpu_pct']:.0f}% · RAM {sysd['ram_used_pct']:.0f}% used · process {sysd['rss_mb']:.0f} MB"
        if "gpu_alloc_mb" in sysd:
            sys_md += (f" · GPU {sysd['gpu_alloc_mb']:.0f} MB allocated / {sysd['gpu_reserved_mb']:.0f} MB reserved"
                       f" of {sysd['gpu_total_mb']:.0f} MB")
        else:
            sys_md += " · no GPU"
        streams = stream_choices()
        running_ids = ctl.running_ids()
        upd = [gr.skip()] * 5
        if (streams, running_ids) != (seen.get("streams"), seen.get("running")):
            seen["streams"], seen["running"] = streams, running_ids
            upd = [gr.update(choices=streams), gr.update(choices=streams), gr.update(choices=streams),
                   gr.update(choices=streams), gr.update(choices=list(ctl.runners))]
        return [frame_out, stats, table, clips_out, sys_md, *upd, seen]

    # ---- chat ------------------------------------------------------------------------------------

    def on_ask(question, history, k, streams, use_frame, watch):
        question = (question or "").strip()
        history = list(history or [])
        image = ctl.latest_frame(watch or None) if use_frame else None
        if not question and image is None:
            yield history, gr.skip(), gr.skip(), ""
            return
        prior = [{"role": m["role"], "content": _text_of(m.get("content"))} for m in history
                 if isinstance(m, dict) and m.get("role") in ("user", "assistant") and _text_of(m.get("content"))]
        history.append({"role": "user", "content": question or "(search with the current frame)"})
        history.append({"role": "assistant", "content": ""})
        yield history, gr.skip(), gr.skip(), ""
        try:
            pieces, cites = ctl.ask(question, k=int(k), streams=streams or None, image=image, history=prior)
        except UIError as e:
            history[-1]["content"] = f"Error: {e}"
            yield history, [], [], ""
            return
        gallery = [(c["thumbnail"], f"{c['stream']} · {_hms(c['start'])}–{_hms(c['end'])}") for c in cites
                   if c.get("thumbnail")]
        yield history, gallery, cites, ""
        last = 0.0
        try:
            for piece in pieces:
                history[-1]["content"] += piece
                now = time.monotonic()
                if now - last > 0.05:
                    last = now
                    yield history, gr.skip(), gr.skip(), ""
        except Exception as e:  # noqa: BLE001  (a failing answerer must not kill the page)
            history[-1]["content"] += f"\n\nError: answering failed: {e}"
        if cites and pieces.answered:
            refs = "; ".join(f"[{_hms(c['start'])}] {c['stream']}" for c in cites)
            history[-1]["content"] += f"\n\n*Sources: {refs}*"
        yield history, gallery, cites, ""

    def open_citation(cites, evt: gr.SelectData):
        i = evt.index if isinstance(evt.index, int) else (evt.index or [0])[0]
        shown = [c for c in (cites or []) if c.get("thumbnail")]
        if not (0 <= i < len(shown)):
            return gr.skip(), gr.skip(), gr.skip()
        c = shown[i]
        try:
            d = ctl.memory(c["id"])
        except UIError as e:
            return gr.skip(), None, msg_err(e)
        return _open(d)

    def _open(d):
        player = d.get("player")
        return (player_html(player, d["t0"]) if player else player_html(None),
                d["thumbnail"], _evidence_md(d) + ("" if player else "\n\n_live stream: showing the stored clip_"))

    # ---- timeline --------------------------------------------------------------------------------

    def timeline(stream, t_from, t_to):
        import pandas as pd

        lo, hi = float(t_from or 0), float(t_to or 0)  # empty or 0: no bound
        t_range = None if lo <= 0 and hi <= 0 else (max(0.0, lo), hi if hi > 0 else 1e12)
        rows = ctl.timeline(stream or None, t_range)
        df = pd.DataFrame(rows, columns=["id", "stream", "t0", "t1", "novelty", "evidence"])
        where = f" of **{stream}**" if stream else f" of {len({r['stream'] for r in rows})} stream(s)"
        window = "" if t_range is None else (f" between {_hms(t_range[0])} and "
                                             + ("the end" if t_range[1] >= 1e11 else _hms(t_range[1])))
        return timeline_svg(rows, t_range), df, f"{len(rows)} clips{where}{window}. Click a point or a row to open it."

    def open_row(df, evt: gr.SelectData):
        try:
            r = evt.index[0] if isinstance(evt.index, (list, tuple)) else int(evt.index)
            mid = int(df.iloc[r]["id"])
            return _open(ctl.memory(mid))
        except (UIError, IndexError, KeyError, ValueError, TypeError) as e:
            return gr.skip(), None, msg_err(e)

    def open_point(evt: gr.SelectData):
        try:
            return _open(ctl.memory(int(evt.index)))
        except (UIError, ValueError, TypeError) as e:
            return gr.skip(), None, msg_err(e)

    # ---- meeting ---------------------------------------------------------------------------------

    def summarize(stream, progress=gr.Progress()):
        progress(0, desc="starting")
        try:
            md, path = ctl.summarize(stream, lambda f, d="": progress(f, desc=d))
        except UIError as e:
            return msg_err(e), None
        return md, path

    # ---- settings --------------------------------------------------------------------------------

    def save_settings(model, reducer, budget, clip_seconds, fps):
        try:
            s = ctl.save_settings(model=model, reducer=reducer, budget=budget, clip_seconds=clip_seconds, fps=fps)
        except UIError as e:
            return msg_err(e)
        return msg_ok(f"saved for this bank: model {s['model']}, reducer {s['reducer']} ({s['budget']} tokens), "
                      f"{s['clip_seconds']} s clips at {s['fps']} fps (applies to sources started from now on)")

    # ---- layout ----------------------------------------------------------------------------------

    s = ctl.settings
    with gr.Blocks(title="Vigil") as demo:
        gr.Markdown("## Vigil · streaming video assistant")
        seen = gr.State({})
        cites_state = gr.State([])
        with gr.Tabs():
            with gr.Tab("Live", id="live"):
                with gr.Row():
                    with gr.Column(scale=4, min_width=320):
                        gr.Markdown("### Sources")
                        with gr.Accordion("Browser webcam", open=True):
                            cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam",
                                           elem_id="webcam", height=200)
                            with gr.Row():
                                cam_id = gr.Textbox("webcam", label="Stream id", elem_id="webcam-id", scale=2)
                                cam_meeting = gr.Checkbox(False, label="Meeting mode")
                            cam_start = gr.Button("Start webcam source", variant="primary", elem_id="webcam-start")
                        with gr.Accordion("RTSP camera", open=False):
                            rtsp_url = gr.Textbox(label="URL", placeholder="rtsp://user:pass@camera/stream")
                            with gr.Row():
                                rtsp_id = gr.Textbox("", label="Stream id (optional)", scale=2)
                                rtsp_meeting = gr.Checkbox(False, label="Meeting mode")
                            rtsp_start = gr.Button("Connect camera", variant="primary")
                        with gr.Accordion("Video file", open=False):
                            upload = gr.File(label="Upload a video", type="filepath", elem_id="upload")
                            with gr.Row():
                                server_path = gr.Dropdown(list_media(ctl.media_dir), value=None, label="…or a file in the media "
                                                          "directory", allow_custom_value=True, scale=3,
                                                          elem_id="server-path")
                                refresh_media = gr.Button("↻", scale=0, min_width=40)
                            with gr.Row():
                                file_id = gr.Textbox("", label="Stream id (optional)", elem_id="file-id")
                                file_start = gr.Number(0, label="Start at (s)", minimum=0)
                            with gr.Row():
                                file_mode = gr.Radio(["fast", "real time"], value="fast", label="Replay")
                                file_meeting = gr.Checkbox(False, label="Meeting mode", elem_id="file-meeting")
                            file_go = gr.Button("Replay file", variant="primary", elem_id="file-start")
                        with gr.Row():
                            stop_id = gr.Dropdown([], value=None, label="Source", scale=3, elem_id="stop-id")
                            stop_btn = gr.Button("Stop", variant="stop", scale=1, elem_id="stop")
                        source_msg = gr.Markdown("", elem_id="source-msg")
                    with gr.Column(scale=5, min_width=360):
                        gr.Markdown("### Live")
                        watch = gr.Dropdown([], label="Show stream", value=None, elem_id="watch")
                        live = gr.Image(label="Current frame", interactive=False, elem_id="live-frame", height=260)
                        live_stats = gr.Markdown("Starting…", elem_id="live-stats")
                        latest = gr.Gallery(label="Latest clips", columns=4, height=170, elem_id="latest-clips",
                                            allow_preview=False)
                        sys_md = gr.Markdown("", elem_id="system")
                        sources_df = gr.Dataframe(headers=["stream", "kind", "state", "frames in", "fps in", "fps out",
                                                           "dropped", "memories", "t (s)", "error / notes"],
                                                  label="Sources", interactive=False, elem_id="sources")
                    with gr.Column(scale=6, min_width=380):
                        gr.Markdown("### Ask")
                        chat = gr.Chatbot(label="Vigil", height=330, elem_id="chat")
                        with gr.Row():
                            question = gr.Textbox(placeholder="What happened on the whiteboard?", show_label=False,
                                                  scale=5, elem_id="question")
                            ask_btn = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                        with gr.Accordion("Search options", open=False):
                            k = gr.Slider(1, 20, value=5, step=1, label="Moments to retrieve")
                            chat_streams = gr.Dropdown([], value=[], multiselect=True, label="Only these streams",
                                                       elem_id="chat-streams")
                            use_frame = gr.Checkbox(False, label="Also search with the current frame (query by example)")
                        cites = gr.Gallery(label="Citations (click to open)", columns=5, height=150,
                                           elem_id="citations", allow_preview=False)
                        player = gr.HTML(player_html(None), elem_id="player")
                        with gr.Row():
                            cite_img = gr.Image(label="Stored clip", interactive=False, height=150, elem_id="cite-img")
                            cite_md = gr.Markdown("", elem_id="cite-evidence")
            with gr.Tab("Timeline", id="timeline") as tl_tab:
                gr.Markdown("The bank over time: one point per stored clip, at its start (media time) and its "
                            "**novelty**, how much it differs from the clip before it in the same stream (1 − cosine "
                            "of their visual keys, on a log scale; a stream's first clip is 1). Peaks are scene changes "
                            "or activity. Hover a point for its evidence; click it to open the clip.")
                with gr.Row():
                    tl_stream = gr.Dropdown([], label="Stream (all when empty)", value=None, elem_id="timeline-stream")
                    tl_from = gr.Number(None, label="From (s of media time; 0: the start)", minimum=0,
                                        elem_id="timeline-from")
                    tl_to = gr.Number(None, label="To (s of media time; 0: the end)", minimum=0, elem_id="timeline-to")
                    tl_go = gr.Button("Show", elem_id="timeline-show")
                tl_count = gr.Markdown("", elem_id="timeline-count")
                tl_plot = gr.HTML(timeline_svg([]), js_on_load=TIMELINE_JS, elem_id="timeline-plot")
                tl_df = gr.Dataframe(label="Clips (click a row to open it)", interactive=False, elem_id="timeline-rows",
                                     max_height=320)
                with gr.Row():
                    tl_player = gr.HTML(player_html(None))
                    tl_img = gr.Image(label="Stored clip", interactive=False, height=200)
                    tl_md = gr.Markdown("", elem_id="timeline-evidence")
            with gr.Tab("Meeting", id="meeting"):
                gr.Markdown("Minutes of a recorded or live meeting: decisions, action items and topics with timestamps.")
                with gr.Row():
                    mt_stream = gr.Dropdown(ctl.meetings() or [], label="Stream", value=None, scale=3,
                                            elem_id="meeting-stream")
                    mt_go = gr.Button("Summarize", variant="primary", scale=1, elem_id="summarize")
                minutes = gr.Markdown("", elem_id="minutes")
                minutes_file = gr.File(label="Download minutes (.md)", elem_id="minutes-file")
            with gr.Tab("Settings", id="settings"):
                gr.Markdown(f"Saved per bank (`{ctl.bank.path}`); applies to sources started afterwards.")
                set_model = gr.Textbox(s["model"], label="Profile or model (lite, a hub id or a local directory)")
                set_reducer = gr.Dropdown(list(METHODS), value=s["reducer"], label="Reducer")
                with gr.Row():
                    set_budget = gr.Number(s["budget"], label="Budget (carrier tokens per clip)", precision=0)
                    set_clip = gr.Number(s["clip_seconds"], label="Clip length (s)")
                    set_fps = gr.Number(s["fps"], label="Frames sampled per second")
                set_save = gr.Button("Save settings", variant="primary")
                set_msg = gr.Markdown("")

        # ---- events ----
        cam_start.click(start_webcam, [cam_id, cam_meeting], source_msg, api_name="start_webcam")
        cam.stream(push_frame, [cam, cam_id], None, stream_every=0.2, time_limit=None, concurrency_limit=8,
                   show_progress="hidden", api_visibility="private")
        rtsp_start.click(start_rtsp, [rtsp_url, rtsp_id, rtsp_meeting], source_msg, api_name="start_rtsp")
        file_go.click(start_file, [upload, server_path, file_id, file_mode, file_start, file_meeting],
                      [source_msg, server_path], api_name="start_file")
        refresh_media.click(lambda: gr.update(choices=list_media(ctl.media_dir)), None, server_path)
        stop_btn.click(stop_stream, stop_id, source_msg, api_name="stop")

        timer = gr.Timer(1.0)
        timer.tick(poll, [watch, seen], [live, live_stats, sources_df, latest, sys_md, watch, chat_streams, tl_stream,
                                          mt_stream, stop_id, seen],
                   show_progress="hidden", concurrency_limit=None, queue=False, api_name="poll")

        ask_outputs = [chat, cites, cites_state, question]
        ask_btn.click(on_ask, [question, chat, k, chat_streams, use_frame, watch], ask_outputs, concurrency_limit=4,
                      api_name="ask")
        question.submit(on_ask, [question, chat, k, chat_streams, use_frame, watch], ask_outputs, concurrency_limit=4,
                        api_visibility="private")
        cites.select(open_citation, cites_state, [player, cite_img, cite_md], api_visibility="private")

        tl_go.click(timeline, [tl_stream, tl_from, tl_to], [tl_plot, tl_df, tl_count], api_name="timeline")
        tl_tab.select(timeline, [tl_stream, tl_from, tl_to], [tl_plot, tl_df, tl_count], api_visibility="private")
        tl_df.select(open_row, tl_df, [tl_player, tl_img, tl_md], api_visibility="private")
        tl_plot.select(open_point, None, [tl_player, tl_img, tl_md], api_visibility="private")

        mt_go.click(summarize, mt_stream, [minutes, minutes_file], concurrency_limit=1, api_name="summarize")
        set_save.click(save_settings, [set_model, set_reducer, set_budget, set_clip, set_fps], set_msg,
                       api_name="save_settings")
    return demo


def _text_of(content) -> str:
    """Chatbot message content (a string, or Gradio 6's list of typed parts) -> its text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return ""


def _small(img, width: int = 640):
    import numpy as np

    h, w = img.shape[:2]
    if w <= width:
        return img
    step = int(np.ceil(w / width))
    return img[::step, ::step]


def media_dir_of(args) -> str:
    return getattr(args, "media_dir", None) or os.environ.get("VIGIL_MEDIA_DIR") or os.path.join(os.getcwd(), "media")


def create(args, profile=None):
    """(demo, controller, launch kwargs) for args with bank, host, port, auth, media_dir, model, device,
    trust_remote_code. Tests use this with launch(prevent_thread_lock=True)."""
    auth = check_exposure(args.host, getattr(args, "auth", None))
    max_upload = int(float(os.environ.get("VIGIL_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD / 2**20)) * 2**20)
    ctl = Controller(args.bank, media_dir_of(args), model=getattr(args, "model", None),
                     device=getattr(args, "device", None), trust_remote_code=getattr(args, "trust_remote_code", False),
                     max_upload_bytes=max_upload, profile=profile)
    if profile is None:
        ctl.warm_up()
    demo = build(ctl)
    demo.queue(default_concurrency_limit=2)
    thumbs = os.path.join(ctl.bank.path, "thumbs")
    os.makedirs(thumbs, exist_ok=True)
    kwargs = dict(server_name=args.host, server_port=args.port, auth=auth, allowed_paths=[thumbs, ctl.media_dir],
                  max_file_size=max_upload, css=CSS, show_error=False)
    return demo, ctl, kwargs


def launch(args) -> int:
    demo, ctl, kwargs = create(args)
    try:
        demo.launch(**kwargs)
    finally:
        ctl.close()
    return 0
