"""Tools: JSON Schema from signatures, Tool and Toolbox, permissions, and executing one call."""

from __future__ import annotations

import datetime
import enum
import json
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple, Union

import attrs
import pytest

import llmstreamer
from llmstreamer import CallbackError, ConfigurationError, ToolCall, ToolError, ToolResult
from llmstreamer._schema import _evaluate
from llmstreamer.tools import Tool, Toolbox, execute, tool, tool_prompt


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


def schema_of(annotation: Any) -> dict[str, Any]:
    """The property schema @tool makes for one parameter annotated with ``annotation``."""

    def f(x):  # type: ignore[no-untyped-def]
        return x

    f.__annotations__ = {"x": annotation}
    return dict(tool(f).parameters["properties"]["x"])


def greet(name: str, punctuation: str = "!") -> str:
    """Greet someone.

    Args:
        name: Who to greet.
        punctuation: How to end.
    """
    return f"Hello, {name}{punctuation}"


def delete_file(path: str) -> str:
    """Delete a file."""
    return f"deleted {path}"


WRITE = tool(name="delete_file", permission="write")(delete_file)
EXEC = tool(name="run", permission="exec")(lambda cmd: f"ran {cmd}")


# --- schema generation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (Any, {}),
        (list, {"type": "array"}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (List[str], {"type": "array", "items": {"type": "string"}}),
        (list[list[str]], {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}),
        (Sequence[float], {"type": "array", "items": {"type": "number"}}),
        (Tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (dict, {"type": "object"}),
        (Dict[str, Any], {"type": "object"}),
        (Dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
        (
            dict[str, list[bool]],
            {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "boolean"}}},
        ),
        (Optional[int], {"type": ["integer", "null"]}),
        (Optional[List[int]], {"type": ["array", "null"], "items": {"type": "integer"}}),
        (Optional[Any], {}),
        (Union[int, str], {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
        (Optional[Union[int, str]], {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}),
        (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
        (Literal[1, 2], {"type": "integer", "enum": [1, 2]}),
        (Literal["a", 1], {"enum": ["a", 1]}),
        (Optional[Literal["a", "b"]], {"type": ["string", "null"], "enum": ["a", "b", None]}),
        (Color, {"type": "string", "enum": ["red", "blue"]}),
        (Level, {"type": "integer", "enum": [1, 2]}),
        (List[Color], {"type": "array", "items": {"type": "string", "enum": ["red", "blue"]}}),
    ],
)
def test_schema_for_each_supported_type(annotation: Any, expected: dict[str, Any]) -> None:
    """Every supported annotation maps to its JSON Schema."""
    assert schema_of(annotation) == expected


def test_pipe_union_annotations_work_on_every_python() -> None:
    """``X | None`` written as an annotation gives the same schema as Optional[X], even on 3.9."""

    @tool
    def f(a: int | None, b: list[str] | None = None) -> str:
        return ""

    assert f.parameters["properties"] == {
        "a": {"type": ["integer", "null"]},
        "b": {"type": ["array", "null"], "items": {"type": "string"}, "default": None},
    }


def test_annotation_fallback_splits_top_level_unions() -> None:
    """The per-annotation fallback turns a top-level ``X | Y`` into Union[X, Y], brackets respected."""
    namespace = {"Literal": Literal, "Optional": Optional}
    assert _evaluate("int | None", namespace, "w") == Optional[int]
    assert _evaluate("list[str] | int", namespace, "w") == Union[list[str], int]
    assert _evaluate("Literal['a|b'] | None", namespace, "w") == Optional[Literal["a|b"]]
    assert _evaluate("Optional[int]", namespace, "w") == Optional[int]
    assert _evaluate(int, namespace, "w") is int


def test_unevaluable_annotation_names_the_parameter() -> None:
    """An annotation that cannot be evaluated is a ConfigurationError naming the tool and parameter."""

    def f(x):  # type: ignore[no-untyped-def]
        return x

    f.__annotations__ = {"x": "NoSuchType | None"}
    with pytest.raises(ConfigurationError, match=r"tool 'f', parameter 'x': cannot evaluate .*NoSuchType"):
        tool(f)


def test_required_and_defaults() -> None:
    """Parameters without defaults are required, in order; JSON-able defaults are recorded."""

    @tool
    def f(
        b: str,
        a: int,
        color: Color = Color.BLUE,
        pair: Tuple[int, ...] = (1, 2),
        when: Optional[str] = None,
        obj: Any = datetime.date(2024, 1, 1),
    ) -> None:
        pass

    props = f.parameters["properties"]
    assert f.parameters["required"] == ["b", "a"]
    assert list(props) == ["b", "a", "color", "pair", "when", "obj"]
    assert "default" not in props["b"] and "default" not in props["a"]
    assert props["color"]["default"] == "blue"
    assert props["pair"]["default"] == [1, 2]
    assert props["when"] == {"type": ["string", "null"], "default": None}
    assert props["obj"] == {}  # a default that is not JSON is left out


def test_docstring_gives_descriptions() -> None:
    """The text before the sections describes the tool; Args entries (with types, wrapped) the parameters."""

    @tool
    def search(query: str, limit: int = 10, exact: bool = False) -> list[str]:
        """Search the notes.

        Matches are ranked
        by date.

        Args:
            query (str): The words to look for:
                one or more.
            limit: At most this many results.

        Returns:
            limit: not a parameter description.
        """
        return []

    props = search.parameters["properties"]
    assert search.description == "Search the notes.\n\nMatches are ranked by date."
    assert props["query"] == {"type": "string", "description": "The words to look for: one or more."}
    assert props["limit"] == {"type": "integer", "description": "At most this many results.", "default": 10}
    assert props["exact"] == {"type": "boolean", "default": False}


def test_function_without_docstring_has_empty_description() -> None:
    """No docstring gives an empty description and no parameter descriptions."""

    @tool
    def f(x: int) -> int:
        return x

    assert f.definition() == {
        "name": "f",
        "description": "",
        "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
    }


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (datetime.date, "parameter 'x': the type .*date.* has no JSON Schema"),
        (Dict[int, str], "parameter 'x': dictionary keys must be str"),
        (Tuple[int, str], "parameter 'x': use tuple"),
        (List[datetime.date], "parameter 'x': the type .*date"),
    ],
)
def test_unsupported_types_name_the_parameter(annotation: Any, message: str) -> None:
    """A type with no JSON Schema is a ConfigurationError naming the parameter."""
    with pytest.raises(ConfigurationError, match=message):
        schema_of(annotation)


def test_star_args_and_positional_only_are_refused() -> None:
    """*args, **kwargs and positional-only parameters cannot be tool parameters."""

    def star(*items: str) -> None:
        pass

    def kwargs(**options: str) -> None:
        pass

    def positional(x: int, /) -> None:
        pass

    with pytest.raises(ConfigurationError, match="parameter 'items' is variadic positional"):
        tool(star)
    with pytest.raises(ConfigurationError, match="parameter 'options' is variadic keyword"):
        tool(kwargs)
    with pytest.raises(ConfigurationError, match="parameter 'x' is positional-only"):
        tool(positional)


# --- Tool and @tool ------------------------------------------------------------------------


def test_decorated_function_is_a_callable_tool() -> None:
    """@tool returns a Tool named after the function that still works as the function."""
    t = tool(greet)
    assert isinstance(t, Tool) and t.name == "greet" and t.permission == "read"
    assert t("Ada") == "Hello, Ada!"
    assert t.fn is greet
    assert llmstreamer.tool is tool and llmstreamer.Tool is Tool and llmstreamer.Toolbox is Toolbox


def test_decorator_with_arguments_overrides_name_description_permission() -> None:
    """@tool(name=, description=, permission=) overrides what the function says."""

    @tool(name="remove", description="Remove a file.", permission="write")
    def delete(path: str) -> str:
        """Delete a file."""
        return path

    assert (delete.name, delete.description, delete.permission) == ("remove", "Remove a file.", "write")
    assert delete("x") == "x"


@pytest.mark.parametrize("name", ["a", "get_weather", "get-weather-2", "A" * 64])
def test_valid_tool_names(name: str) -> None:
    """Names of 1 to 64 letters, digits, '_' or '-' are accepted."""
    assert Tool(name, "", {"type": "object"}).name == name


@pytest.mark.parametrize("name", ["", "A" * 65, "has space", "dot.name", "line\n", "ünï", 5, None])
def test_invalid_tool_names(name: Any) -> None:
    """Other names are a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="invalid tool name"):
        Tool(name, "", {"type": "object"})


def test_lambda_needs_a_name() -> None:
    """A lambda's name '<lambda>' is invalid, so it needs name=."""
    with pytest.raises(ConfigurationError, match="invalid tool name '<lambda>'"):
        tool(lambda x: x)
    assert tool(name="echo")(lambda x: x).name == "echo"


def test_tool_fields_are_validated() -> None:
    """Permission, parameters and description are checked when a Tool is made."""
    with pytest.raises(ConfigurationError, match="permission must be one of read, write, exec"):
        Tool("t", "", {"type": "object"}, permission="admin")
    with pytest.raises(ConfigurationError, match='"type": "object"'):
        Tool("t", "", {"type": "string"})
    with pytest.raises(ConfigurationError, match='"type": "object"'):
        Tool("t", "", "not a schema")
    with pytest.raises(ConfigurationError, match="description must be text"):
        Tool("t", None, {"type": "object"})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="needs a plain"):
        tool("not callable")  # type: ignore[call-overload]


def test_functions_that_cannot_be_tools() -> None:
    """Async functions, existing Tools and callables without a signature are refused clearly."""

    async def fetch(url: str) -> str:
        return url

    with pytest.raises(ConfigurationError, match=r"plain \(not async\) function"):
        tool(fetch)
    with pytest.raises(ConfigurationError, match="plain"):
        tool(tool(greet))
    with pytest.raises(ConfigurationError, match="cannot read the signature"):
        tool(name="dict_")(dict)


def test_tool_is_a_frozen_value_and_definition_is_a_copy() -> None:
    """A Tool cannot be changed, through its fields or through the definition it hands out."""
    t = tool(greet)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        t.name = "other"  # type: ignore[misc]
    definition = t.definition()
    definition["parameters"]["properties"]["name"]["type"] = "integer"
    assert t.definition()["parameters"]["properties"]["name"]["type"] == "string"
    assert t == tool(greet) and hash(t) == hash(tool(greet))


def test_declaration_only_tool_cannot_run() -> None:
    """A Tool without fn is a declaration: calling or executing it raises ToolError."""
    decl = Tool("lookup", "Look something up.", {"type": "object", "properties": {}})
    box = Toolbox([decl])
    with pytest.raises(ToolError, match="'lookup' is a declaration only"):
        decl()
    with pytest.raises(ToolError, match="declaration only"):
        execute(ToolCall("c1", "lookup", {}), box)
    with pytest.raises(ToolError, match="declaration only"):
        box.call("lookup", {})


# --- Toolbox -------------------------------------------------------------------------------


def test_toolbox_add_get_and_duplicates() -> None:
    """add wraps functions and returns the Tool; get finds by name; a duplicate name is refused."""
    box = Toolbox()
    added = box.add(greet)
    assert added.name == "greet" and box.get("greet") is added
    assert box.add(WRITE) is WRITE
    assert box.get("missing") is None
    with pytest.raises(ConfigurationError, match="already a tool named 'greet'"):
        box.add(greet)
    assert len(box) == 2


def test_toolbox_order_is_sorted_whatever_the_insertion_order() -> None:
    """Iteration, names and definitions are sorted by name, so prompts are stable."""
    one = Toolbox([greet, WRITE, EXEC])
    two = Toolbox([EXEC, greet, WRITE])
    assert one.names == two.names == ("delete_file", "greet", "run")
    assert [t.name for t in one] == ["delete_file", "greet", "run"]
    assert one.definitions() == two.definitions()
    assert [d["name"] for d in one.definitions()] == ["delete_file", "greet", "run"]
    assert tool_prompt(one) == tool_prompt(two)


def test_toolbox_container_protocol() -> None:
    """len, in (by name or Tool) and repr behave like a small container."""
    box = Toolbox([greet])
    assert "greet" in box and box.get("greet") in box and "other" not in box
    assert len(box) == 1 and len(Toolbox()) == 0
    assert repr(box) == "Toolbox(['greet'])"


def test_toolbox_of_each_input_form() -> None:
    """Toolbox.of takes None, a Toolbox, a Tool, tools or functions, or a {name: function} dict."""
    box = Toolbox([greet])
    assert len(Toolbox.of(None)) == 0
    assert Toolbox.of(box) is box
    assert Toolbox.of(WRITE).names == ("delete_file",)
    assert Toolbox.of([greet, WRITE]).names == ("delete_file", "greet")
    assert Toolbox.of(t for t in (EXEC,)).names == ("run",)
    by_name = Toolbox.of({"hello": greet, "erase": WRITE})
    assert by_name.names == ("erase", "hello")
    assert by_name.call("hello", {"name": "Bo"}) == "Hello, Bo!"
    assert by_name.get("erase").permission == "write"  # type: ignore[union-attr]


@pytest.mark.parametrize("value", ["greet", 42, {"bad": 42}])
def test_toolbox_of_rejects_other_values(value: Any) -> None:
    """Anything else is a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        Toolbox.of(value)


def test_toolbox_call_runs_directly() -> None:
    """call runs a tool without a permission check and returns text (non-str results as JSON)."""
    box = Toolbox([greet, WRITE, tool(name="numbers")(lambda: {"a": [1, 2]})])
    assert box.call("greet", {"name": "Ada"}) == "Hello, Ada!"
    assert box.call("delete_file", {"path": "/tmp/x"}) == "deleted /tmp/x"
    assert box.call("numbers", {}) == '{"a": [1, 2]}'


def test_toolbox_call_failures_are_tool_errors() -> None:
    """Unknown tools, bad arguments and raising tools are ToolError (the original as __cause__)."""

    @tool
    def broken() -> str:
        raise ValueError("boom")

    box = Toolbox([greet, broken])
    with pytest.raises(ToolError, match="unknown tool 'nope'; available tools: broken, greet"):
        box.call("nope", {})
    with pytest.raises(ToolError, match="missing a required argument: 'name'"):
        box.call("greet", {})
    with pytest.raises(ToolError, match="'broken' raised ValueError: boom") as info:
        box.call("broken", {})
    assert isinstance(info.value.__cause__, ValueError)


# --- execute -------------------------------------------------------------------------------


def run(name: str, arguments: dict[str, Any], *tools: Any, confirm: Any = None, error: str | None = None) -> ToolResult:
    """Execute one call to ``name`` against a toolbox of ``tools``."""
    call = ToolCall("call_1", name, arguments, json.dumps(arguments), error)
    return execute(call, Toolbox(tools), confirm)


def test_execute_success_with_text_result() -> None:
    """A read tool runs and its str result is the content, unchanged."""
    assert run("greet", {"name": "Ada"}, greet) == ToolResult("call_1", "greet", "Hello, Ada!")


@pytest.mark.parametrize(
    ("value", "content"),
    [
        ({"temp": 21.5, "city": "Oslo"}, '{"temp": 21.5, "city": "Oslo"}'),
        ([1, "two"], '[1, "two"]'),
        (None, "null"),
        (7, "7"),
        ({"day": datetime.date(2024, 5, 1)}, '{"day": "2024-05-01"}'),
        ({"name": "Zoë"}, '{"name": "Zoë"}'),
    ],
)
def test_execute_encodes_other_results_as_json(value: Any, content: str) -> None:
    """A result that is not a str is JSON-encoded (anything JSON cannot hold through str())."""
    assert run("value", {}, tool(name="value")(lambda: value)) == ToolResult("call_1", "value", content)


def test_execute_converts_enum_arguments() -> None:
    """Enum parameters arrive as members although JSON carries their values."""

    @tool
    def paint(color: Color, level: Optional[Level] = None) -> str:
        return f"{color.name} {level!r}"

    assert run("paint", {"color": "red", "level": 2}, paint).content == "RED <Level.HIGH: 2>"
    assert run("paint", {"color": "blue"}, paint).content == "BLUE None"
    assert paint(Color.RED) == "RED None"
    failed = run("paint", {"color": "green"}, paint)
    assert failed.is_error and failed.content == "error: ValueError: 'green' is not a valid Color"


def test_execute_unknown_tool_names_the_available_ones() -> None:
    """An unknown tool is an error result listing the tools that exist."""
    assert run("nope", {}, greet, WRITE) == ToolResult(
        "call_1", "nope", "error: unknown tool 'nope'; available tools: delete_file, greet", is_error=True
    )
    assert run("nope", {}).content == "error: unknown tool 'nope'; available tools: none"


def test_execute_invalid_json_arguments() -> None:
    """A call whose arguments did not parse is an error result carrying the reason."""
    result = run("greet", {}, greet, error="the arguments are not valid JSON (Expecting value)")
    assert result == ToolResult(
        "call_1", "greet", "error: the arguments are not valid JSON (Expecting value)", is_error=True
    )


def test_execute_arguments_that_do_not_fit_the_signature() -> None:
    """Missing required and unexpected arguments are error results, and the tool does not run."""
    missing = run("greet", {"punctuation": "?"}, greet)
    extra = run("greet", {"name": "Ada", "mood": "happy"}, greet)
    assert missing == ToolResult(
        "call_1", "greet", "error: bad arguments for 'greet': missing a required argument: 'name'", is_error=True
    )
    assert extra.is_error and extra.content.startswith("error: bad arguments for 'greet': ")
    assert "'mood'" in extra.content


def test_execute_raising_tool_becomes_error_result() -> None:
    """A tool that raises gives 'error: <Type>: <message>' instead of raising."""

    @tool
    def divide(a: int, b: int) -> float:
        return a / b

    assert run("divide", {"a": 1, "b": 0}, divide) == ToolResult(
        "call_1", "divide", "error: ZeroDivisionError: division by zero", is_error=True
    )


def test_read_tools_run_without_asking() -> None:
    """A read tool runs without calling confirm."""
    asked: list[ToolCall] = []

    def confirm(call: ToolCall) -> bool:
        asked.append(call)
        return False

    assert run("greet", {"name": "Ada"}, greet, confirm=confirm).content == "Hello, Ada!"
    assert asked == []


@pytest.mark.parametrize(
    ("name", "arguments", "permission"), [("delete_file", {"path": "a"}, "write"), ("run", {"cmd": "ls"}, "exec")]
)
def test_write_and_exec_are_refused_without_confirm(name: str, arguments: dict[str, Any], permission: str) -> None:
    """Without confirm, write and exec tools are refused with a reason saying so."""
    assert run(name, arguments, WRITE, EXEC) == ToolResult(
        "call_1",
        name,
        f"refused: tool {name!r} needs {permission!r} permission and no confirm_tool was given",
        is_error=True,
    )


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (True, ToolResult("call_1", "delete_file", "deleted a.txt")),
        ((True, "ok"), ToolResult("call_1", "delete_file", "deleted a.txt")),
        (False, ToolResult("call_1", "delete_file", "refused: the call was not approved", is_error=True)),
        ((False, "no deleting"), ToolResult("call_1", "delete_file", "refused: no deleting", is_error=True)),
        ((False, ""), ToolResult("call_1", "delete_file", "refused: the call was not approved", is_error=True)),
    ],
)
def test_confirm_decides_for_write_tools(answer: Any, expected: ToolResult) -> None:
    """confirm(call) approves with True or (True, reason) and refuses with False or (False, reason)."""
    asked: list[tuple[str, dict[str, Any]]] = []

    def confirm(call: ToolCall) -> Any:
        asked.append((call.name, dict(call.arguments)))
        return answer

    assert run("delete_file", {"path": "a.txt"}, WRITE, confirm=confirm) == expected
    assert asked == [("delete_file", {"path": "a.txt"})]


def test_confirm_is_not_asked_about_unusable_calls() -> None:
    """A call with bad arguments is an error result before anyone is asked to approve it."""
    asked: list[ToolCall] = []

    def confirm(call: ToolCall) -> bool:
        asked.append(call)
        return True

    result = run("delete_file", {}, WRITE, confirm=confirm)
    assert result.is_error and "missing a required argument: 'path'" in result.content
    assert asked == []


def test_raising_confirm_is_a_callback_error() -> None:
    """A confirm that raises ends the stream: CallbackError with the original as __cause__."""

    def confirm(call: ToolCall) -> bool:
        raise RuntimeError("ui gone")

    with pytest.raises(CallbackError, match="confirm_tool raised RuntimeError: ui gone") as info:
        run("delete_file", {"path": "a"}, WRITE, confirm=confirm)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_confirm_returning_a_wrong_tuple_is_a_callback_error() -> None:
    """A tuple other than (approved, reason) is a CallbackError, not a silent approval."""
    with pytest.raises(CallbackError, match=r"bool or \(bool, reason\), got a 3-tuple"):
        run("delete_file", {"path": "a"}, WRITE, confirm=lambda call: (True, "ok", "extra"))


# --- tool_prompt ---------------------------------------------------------------------------


def test_tool_prompt_lists_the_definitions_as_indented_json() -> None:
    """tool_prompt wraps the sorted definitions, as indented JSON, in fixed instructions."""
    box = Toolbox([greet, WRITE])
    assert tool_prompt(box) == (
        "You have access to the following tools:\n\n"
        + json.dumps(box.definitions(), indent=2)
        + "\n\nTo use a tool, respond with a tool call in the appropriate format."
    )
    assert tool_prompt([WRITE, greet]) == tool_prompt(box)
    assert '\n  {\n    "name": "delete_file",' in tool_prompt(box)
