"""Test helpers: `FakeLLMServer` (a loopback server speaking every provider's wire format),
`CallbackRecorder` (every callback, in order) and `instant_retries` (no sleeping between retries).

Use it to test your own callback code without a network or an API key::

    from llmstreamer import Message, OpenAIStreamer
    from llmstreamer.testing import FakeLLMServer, Reply

    with FakeLLMServer() as server:
        server.add(Reply(text="Hello there", usage=None))
        streamer = OpenAIStreamer(model="gpt-4o-mini", api_key="test", base_url=server.base_url("openai"))
        assert streamer.chat([Message.user("Hi")]).text == "Hello there"
"""

from ._recorder import CallbackRecorder, instant_retries
from ._reply import RecordedRequest, Reply, words
from ._server import FakeLLMServer
from ._wire_embed import fake_embedding

__all__ = ["CallbackRecorder", "FakeLLMServer", "RecordedRequest", "Reply", "fake_embedding", "instant_retries", "words"]
