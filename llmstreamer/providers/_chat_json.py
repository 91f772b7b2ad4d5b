"""Chat Completions without streaming: one JSON answer, fired through the usual events.

For servers that do not stream (PixiGPT: the ``no_stream`` quirk), a round is one POST without
``stream``; its ``chat.completion`` answer becomes the same normalized events a stream would
give (model, thinking from ``choices[0].reasoning_content`` or the message's, the text, whole
tool calls, the finish reason, usage, done), so callbacks cannot tell the difference except
that the text arrives in one piece. A server that streams anyway (``text/event-stream``) is
read as a stream.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterator

from .._cancel import CancelToken
from .._wire_errors import error_from_event, request_id_of
from ..errors import StreamError
from ..models import Event, Message
from ..provider import loads
from ._chat_completions import FINISH_REASONS, usage_of

if TYPE_CHECKING:
    from .._options import Options
    from ._chat_completions import ChatCompletionsStreamer

__all__ = ["completion_events", "json_round"]


def completion_events(obj: Any, provider: str) -> list[Event]:
    """The events of one ``chat.completion`` object, ending with ``done``."""
    if not isinstance(obj, dict):
        raise StreamError(f"the answer is not a chat.completion object: {str(obj)[:120]!r}", provider=provider)
    if obj.get("error") or obj.get("object") == "error":
        raise error_from_event(obj, provider=provider)
    choices = obj.get("choices")
    if not choices or not isinstance(choices, list):
        raise StreamError("the answer has no choices", provider=provider)
    choice = choices[0]
    message = choice.get("message") or {}
    events = [Event("meta", data={"model": obj.get("model") or ""})]
    thinking = choice.get("reasoning_content") or message.get("reasoning_content") or message.get("reasoning")
    if isinstance(thinking, str) and thinking:
        events.append(Event("thinking", thinking))
    content = message.get("content")
    if isinstance(content, str) and content:
        events.append(Event("content", content))
    for index, call in enumerate(message.get("tool_calls") or ()):
        fn = call.get("function") or {}
        arguments = fn.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        events.append(Event("tool_call_delta", data=(index, call.get("id"), fn.get("name"), arguments or "")))
    reason = choice.get("finish_reason")
    events.append(Event("stop", FINISH_REASONS.get(reason, "stop") if reason else "stop"))
    usage = obj.get("usage")
    if usage:
        events.append(Event("usage", data=usage_of(usage)))
    events.append(Event("done"))
    return events


def json_round(
    streamer: ChatCompletionsStreamer, messages: tuple[Message, ...], options: Options, token: CancelToken
) -> Iterator[Event]:
    """One non-streaming round on ``streamer``'s transport (retries are the engine's, as for a stream)."""
    if token.reason is not None:
        raise token.error(streamer.provider)
    transport = streamer.transport
    resp = transport.send(streamer.build_request(messages, options), token, streamer.timeout)
    reuse = False
    try:
        if resp.status_code >= 300:
            raise transport.status_error(resp, token)
        request_id = request_id_of(resp.headers)
        if request_id:
            yield Event("meta", data={"request_id": request_id})
        body = transport.body(resp, token, streamer.timeout)
        if "event-stream" in resp.headers.get("content-type", ""):
            yield from streamer.decode_body(body)
        else:
            raw = b"".join(body)
            yield from completion_events(loads(raw.decode("utf-8", "replace"), streamer.provider), streamer.provider)
        reuse = True
    finally:
        transport.release(resp, token, reuse=reuse)
