"""Vigil as tools for agents, through Gradio's built-in MCP server (`launch(mcp_server=True)`): ask, search the
memories, and summarize a stream. Each tool is a typed, documented function over the Engine (Gradio builds the
MCP schema from the signature and the docstring's Args), registered with `gr.api` so it has no UI of its own.

    register(demo, engine, tokens)         # the page's Blocks: MCP at /gradio_api/mcp/, and at launch
    demo.launch(app_kwargs={"middleware": middleware(tokens)}, …)   # 401 there without the token
    mount(app, engine, path="/mcp")        # `app.py serve`: a tools-only Blocks, MCP at /mcp/gradio_api/mcp/
                                           # (behind the API app's own token middleware)

The page's own events are made "undocumented" here (still callable by the page and gradio_client, but not
listed as API endpoints or MCP tools), so an agent sees exactly these three tools. With an API token the tools sit
behind it twice: the MCP endpoint refuses a request without `Authorization: Bearer <token>` (401, the API's error
shape), and each tool checks the header of the request that called it, so Gradio's own routes to the same
functions (/gradio_api/call/…) do not bypass it.
"""
from __future__ import annotations

import json
from typing import Callable, Iterable, Optional

from engine import EngineError

TOOL_NAMES = ("ask", "search_memories", "summarize")
MCP_SUBPATH = "/gradio_api/mcp"  # where Gradio mounts its MCP server on the app it launches


def available() -> bool:
    """Is the `mcp` package there (Gradio's MCP server needs it; requirements.txt installs it)?"""
    import importlib.util

    return importlib.util.find_spec("mcp") is not None


def tools(engine, tokens: Iterable[str] = ()) -> list[Callable]:
    """The tool functions over one engine (their __name__ is the tool name). tokens: the bearer tokens a call must
    carry (none: every call passes)."""
    import gradio as gr

    from .http import token_ok

    tokens = [t for t in tokens if t]

    def fail(e: EngineError):
        return gr.Error(str(e), print_exception=False)

    def allow(request) -> None:
        headers = getattr(request, "headers", None) or {}
        if tokens and not token_ok(tokens, headers.get("authorization", "")):
            raise gr.Error("missing or wrong API token: send Authorization: Bearer <token>", print_exception=False)

    def ask(question: str, k: int = 5, stream: Optional[str] = None, start: Optional[float] = None,
            end: Optional[float] = None, request: "gr.Request" = None) -> str:
        """Ask Vigil's memory of the video streams a question; the answer cites moments as [hh:mm:ss].

        Args:
            question: the question, in plain words (e.g. "what is the budget for the Horizon project?")
            k: how many stored moments to retrieve and answer from (1-100)
            stream: only this stream id (see search_memories' results); empty for every stream
            start: only moments from this many seconds of media time on
            end: only moments up to this many seconds of media time
        Returns:
            JSON: {"answer": text, "citations": [{"id", "stream", "start", "end", "score", "evidence"}], "usage"}
        """
        allow(request)
        try:
            out = engine.answer(question, k=k, streams=[stream] if stream else None, start=start, end=end)
        except EngineError as e:
            raise fail(e) from None
        cites = [{k_: c[k_] for k_ in ("id", "stream", "start", "end", "score", "evidence")} for c in out["citations"]]
        return json.dumps({"answer": out["answer"], "citations": cites, "usage": out["usage"]})

    def search_memories(query: str = "", stream: Optional[str] = None, start: Optional[float] = None,
                        end: Optional[float] = None, limit: int = 10, request: "gr.Request" = None) -> str:
        """Search Vigil's stored moments (clips with their speech, on-screen text and tags) without answering.

        Args:
            query: what to look for; empty lists the moments in time order
            stream: only this stream id; empty for every stream
            start: only moments from this many seconds of media time on
            end: only moments up to this many seconds of media time
            limit: at most this many moments (1-100)
        Returns:
            JSON list of moments: {"id", "stream", "start", "end", "evidence"} (and "score" when searched)
        """
        allow(request)
        try:
            limit = max(1, min(100, int(limit)))
            if query.strip():
                rows = engine.search(query, k=limit, streams=[stream] if stream else None, start=start, end=end)
                out = [{k_: c[k_] for k_ in ("id", "stream", "start", "end", "score", "evidence")} for c in rows]
            else:
                if stream:
                    engine.require_stream(stream)
                rows = engine.memories(stream=stream or None, start=start, end=end, limit=limit)
                out = [{"id": m["id"], "stream": m["stream"], "start": m["start"], "end": m["end"],
                        "evidence": m["text"]} for m in rows]
        except EngineError as e:
            raise fail(e) from None
        return json.dumps(out)

    def summarize(stream: Optional[str] = None, request: "gr.Request" = None) -> str:
        """Meeting minutes of one stream: overview, decisions, action items and slides, each stamped [hh:mm:ss].

        Args:
            stream: the stream id to summarize; empty when the bank holds one stream
        Returns:
            the minutes as Markdown
        """
        allow(request)
        try:
            if stream:
                engine.require_stream(stream)
            return engine.summarize(stream or None).markdown
        except EngineError as e:
            raise fail(e) from None

    out = [ask, search_memories, summarize]
    for f in out:  # Gradio reads the hints: gr.Request is its own (filled per call, left out of the schema)
        f.__annotations__["request"] = gr.Request
    return out


def register(demo, engine, tokens: Iterable[str] = ()) -> None:
    """Add the tools to a Blocks (call before launch(mcp_server=True)); the page's events leave the API list.
    tokens: the API's bearer tokens, which every tool call must carry (none: no check)."""
    import gradio as gr

    for fn in demo.fns.values():
        if fn.api_visibility == "public":
            fn.api_visibility = "undocumented"
    with demo:
        for f in tools(engine, tokens):
            gr.api(f, api_name=f.__name__, queue=False)


def middleware(tokens: Iterable[str]) -> list:
    """For the page's app (`launch(app_kwargs={"middleware": …})`): the MCP endpoint Gradio mounts there answers
    401 (the API's error shape) to any request without one of tokens; none: nothing to add."""
    from starlette.middleware import Middleware

    from .http import TokenMiddleware

    tokens = [t for t in tokens if t]
    return [Middleware(TokenMiddleware, tokens=tokens, prefixes=(MCP_SUBPATH,))] if tokens else []


def blocks(engine):
    """A Blocks holding only the tools (for `app.py serve`)."""
    import gradio as gr

    with gr.Blocks(title="Vigil tools") as demo:
        gr.Markdown("Vigil's MCP tools: ask, search_memories, summarize (MCP endpoint: `gradio_api/mcp/`).")
    register(demo, engine)
    return demo


def mount(app, engine, path: str = "/mcp"):
    """Serve the tools' MCP endpoint under path on a FastAPI app (at {path}/gradio_api/mcp/)."""
    import gradio as gr

    return gr.mount_gradio_app(app, blocks(engine), path=path, mcp_server=True, show_error=False)
