"""The README's examples as a user would type them: mypy --strict must accept this file."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Literal

import llmstreamer
from llmstreamer import Event, Message, StreamCallbacks, Usage
from llmstreamer.provider import HTTPStreamer, Options, ProviderSpec, loads
from llmstreamer.testing import CallbackRecorder, FakeLLMServer, Reply, instant_retries


def quick_start() -> None:
    s = llmstreamer.streamer("openai:gpt-4o-mini")
    handle = s.stream_chat(
        [Message.user("Write a haiku about rivers")],
        StreamCallbacks(
            on_content=lambda text: print(text, end="", flush=True),
            on_finish=lambda response: print(f"\n[{response.finish_reason}, {response.usage}]"),
            on_error=lambda error: print(f"\nfailed: {error}"),
        ),
        temperature=0.2,
    )
    handle.wait()
    print(handle.result().text)
    for event in s.stream([Message.user("Hi")]):
        if event.type == "content":
            print(event.text, end="")
    print(s.chat([Message.user("Hi")]).text)
    chat = llmstreamer.Conversation(s)
    chat.send("My name is Ada.").wait()
    chat.send("What is my name?", StreamCallbacks(on_content=print)).wait()
    saved: list[dict[str, Any]] = chat.to_list()
    llmstreamer.Conversation.from_list(s, saved)


def providers_and_pools() -> None:
    for info in llmstreamer.list_providers():
        print(info.name, info.configured, " or ".join(info.key_env))
    pool = ThreadPoolExecutor(max_workers=16)
    s = llmstreamer.streamer("anthropic:claude-sonnet-4-5", executor=pool, timeout=30)
    try:
        s.chat([Message.user("Hi")])
    except llmstreamer.RateLimitError as err:
        print(err.retry_after, err.partial.text if err.partial is not None else "")
    print(s.embed(["cat", "dog"]).vectors[0][:3])


@llmstreamer.tool
def weather(city: str, unit: Literal["C", "F"] = "C") -> dict[str, Any]:
    """Current weather in a city.

    Args:
        city: The city's name.
        unit: Temperature unit.
    """
    return {"city": city, "temp": 21}


def tools() -> None:
    s = llmstreamer.streamer("eliza")
    response = s.chat([Message.user("Weather in Paris?")], tools=[weather])
    for call in response.tool_calls:
        print(call.name, dict(call.arguments))


class EchoStreamer(HTTPStreamer):
    """The README's plug-in example."""

    spec = ProviderSpec(name="echo", default_model="echo-1", chat_path="/chat", framing="ndjson")

    def build_body(self, messages: tuple[Message, ...], options: Options) -> dict[str, Any]:
        return {"model": self.model, "text": messages[-1].text}

    def new_decoder(self) -> Any:
        def decode(event_type: str, data: str) -> Iterator[Event]:
            obj = loads(data, self.provider)
            if obj.get("done"):
                yield Event("usage", data=Usage(obj["input"], obj["output"]))
                yield Event("stop", "stop")
                yield Event("done")
            else:
                yield Event("content", obj["text"])

        return decode


def testing() -> None:
    with FakeLLMServer() as server:
        server.add(Reply(text="Hello there"))
        s = llmstreamer.OpenAIStreamer(api_key="test", base_url=server.base_url("openai"))
        rec = CallbackRecorder()
        with instant_retries():
            s.stream_chat([Message.user("Hi")], rec).wait(10)
        assert rec.calls[-1] == ("finish", "Hello there")
