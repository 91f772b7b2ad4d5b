"""The values of a stored conversation: `Session`, its message tree, ids, names, labels and token estimates."""


from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any, Iterable, Mapping

import attrs

from ..errors import ConfigurationError
from ..models import ImagePart, Message, TextPart, ThinkingPart, ToolCall, ToolResult

__all__ = [
    "FORMAT_VERSION",
    "IMAGE_TOKENS",
    "MAX_NAME",
    "Branch",
    "Session",
    "SessionInfo",
    "SessionMessage",
    "check_labels",
    "check_name",
    "estimate_tokens",
    "is_session_id",
    "new_id",
]

IMAGE_TOKENS = 85  # what one image counts for in the estimate (a low-detail image's cost)
MAX_NAME = 200
FORMAT_VERSION = 1

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f/\\]")


def new_id() -> str:
    """A fresh session id: a random UUID in its canonical text form."""
    return str(uuid.uuid4())


def is_session_id(text: str) -> bool:
    """True when ``text`` is a session id (a canonical lower-case UUID), so it is safe in a path."""
    return isinstance(text, str) and _UUID.match(text) is not None


def _check_id(value: str) -> None:
    if not is_session_id(value):
        raise ConfigurationError(f"a session id is a lower-case UUID, got {value!r}")


def check_name(name: str | None) -> str | None:
    """Return a valid session name (or None), or raise `ConfigurationError` saying why not.

    A name is 1-200 characters without control characters, NUL or path separators, and is not
    shaped like a session id (so ``get(id_or_name)`` is never ambiguous).
    """
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise ConfigurationError(f"a session name must be 1 to {MAX_NAME} characters of text, got {name!r}")
    if _CONTROL.search(name) or name in (".", ".."):
        raise ConfigurationError(f"a session name cannot hold control characters, NUL, '/' or '\\': {name!r}")
    if is_session_id(name):
        raise ConfigurationError(f"a session name cannot look like a session id: {name!r}")
    return name


def check_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    """Return valid labels as a dict, or raise `ConfigurationError`: keys are identifiers, values text."""
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise ConfigurationError(f"labels must be a dict of text, got {type(labels).__name__}")
    out = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not key.isidentifier() or not key.isascii():
            raise ConfigurationError(f"a label key must be an identifier (letters, digits, _), got {key!r}")
        if not isinstance(value, str) or "\x00" in value or len(value) > MAX_NAME:
            raise ConfigurationError(f"label {key!r} must have a text value of at most {MAX_NAME} characters")
        out[key] = value
    return out


def _chars(text: str) -> int:
    return (len(text) + 3) // 4


def estimate_tokens(message: Message) -> int:
    """Roughly how many tokens ``message`` costs: about 4 characters a token, at least 1.

    Text and thinking count their characters; a tool call its name and arguments; a tool result
    its content; an image counts `IMAGE_TOKENS`. Provider counts replace the estimate where a
    turn's usage gives them.
    """
    total = 0
    for part in message.content:
        if isinstance(part, (TextPart, ThinkingPart)):
            total += _chars(part.text)
        elif isinstance(part, ToolCall):
            total += _chars(part.name) + _chars(part.raw_arguments or json.dumps(dict(part.arguments)))
        elif isinstance(part, ToolResult):
            total += _chars(part.content)
        elif isinstance(part, ImagePart):
            total += IMAGE_TOKENS
    return max(1, total)


@attrs.frozen
class SessionMessage:
    """One stored message: a node of the session's tree.

    Attributes:
        id: Unique within its session.
        parent: The id of the message before it (None at the root).
        message: The `Message` itself.
        tokens: The provider's count for an answer, else `estimate_tokens`.
        meta: For an answer: ``provider``, ``model``, ``finish_reason``, ``usage`` (a dict),
            ``time_to_first_token``, ``duration`` (seconds) and ``request_id``.
        created: When it was stored (seconds since the epoch).
    """

    id: str
    parent: str | None
    message: Message
    tokens: int = 1
    meta: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    created: float = attrs.field(factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `SessionMessage.from_dict` reads it back."""
        return {
            "id": self.id,
            "parent": self.parent,
            "message": self.message.to_dict(),
            "tokens": self.tokens,
            "meta": dict(self.meta),
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionMessage:
        """Read a stored message back."""
        return cls(
            str(data["id"]),
            data.get("parent"),
            Message.from_dict(data["message"]),
            int(data.get("tokens", 1)),
            data.get("meta") or {},
            float(data.get("created", 0.0)),
        )


@attrs.frozen
class SessionInfo:
    """What `SessionStore.list` shows of a session: everything but its messages."""

    id: str
    name: str | None
    labels: Mapping[str, str]
    provider: str
    model: str
    created: float
    modified: float
    message_count: int
    tokens: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``sessions list --json`` prints these)."""
        return {**attrs.asdict(self), "labels": dict(self.labels)}


@attrs.frozen
class Branch:
    """One branch of a session: the path that ends at the leaf ``leaf_id``."""

    leaf_id: str
    length: int
    text: str
    current: bool
    created: float


def _nodes(nodes: Iterable[SessionMessage]) -> tuple[SessionMessage, ...]:
    return tuple(nodes)


@attrs.frozen
class Session:
    """A stored conversation: settings, name, labels and the message tree.

    Attributes:
        id: A UUID.
        name: Unique in its store when given.
        labels: Identifier keys to text values, for filtering `SessionStore.list`.
        provider: The provider of its streamer (``"openai"``).
        model: The model.
        system: The system prompt sent with every turn, or None.
        options: Options sent with every turn (``temperature``, ``reasoning``,
            ``response_format``, ``max_tokens``...; ``tools`` holds tool names only).
        created: Seconds since the epoch.
        modified: Seconds since the epoch of the last change.
        overhead: Input tokens the provider counted beyond the messages (system prompt, tool
            schemas), measured on the last turn.
        head: The id of the last message of the current branch (None: empty).
        nodes: Every stored message, in the order stored (parents before children).
    """

    id: str = attrs.field(factory=new_id, validator=lambda _i, _a, v: _check_id(v))
    name: str | None = attrs.field(default=None, converter=check_name)
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=check_labels)
    provider: str = ""
    model: str = ""
    system: str | None = None
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    created: float = attrs.field(factory=time.time)
    modified: float = attrs.field()
    overhead: int = 0
    head: str | None = None
    nodes: tuple[SessionMessage, ...] = attrs.field(default=(), converter=_nodes)

    @modified.default
    def _modified(self) -> float:
        return self.created

    def node(self, message_id: str) -> SessionMessage:
        """The stored message with this id, or the one whose id starts with it (when unique).

        Raises:
            ConfigurationError: no message, or several, match.
        """
        found = [n for n in self.nodes if n.id == message_id]
        if not found and message_id:
            found = [n for n in self.nodes if n.id.startswith(message_id)]
        if len(found) != 1:
            what = "no message" if not found else f"{len(found)} messages"
            raise ConfigurationError(f"{what} of session {self.id} match the id {message_id!r}")
        return found[0]

    def path(self, leaf_id: str | None = None) -> tuple[SessionMessage, ...]:
        """The messages from the root to ``leaf_id`` (default: the current head), in order."""
        at = self.head if leaf_id is None else leaf_id
        by_id = {n.id: n for n in self.nodes}
        out: list[SessionMessage] = []
        while at is not None:
            node = by_id.get(at)
            if node is None or len(out) > len(by_id):
                raise ConfigurationError(f"session {self.id}: message {at!r} is not in its tree")
            out.append(node)
            at = node.parent
        out.reverse()
        return tuple(out)

    @property
    def messages(self) -> tuple[Message, ...]:
        """The messages of the current branch: exactly what the model sees."""
        return tuple(n.message for n in self.path())

    @property
    def tokens(self) -> int:
        """Tokens of the current branch: its messages plus the ``overhead``."""
        return self.overhead + sum(n.tokens for n in self.path())

    def branches(self) -> list[Branch]:
        """Every leaf of the tree, oldest first, marking the one on the current branch."""
        parents = {n.parent for n in self.nodes}
        current = {n.id for n in self.path()}
        out = []
        for node in self.nodes:
            if node.id not in parents:
                length = len(self.path(node.id))
                text = node.message.text or node.message.thinking
                out.append(Branch(node.id, length, text, node.id in current, node.created))
        return out

    @property
    def info(self) -> SessionInfo:
        """The summary `SessionStore.list` returns."""
        path = self.path()
        tokens = self.overhead + sum(n.tokens for n in path)
        return SessionInfo(
            self.id, self.name, dict(self.labels), self.provider, self.model,
            self.created, self.modified, len(path), tokens,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The whole session as a JSON-ready dict (the file store's document, ``sessions export``)."""
        return {
            "version": FORMAT_VERSION,
            **self.header(),
            "messages": [n.to_dict() for n in self.nodes],
        }

    def header(self) -> dict[str, Any]:
        """Everything but the messages, JSON-ready."""
        return {
            "id": self.id,
            "name": self.name,
            "labels": dict(self.labels),
            "provider": self.provider,
            "model": self.model,
            "system": self.system,
            "options": dict(self.options),
            "created": self.created,
            "modified": self.modified,
            "overhead": self.overhead,
            "head": self.head,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], nodes: Iterable[SessionMessage] | None = None) -> Session:
        """Read a session back from `to_dict` output (or a header plus ``nodes``)."""
        if nodes is None:
            nodes = [SessionMessage.from_dict(d) for d in data.get("messages", ())]
        return cls(
            id=str(data["id"]),
            name=data.get("name"),
            labels=data.get("labels") or {},
            provider=data.get("provider") or "",
            model=data.get("model") or "",
            system=data.get("system"),
            options=data.get("options") or {},
            created=float(data["created"]),
            modified=float(data["modified"]),
            overhead=int(data.get("overhead") or 0),
            head=data.get("head"),
            nodes=nodes,
        )
