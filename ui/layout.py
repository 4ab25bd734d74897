"""The page: sources, live panel, chat with citations, timeline, meeting minutes and settings, wired to the
handlers (ui/handlers.py) over one engine. Layout only."""
from __future__ import annotations

import gradio as gr

from . import alerts as alerts_tab
from . import timeline as tl
from .handlers import SOURCE_HEADERS, Handlers


def meeting_choices(engine) -> list[str]:
    """The Meeting tab's streams: those marked as meetings first, then the others."""
    ids = engine.stream_ids()
    meetings = [m for m in engine.meetings() if m in ids]
    return meetings + [s for s in ids if s not in meetings]


def build(engine) -> gr.Blocks:
    """The Blocks page around an Engine."""
    h = Handlers(engine)
    s = engine.settings
    with gr.Blocks(title="Vigil") as demo:
        gr.Markdown("## Vigil · streaming video assistant")
        seen = gr.State({})
        mine = gr.State({})  # the source this page started last: its status shows under the Sources heading
        cites_state = gr.State([])
        with gr.Tabs():
            with gr.Tab("Live", id="live"):
                with gr.Row():
                    with gr.Column(scale=4, min_width=320):
                        gr.Markdown("### Sources")
                        source_msg = gr.Markdown("", elem_id="source-msg")
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
                                server_path = gr.Dropdown(engine.list_media(), value=None, label="…or a file in the media "
                                                          "directory", allow_custom_value=True, scale=3,
                                                          elem_id="server-path")
                                refresh_media = gr.Button("↻", scale=0, min_width=40)
                            with gr.Row():
                                file_id = gr.Textbox("", label="Stream id (optional)", elem_id="file-id")
                                file_start = gr.Number(0, label="Start at (s)", elem_id="file-start-at")
                            with gr.Row():
                                file_mode = gr.Radio(["fast", "real time"], value="fast", label="Replay")
                                file_meeting = gr.Checkbox(False, label="Meeting mode", elem_id="file-meeting")
                            file_replace = gr.Checkbox(False, label="Replace what the stream holds (default: resume "
                                                       "after it)", elem_id="file-replace")
                            file_go = gr.Button("Replay file", variant="primary", elem_id="file-start")
                        with gr.Row():
                            stop_id = gr.Dropdown([], value=None, label="Source", scale=3, elem_id="stop-id")
                            stop_btn = gr.Button("Stop", variant="stop", scale=1, elem_id="stop")
                        with gr.Accordion("Remove a stream from the bank", open=False):
                            forget_id = gr.Dropdown(engine.stream_ids(), value=None, label="Stream",
                                                    elem_id="forget-id")
                            with gr.Row():
                                forget_from = gr.Number(None, label="From (s, optional)", elem_id="forget-from")
                                forget_to = gr.Number(None, label="To (s, optional)", elem_id="forget-to")
                            forget_btn = gr.Button("Remove from bank", variant="stop", elem_id="forget")
                    with gr.Column(scale=5, min_width=360):
                        gr.Markdown("### Live")
                        watch = gr.Dropdown([], label="Show stream", value=None, elem_id="watch")
                        live = gr.Image(label="Current frame", interactive=False, elem_id="live-frame", height=260)
                        live_stats = gr.Markdown("Starting…", elem_id="live-stats")
                        latest = gr.Gallery(label="Latest clips", columns=4, height=170, elem_id="latest-clips",
                                            allow_preview=False)
                        sys_md = gr.Markdown("", elem_id="system")
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
                        cites = gr.Gallery(label="Moments", columns=3, height="auto", elem_id="citations",
                                           allow_preview=False)
                        player = gr.HTML(tl.player_html(None), elem_id="player")
                        with gr.Row():
                            cite_img = gr.Image(label="Stored clip", interactive=False, height=150, elem_id="cite-img")
                            cite_md = gr.Markdown("", elem_id="cite-evidence")
                # full width, so every column (errors and notes last) shows without scrolling sideways
                sources_df = gr.Dataframe(headers=SOURCE_HEADERS, label="Sources", interactive=False,
                                          elem_id="sources", wrap=True,
                                          column_widths=["12%", "7%", "7%", "10%", "6%", "6%", "7%", "5%", "14%",
                                                         "26%"])
            with gr.Tab("Timeline", id="timeline") as tl_tab:
                gr.Markdown("The bank over time: one point per stored clip, at its start (media time) and its "
                            "**change**, how much it differs from the clip before it in the same stream (1 − cosine "
                            "of their visual keys, on a log scale; a stream's first clip is 1). Peaks are scene changes "
                            "or activity. Hover a point for its evidence; click it to open the clip.")
                with gr.Row():
                    tl_stream = gr.Dropdown([], label="Stream (all when empty)", value=None, elem_id="timeline-stream")
                    tl_from = gr.Number(None, label="From (s of media time; 0: the start)", elem_id="timeline-from")
                    tl_to = gr.Number(None, label="To (s of media time; 0: the end)", elem_id="timeline-to")
                    tl_go = gr.Button("Show", elem_id="timeline-show")
                tl_count = gr.Markdown("", elem_id="timeline-count")
                tl_plot = gr.HTML(tl.timeline_svg([]), js_on_load=tl.TIMELINE_JS, elem_id="timeline-plot")
                tl_df = gr.Dataframe(label="Clips (click a row to open it)", interactive=False, elem_id="timeline-rows",
                                     max_height=320)
                with gr.Row():
                    tl_player = gr.HTML(tl.player_html(None))
                    tl_img = gr.Image(label="Stored clip", interactive=False, height=200)
                    tl_md = gr.Markdown("", elem_id="timeline-evidence")
            with gr.Tab("Meeting", id="meeting") as mt_tab:
                gr.Markdown("Minutes of a recorded or live meeting: decisions, action items and topics with timestamps.")
                with gr.Row():
                    mt_stream = gr.Dropdown(meeting_choices(engine), label="Stream", value=engine.default_meeting(),
                                            scale=3, elem_id="meeting-stream")
                    mt_go = gr.Button("Summarize", variant="primary", scale=1, elem_id="summarize")
                minutes = gr.Markdown("", elem_id="minutes")
                minutes_file = gr.File(label="Download minutes (.md)", elem_id="minutes-file")
            alerts_tab.build_tab(engine)  # watches and alerts (ui/alerts.py)
            with gr.Tab("Settings", id="settings"):
                gr.Markdown(f"Saved per bank (`{engine.path}`); applies to sources started afterwards.")
                # only the launch allow-list (--models) is offered; anything typed in is refused by the engine
                set_model = gr.Dropdown(engine.allowed_models or [s["model"]], value=s["model"],
                                        allow_custom_value=True, label="Profile or model (those Vigil was started "
                                        "with: lite, --model, --models)", elem_id="settings-model")
                set_reducer = gr.Dropdown(engine.reducers(), value=s["reducer"], label="Reducer")
                with gr.Row():
                    set_budget = gr.Number(s["budget"], label="Budget (carrier tokens per clip)", precision=0)
                    set_clip = gr.Number(s["clip_seconds"], label="Clip length (s)")
                    set_fps = gr.Number(s["fps"], label="Frames sampled per second")
                set_save = gr.Button("Save settings", variant="primary")
                set_msg = gr.Markdown("")

        # ---- events ----
        cam_start.click(h.start_webcam, [cam_id, cam_meeting], [source_msg, mine], api_name="start_webcam")
        cam.stream(h.push_frame, [cam, cam_id], None, stream_every=0.2, time_limit=None, concurrency_limit=8,
                   show_progress="hidden", api_visibility="private")
        rtsp_start.click(h.start_rtsp, [rtsp_url, rtsp_id, rtsp_meeting], [source_msg, mine], api_name="start_rtsp")
        file_go.click(h.start_file, [upload, server_path, file_id, file_mode, file_start, file_meeting, file_replace],
                      [source_msg, server_path, mine], api_name="start_file")
        refresh_media.click(h.refresh_media, None, server_path)
        stop_btn.click(h.stop_stream, stop_id, source_msg, api_name="stop")
        forget_btn.click(h.forget, [forget_id, forget_from, forget_to], [source_msg, forget_id], api_name="forget")

        timer = gr.Timer(1.0)
        timer.tick(h.poll, [watch, seen, mine], [live, live_stats, sources_df, latest, sys_md, watch, chat_streams,
                                                tl_stream, mt_stream, stop_id, forget_id, seen, source_msg],
                   show_progress="hidden", concurrency_limit=None, queue=False, api_name="poll")

        ask_outputs = [chat, cites, cites_state, question]
        ask_btn.click(h.ask, [question, chat, k, chat_streams, use_frame, watch], ask_outputs, concurrency_limit=4,
                      api_name="ask")
        question.submit(h.ask, [question, chat, k, chat_streams, use_frame, watch], ask_outputs, concurrency_limit=4,
                        api_visibility="private")
        cites.select(h.open_citation, cites_state, [player, cite_img, cite_md], api_visibility="private")

        tl_go.click(h.timeline, [tl_stream, tl_from, tl_to], [tl_plot, tl_df, tl_count], api_name="timeline")
        tl_tab.select(h.timeline, [tl_stream, tl_from, tl_to], [tl_plot, tl_df, tl_count], api_visibility="private")
        tl_df.select(h.open_row, tl_df, [tl_player, tl_img, tl_md], api_visibility="private")
        tl_plot.select(h.open_point, None, [tl_player, tl_img, tl_md], api_visibility="private")

        mt_tab.select(h.meeting_tab, mt_stream, mt_stream, api_visibility="private")
        # the button is off while minutes are written, so a second click cannot queue a second run
        mt_go.click(lambda: gr.update(interactive=False, value="Summarizing…"), None, mt_go, queue=False,
                    api_visibility="private").then(
            h.summarize, mt_stream, [minutes, minutes_file], concurrency_limit=1, api_name="summarize").then(
            lambda: gr.update(interactive=True, value="Summarize"), None, mt_go, queue=False, api_visibility="private")
        set_save.click(h.save_settings, [set_model, set_reducer, set_budget, set_clip, set_fps], set_msg,
                       api_name="save_settings")
    return demo
