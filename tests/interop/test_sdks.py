"""Where the official openai and anthropic SDKs answer differently from llmstreamer, on the same
servers: each test pins the SDK's answer and says which one is right, and why."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from llmstreamer import Message

from .servers import ServerProcess
from .test_llamacpp import _streamer
from .test_llmock import TEXT, _cut
from .tinyllama import ANSWER


def _openai_sdk(llmock: ServerProcess) -> Any:
    import openai

    return openai.OpenAI(base_url=llmock.url + "/v1", api_key="interop-key", max_retries=0, timeout=30)


def _anthropic_sdk(llmock: ServerProcess) -> Any:
    import anthropic

    return anthropic.Anthropic(base_url=llmock.url + "/anthropic", api_key="interop-key", max_retries=0, timeout=30)


def test_official_sdks_accept_a_truncated_stream(llmock: ServerProcess, scenario: Any) -> None:
    """The openai and anthropic SDKs end a truncated stream without an error (llmstreamer: IncompleteStreamError).

    llmstreamer is right. OpenAI's streaming reference gives the last chunk of every choice a
    finish_reason and ends the stream with ``data: [DONE]``; Anthropic's streaming guide ends
    every message with ``message_delta`` (its stop_reason) and ``message_stop``. A stream with
    neither was cut, and the SDKs hand the application half an answer as if it were whole.
    """
    scenario(
        {"type": "reply", "text": TEXT}, {"type": "stream_fault", "kind": "truncate", "after_chunks": _cut("openai")}
    )
    chunks = list(
        _openai_sdk(llmock).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "one two "
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, None]

    scenario(
        {"type": "reply", "text": TEXT}, {"type": "stream_fault", "kind": "truncate", "after_chunks": _cut("anthropic")}
    )
    with _anthropic_sdk(llmock).messages.stream(
        model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        assert "".join(stream.text_stream) == "one two "
        assert stream.get_final_message().stop_reason is None


def test_official_sdks_leak_json_errors_on_a_malformed_chunk(llmock: ServerProcess, scenario: Any) -> None:
    """On a chunk that is not JSON the SDKs raise json.JSONDecodeError, outside their own error classes
    (llmstreamer: StreamError, an LLMStreamError carrying the partial answer).

    llmstreamer is right: both SDKs document that their errors derive from ``openai.APIError`` /
    ``anthropic.APIError``, so an application that catches those (as their READMEs show) is
    crashed by a raw ``JSONDecodeError`` and loses the text received so far.
    """
    import anthropic
    import openai

    scenario(
        {"type": "reply", "text": TEXT}, {"type": "stream_fault", "kind": "malformed", "after_chunks": _cut("openai")}
    )
    with pytest.raises(json.JSONDecodeError) as caught:
        list(
            _openai_sdk(llmock).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], stream=True
            )
        )
    assert not isinstance(caught.value, openai.APIError)

    scenario(
        {"type": "reply", "text": TEXT},
        {"type": "stream_fault", "kind": "malformed", "after_chunks": _cut("anthropic")},
    )
    sdk = _anthropic_sdk(llmock)
    with (
        pytest.raises(json.JSONDecodeError) as caught,
        sdk.messages.stream(
            model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
        ) as stream,
    ):
        list(stream.text_stream)
    assert not isinstance(caught.value, anthropic.APIError)


def test_max_tokens_with_the_openai_sdk(llama: ServerProcess) -> None:
    """The openai SDK's max_completion_tokens is ignored by the server: the whole answer comes back.

    llmstreamer is right to send max_tokens here: OpenAI's API reference deprecates max_tokens in
    favour of max_completion_tokens for api.openai.com only, and llama-cpp-python's server (like
    vLLM's, LM Studio's and most OpenAI-compatible servers) documents and reads max_tokens. The SDK
    sends what it is given, so a limit written the current OpenAI way is silently lost.
    """
    import openai

    client = openai.OpenAI(base_url=llama.url + "/v1", api_key="interop-key", max_retries=0, timeout=30)
    stream = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Say hi"}], stream=True, max_completion_tokens=3
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert (text, chunks[-1].choices[0].finish_reason) == (ANSWER, "stop")


def test_openai_sdk_accepts_an_interrupted_stream(llama: ServerProcess) -> None:
    """The openai SDK ends an interrupted stream without an error and with no finish_reason.

    llmstreamer raises IncompleteStreamError for the same stream (test above). llmstreamer is
    right: OpenAI's streaming reference gives the last chunk of every choice a finish_reason
    ("stop", "length", "tool_calls", ...); ``[DONE]`` only closes the event stream. A stream that
    closes without one was cut, here by the server serving another request.
    """
    import openai

    client = openai.OpenAI(base_url=llama.url + "/v1", api_key="interop-key", max_retries=0, timeout=30)
    flowing, finished = threading.Event(), threading.Event()
    seen: list[Any] = []

    def consume() -> None:
        try:
            for chunk in client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "Count!"}], stream=True
            ):
                seen.append(chunk)
                if chunk.choices and chunk.choices[0].delta.content:
                    flowing.set()
        except Exception as exc:
            seen.append(exc)
        finally:
            flowing.set()
            finished.set()

    thread = threading.Thread(target=consume, name="openai-sdk-consumer")
    thread.start()
    assert flowing.wait(60)
    assert _streamer(llama).chat([Message.user("Say hi")]).text == ANSWER
    assert finished.wait(60)
    thread.join(10)
    assert not any(isinstance(item, Exception) for item in seen)
    assert [c.choices[0].finish_reason for c in seen if c.choices] == [None] * len(seen)
