"""LLM backends: the openai path against a real HTTP server on loopback, none, and the registry."""
from __future__ import annotations

import socket
import time

import pytest

from wordsight.text import LLMError, NoLLM, OpenAIChat, get_llm


def test_openai_backend_speaks_chat_completions(chat_server, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "sk-test-123")
    llm = get_llm("openai", base_url=chat_server.url, model="tiny-chat", api_key_env="TEST_LLM_KEY", workers=2)
    answers = llm.generate(["Describe a sandal.", "Describe a bag."], max_new_tokens=20, temperature=0.5,
                           seed=3, system="Be brief.")
    assert answers == ["A short answer to: Describe a sandal.", "A short answer to: Describe a bag."]
    bodies = sorted(chat_server.requests, key=lambda b: b["messages"][-1]["content"])
    assert [b["messages"] for b in bodies] == [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Describe a bag."}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Describe a sandal."}],
    ]
    assert {b["model"] for b in bodies} == {"tiny-chat"}
    assert {b["max_tokens"] for b in bodies} == {20} and {b["temperature"] for b in bodies} == {0.5}
    # one seed per prompt, derived from the call's seed: the same call asks the same questions
    assert sorted(b["seed"] for b in bodies) == [3 * 100_003, 3 * 100_003 + 1]
    assert all(h.get("Authorization") == "Bearer sk-test-123" for h in chat_server.headers)


def test_openai_backend_without_key_sends_no_authorization(chat_server, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    llm = OpenAIChat(base_url=chat_server.url + "/", model="m", api_key_env="NO_SUCH_KEY_VAR")
    assert llm.url == chat_server.url + "/chat/completions"
    assert llm.generate(["hi"]) == ["A short answer to: hi"]
    assert "Authorization" not in chat_server.headers[0]


def test_openai_backend_retries_server_errors_with_backoff(chat_server):
    chat_server.mode, chat_server.fail = "flaky", 2
    llm = OpenAIChat(base_url=chat_server.url, model="m", retries=3, backoff=0.05, workers=1)
    t = time.perf_counter()
    assert llm.generate(["hello"]) == ["A short answer to: hello"]
    assert len(chat_server.requests) == 3  # two 500s, then the answer
    assert time.perf_counter() - t >= 0.05 + 0.1  # backoff 0.05 then 0.1 s


def test_openai_backend_names_the_endpoint_when_it_is_down(chat_server):
    chat_server.mode = "down"
    llm = OpenAIChat(base_url=chat_server.url, model="m", retries=2, backoff=0.01)
    with pytest.raises(LLMError) as e:
        llm.generate(["hello"])
    msg = str(e.value)
    assert chat_server.url + "/chat/completions" in msg and "HTTP 503" in msg and "3 attempt(s)" in msg
    assert len(chat_server.requests) == 3


def test_openai_backend_rejects_garbage_and_does_not_retry_client_errors(chat_server):
    llm = OpenAIChat(base_url=chat_server.url, model="m", retries=3, backoff=0.01)
    chat_server.mode = "garbage"
    with pytest.raises(LLMError, match=r"127\.0\.0\.1.*not JSON.*<html>"):
        llm.generate(["x"])
    chat_server.mode = "nochoices"
    with pytest.raises(LLMError, match=r"no choices\[0\]\.message\.content"):
        llm.generate(["x"])
    chat_server.mode = "unauthorised"
    chat_server.requests.clear()
    with pytest.raises(LLMError, match=r"refused the request \(HTTP 401.*invalid api key"):
        llm.generate(["x"])
    assert len(chat_server.requests) == 1  # a 401 is not retried


def test_openai_backend_timeout_and_connection_refused(chat_server):
    chat_server.mode, chat_server.delay = "slow", 1.0
    llm = OpenAIChat(base_url=chat_server.url, model="m", timeout=0.2, retries=1, backoff=0.01)
    with pytest.raises(LLMError, match=r"no answer within 0\.2 s"):
        llm.generate(["x"])
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = OpenAIChat(base_url=f"http://127.0.0.1:{port}/v1", model="m", retries=1, backoff=0.01)
    with pytest.raises(LLMError, match=rf"127\.0\.0\.1:{port}/v1/chat/completions: .*cannot connect"):
        closed.generate(["x"])


def test_openai_backend_reads_url_and_model_from_the_environment(monkeypatch):
    monkeypatch.setenv("WORDSIGHT_LLM_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("WORDSIGHT_LLM_MODEL", "llama3")
    llm = get_llm("openai")
    assert llm.url == "http://127.0.0.1:9/v1/chat/completions" and llm.model == "llama3"
    assert llm.describe() == "openai:llama3@http://127.0.0.1:9/v1/chat/completions"


def test_none_backend_and_registry():
    assert get_llm("none").generate(["a", "b"]) == ["", ""]
    assert isinstance(get_llm(None), NoLLM)
    backend = NoLLM()
    assert get_llm(backend) is backend
    with pytest.raises(ValueError, match="unknown LLM backend 'gpt5'.*local, openai, none"):
        get_llm("gpt5")
    with pytest.raises(TypeError, match="generate"):
        get_llm(object())
