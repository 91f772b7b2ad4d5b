"""ModelSocket embeddings: the ``embed`` command on a sequence, answered under its own ``cid``.

Request ``{"request": "seq_command", "cid", "seq_id", "data": {"command": "embed", "inputs":
[{"text"}...], "input_type"?, "dimensions"?, "normalize"?}}``; the server answers one
``seq_embedding`` per input (``index``, ``embedding``, ``input_tokens``) and then
``seq_embed_finish`` (``prompt_tokens``). The events are routed by ``cid`` like every other
command's, so an embedding runs while a generation streams on the same connection.
`ModelSocketStreamer.embed` opens a sequence for each batch and closes it afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..._cancel import CancelToken
from ..._embed import Batch, EmbedOptions
from ...errors import StreamError
from ...models import Usage
from ._wire import PROVIDER, closed_error, event_error

if TYPE_CHECKING:
    from ._connection import Connection
    from ._sequence import Seq

__all__ = ["embed_batch", "embed_on"]


def embed_on(conn: Connection, seq_id: str, texts: tuple[str, ...], options: EmbedOptions, token: CancelToken) -> Batch:
    """Send one ``embed`` command on sequence ``seq_id`` and gather its vectors by ``index``."""
    data: dict[str, Any] = {"command": "embed", "inputs": [{"text": t} for t in texts]}
    if options.task_type is not None:
        data["input_type"] = options.task_type
    if options.dimensions is not None:
        data["dimensions"] = options.dimensions
    if options.normalize is not None:
        data["normalize"] = options.normalize
    inbox = conn.command(data, seq_id=seq_id)
    found: dict[int, list[float]] = {}
    token.attach(inbox.wake)
    try:
        while True:
            event = conn.next(inbox, token)
            kind = event.get("event")
            if kind == "seq_embedding":
                found[int(event["index"])] = [float(x) for x in event["embedding"]]
            elif kind == "seq_embed_finish":
                break
            elif kind == "error":
                raise event_error(event)
            elif kind == "seq_closed":
                raise closed_error(event)
    except (KeyError, TypeError, ValueError) as exc:
        raise StreamError(f"malformed seq_embedding event ({type(exc).__name__}: {exc})", provider=PROVIDER) from exc
    finally:
        token.detach(inbox.wake)
        conn.forget(inbox)
    if sorted(found) != list(range(len(texts))):
        raise StreamError(f"asked for {len(texts)} embeddings, got indexes {sorted(found)}", provider=PROVIDER)
    prompt = event.get("prompt_tokens")
    usage = Usage(input_tokens=prompt) if type(prompt) is int else None
    return Batch([found[i] for i in range(len(texts))], None, usage)


def embed_batch(open_seq: Callable[[CancelToken], Seq], texts: tuple[str, ...], options: EmbedOptions) -> Batch:
    """One batch on a fresh sequence (``open_seq(token)`` on the streamer's shared connection), closed afterwards."""
    token = CancelToken()
    seq = open_seq(token)
    try:
        return embed_on(seq._conn, seq.id, texts, options, token)
    finally:
        seq._discard()
