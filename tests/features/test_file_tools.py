"""The built-in file tools: what each does, the caps, and that no path ever leaves the root."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llmstreamer
from llmstreamer import ConfigurationError, Message, ToolCall
from llmstreamer._file_tools import MAX_MATCHES
from llmstreamer.testing import FakeLLMServer, Reply
from llmstreamer.tools import execute

from ..conftest import Recorder


def approve(call: ToolCall) -> bool:
    """confirm_tool that approves everything."""
    return True


def run(box: Any, name: str, confirm: Any = approve, **arguments: Any) -> tuple[str, bool]:
    """Run one tool of ``box`` as the tool loop would; (content, is_error)."""
    result = execute(ToolCall("c1", name, arguments), box, confirm)
    assert result.call_id == "c1" and result.name == name
    return result.content, result.is_error


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A root with text, nested and binary files, next to a secret outside it."""
    root = tmp_path / "root"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "README.md").write_text("# Title\nline two\nline three\n")
    (root / "src" / "main.py").write_text("import os\nprint('hello')\n")
    (root / "src" / "pkg" / "util.py").write_text("def hello():\n    return 'hello'\n")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET")
    return root


def test_the_boxes_and_their_permissions(tree: Path) -> None:
    """Read tools have permission read; write=True adds write_file and edit_file with permission write."""
    assert {t.name: t.permission for t in llmstreamer.file_tools(tree)} == {
        "glob": "read", "grep": "read", "list_dir": "read", "read_file": "read",
    }  # fmt: skip
    box = llmstreamer.file_tools(tree, write=True)
    assert {t.name: t.permission for t in box if t.permission == "write"} == {"edit_file": "write", "write_file": "write"}
    assert box.get("read_file").parameters["required"] == ["path"]  # type: ignore[union-attr]


def test_root_must_be_a_folder(tmp_path: Path) -> None:
    """A root that is not a directory is a ConfigurationError at once."""
    with pytest.raises(ConfigurationError, match="is not a directory"):
        llmstreamer.file_tools(tmp_path / "missing")


def test_read_file_whole_and_by_lines(tree: Path) -> None:
    """read_file returns the text, or the lines asked for."""
    box = llmstreamer.file_tools(tree)
    assert run(box, "read_file", path="README.md") == ("# Title\nline two\nline three\n", False)
    assert run(box, "read_file", path="README.md", start_line=2, end_line=2) == ("line two\n", False)
    assert run(box, "read_file", path="./src/../README.md")[1] is True  # '..' refused even when harmless


def test_binary_and_missing_files_are_error_results(tree: Path) -> None:
    """A binary file and a missing one come back as error results, not exceptions."""
    box = llmstreamer.file_tools(tree)
    assert run(box, "read_file", path="logo.png") == ("error: 'logo.png' is a binary file", True)
    assert run(box, "read_file", path="nope.txt") == ("error: No such file or directory", True)


def test_list_dir_and_glob(tree: Path) -> None:
    """list_dir marks folders with '/'; glob's '**' spans folders and '*' does not."""
    box = llmstreamer.file_tools(tree)
    assert run(box, "list_dir") == ("README.md\nlogo.png\nsrc/", False)
    assert run(box, "glob", pattern="**/*.py") == ("src/main.py\nsrc/pkg/util.py", False)
    assert run(box, "glob", pattern="*.py", path="src") == ("src/main.py", False)
    assert run(box, "glob", pattern="*.rs") == ("(no match)", False)


def test_grep_finds_lines_skips_binaries_and_caps_its_output(tree: Path) -> None:
    """grep prints path:line: text, filters by include, and stops after MAX_MATCHES lines."""
    box = llmstreamer.file_tools(tree)
    assert run(box, "grep", pattern="hello") == (
        "src/main.py:2: print('hello')\nsrc/pkg/util.py:1: def hello():\nsrc/pkg/util.py:2:     return 'hello'",
        False,
    )
    assert run(box, "grep", pattern="HELLO", include="main.py", ignore_case=True) == ("src/main.py:2: print('hello')", False)
    assert run(box, "grep", pattern="(")[0].startswith("error: invalid regular expression")
    (tree / "many.txt").write_text("x\n" * (MAX_MATCHES + 50))
    lines = run(box, "grep", pattern="x", path="many.txt")[0].splitlines()
    assert len(lines) == MAX_MATCHES + 1 and lines[-1].startswith("[stopped after")


def test_write_and_edit(tree: Path) -> None:
    """write_file creates files and folders; edit_file replaces a unique text and refuses an ambiguous one."""
    box = llmstreamer.file_tools(tree, write=True)
    assert run(box, "write_file", path="notes/a.txt", content="one two two") == ("wrote 11 bytes to notes/a.txt", False)
    assert run(box, "edit_file", path="notes/a.txt", old_text="one", new_text="1") == ("edited notes/a.txt", False)
    assert (tree / "notes" / "a.txt").read_text() == "1 two two"
    content, is_error = run(box, "edit_file", path="notes/a.txt", old_text="two", new_text="2")
    assert is_error and "occurs 2 times" in content
    assert run(box, "edit_file", path="notes/a.txt", old_text="zzz", new_text="2")[1] is True
    assert (tree / "notes" / "a.txt").read_text() == "1 two two"
    assert not [p for p in (tree / "notes").iterdir() if p.name.startswith(".llmstreamer-")]  # no temp left


def test_write_tools_never_run_without_approval(tree: Path) -> None:
    """Without confirm_tool, or when it says no, write_file and edit_file do nothing."""
    box = llmstreamer.file_tools(tree, write=True)
    content, is_error = run(box, "write_file", confirm=None, path="new.txt", content="x")
    assert is_error and content.startswith("refused:")
    assert run(box, "edit_file", confirm=lambda c: (False, "read-only today"), path="README.md", old_text="Title", new_text="T") == (
        "refused: read-only today",
        True,
    )
    assert not (tree / "new.txt").exists() and (tree / "README.md").read_text().startswith("# Title")


def test_write_tool_in_the_loop_waits_for_approval(tree: Path, recorder: Recorder) -> None:
    """Through a real stream, a refused write_file never touches the disk and the model reads the refusal."""
    call = ToolCall("call_1", "write_file", {"path": "x.txt", "content": "pwned"})
    with FakeLLMServer() as server:
        server.add(Reply(tool_calls=[call], finish_reason="tool_calls"), Reply(text=["OK."]))
        streamer = llmstreamer.streamer("openai:m", api_key="k", base_url=server.base_url("openai"), retry=0)
        handle = streamer.stream_chat([Message.user("write")], recorder, tools=llmstreamer.file_tools(tree, write=True))
        assert handle.wait(10)
    assert recorder.calls == [
        ("tool_call", "write_file"),
        ("usage", 10, 1),
        ("tool_result", "write_file", "refused: tool 'write_file' needs 'write' permission and no confirm_tool was given"),
        ("content", "OK."),
        ("usage", 20, 2),
        ("finish", "OK."),
    ]
    assert not (tree / "x.txt").exists()


def test_symlinks_out_of_the_root_are_refused(tree: Path) -> None:
    """A link to a folder or file outside the root is refused for reading and writing; links inside work."""
    outside = tree.parent / "outside"
    os.symlink(outside, tree / "out")
    os.symlink(outside / "secret.txt", tree / "secret_link")
    os.symlink(tree / "src", tree / "src_link")
    box = llmstreamer.file_tools(tree, write=True)
    for name, args in [
        ("read_file", {"path": "out/secret.txt"}),
        ("read_file", {"path": "secret_link"}),
        ("list_dir", {"path": "out"}),
        ("grep", {"pattern": "SECRET", "path": "out"}),
        ("write_file", {"path": "out/new.txt", "content": "x"}),
        ("write_file", {"path": "secret_link", "content": "x"}),
    ]:
        content, is_error = run(box, name, **args)
        assert is_error and "outside the root" in content, (name, args, content)
    assert run(box, "grep", pattern="SECRET") == ("(no match)", False)  # walking does not follow links
    assert run(box, "read_file", path="src_link/main.py")[1] is False
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"] and (outside / "secret.txt").read_text() == "SECRET"


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("read_file", {"path": "src/data.txt"}),
        ("list_dir", {"path": "src"}),
        ("grep", {"pattern": "SECRET", "path": "src"}),
        ("glob", {"pattern": "**/*.txt", "path": "src"}),
        ("write_file", {"path": "src/data.txt", "content": "WRITTEN"}),
        ("write_file", {"path": "src/new.txt", "content": "WRITTEN"}),
        ("edit_file", {"path": "src/data.txt", "old_text": "inside", "new_text": "WRITTEN"}),
    ],
)
def test_a_link_swapped_in_after_the_check_leads_nowhere(
    tree: Path, monkeypatch: pytest.MonkeyPatch, name: str, arguments: dict[str, Any]
) -> None:
    """A folder replaced by a link to outside between the path check and the open is never followed."""
    from llmstreamer import _file_root

    outside = tree.parent / "outside"
    (tree / "src" / "data.txt").write_text("inside")
    (outside / "data.txt").write_text("SECRET")
    checked = _file_root.Root.resolve
    swaps = []

    def resolve_then_swap(self: Any, rel: Any) -> str:
        full = checked(self, rel)
        if not swaps:  # the attacker wins the race: src becomes a link out of the root
            os.rename(tree / "src", tree / "src_moved")
            os.symlink(outside, tree / "src")
            swaps.append(rel)
        return full

    monkeypatch.setattr(_file_root.Root, "resolve", resolve_then_swap)
    before = _snapshot(outside)
    content, is_error = run(llmstreamer.file_tools(tree, write=True), name, **arguments)
    assert swaps and "SECRET" not in content and "data.txt" not in content
    assert is_error or content in ("(no match)", "(empty folder)"), content
    assert _snapshot(outside) == before
    assert (tree / "src_moved" / "data.txt").read_text() == "inside"


def test_racing_swaps_never_reach_outside(tree: Path) -> None:
    """A thread swapping a folder and an outside link back and forth never gets a tool outside the root."""
    outside = tree.parent / "outside"
    (tree / "src" / "data.txt").write_text("inside")
    (outside / "data.txt").write_text("SECRET")
    os.symlink(outside, tree / "link")
    box = llmstreamer.file_tools(tree, write=True)
    before = _snapshot(outside)
    stop = threading.Event()
    swap_failures: list[int] = []

    def swapper() -> None:
        for _ in range(20000):  # bounded; swaps src between the real folder and the outside link
            if stop.is_set():
                return
            try:  # write_file may make a fresh src folder meanwhile; the swap then just fails
                os.rename(tree / "src", tree / "tmp")
                os.rename(tree / "link", tree / "src")
                os.rename(tree / "src", tree / "link")
                os.rename(tree / "tmp", tree / "src")
            except OSError:
                swap_failures.append(1)

    thread = threading.Thread(target=swapper)
    thread.start()
    try:
        for _ in range(300):
            for name, arguments in [
                ("read_file", {"path": "src/data.txt"}),
                ("list_dir", {"path": "src"}),
                ("grep", {"pattern": "SECRET|inside", "path": "src"}),
                ("write_file", {"path": "src/new.txt", "content": "WRITTEN"}),
            ]:
                content, _ = run(box, name, **arguments)
                assert "SECRET" not in content.replace("SECRET|inside", ""), (name, content)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert _snapshot(outside) == before


# --- the property: nothing outside the root is ever read or written ---------------------------

PIECES = st.sampled_from(
    ["..", ".", "out", "secret_link", "secret.txt", "src", "a.txt", "/", "//", "\x00", "~", "\\..", "x" * 300, "../outside"]
)
PATHS = st.one_of(
    st.lists(PIECES, min_size=1, max_size=6).map("/".join),
    st.lists(PIECES, min_size=1, max_size=4).map("".join),
    st.text(max_size=40),
    st.sampled_from(["/etc/passwd", str(Path("/tmp")), "x" * 5000, "a/" * 2000]),
)
TOOLS = st.sampled_from(["read_file", "list_dir", "glob", "grep", "write_file", "edit_file"])


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` and its bytes (None for folders and links)."""
    found: dict[str, bytes | None] = {}
    for dirpath, dirs, files in os.walk(folder):
        for name in dirs + files:
            full = Path(dirpath) / name
            found[str(full)] = full.read_bytes() if full.is_file() and not full.is_symlink() else None
    return found


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=TOOLS, path=PATHS, other=PATHS)
def test_no_path_ever_leaves_the_root(tmp_path_factory: pytest.TempPathFactory, name: str, path: str, other: str) -> None:
    """Whatever path the model gives (.., absolute, links, NUL, huge names), nothing outside root is read or written."""
    base = tmp_path_factory.mktemp("confine")
    root, outside = base / "root", base / "outside"
    (root / "src").mkdir(parents=True)
    outside.mkdir()
    (root / "a.txt").write_text("inside")
    (outside / "secret.txt").write_text("SECRET")
    os.symlink(outside, root / "out")
    os.symlink(outside / "secret.txt", root / "secret_link")
    before = _snapshot(outside)
    box = llmstreamer.file_tools(root, write=True)
    arguments: dict[str, Any] = {
        "read_file": {"path": path},
        "list_dir": {"path": path},
        "glob": {"pattern": path, "path": other},
        "grep": {"pattern": "SECRET|secret", "path": path},
        "write_file": {"path": path, "content": "WRITTEN"},
        "edit_file": {"path": path, "old_text": "SECRET", "new_text": "WRITTEN"},
    }[name]
    content, _ = run(box, name, **arguments)
    assert "SECRET" not in content.replace("SECRET|secret", "")
    assert _snapshot(outside) == before
    assert {p.name for p in base.iterdir()} == {"root", "outside"}  # nothing written beside the root either
