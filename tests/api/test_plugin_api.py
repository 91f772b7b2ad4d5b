"""The provider API: a third-party provider built only from llmstreamer.provider's public names."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable, Iterator

import pytest

from llmstreamer import Event, Message, StreamCallbacks, Usage
from llmstreamer.provider import HTTPStreamer, Options, ProviderSpec, RoundContext, Streamer, loads
from llmstreamer.testing import CallbackRecorder, FakeLLMServer, Reply


class TinyChat(HTTPStreamer):
    """A plug-in speaking the Chat Completions wire in twenty lines: body out, events in."""

    spec = ProviderSpec(name="tinychat", default_model="tiny-1", supported_options={"temperature"}, terminal="data: [DONE]")

    def build_body(self, messages: tuple[Message, ...], options: Options) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "stream": True, "stream_options": {"include_usage": True}}
        body["messages"] = [{"role": m.role, "content": m.text} for m in messages]
        if options.temperature is not None:
            body["temperature"] = options.temperature
        return body

    def new_decoder(self) -> Callable[[str, str], Iterable[Event]]:
        def decode(event_type: str, data: str) -> Iterable[Event]:
            if data == "[DONE]":
                return [Event("done")]
            chunk = loads(data, self.provider)
            out = [Event("content", c["delta"]["content"]) for c in chunk["choices"] if c["delta"].get("content")]
            out += [Event("stop", c["finish_reason"]) for c in chunk["choices"] if c.get("finish_reason")]
            if chunk.get("usage"):
                out.append(Event("usage", data=Usage(chunk["usage"]["prompt_tokens"], chunk["usage"]["completion_tokens"])))
            return out

        return decode


def test_a_third_party_http_provider_streams_through_the_engine(server: FakeLLMServer) -> None:
    """A plug-in implementing build_body and new_decoder gets threads, callbacks and the final response."""
    server.add(Reply(text=["Hel", "lo"]))
    s = TinyChat(api_key="sk-plugin-key", base_url=server.base_url("openai"), retry=0)
    rec = CallbackRecorder()
    assert s.stream_chat([Message.user("Hi")], rec, temperature=0.5).wait(10)
    assert rec.calls == [("content", "Hel"), ("content", "lo"), ("usage", 10, 2), ("finish", "Hello")]
    sent = server.requests[-1]
    assert sent.path.endswith("/chat/completions") and sent.headers["authorization"] == "Bearer sk-plugin-key"
    assert sent.json["temperature"] == 0.5 and sent.json["messages"] == [{"role": "user", "content": "Hi"}]
    assert rec.response is not None and (rec.response.provider, rec.response.model) == ("tinychat", "tiny-1")


def test_a_plugin_option_it_does_not_list_is_refused_before_sending(server: FakeLLMServer) -> None:
    """The spec's supported_options decide: an unlisted option is a ConfigurationError, nothing is sent."""
    from llmstreamer import ConfigurationError

    s = TinyChat(base_url=server.base_url("openai"))
    with pytest.raises(ConfigurationError, match="tinychat does not support the option 'top_k'"):
        s.stream_chat([Message.user("Hi")], top_k=3)
    assert server.requests == []


class Countdown(Streamer):
    """A plug-in without HTTP: stream_round yields the events itself, the state counts turns."""

    spec = ProviderSpec(name="countdown", default_model="c-1")

    def open_state(self) -> list[int]:
        return []

    def stream_round(self, messages: tuple[Message, ...], options: Options, context: RoundContext) -> Iterator[Event]:
        turns = context.state if context.state is not None else []
        turns.append(len(messages))
        yield Event("content", f"turn {len(turns)}")
        yield Event("stop", "stop")
        yield Event("done")


def test_a_plugin_keeps_state_across_a_conversations_turns() -> None:
    """open_state's value reaches every stream_round of one Conversation as context.state."""
    from llmstreamer import Conversation

    chat = Conversation(Countdown())
    texts = [chat.send("a").result(5).text, chat.send("b").result(5).text]
    assert texts == ["turn 1", "turn 2"]
    assert Countdown().chat([Message.user("x")]).text == "turn 1"  # a bare call has no state


def test_an_old_style_plugin_with_class_attributes_still_works_and_warns() -> None:
    """Provider facts as class attributes (the first plug-in interface) become the spec, with a DeprecationWarning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        class Legacy(Streamer):
            provider = "legacy"
            default_model = "l-1"

            def stream_round(self, messages: Any, options: Any, context: Any) -> Iterator[Event]:
                yield Event("content", "ok")
                yield Event("stop", "stop")
                yield Event("done")

    assert [w.category for w in caught] == [DeprecationWarning]
    assert Legacy.spec == ProviderSpec(name="legacy", default_model="l-1")
    done: list[str] = []
    Legacy().stream_chat([Message.user("x")], StreamCallbacks(on_finish=lambda r: done.append(r.provider))).wait(5)
    assert done == ["legacy"]


def test_the_old_base_module_still_imports_with_a_warning() -> None:
    """llmstreamer.base (deprecated for one release) gives the same classes as llmstreamer.provider."""
    import importlib
    import sys

    sys.modules.pop("llmstreamer.base", None)
    with pytest.deprecated_call():
        base = importlib.import_module("llmstreamer.base")
    assert (base.Streamer, base.HTTPStreamer) == (Streamer, HTTPStreamer)
