"""The Gradio app: `python app.py` (or `app.py ui`) calls `launch(args)`.

The page (ui/layout.py, ui/handlers.py, ui/timeline.py) only drives the Engine (engine/), the same one the CLI
and the HTTP API use; ingestion runs in background threads and a gr.Timer polls its status, so no UI event ever
waits on ingestion and a slow answer only occupies its own queue worker. Binds 127.0.0.1 unless told otherwise;
a non-local host needs --auth. The same process serves the /v1 API (api/app.py) beside the page and advertises
itself in the bank directory, so `app.py ask` on this machine answers through it.
"""
from __future__ import annotations

import os
import sys

from engine.media import DEFAULT_MAX_UPLOAD

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

CSS = """
#live-stats p {margin: 0}
#source-msg {min-height: 1.5em}
#source-msg p {margin: 0}
#citations .caption-label, #latest-clips .caption-label, #citations .caption, #latest-clips .caption {
  white-space: normal; max-width: 100%; font-size: 11px; line-height: 1.25; opacity: 0.95}
#sources table {table-layout: fixed; width: 100%}
#citations .grid-container {grid-template-columns: repeat(3, minmax(0, 1fr)) !important;
  grid-template-rows: none !important; grid-auto-rows: auto !important}
#latest-clips .grid-container {grid-template-columns: repeat(4, minmax(0, 1fr)) !important}
#citations .thumbnail-item, #latest-clips .thumbnail-item {aspect-ratio: 4 / 3}
#player video {width: 100%; max-height: 360px; background: #000}
#timeline-plot svg {width: 100%; height: auto; font: 11px sans-serif}
#timeline-plot circle[data-mid] {cursor: pointer}
#timeline-plot circle[data-mid]:hover, #timeline-plot circle.sel {stroke: #111; stroke-width: 2}
#timeline-plot .legend {display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 2px 0 4px 64px; font-size: 12px}
#timeline-plot .legend i {display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 4px}
"""


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


def media_dir_of(args) -> str:
    return getattr(args, "media_dir", None) or os.environ.get("VIGIL_MEDIA_DIR") or os.path.join(os.getcwd(), "media")


def create(args, profile=None):
    """(demo, engine, launch kwargs) for args with bank, host, port, auth, media_dir, model, device,
    trust_remote_code. Tests use this with launch(prevent_thread_lock=True)."""
    auth = check_exposure(args.host, getattr(args, "auth", None))
    from engine import Engine

    from .layout import build

    max_upload = int(float(os.environ.get("VIGIL_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD / 2**20)) * 2**20)
    eng = Engine(args.bank, media_dir=media_dir_of(args), model=getattr(args, "model", None),
                 device=getattr(args, "device", None), trust_remote_code=getattr(args, "trust_remote_code", False),
                 retrieval=getattr(args, "retrieval", None), text_evidence=getattr(args, "text_evidence", False),
                 max_upload_bytes=max_upload, profile=profile, models=list(getattr(args, "models", None) or []))
    if profile is None:
        eng.warm_up()
    demo = build(eng)
    from api import mcp_tools
    from api.http import is_loopback

    token = api_token_of(args)
    # ask, search_memories, summarize as MCP tools (Gradio's MCP server: /gradio_api/mcp/), behind the API's token;
    # a non-local host without one serves neither the API nor the tools
    mcp = mcp_tools.available() and (is_loopback(args.host) or bool(token))
    mcp_tools.register(demo, eng, [token] if token else [])
    demo.queue(default_concurrency_limit=2)
    thumbs = os.path.join(eng.path, "thumbs")
    os.makedirs(thumbs, exist_ok=True)
    kwargs = dict(server_name=args.host, server_port=args.port, auth=auth, allowed_paths=[thumbs, eng.media_dir],
                  max_file_size=max_upload, css=CSS, show_error=False,
                  mcp_server=mcp, app_kwargs={"middleware": mcp_tools.middleware([token] if token else [])})
    kwargs["allowed_paths"].append(os.path.join(eng.path, "alerts"))  # alert thumbnails and clips (ui/alerts.py)
    os.makedirs(kwargs["allowed_paths"][-1], exist_ok=True)
    return demo, eng, kwargs


def api_token_of(args) -> str | None:
    return getattr(args, "api_token", None) or os.environ.get("VIGIL_API_TOKEN") or None


def serve_api(demo, eng, args) -> bool:
    """Mount the /v1 API on the launched page's server and advertise it in the bank directory."""
    from api.app import attach

    return attach(demo.app, eng, host=args.host, port=demo.server_port, token=api_token_of(args))


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM stops the server like Ctrl-C: streams flushed, server.json removed


def launch(args) -> int:
    import signal

    demo, eng, kwargs = create(args)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        demo.launch(prevent_thread_lock=True, **kwargs)
        if not serve_api(demo, eng, args):
            print("vigil: note: the /v1 API is not served on a non-local host without --api-token", file=sys.stderr)
        demo.block_thread()
    finally:
        from api.app import detach

        detach(eng)
        eng.close()
    return 0
