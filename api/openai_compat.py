"""OpenAI-compatible routes: GET /v1/models and POST /v1/chat/completions over the Engine's one ask path.

The model id names what is asked: "vigil" is the whole bank, "vigil:<stream>" one stream. The last user message
is the question, earlier user/assistant turns its history. The answer's text cites moments as [hh:mm:ss] (a
"Sources:" line is added when the answerer's text has no stamp), and the citations ride in an extra field
`citations` (the last chunk's, when streamed). `usage` has OpenAI's three counts plus `visual_tokens`.
Extra request fields (extra_body): vigil_k, vigil_start, vigil_end. Sampling fields are accepted and ignored.
"""
from __future__ import annotations

import re
import time
import uuid
from typing import Iterator, Optional

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from engine import EngineError
from engine.timefmt import hms

from .http import SSE_HEADERS, V1Route, error_response, sse, sse_guard
from .schemas import ChatCompletion, ChatCompletionRequest, ModelList

BANK_MODEL = "vigil"
STAMP_RE = re.compile(r"\[\d\d:\d\d:\d\d")
EVENTS = {"text/event-stream": {"schema": {"type": "string"},
                                "example": 'data: {"object": "chat.completion.chunk", …}'}}


def model_ids(engine) -> list[str]:
    return [BANK_MODEL] + [f"{BANK_MODEL}:{s}" for s in engine.stream_ids()]


def streams_of(engine, model: str) -> Optional[list[str]]:
    """The streams a model id asks (None: the whole bank); EngineError not_found for an unknown id."""
    if model == BANK_MODEL:
        return None
    if model.startswith(BANK_MODEL + ":"):
        stream = model[len(BANK_MODEL) + 1:]
        if stream in engine.stream_ids():
            return [stream]
    raise EngineError(f"unknown model {model!r}: use {BANK_MODEL!r} or {BANK_MODEL}:<stream> (GET /v1/models)",
                      "not_found")


def text_of(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return " ".join(p.text for p in content if p.type in ("text", "input_text") and p.text)


def question_and_history(messages) -> tuple[str, list[dict]]:
    turns = [{"role": m.role, "content": text_of(m.content)} for m in messages if m.role in ("user", "assistant")]
    last = next((i for i in range(len(turns) - 1, -1, -1) if turns[i]["role"] == "user"), None)
    if last is None or not turns[last]["content"].strip():
        raise EngineError("the messages need a user message with text (the question)")
    return turns[last]["content"], [t for t in turns[:last] if t["content"]]


def sources_line(text: str, citations: list, most: int = 3) -> str:
    """' Sources: [hh:mm:ss] stream; …' for the best citations when the text cites no moment itself."""
    if not citations or STAMP_RE.search(text):
        return ""
    best = sorted(citations, key=lambda c: -float(c.get("score") or 0))[:most]
    best.sort(key=lambda c: (c["stream"], c["start"]))
    return "\n\nSources: " + "; ".join(f"[{hms(c['start'])}] {c['stream']}" for c in best)


def usage_of(answer) -> dict:
    u = answer.usage
    return {"prompt_tokens": u["prompt_tokens"], "completion_tokens": u["completion_tokens"],
            "total_tokens": u["prompt_tokens"] + u["completion_tokens"], "visual_tokens": u["visual_tokens"]}


def router(engine) -> APIRouter:
    r = APIRouter(route_class=V1Route, tags=["openai"])
    created = int(time.time())

    @r.get("/models", response_model=ModelList)
    def models():
        """The bank ("vigil") and each of its streams ("vigil:<stream>") as models."""
        return {"object": "list", "data": [{"id": m, "object": "model", "created": created, "owned_by": "vigil"}
                                           for m in model_ids(engine)]}

    @r.post("/chat/completions", response_model=ChatCompletion, responses={200: {"content": EVENTS}})
    def chat_completions(body: ChatCompletionRequest):
        """OpenAI Chat Completions over the bank (plain, or streamed chunks with `stream: true`)."""
        try:
            streams = streams_of(engine, body.model)
        except EngineError as e:
            return error_response(404, str(e), "invalid_request_error", param="model")
        question, history = question_and_history(body.messages)
        answer = engine.ask(question, k=body.vigil_k, streams=streams, start=body.vigil_start, end=body.vigil_end,
                            history=history)
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        now = int(time.time())
        if body.stream:
            include = bool(body.stream_options and body.stream_options.include_usage)
            chunks = _chunks(answer, cid, now, body.model, include)
            return StreamingResponse(sse_guard(chunks, answer.close), media_type="text/event-stream",
                                     headers=SSE_HEADERS)
        try:
            answer.collect()
        finally:
            answer.close()
        text = answer.text + sources_line(answer.text, answer.citations)
        return JSONResponse({"id": cid, "object": "chat.completion", "created": now, "model": body.model,
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                          "finish_reason": "stop"}],
                             "usage": usage_of(answer), "citations": answer.citations})

    return r


def _chunks(answer, cid: str, created: int, model: str, include_usage: bool) -> Iterator[str]:
    def chunk(delta: dict, finish: Optional[str] = None, **extra) -> str:
        return sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    yield chunk({"role": "assistant", "content": ""})
    for piece in answer:
        if piece:
            yield chunk({"content": piece})
    tail = sources_line(answer.text, answer.citations)
    if tail:
        yield chunk({"content": tail})
    yield chunk({}, "stop", citations=answer.citations)
    if include_usage:
        yield sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [],
                   "usage": usage_of(answer)})
