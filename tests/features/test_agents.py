"""Agents: go-llm's file format, input validation before any request, the sandbox, runs, and the versioned store."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import llmstreamer
from llmstreamer import Agent, AgentStore, ConfigurationError, ElizaStreamer, GeminiStreamer, ToolCall, tool
from llmstreamer.cli import main
from llmstreamer.testing import FakeLLMServer, Reply

from ..conftest import Recorder

# The example in go-llm's etc/agent/README.md, as documented.
GO_LLM_EXAMPLE = """---
name: my_agent
title: A short description (at least 10 characters)
description: A longer description of what the agent does.
model: claude-haiku-4-5-20251001
provider: anthropic
system_prompt: |
  You are a helpful assistant.
input:
  type: object
  properties:
    query:
      type: string
      description: The user's query
  required:
    - query
format:
  type: object
  properties:
    answer:
      type: string
  required:
    - answer
---

Answer the following question: {{ .query }}
"""

# go-llm's test agents name the answer schema "output" and turn thinking on with a budget.
CLASSIFIER = """---
name: classifier
title: Sentiment Classifier
provider: anthropic
model: claude-sonnet
thinking: true
thinking_budget: 2048
system_prompt: You are a sentiment analysis expert.
output:
  type: object
  properties:
    sentiment: {type: string, enum: [positive, negative, neutral]}
  required: [sentiment]
---
Text:
{{ .text }}
"""

WEATHER = """---
name: weather_agent
provider: openai
model: gpt-4o-mini
system_prompt: Answer briefly.
tools: [weather]
input:
  type: object
  properties:
    cities: {type: array, items: {type: string}, minItems: 1}
    days: {type: integer, minimum: 1}
  required: [cities]
---
# Weather report
What is the weather in {% for c in cities %}{{ c }}{% if not loop.last %} and {% endif %}{% endfor %}?
"""


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


@tool
def stocks(symbol: str) -> str:
    """A stock price."""
    return "42"


def test_go_llm_documented_example_parses_and_renders() -> None:
    """go-llm's documented example: every front matter field read, the Go-style body rendered."""
    agent = Agent.from_text(GO_LLM_EXAMPLE)
    assert (agent.name, agent.provider, agent.model) == ("my_agent", "anthropic", "claude-haiku-4-5-20251001")
    assert agent.title == "A short description (at least 10 characters)"
    assert agent.description == "A longer description of what the agent does."
    assert agent.system_prompt == "You are a helpful assistant.\n"
    assert agent.input == {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "The user's query"}},
        "required": ["query"],
    }
    assert agent.format == {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    assert agent.render({"query": "Why is the sky blue?"}) == "Answer the following question: Why is the sky blue?"
    assert agent.options() == {"system": "You are a helpful assistant.\n", "response_format": agent.format}
    assert Agent.from_text(agent.to_text()) == agent  # to_text round-trips


def test_output_alias_and_thinking_budget() -> None:
    """go-llm's 'output' is the answer schema; thinking with a budget becomes thinking_budget."""
    agent = Agent.from_text(CLASSIFIER)
    assert agent.format is not None and agent.format["required"] == ["sentiment"]
    assert agent.options()["thinking_budget"] == 2048 and "reasoning" not in agent.options()
    assert Agent(name="t", thinking=True).options() == {"reasoning": "medium"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({}, "invalid input: 'cities' is a required property"),
        ({"cities": "Oslo"}, "invalid input.cities: 'Oslo' is not of type 'array'"),
        ({"cities": ["Oslo", 7]}, "invalid input.cities[1]: 7 is not of type 'string'"),
        ({"cities": ["Oslo"], "days": 0}, "invalid input.days: 0 is less than the minimum of 1"),
        ('{"cities": [', "the input is not valid JSON"),
        ([1, 2], "the input must be an object, got list"),
    ],
)
def test_bad_input_is_refused_naming_the_field_before_any_request(value: Any, message: str) -> None:
    """An input that breaks the schema fails with the field named, and nothing is sent."""
    agent = Agent.from_text(WEATHER)
    with FakeLLMServer() as server:
        streamer = llmstreamer.streamer("openai:m", api_key="k", base_url=server.base_url("openai"))
        with pytest.raises(ConfigurationError) as caught:
            agent.run(value, tools=[weather], streamer=streamer)
        assert server.requests == []
    assert caught.value.message.startswith(f"agent 'weather_agent': {message}")


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ name.__class__.__base__ }}",
        "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
        "{{ self.__init__.__globals__['os'] }}",
    ],
)
def test_the_template_cannot_reach_python_internals(template: str) -> None:
    """Sandboxed rendering: reaching for dunder attributes fails loudly instead of leaking objects."""
    agent = Agent(name="evil", template=template)
    with pytest.raises(ConfigurationError, match="sandbox forbids"):
        agent.render({"name": "x"})


def test_run_sends_system_format_and_only_the_agents_tools(recorder: Recorder) -> None:
    """run() streams the rendered message with the agent's system prompt and only the tools it names."""
    agent = Agent.from_text(WEATHER)
    assert agent.title == "Weather report"  # from the body's first heading
    with FakeLLMServer() as server:
        server.add(Reply(text=["Sunny", " everywhere."]))
        streamer = llmstreamer.streamer("openai:m", api_key="k", base_url=server.base_url("openai"))
        handle = agent.run({"cities": ["Oslo", "Lima"]}, recorder, tools=[weather, stocks], streamer=streamer, temperature=0.1)
        assert handle.wait(10)
        body = server.requests[0].json
    assert recorder.calls == [("content", "Sunny"), ("content", " everywhere."), ("usage", 10, 2), ("finish", "Sunny everywhere.")]
    assert body["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "# Weather report\nWhat is the weather in Oslo and Lima?"},
    ]
    assert [t["function"]["name"] for t in body["tools"]] == ["weather"] and body["temperature"] == 0.1


def test_a_tool_the_agent_names_must_be_given() -> None:
    """An agent naming a tool that tools= lacks fails before any request, naming it."""
    agent = Agent.from_text(WEATHER)
    with FakeLLMServer() as server:
        streamer = llmstreamer.streamer("openai:m", api_key="k", base_url=server.base_url("openai"))
        with pytest.raises(ConfigurationError, match=r"uses the tool\(s\) weather, not among the tools given \(stocks\)"):
            agent.run({"cities": ["Oslo"]}, tools=[stocks], streamer=streamer)
        assert server.requests == []


def test_streamer_comes_from_provider_and_model() -> None:
    """streamer() builds the agent's provider (go-llm's 'google' is Gemini); no provider means Eliza."""
    google = Agent(name="g", provider="google", model="gemini-2.5-flash").streamer(api_key="k")
    assert isinstance(google, GeminiStreamer) and google.model == "gemini-2.5-flash"
    assert isinstance(Agent(name="e").streamer(), ElizaStreamer)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no front matter", "starts with YAML front matter"),
        ("---\nname: x\n", "never closed"),
        ("---\nname: x\ncolour: red\n---\nHi", "unknown agent field(s) colour"),
        ("---\nname: x\ninput: {type: objekt}\n---\nHi", "input is not a valid JSON Schema"),
        ("---\nname: x\n---\n{% if %}", "the template has an error on line 1"),
        ("---\nname: 9lives\n---\nHi", "invalid agent name '9lives'"),
        ("---\ntitle: no name here\n---\nHi", "the agent has no name"),
        ("---\nname: x\nthinking_budget: lots\n---\nHi", "thinking_budget must be a whole number"),
        ("---\n- a\n- b\n---\nHi", "must be a mapping of fields"),
    ],
)
def test_bad_agent_files_are_refused(text: str, message: str) -> None:
    """Each kind of broken agent file is a ConfigurationError that says what is wrong."""
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Agent.from_text(text)


def test_from_file_takes_the_name_from_the_file(tmp_path: Path) -> None:
    """A file without 'name:' is named after the file."""
    path = tmp_path / "summarize.md"
    path.write_text("---\ntitle: Summarize text\n---\nSummarize: {{ text }}\n")
    agent = Agent.from_file(path)
    assert agent.name == "summarize" and agent.render({"text": "abc"}) == "Summarize: abc"


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PyYAML the error names the package and the extra to install."""
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ConfigurationError, match=r"agents need the PyYAML package: pip install 'llmstreamer\[agents\]'"):
        Agent.from_text(GO_LLM_EXAMPLE)


# --- the store -------------------------------------------------------------------------------------


def test_versions_increase_and_every_lookup_works(tmp_path: Path) -> None:
    """update() adds versions 1, 2, 3 on changes (not on repeats); get by name, name@version and id; delete all."""
    store = AgentStore(tmp_path / "agents")
    first = store.create(Agent.from_text(GO_LLM_EXAMPLE))
    assert first.version == 1 and first.id
    same = store.update(Agent.from_text(GO_LLM_EXAMPLE))
    assert (same.version, same.id) == (1, first.id)  # unchanged: no new version
    second = store.update(Agent.from_text(GO_LLM_EXAMPLE.replace("helpful", "terse")))
    third = store.update(Agent.from_text(GO_LLM_EXAMPLE.replace("helpful", "kind")))
    assert [second.version, third.version] == [2, 3]
    assert store.get("my_agent") == third and store.get("my_agent@1") == first and store.get(second.id or "") == second
    assert [a.version for a in store.versions("my_agent")] == [1, 2, 3]
    store.update(Agent.from_text(CLASSIFIER))
    assert [(a.name, a.version) for a in store.list()] == [("classifier", 1), ("my_agent", 3)]
    with pytest.raises(ConfigurationError, match="already exists"):
        store.create(Agent.from_text(CLASSIFIER))
    assert store.delete("my_agent@2") == 1 and [a.version for a in store.versions("my_agent")] == [1, 3]
    assert store.delete("my_agent") == 2 and "my_agent" not in store and store.names() == ["classifier"]
    with pytest.raises(ConfigurationError, match="no agent 'my_agent'"):
        store.get("my_agent")


def test_concurrent_updates_each_get_their_own_version(tmp_path: Path) -> None:
    """Eight threads updating one agent at once store eight distinct versions, none lost."""
    store = AgentStore(tmp_path)
    start = threading.Barrier(8, timeout=10)
    stored: list[int] = []

    def update(n: int) -> None:
        start.wait()
        stored.append(store.update(Agent(name="busy", template=f"version from thread {n}")).version)

    threads = [threading.Thread(target=update, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(stored) == list(range(1, 9)) and len(store.versions("busy")) == 8


# --- the command line ------------------------------------------------------------------------------


def test_cli_create_list_show_run_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """agent create, list, show, run (Eliza, no key) and delete, through llmstreamer's main()."""
    path = tmp_path / "doctor.md"
    path.write_text("---\nname: doctor\ntitle: Talk to the doctor\nprovider: eliza\ninput:\n  type: object\n"
                    "  properties: {feeling: {type: string}}\n  required: [feeling]\n---\nI am {{ feeling }}\n")  # fmt: skip
    store = ["agent", "--store", str(tmp_path / "store")]
    assert main([*store, "create", str(path)]) == 0
    assert main([*store, "list"]) == 0
    assert main([*store, "show", "doctor"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("doctor v1\ndoctor                   v1    Talk to the doctor\n# doctor@1 (id ")
    assert "name: doctor\n" in out and out.endswith("---\nI am {{ feeling }}\n")
    assert main([*store, "run", "doctor", "--input", '{"feeling": "sad"}', "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-1]["type"] == "finish" and events[-1]["provider"] == "eliza" and events[-1]["text"]
    assert main([*store, "delete", "doctor"]) == 0 and main([*store, "list"]) == 0
    assert capsys.readouterr().out == "deleted 1 version(s) of doctor\n"


def test_cli_run_refuses_bad_input_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """agent run with input breaking the schema exits 2 naming the field."""
    path = tmp_path / "a.md"
    path.write_text(WEATHER)
    assert main(["agent", "run", str(path), "--input", '{"cities": []}']) == 2
    assert capsys.readouterr().err == "llmstreamer: error: agent 'weather_agent': invalid input.cities: [] should be non-empty\n"


def test_crlf_files_and_empty_front_matter() -> None:
    """Front matter with CRLF line endings and '---' inside a value parses; empty front matter takes the given name."""
    agent = Agent.from_text("---\r\nname: y\r\ntitle: a --- b\r\n---\r\nHello {{ .who }}\r\n")
    assert agent.title == "a --- b" and agent.render({"who": "you"}) == "Hello you"
    assert Agent.from_text("---\n---\nHi", name="x").template == "Hi"


def test_cli_run_with_mcp_tools_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """agent run --mcp CMD --files ROOT --yes gives the agent the MCP tool it names and runs it in the loop."""
    pytest.importorskip("mcp")
    server_script = Path(__file__).resolve().parents[1] / "mcpserver.py"
    path = tmp_path / "calc.md"
    path.write_text("---\nname: calc\nprovider: openai\nmodel: m\ntools: [add, read_file]\n---\nAdd 2 and 3.\n")
    (tmp_path / "notes.txt").write_text("remember")
    calls = [ToolCall("c1", "add", {"a": 2, "b": 3}), ToolCall("c2", "read_file", {"path": "notes.txt"})]
    with FakeLLMServer() as server:
        server.add(Reply(tool_calls=calls, finish_reason="tool_calls"), Reply(text=["5, remember."]))
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url("openai"))
        command = f"{sys.executable} {server_script} stdio"
        code = main(["agent", "run", str(path), "--mcp", command, "--files", str(tmp_path), "--yes", "--json"])
        sent = server.requests
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [(e["type"], e.get("name"), e.get("content")) for e in events if e["type"].startswith("tool")] == [
        ("tool_call", "add", None),
        ("tool_call", "read_file", None),
        ("tool_result", "add", "5"),
        ("tool_result", "read_file", "remember"),
    ]
    assert sorted(t["function"]["name"] for t in sent[0].json["tools"]) == ["add", "read_file"]
