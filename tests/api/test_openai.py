"""The official `openai` package against /v1/models and /v1/chat/completions (plain and streaming): the planted
fact of the generated meeting is in the answer, the answer cites [hh:mm:ss], citations ride along, usage adds up."""
from __future__ import annotations

import re

import pytest

from tests.api.conftest import MEETING_STREAM

STAMP = re.compile(r"\[(\d\d):(\d\d):(\d\d)")


@pytest.fixture(scope="module")
def oa(api):
    import openai

    client = openai.OpenAI(base_url=api.url + "/v1", api_key=api.token, max_retries=0, timeout=300)
    yield client
    client.close()


def office(api):
    return next(f for f in api.truth.facts if f.attribute == "office" and f.project == "Pioneer")


def stamps(text: str) -> list[float]:
    return [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in STAMP.findall(text)]


def test_models_name_the_bank_and_each_stream(oa, api):
    ids = [m.id for m in oa.models.list().data]
    assert ids[0] == "vigil" and f"vigil:{MEETING_STREAM}" in ids
    assert all(m.object == "model" for m in oa.models.list().data)


def test_chat_completion_answers_with_the_planted_fact(oa, api):
    f = office(api)
    resp = oa.chat.completions.create(model=f"vigil:{MEETING_STREAM}",
                                      messages=[{"role": "system", "content": "Be brief."},
                                                {"role": "user", "content": f.question}])
    assert resp.object == "chat.completion" and resp.model == f"vigil:{MEETING_STREAM}"
    msg = resp.choices[0].message
    assert msg.role == "assistant" and resp.choices[0].finish_reason == "stop"
    assert f.answer in msg.content, msg.content
    cited = stamps(msg.content)
    assert cited and any(f.t0 - 2 <= t <= f.t1 for t in cited), msg.content  # the fact's moment, [hh:mm:ss]
    citations = resp.model_extra["citations"]
    assert citations and all(c["stream"] == MEETING_STREAM for c in citations)
    assert any(c["end"] > f.t0 and c["start"] < f.t1 for c in citations)
    u = resp.usage
    assert u.prompt_tokens >= 0 and u.completion_tokens >= 0 and u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert u.model_extra["visual_tokens"] == sum(c["tokens"] for c in citations)
    # the same question through /v1/ask gives the same answer and citations (one engine, one ask path)
    same = api.client.post("/v1/ask", json={"question": f.question, "streams": [MEETING_STREAM]}).json()
    assert msg.content.startswith(same["answer"]) and [c["id"] for c in same["citations"]] == [c["id"] for c in citations]
    assert same["usage"]["prompt_tokens"] == u.prompt_tokens  # (how far the LLM ran before a check stopped it varies)


def test_streaming_chunks_carry_the_same_answer_citations_and_usage(oa, api):
    f = office(api)
    kw = dict(model="vigil", messages=[{"role": "user", "content": f.question}])
    plain = oa.chat.completions.create(**kw)
    chunks = list(oa.chat.completions.create(**kw, stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content and f.answer in text
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "stop"
    assert [c["id"] for c in finals[0].model_extra["citations"]] == [c["id"] for c in plain.model_extra["citations"]]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert last.usage.prompt_tokens == plain.usage.prompt_tokens
    assert last.usage.model_extra["visual_tokens"] == sum(c["tokens"] for c in finals[0].model_extra["citations"])
    without = list(oa.chat.completions.create(**kw, stream=True))
    assert all(c.usage is None for c in without)


def test_history_and_extra_body(oa, api):
    f = office(api)
    resp = oa.chat.completions.create(
        model="vigil", messages=[{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi."},
                                 {"role": "user", "content": [{"type": "text", "text": f.question}]}],
        extra_body={"vigil_k": 3, "vigil_start": f.t0, "vigil_end": f.t1})
    assert f.answer in resp.choices[0].message.content
    cites = resp.model_extra["citations"]
    assert 0 < len(cites) <= 3 and all(c["end"] > f.t0 and c["start"] < f.t1 for c in cites)


def test_openai_errors_are_openai_shaped(oa):
    import openai

    with pytest.raises(openai.NotFoundError) as e:
        oa.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert "unknown model" in e.value.message and e.value.body["param"] == "model"
    with pytest.raises(openai.UnprocessableEntityError):
        oa.chat.completions.create(model="vigil", messages=[])
    bad = openai.OpenAI(base_url=oa.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
