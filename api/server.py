"""`python app.py serve`: the HTTP API on its own (uvicorn), over one Engine.

Loopback by default; any other host needs an API token (--api-token or VIGIL_API_TOKEN), else it refuses to
start, in one line, before opening anything. With a token every request needs `Authorization: Bearer <token>`.
The server advertises itself in <bank>/server.json while it runs (so `app.py ask` uses it) and withdraws on exit
(Ctrl-C or SIGTERM: streams are stopped and flushed first). Tokens are never printed or logged.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from typing import Optional

from engine.errors import EngineError

from .http import is_loopback


WARMUP_JOIN_S = 60.0  # at exit, how long to wait for models still loading


class ServeError(EngineError):
    """The server cannot start (one line)."""


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def check_exposure(host: str, token: Optional[str]) -> None:
    if not is_loopback(host) and not token:
        raise ServeError(f"--host {host} is reachable from the network: it needs --api-token TOKEN "
                         "(or VIGIL_API_TOKEN)")


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything heavy loads (a port in use is one line, not a traceback)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(infos[0][4])
    except OSError as e:
        raise ServeError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(args) -> int:
    """args: bank, media_dir, host, port, api_token, model, device, trust_remote_code, retrieval, text_evidence,
    mcp (serve the MCP tools at /mcp), models (the allow-list: nothing outside it loads)."""
    token = getattr(args, "api_token", None) or os.environ.get("VIGIL_API_TOKEN") or None
    check_exposure(args.host, token)
    sock = bind(args.host, args.port)
    from engine import Engine

    from .app import create_app, detach, local_url

    media_dir = args.media_dir or os.environ.get("VIGIL_MEDIA_DIR") or os.path.join(os.getcwd(), "media")
    try:
        engine = Engine(args.bank, media_dir=media_dir, model=args.model, device=args.device,
                        trust_remote_code=args.trust_remote_code, retrieval=args.retrieval,
                        text_evidence=args.text_evidence, models=list(getattr(args, "models", None) or []))
    except BaseException:
        sock.close()
        raise
    warming = None
    try:
        import uvicorn

        from engine import discovery

        app = create_app(engine, token)
        from . import mcp_tools

        if getattr(args, "mcp", True) and mcp_tools.available():
            mcp_tools.mount(app, engine, "/mcp")
        warming = engine.warm_up()
        port = sock.getsockname()[1]
        url = local_url(args.host, port)
        discovery.advertise(engine.path, url, token)
        print(f"vigil: serving {engine.path} at http://{args.host}:{port}/v1 "
              f"({'bearer token required' if token else 'no token: this machine only'}); "
              f"OpenAPI at {url}/openapi.json", file=sys.stderr)
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the handler found before
        # it: make that a KeyboardInterrupt, so the finally below (streams flushed, server.json removed) runs
        signal.signal(signal.SIGTERM, _interrupt)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        detach(engine)
        engine.close()
        sock.close()
        # a model still loading in the warm-up thread when the interpreter finalizes can abort the process
        # (SIGABRT from native code): let it finish first (bounded)
        if warming is not None:
            warming.join(WARMUP_JOIN_S)
    return 0
