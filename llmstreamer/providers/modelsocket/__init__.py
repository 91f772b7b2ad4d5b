"""ModelSocket: stateful sequences over one WebSocket (``wss://models.mixlayer.ai/ws``).

Wire (the flat envelopes the reference clients speak): requests ``{"request": "seq_open" |
"seq_command", "cid", "seq_id"?, "data": {...}}`` with commands ``append``, ``gen``, ``fork``,
``close`` and ``tool_return``; events ``{"event", "cid"?, "seq_id"?, ...fields}``: ``seq_opened``,
``seq_append_finish``, ``seq_text`` (``text``, ``hidden``, ``num_input_tokens``,
``num_output_tokens``), ``seq_tool_call``, ``seq_gen_finish``, ``seq_fork_finish``,
``seq_state``, ``seq_closed`` and ``error`` (``message``, ``code``, ``details``).

`ModelSocketStreamer` gives the usual ``stream_chat`` on top: a bare call opens a sequence,
appends the messages, generates and closes it; inside a `Conversation` the sequence stays open
and each turn appends only what is new (the server keeps the context), and
``Conversation.fork()`` forks the sequence. `ModelSocketClient` and `Seq` are the sequence API;
``Seq.tool_return`` sends the results of tool calls you run yourself and continues the
generation that stopped on them.
"""

from __future__ import annotations

from ._client import DEFAULT_URL, ModelSocketClient
from ._sequence import Seq
from ._streamer import ModelSocketStreamer

__all__ = ["DEFAULT_URL", "ModelSocketClient", "ModelSocketStreamer", "Seq"]
