"""Agents: a model, a system prompt, schemas and a prompt template, kept in a Markdown file.

The file format is go-llm's: YAML front matter between ``---`` lines (``name``, ``title``,
``description``, ``provider``, ``model``, ``system_prompt``, ``format`` (a JSON Schema for the
answer), ``thinking``, ``thinking_budget``, ``input`` (a JSON Schema for the input), ``tools``
(the tool names the agent may use)), then a body that is a Jinja2 template for the first user
message. Example::

    agent = llmstreamer.Agent.from_file("translate.md")
    handle = agent.run({"text": "Hei", "target": "English"}, StreamCallbacks(on_content=print))
    handle.wait()

The template is rendered in Jinja2's sandbox (a template cannot reach Python internals), and
only after the input has been validated against the ``input`` schema, so a bad input is refused
naming the field before any request is sent. Go-style ``{{ .field }}`` interpolations (as in
go-llm's own files) are read as ``{{ field }}``. Needs the ``agents`` extra (PyYAML, Jinja2,
jsonschema): ``pip install 'llmstreamer[agents]'``.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
from typing import TYPE_CHECKING, Any, Mapping

import attrs

from .errors import ConfigurationError
from .models import Message

if TYPE_CHECKING:
    from .base import Streamer, StreamHandle

__all__ = ["Agent", "load_extra"]

FIELDS = (
    "name", "title", "description", "provider", "model", "system_prompt",
    "format", "thinking", "thinking_budget", "input", "tools",
)  # fmt: skip
_ALIASES = {"output": "format"}  # some go-llm files name the answer schema "output"
_PROVIDERS = {"google": "gemini"}  # go-llm's provider names that llmstreamer spells differently
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*\r?(?:\n|\Z)(.*)\Z", re.DOTALL | re.MULTILINE)
_GO_FIELD = re.compile(r"\{\{(-?)\s*\.([A-Za-z_][\w.]*)\s*(-?)\}\}")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def load_extra(module: str) -> Any:
    """Import one of the ``agents`` extra's packages, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = {"yaml": "PyYAML", "jinja2": "Jinja2", "jsonschema": "jsonschema"}.get(module.split(".")[0], module)
        raise ConfigurationError(
            f"agents need the {package} package: pip install 'llmstreamer[agents]'"
        ) from None


def _schema(value: Any, field: str, where: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where}: {field} must be a JSON Schema object, got {type(value).__name__}")
    jsonschema = load_extra("jsonschema")
    try:
        jsonschema.validators.validator_for(value).check_schema(value)
    except jsonschema.exceptions.SchemaError as exc:
        raise ConfigurationError(f"{where}: {field} is not a valid JSON Schema: {exc.message}") from None
    return dict(value)


@attrs.frozen(kw_only=True)
class Agent:
    """A reusable prompt: which model, which instructions, which input, which tools.

    Build one with `from_file` or `from_text`; a stored one (`AgentStore`) also has an ``id``,
    a ``version`` and a ``created`` time.

    Attributes:
        name: A short identifier (letters, digits, ``_``, ``-``).
        template: The body: a Jinja2 template for the first user message.
        format: A JSON Schema the answer must follow (``response_format``), or None.
        input: A JSON Schema the input must follow, or None.
        tools: The names of the tools the agent may use; None allows every tool given.
    """

    name: str
    template: str = ""
    title: str | None = None
    description: str | None = None
    provider: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    format: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    thinking: bool | None = None
    thinking_budget: int | None = None
    input: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    tools: tuple[str, ...] | None = attrs.field(default=None, converter=attrs.converters.optional(tuple))
    id: str | None = None
    version: int = 0
    created: float | None = None

    def __attrs_post_init__(self) -> None:
        where = f"agent {self.name!r}"
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigurationError(f"invalid agent name {self.name!r}: start with a letter; letters, digits, '_' or '-'")
        for field in ("title", "description", "provider", "model", "system_prompt"):
            if getattr(self, field) is not None and not isinstance(getattr(self, field), str):
                raise ConfigurationError(f"{where}: {field} must be text")
        if self.thinking is not None and not isinstance(self.thinking, bool):
            raise ConfigurationError(f"{where}: thinking must be true or false")
        budget = self.thinking_budget
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 0):
            raise ConfigurationError(f"{where}: thinking_budget must be a whole number >= 0")
        if self.tools is not None and not all(isinstance(t, str) and t for t in self.tools):
            raise ConfigurationError(f"{where}: tools must be a list of tool names")
        _compile(self.template, where)

    # --- reading -------------------------------------------------------------------------------

    @classmethod
    def from_text(cls, text: str, *, name: str | None = None) -> Agent:
        """Read an agent from Markdown with YAML front matter; ``name`` is used when the file has none.

        A missing ``title`` is taken from the body's first Markdown heading.

        Raises:
            ConfigurationError: no front matter, bad YAML, an unknown field, an invalid schema
                or template, or a missing PyYAML/Jinja2/jsonschema.
        """
        match = _FRONT.match(text.lstrip("\ufeff"))
        if match is None:
            if text.lstrip("\ufeff").startswith("---"):
                raise ConfigurationError("the agent's front matter opened with '---' is never closed")
            raise ConfigurationError("an agent file starts with YAML front matter between two '---' lines")
        yaml = load_extra("yaml")
        try:
            meta = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"the agent's front matter is not valid YAML: {exc}") from None
        if not isinstance(meta, Mapping):
            raise ConfigurationError("the agent's front matter must be a mapping of fields")
        values = {_ALIASES.get(str(k), str(k)): v for k, v in meta.items()}
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise ConfigurationError(f"unknown agent field(s) {', '.join(unknown)}; fields are: {', '.join(FIELDS)}")
        body = match.group(2).strip("\n")
        values.setdefault("name", name)
        if values.get("name") is None:
            raise ConfigurationError("the agent has no name: add 'name:' to its front matter")
        if values.get("title") is None:
            heading = _HEADING.search(body)
            values["title"] = heading.group(1) if heading else None
        where = f"agent {values['name']!r}"
        for field in ("format", "input"):
            values[field] = _schema(values.get(field), field, where)
        return cls(template=body, **values)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Agent:
        """Read an agent file; its name defaults to the file's name without ``.md``."""
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        stem = os.path.splitext(os.path.basename(os.fspath(path)))[0]
        return cls.from_text(text, name=stem if _NAME.fullmatch(stem) else None)

    def to_text(self) -> str:
        """The agent as Markdown with YAML front matter (what `from_text` reads)."""
        yaml = load_extra("yaml")
        meta = {f: getattr(self, f) for f in FIELDS if getattr(self, f) is not None}
        if "tools" in meta:
            meta["tools"] = list(meta["tools"])
        for field in ("format", "input"):
            if field in meta:
                meta[field] = json.loads(json.dumps(meta[field]))  # plain dicts for the dumper
        front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
        return f"---\n{front}---\n{self.template}\n"

    # --- using ---------------------------------------------------------------------------------

    def check_input(self, input: Any = None) -> dict[str, Any]:
        """The input as a dict, validated against the ``input`` schema.

        Args:
            input: A dict, a JSON object as text, or None (an empty input).

        Raises:
            ConfigurationError: the input is not an object, or breaks the schema; the message
                names the field (``input.city: 5 is not of type 'string'``).
        """
        if input is None:
            value: Any = {}
        elif isinstance(input, str):
            try:
                value = json.loads(input)
            except ValueError as exc:
                raise ConfigurationError(f"agent {self.name!r}: the input is not valid JSON ({exc})") from None
        else:
            value = input
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"agent {self.name!r}: the input must be an object, got {type(value).__name__}")
        checked: dict[str, Any] = dict(value)
        if self.input is not None:
            jsonschema = load_extra("jsonschema")
            validator = jsonschema.validators.validator_for(self.input)(self.input)
            error = jsonschema.exceptions.best_match(validator.iter_errors(checked))
            if error is not None:
                where = "input" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
                raise ConfigurationError(f"agent {self.name!r}: invalid {where}: {error.message}")
        return checked

    def render(self, input: Any = None) -> str:
        """The first user message: the template rendered with the validated input as its variables.

        Raises:
            ConfigurationError: the input breaks the schema (nothing is rendered), or the
                template fails or tries to reach something the sandbox forbids.
        """
        values = self.check_input(input)
        template = _compile(self.template, f"agent {self.name!r}")
        jinja2 = load_extra("jinja2")
        try:
            return str(template.render(**values)).strip()
        except jinja2.exceptions.SecurityError as exc:
            raise ConfigurationError(f"agent {self.name!r}: the template tried something the sandbox forbids: {exc}") from None
        except jinja2.exceptions.TemplateError as exc:
            raise ConfigurationError(f"agent {self.name!r}: the template failed: {exc}") from None

    def _spec(self) -> str:
        """The registry spec of the agent's model: ``provider[:model]``, else ``$LLMSTREAMER_MODEL`` or Eliza."""
        if not self.provider:
            return os.environ.get("LLMSTREAMER_MODEL") or "eliza"
        provider = _PROVIDERS.get(self.provider.lower(), self.provider.lower())
        return f"{provider}:{self.model}" if self.model else provider

    def streamer(self, **kwargs: Any) -> Streamer:
        """A streamer for the agent's provider and model, through the registry (``kwargs`` go to it)."""
        from .registry import streamer

        return streamer(self._spec(), **kwargs)

    def options(self, tools: Any = None) -> dict[str, Any]:
        """The ``stream_chat`` options the agent stands for: system prompt, format, thinking, tools.

        Raises:
            ConfigurationError: the agent names tools that ``tools`` does not hold.
        """
        options: dict[str, Any] = {}
        if self.system_prompt:
            options["system"] = self.system_prompt
        if self.format is not None:
            options["response_format"] = dict(self.format)
        if self.thinking_budget:
            options["thinking_budget"] = self.thinking_budget
        elif self.thinking:
            options["reasoning"] = "medium"
        selected = self._tools(tools)
        if selected is not None:
            options["tools"] = selected
        return options

    def _tools(self, tools: Any) -> Any:
        from .tools import Toolbox

        if self.tools is None:
            return tools
        if not self.tools:
            return None
        box = Toolbox.of(tools)
        missing = [n for n in self.tools if n not in box]
        if missing:
            raise ConfigurationError(
                f"agent {self.name!r} uses the tool(s) {', '.join(missing)}, not among the tools given "
                f"({', '.join(box.names) or 'none'}): pass them in tools="
            )
        return Toolbox([box.get(n) for n in self.tools])  # type: ignore[misc]

    def run(
        self, input: Any = None, callbacks: Any = None, *, tools: Any = None, streamer: Streamer | None = None, **options: Any
    ) -> StreamHandle:
        """Render the input and stream the agent's answer; everything is checked before any request.

        Args:
            input: The input (dict, JSON text or None), validated against the ``input`` schema.
            callbacks: As for `Streamer.stream_chat`.
            tools: The tools to choose from (anything ``tools=`` accepts); an agent that names
                tools gets only those, and each must be here.
            streamer: Use this streamer instead of `Agent.streamer`'s.
            **options: More ``stream_chat`` options; they win over the agent's.

        Raises:
            ConfigurationError: a bad input, a missing tool, or an option the provider cannot honour.
        """
        text = self.render(input)
        merged = {**self.options(tools), **options}
        chosen = streamer if streamer is not None else self.streamer()
        return chosen.stream_chat([Message.user(text)], callbacks, **merged)


@functools.lru_cache(maxsize=256)
def _compile(template: str, where: str) -> Any:
    """The template compiled in the sandbox (cached by text), Go-style ``{{ .field }}`` accepted."""
    jinja2 = load_extra("jinja2")
    try:
        return _environment().from_string(_GO_FIELD.sub(r"{{\1 \2 \3}}", template))
    except jinja2.exceptions.TemplateSyntaxError as exc:
        raise ConfigurationError(f"{where}: the template has an error on line {exc.lineno}: {exc.message}") from None


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    """Jinja2's sandbox, made strict: reaching for an unsafe attribute raises instead of printing nothing."""
    sandbox = load_extra("jinja2.sandbox")

    class Sandbox(sandbox.SandboxedEnvironment):  # type: ignore[misc, name-defined]
        def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
            raise sandbox.SecurityError(f"{attribute!r} of a {type(obj).__name__} is not available to templates")

    return Sandbox(autoescape=False, keep_trailing_newline=True)
