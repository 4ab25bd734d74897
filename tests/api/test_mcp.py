"""An MCP client (the `mcp` package) against Gradio's built-in MCP server: `app.py serve` serves the tools at
/mcp/gradio_api/mcp/ (bearer token), and the UI process at /gradio_api/mcp/ beside the page. The client lists
the tools with their schemas and calls them."""
from __future__ import annotations

import asyncio
import json
import types

import pytest

from tests.api.conftest import MEETING_STREAM, TOKEN


async def _session(url: str, headers: dict, work):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async with streamablehttp_client(url, headers=headers) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)


def mcp(url: str, work, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return asyncio.run(asyncio.wait_for(_session(url, headers, work), 300))


def text_of(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def test_tools_are_listed_with_schemas_and_ask_answers(api):
    f = next(x for x in api.truth.facts if x.attribute == "office" and x.project == "Pioneer")

    async def work(s):
        tools = {t.name: t for t in (await s.list_tools()).tools}
        asked = await s.call_tool("ask", {"question": f.question, "k": 5, "stream": MEETING_STREAM})
        found = await s.call_tool("search_memories", {"query": "new office Toronto", "limit": 3})
        listed = await s.call_tool("search_memories", {"stream": MEETING_STREAM, "start": 12, "end": 24})
        minutes = await s.call_tool("summarize", {"stream": MEETING_STREAM})
        bad = await s.call_tool("ask", {"question": "x", "stream": "no-such-stream"})
        return tools, asked, found, listed, minutes, bad

    tools, asked, found, listed, minutes, bad = mcp(api.url + "/mcp/gradio_api/mcp/", work)
    assert set(tools) == {"ask", "search_memories", "summarize"}, set(tools)
    props = tools["ask"].inputSchema["properties"]
    assert props["question"]["type"] == "string" and props["k"]["type"] == "integer"
    assert "question" in tools["ask"].inputSchema["required"] and props["question"].get("description")
    assert tools["ask"].description and "search" in tools["search_memories"].description.lower()
    assert not asked.isError, text_of(asked)
    out = json.loads(text_of(asked))
    assert f.answer in out["answer"] and out["citations"]
    assert all(c["stream"] == MEETING_STREAM for c in out["citations"])
    hits = json.loads(text_of(found))
    assert 0 < len(hits) <= 3 and any("Toronto" in h["evidence"] for h in hits)
    rows = json.loads(text_of(listed))
    assert rows and all(r["end"] > 12 and r["start"] < 24 for r in rows)
    assert not minutes.isError and "#" in text_of(minutes)
    assert bad.isError and "unknown stream" in text_of(bad) and "Traceback" not in text_of(bad)


def test_mcp_needs_the_token(api):
    import httpx

    r = httpx.post(api.url + "/mcp/gradio_api/mcp/", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                   headers={"Accept": "application/json, text/event-stream"}, timeout=30)
    assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized"


@pytest.fixture
def ui_server(tmp_path, api_media):
    """The UI process's server (ui.app.create + launch + the API beside the page) over a bank of its own, with a
    stand-in profile (nothing here asks or ingests)."""
    from tests.conftest import free_port
    from ui.app import create, serve_api

    port = free_port()
    args = types.SimpleNamespace(bank=str(tmp_path / "bank"), host="127.0.0.1", port=port, auth=None,
                                 media_dir=api_media.media, model=None, device="cpu", trust_remote_code=False,
                                 api_token=TOKEN)
    demo, eng, kw = create(args, profile=object())
    demo.launch(prevent_thread_lock=True, quiet=True, **kw)
    assert serve_api(demo, eng, args)
    yield types.SimpleNamespace(url=f"http://127.0.0.1:{port}", engine=eng)
    from api.app import detach

    demo.close()
    detach(eng)
    eng.close()


def test_the_ui_process_serves_the_api_and_the_tools_beside_the_page(ui_server):
    import httpx

    h = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(ui_server.url + "/", timeout=30).status_code == 200  # the page
    assert httpx.get(ui_server.url + "/v1/streams", headers=h, timeout=30).json() == []
    r = httpx.get(ui_server.url + "/v1/streams", timeout=30)
    assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized"
    r = httpx.post(ui_server.url + "/v1/ask", content=b"{oops", headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_json"
    r = httpx.get(ui_server.url + "/v1/nope", headers=h, timeout=30)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"  # the API's shape, not Gradio's
    r = httpx.put(ui_server.url + "/v1/streams", headers=h, timeout=30)
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST" and r.json()["error"]["message"]
    r = httpx.post(ui_server.url + "/v1/streams", json={"source": "../secret.txt"}, headers=h)
    assert r.status_code == 400 and "outside the media directory" in r.json()["error"]["message"]
    schema = httpx.get(ui_server.url + "/openapi.json", headers=h, timeout=30).json()
    assert schema["info"]["title"] == "Vigil API" and "/v1/chat/completions" in schema["paths"]
    assert all(p.startswith("/v1/") for p in schema["paths"])  # the API, not the page's internals
    assert httpx.get(ui_server.url + "/openapi.json", timeout=30).status_code == 401
    models = httpx.get(ui_server.url + "/v1/models", headers=h, timeout=30).json()
    assert [m["id"] for m in models["data"]] == ["vigil"]

    async def work(s):
        return {t.name for t in (await s.list_tools()).tools}

    assert mcp(ui_server.url + "/gradio_api/mcp/", work) == {"ask", "search_memories", "summarize"}


def test_the_ui_process_keeps_its_tools_behind_the_api_token(ui_server):
    """The page's MCP endpoint needs the token like /v1 (401 in the API's shape, for the streamable-HTTP and SSE
    transports and the schema), and a tool reached through Gradio's own routes checks it too; the page does not."""
    import httpx
    from gradio_client import Client

    for path, method in (("/gradio_api/mcp/", "POST"), ("/gradio_api/mcp/sse", "GET"),
                         ("/gradio_api/mcp/schema", "GET")):
        r = httpx.request(method, ui_server.url + path, timeout=30,
                          json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"} if method == "POST" else None,
                          headers={"Accept": "application/json, text/event-stream"})
        assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized", (path, r.status_code)
    assert httpx.get(ui_server.url + "/gradio_api/mcp/schema", timeout=30,
                     headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert httpx.get(ui_server.url + "/", timeout=30).status_code == 200  # the page is --auth's, not the token's
    with pytest.raises(Exception, match="API token"):
        Client(ui_server.url, verbose=False).predict(api_name="/search_memories")
    c = Client(ui_server.url, verbose=False, headers={"Authorization": f"Bearer {TOKEN}"})
    assert json.loads(c.predict(api_name="/search_memories")) == []  # an empty bank, listed
