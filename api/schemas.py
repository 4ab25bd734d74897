"""The /v1 API's wire shapes as pydantic models: requests (strict JSON types: a string where a number belongs is
a 422, never coerced) and responses (what /openapi.json documents and schemathesis checks).

Names follow DESIGN.md's contracts (Answer, citations, usage) and issue 11's (streams, memories, summaries);
the OpenAI-compatible shapes follow Chat Completions' wire format.
"""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

StreamState = Literal["starting", "connecting", "running", "finished", "stopped", "error"]  # engine.streams.STATES

FiniteFloat = Field(allow_inf_nan=False)


class Request(BaseModel):
    """A request body: JSON types are checked strictly; unknown fields are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")


class Response(BaseModel):
    model_config = ConfigDict(extra="allow")


# ---- errors -------------------------------------------------------------------------------------------

class ErrorDetail(BaseModel):
    message: str = Field(description="one line for a person")
    type: str = Field(description="invalid | not_found | conflict | unavailable | failed | unauthorized | "
                                  "invalid_json | validation | method_not_allowed | internal")
    param: Optional[str] = Field(None, description="the request field at fault, when there is one")
    code: Optional[str] = None


class ErrorBody(BaseModel):
    """Every error, with any 4xx status (and 503 when a model cannot load): one line in error.message."""

    error: ErrorDetail


# ---- streams ------------------------------------------------------------------------------------------

class StreamCreate(Request):
    source: str = Field(min_length=1, max_length=2048,
                        description="a file name inside the server's media directory, rtsp://… or webcam:N")
    stream: Optional[str] = Field(None, max_length=120, description="stream id (default: from the source)")
    realtime: bool = Field(False, description="replay a file at its real speed")
    meeting: bool = Field(False, description="mark the stream as a meeting (listed for minutes)")


class Stream(Response):
    stream: str
    source: str = Field(description="the source without credentials")
    state: StreamState
    frames_in: int = 0
    memories: int = 0
    last_t: float = Field(0.0, description="media seconds reached")
    error: Optional[str] = None
    kind: Optional[str] = Field(None, description="file | rtsp | webcam")
    meeting: bool = False
    realtime: bool = False


# ---- memories -----------------------------------------------------------------------------------------

class Evidence(BaseModel):
    asr: str = Field("", description="speech transcript")
    ocr: str = Field("", description="on-screen text")
    tags: str = Field("", description="what the picture shows")


class Memory(Response):
    id: int
    stream: str
    start: float = Field(description="media seconds")
    end: float
    evidence: Evidence
    thumbnail: Optional[str] = Field(None, description="the thumbnail's path on the server; over HTTP: "
                                                       "GET /v1/memories/{id}/thumbnail")


# ---- ask ----------------------------------------------------------------------------------------------

class AskRequest(Request):
    question: str = Field("", max_length=4000)
    k: int = Field(5, ge=1, le=100, description="memories to retrieve")
    streams: Optional[list[str]] = Field(None, max_length=100, description="only these streams")
    start: Optional[float] = Field(None, ge=0, allow_inf_nan=False, description="media seconds: from")
    end: Optional[float] = Field(None, ge=0, allow_inf_nan=False, description="media seconds: to")


class Citation(Response):
    id: int
    stream: str
    start: float
    end: float
    score: float
    evidence: str = ""
    thumbnail: Optional[str] = Field(None, description="the thumbnail's path on the server; over HTTP: "
                                                       "GET /v1/memories/{id}/thumbnail")
    tokens: int = Field(0, description="carrier tokens of this memory in the answerer's prompt")


class Usage(Response):
    prompt_tokens: int = 0
    visual_tokens: int = Field(0, description="the sum of the citations' tokens")
    completion_tokens: int = 0


class Answer(Response):
    """DESIGN.md's Answer. Streamed (Accept: text/event-stream): `data: {"type": "text", "text"}` per piece, then
    `data: {"type": "answer", "answered", …this object…}`, then `data: [DONE]`; a failure midway is
    `data: {"type": "error", "error": "…"}`."""

    answer: str
    citations: list[Citation]
    usage: Usage
    latency: dict[str, Any] = Field(default_factory=dict, description="load_ms, retrieve_ms, first_token_ms, total_ms")


# ---- summaries ----------------------------------------------------------------------------------------

class SummaryRequest(Request):
    stream: Optional[str] = Field(None, max_length=120, description="the stream (default: the bank's only one)")


class Summary(Response):
    """Minutes. Streamed (Accept: text/event-stream): `data: {"type": "progress", "fraction", "what"}` events,
    then `data: {"type": "summary", …this object…}`, then `data: [DONE]`."""

    stream: str
    markdown: str
    minutes: dict[str, Any] = Field(description="the same minutes as structured JSON")


# ---- service ------------------------------------------------------------------------------------------

class Health(Response):
    ok: bool
    bank: str
    pid: int
    memories: int


# ---- OpenAI-compatible --------------------------------------------------------------------------------

class ModelCard(Response):
    id: str = Field(description='"vigil" (the whole bank) or "vigil:<stream>" (one stream)')
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "vigil"


class ModelList(Response):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: Optional[str] = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Union[str, list[ContentPart], None] = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's Chat Completions request. Sampling fields (temperature, max_tokens, …) are accepted and ignored;
    vigil_k, vigil_start, vigil_end (extra_body) narrow the retrieval."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=300)
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    stream_options: Optional[StreamOptions] = None
    vigil_k: int = Field(5, ge=1, le=100)
    vigil_start: Optional[float] = Field(None, ge=0, allow_inf_nan=False)
    vigil_end: Optional[float] = Field(None, ge=0, allow_inf_nan=False)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] = "stop"


class CompletionUsage(Response):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int = Field(description="prompt_tokens + completion_tokens")
    visual_tokens: int = Field(0, description="carrier tokens among the prompt tokens")


class ChatCompletion(Response):
    """A chat.completion; the answer's text cites moments as [hh:mm:ss] and `citations` lists them.
    Streamed: `data: {chat.completion.chunk}` lines (choices[0].delta.content), the last chunk with
    finish_reason and `citations`, a usage chunk when stream_options.include_usage, then `data: [DONE]`."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    citations: list[Citation] = Field(default_factory=list)
