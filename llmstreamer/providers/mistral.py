"""Mistral chat completions: ``POST {base_url}/chat/completions``, OpenAI-shaped data-only SSE.

Wire differences from OpenAI (handled by the shared ``_chat_completions`` base):

- tool calls arrive whole in one delta, with an ``id`` but no ``index``; models that stream
  them in fragments send continuations with ``"name": ""``, which never replace the name;
- ``usage`` comes on the last chunk (with the ``finish_reason``) without ``stream_options``,
  a field the API does not take;
- reasoning models (Magistral) send ``delta.content`` as a list of typed pieces:
  ``{"type": "thinking", "thinking": [{"type": "text", "text": ...}]}`` go to ``on_thinking``,
  ``{"type": "text", "text": ...}`` to ``on_content``;
- finish reasons ``model_length`` (→ ``length``) and ``error``;
- ``seed`` is sent as ``random_seed``; error bodies are ``{"object": "error", "message",
  "type", "code"}``.

Requests: tools, ``tool_choice`` and ``response_format`` take OpenAI's shapes (see
``_chat_completions``), except that ``tool_choice="required"`` is ``"any"`` on this wire.
``reasoning=`` is ``reasoning_effort``, which Mistral's adjustable models (mistral-small-latest,
mistral-medium-3.5) take as ``"high"`` or ``"none"``: ``"none"`` stays ``"none"`` and every
other level is sent as ``"high"``. Magistral models always reason; they need no option.
Images go as ``image_url`` parts (a URL or a ``data:`` URL) to vision models.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from .._options import Options
from ._chat_completions import ChatCompletionsStreamer

__all__ = ["MistralStreamer"]


class MistralStreamer(ChatCompletionsStreamer):
    """Streams from Mistral's chat completions API (key ``MISTRAL_API_KEY``).

    Example::

        s = MistralStreamer(model="mistral-small-latest")
        print(s.chat([Message.user("Say hi")], seed=7).text)
    """

    spec = attrs.evolve(
        ChatCompletionsStreamer.spec,
        name="mistral",
        api_key_env="MISTRAL_API_KEY",
        requires_key=True,
        default_base_url="https://api.mistral.ai/v1",
        default_model="mistral-small-latest",
        default_embedding_model="mistral-embed",
        embed_batch_size=128,
    )
    seed_field: ClassVar[str] = "random_seed"
    dimensions_field: ClassVar[str] = "output_dimension"
    include_usage = False
    tool_message_name: ClassVar[bool] = True
    required_choice: ClassVar[str] = "any"

    def _reasoning_fields(self, options: Options) -> dict[str, Any]:
        if options.reasoning is None:
            return {}
        return {"reasoning_effort": "none" if options.reasoning == "none" else "high"}
