"""The Alerts tab: add and remove watches (standing questions), the Alerts panel (thumbnail, time, evidence; a
click opens the moment's clip), and a notification on the page while it runs whenever a new alert is stored.
Layout and a few handlers around the Engine's watch and alert calls (engine/watch_api.py and engine/alerts.py hold the logic)."""
from __future__ import annotations

import html
import os

import gradio as gr

from engine import EngineError
from engine.timefmt import hms

KIND_CHOICES = ["auto", "speech", "screen", "text", "image", "motion", "people", "vlm"]
WATCH_HEADERS = ["id", "watch", "kind", "stream", "threshold", "cooldown (s)", "webhook"]
ALERT_HEADERS = ["id", "time", "stream", "watch", "score", "evidence"]
ALL_STREAMS = "(all streams)"


def watch_rows(watches: list[dict]) -> list[list]:
    return [[w["id"], w["text"] or "(example image)", w["kind"], w["stream"] or "all", w["threshold"], w["cooldown"],
             w.get("webhook") or ""] for w in watches]


def alert_rows(alerts: list[dict]) -> list[list]:
    return [[a["id"], f"{hms(a['start'])}–{hms(a['end'])}", a["stream"], a["watch"], round(a["score"], 2),
             a["evidence"]] for a in alerts]


def gallery_of(alerts: list[dict]) -> list:
    return [(a["thumbnail"], f"#{a['id']} {a['stream']} · {hms(a['start'])} · {a['watch']}") for a in alerts
            if a.get("thumbnail") and os.path.isfile(a["thumbnail"])]


def alert_md(a: dict) -> str:
    lines = [f"**{html.escape(a['watch'])}** — stream **{html.escape(a['stream'])}**, "
             f"{hms(a['start'])}–{hms(a['end'])} (score {a['score']:.2f}, alert #{a['id']})",
             f"- {html.escape(a['evidence'] or 'no evidence text')}"]
    if a.get("clip_start") is not None:
        lines.append(f"- clip: {hms(a['clip_start'])}–{hms(a['clip_end'])}")
    return "\n".join(lines)


class AlertHandlers:
    """The Alerts tab's events over one engine."""

    def __init__(self, engine, shown: int = 60, tick: float = 2.0):
        self.engine = engine
        self.shown = shown
        self.tick = tick

    def _panel(self):
        alerts = list(reversed(self.engine.alerts(limit=self.shown)))   # newest first
        return gallery_of(alerts), alert_rows(alerts), alerts

    def refresh(self):
        gal, rows, alerts = self._panel()
        return (watch_rows(self.engine.watches()), gal, rows, alerts,
                gr.update(choices=[ALL_STREAMS, *self.engine.stream_ids()]))

    def add(self, text, image, stream, threshold, cooldown, kind, webhook):
        stream = None if not stream or stream == ALL_STREAMS else stream
        try:
            w = self.engine.add_watch(text or "", image=image, stream=stream,
                                      threshold=threshold if threshold not in (None, "", 0) else None,
                                      cooldown=cooldown if cooldown not in (None, "") else None, kind=kind or "auto",
                                      webhook=(webhook or "").strip() or None)
        except EngineError as e:
            return f"Error: {e}", gr.skip(), gr.skip()
        return (f"OK: watching for **{html.escape(w['text'] or 'the example image')}** ({w['kind']}, threshold "
                f"{w['threshold']:g}, {('stream ' + w['stream']) if w['stream'] else 'all streams'})",
                watch_rows(self.engine.watches()), "")

    def remove(self, watch_id):
        if watch_id in (None, ""):
            return "Error: enter the id of a watch to remove", gr.skip()
        try:
            w = self.engine.remove_watch(int(watch_id))
        except (EngineError, ValueError) as e:
            return f"Error: {e}", gr.skip()
        return f"OK: removed watch {w['id']} ({html.escape(w['text'] or 'example image')})", \
            watch_rows(self.engine.watches())

    def poll(self, seen):
        """Every few seconds: a notification for each alert stored since the last look (on a page that just
        opened: in the last few seconds), and the panel when there is news."""
        import time

        newest = self.engine.alerts(limit=1)
        top = newest[-1]["id"] if newest else 0
        if seen is not None and top <= seen:
            return seen, gr.skip(), gr.skip(), gr.skip()
        fresh = self.engine.alerts(after=seen or 0, limit=5)
        if seen is None:  # what was stored before the page opened is shown, not announced
            fresh = [a for a in fresh if a["created"] >= time.time() - 2 * self.tick]
        for a in fresh:
            gr.Info(f"Alert: {a['watch']} — {a['stream']} at {hms(a['start'])}: {a['evidence']}", duration=10,
                    title="Vigil alert")
        gal, rows, alerts = self._panel()
        return top, gal, rows, alerts

    def open(self, alerts, evt: gr.SelectData):
        i = evt.index if isinstance(evt.index, int) else (evt.index or [0])[0]
        shown = [a for a in (alerts or []) if a.get("thumbnail") and os.path.isfile(a["thumbnail"])]
        if not 0 <= i < len(shown):
            return gr.skip(), gr.skip()
        return self._opened(shown[i]["id"])

    def open_row(self, alerts, evt: gr.SelectData):
        r = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not isinstance(r, int) or not 0 <= r < len(alerts or []):
            return gr.skip(), gr.skip()
        return self._opened(alerts[r]["id"])

    def _opened(self, alert_id):
        try:
            a = self.engine.alert(alert_id)
        except EngineError as e:
            return None, f"Error: {e}"
        return (a["clip"] if a.get("clip") and os.path.isfile(a["clip"]) else None), alert_md(a)


def build_tab(engine) -> AlertHandlers:
    """The Alerts tab (call inside the page's gr.Tabs())."""
    h = AlertHandlers(engine)
    alerts_state = gr.State([])
    seen = gr.State(None)
    with gr.Tab("Alerts", id="alerts") as tab:
        gr.Markdown("Standing questions: Vigil checks every new clip of every stream against them and alerts when "
                    "one matches (what is said or shown, an example picture, motion, people; with a VLM, the "
                    "question asked as yes/no). Alerts also pop up here while the page is open.")
        with gr.Row():
            with gr.Column(scale=5, min_width=360):
                gr.Markdown("### Watches")
                w_text = gr.Textbox(label="Tell me when…", placeholder="someone mentions the budget",
                                    elem_id="watch-text")
                with gr.Row():
                    w_stream = gr.Dropdown([ALL_STREAMS, *engine.stream_ids()], value=ALL_STREAMS,
                                           allow_custom_value=True, label="Stream", elem_id="watch-stream")
                    w_kind = gr.Dropdown(KIND_CHOICES, value="auto", label="Check", elem_id="watch-kind")
                with gr.Accordion("Example picture, threshold, cooldown, webhook", open=False):
                    w_image = gr.Image(label="Example picture (optional)", type="numpy", height=160,
                                       sources=["upload", "clipboard"], elem_id="watch-image")
                    with gr.Row():
                        w_threshold = gr.Number(None, label="Threshold (0–1; empty: default)",
                                                elem_id="watch-threshold")
                        w_cooldown = gr.Number(None, label="Cooldown (s; empty: 60)", elem_id="watch-cooldown")
                    w_hook = gr.Textbox(label="Webhook URL (optional)", placeholder="https://example.com/hook",
                                        elem_id="watch-webhook")
                w_add = gr.Button("Add watch", variant="primary", elem_id="watch-add")
                w_msg = gr.Markdown("", elem_id="watch-msg")
                w_table = gr.Dataframe(watch_rows(engine.watches()), headers=WATCH_HEADERS, label="Watches",
                                       interactive=False, elem_id="watches", wrap=True)
                with gr.Row():
                    w_rm_id = gr.Number(None, label="Watch id", precision=0, elem_id="watch-remove-id")
                    w_rm = gr.Button("Remove watch", variant="stop", elem_id="watch-remove")
            with gr.Column(scale=7, min_width=420):
                gr.Markdown("### Alerts")
                a_gallery = gr.Gallery(label="Alerts (click one to open the moment)", columns=4, height=220,
                                       allow_preview=False, object_fit="contain", elem_id="alerts-gallery")
                a_video = gr.Video(label="The moment", interactive=False, height=260, elem_id="alert-video")
                a_md = gr.Markdown("", elem_id="alert-evidence")
                a_table = gr.Dataframe(headers=ALERT_HEADERS, label="All recent alerts (click a row to open it)",
                                       interactive=False, elem_id="alerts-table", wrap=True, max_height=300)
        timer = gr.Timer(h.tick)

    w_add.click(h.add, [w_text, w_image, w_stream, w_threshold, w_cooldown, w_kind, w_hook], [w_msg, w_table, w_text],
                api_name="add_watch")
    w_rm.click(h.remove, w_rm_id, [w_msg, w_table], api_name="remove_watch")
    tab.select(h.refresh, None, [w_table, a_gallery, a_table, alerts_state, w_stream], api_visibility="private")
    timer.tick(h.poll, seen, [seen, a_gallery, a_table, alerts_state], show_progress="hidden",
               api_visibility="private", api_name="alerts_poll",  # the Live panel's poll keeps /poll
               concurrency_limit=None)  # never takes a worker another event waits for
    a_gallery.select(h.open, alerts_state, [a_video, a_md], api_visibility="private")
    a_table.select(h.open_row, alerts_state, [a_video, a_md], api_visibility="private")
    return h
