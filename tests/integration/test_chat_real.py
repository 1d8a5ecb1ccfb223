"""/v1/chat/completions on a running `chulcheo serve` (real embedding model, the 0.5B GGUF),
called by the real `openai` client (plain and streaming) and by LangChain's ChatOpenAI, with a
group-leak check through this route: the public user never gets hr's secret."""

from __future__ import annotations

import pytest

from tests.integration.conftest import HR_SECRET

pytestmark = pytest.mark.integration

openai = pytest.importorskip("openai")
QUESTION = "연차휴가는 며칠인가요?"
SECRET_QUESTION = "2026년 임원 보수 한도는 총 얼마인가요?"


def client(live_server, key: str):
    return openai.OpenAI(base_url=live_server["url"] + "/v1", api_key=key, max_retries=0, timeout=300)


def test_the_openai_client_gets_a_cited_answer_plain_and_streamed(live_server):
    c = client(live_server, live_server["user"])
    assert [m.id for m in c.models.list()] == ["chulcheo"]
    done = c.chat.completions.create(model="chulcheo", messages=[{"role": "user", "content": QUESTION}])
    message = done.choices[0].message
    citations = message.model_extra["citations"]
    assert message.content and citations, done.model_dump_json()
    assert all(x["group"] == "public" for x in citations) and citations[0]["source"].endswith((".md", ".txt", ".html"))
    assert f"[{citations[0]['n']}]" in message.content and done.usage.total_tokens > 0
    chunks = list(c.chat.completions.create(model="chulcheo", stream=True, stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": QUESTION}]))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    (last,) = [ch for ch in chunks if ch.choices and ch.choices[0].finish_reason == "stop"]
    assert text.strip() and last.model_extra["citations"] and chunks[-1].usage.completion_tokens > 0


def test_no_other_groups_text_comes_back_through_chat(live_server):
    secret = HR_SECRET.split("총 ")[1].split(" ")[0]  # "48억"
    c = client(live_server, live_server["user"])
    plain = c.chat.completions.create(model="chulcheo", messages=[{"role": "user", "content": SECRET_QUESTION}])
    assert secret not in plain.model_dump_json()
    streamed = "".join(ch.model_dump_json() for ch in c.chat.completions.create(
        model="chulcheo", stream=True, messages=[{"role": "user", "content": SECRET_QUESTION}]))
    assert secret not in streamed
    admin = client(live_server, live_server["admin"]).chat.completions.create(
        model="chulcheo", messages=[{"role": "user", "content": SECRET_QUESTION}])
    assert any(x["group"] == "hr" for x in admin.model_extra["citations"]), "control: the admin of * finds hr's"
    with pytest.raises(openai.AuthenticationError):
        client(live_server, "chk_not_a_key").chat.completions.create(
            model="chulcheo", messages=[{"role": "user", "content": QUESTION}])


def test_langchain_chat_openai_talks_to_chulcheo(live_server):
    langchain_openai = pytest.importorskip("langchain_openai")
    llm = langchain_openai.ChatOpenAI(base_url=live_server["url"] + "/v1", api_key=live_server["user"],
                                      model="chulcheo", max_retries=0, timeout=300)
    reply = llm.invoke(QUESTION)
    assert reply.content and "[1]" in reply.content, reply
    pieces = [chunk.content for chunk in llm.stream(QUESTION)]
    assert "".join(pieces).strip()
