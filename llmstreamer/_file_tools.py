"""Built-in file tools confined to one directory: read, list, glob, grep, and (opt-in) write and edit.

`file_tools(root)` returns a `Toolbox` the model can use on the files under ``root`` and nowhere
else. Every path the model gives is relative to ``root``; absolute paths, ``..`` components,
NUL bytes and symbolic links that resolve outside ``root`` are refused before any file is
opened, and the opening itself follows no link (see `_file_root`): links inside ``root`` work, a
link swapped in after the check does not. Outputs are capped, binary files are refused, and the
write tools carry the ``write`` permission, so they run only when ``confirm_tool`` approves. A
refusal or a failure is an error result for the model (``error: ...``), never an exception in
the stream.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any, Callable

from ._file_root import Refused, Root
from .models import ToolResult
from .tools import Tool, Toolbox, tool

__all__ = ["file_tools"]

MAX_OUTPUT = 64 * 1024  # characters a tool returns at most
MAX_ENTRIES = 500  # names listed or matched at most
MAX_MATCHES = 200  # grep lines at most
MAX_LINE = 400  # characters of one grep line shown


def _as_result(fn: Callable[..., str]) -> Callable[..., Any]:
    """Turn `Refused` and OS errors into error results with a plain message."""

    @functools.wraps(fn)
    def run(**kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except Refused as exc:
            return ToolResult("", "", f"error: {exc}", is_error=True)
        except OSError as exc:
            return ToolResult("", "", f"error: {exc.strerror or type(exc).__name__}", is_error=True)

    return run


def _cap(text: str, what: str) -> str:
    if len(text) <= MAX_OUTPUT:
        return text
    return text[:MAX_OUTPUT] + f"\n[truncated: {what} is {len(text)} characters; {MAX_OUTPUT} shown]"


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a glob over ``/``-separated relative paths: ``**`` spans folders, ``*`` and ``?`` do not."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def file_tools(root: str | os.PathLike[str], *, write: bool = False) -> Toolbox:
    """A `Toolbox` of file tools working only on the files under ``root``.

    ``read_file`` (optionally a range of lines), ``list_dir``, ``glob`` and ``grep`` (a regular
    expression, bounded output) have the ``read`` permission; with ``write=True`` the box also
    holds ``write_file`` and ``edit_file`` (replace one exact, unique piece of text), which have
    the ``write`` permission: they run only when ``confirm_tool`` approves the call.

    Example::

        box = llmstreamer.file_tools("./project", write=True)
        streamer.stream_chat(messages, callbacks, tools=box, confirm_tool=ask_the_user)

    Raises:
        ConfigurationError: ``root`` is not a directory.
    """
    base = Root(root)
    tools = [_read_file(base), _list_dir(base), _glob(base), _grep(base)]
    if write:
        tools += [_write_file(base), _edit_file(base)]
    return Toolbox(tools)


def _read_file(base: Root) -> Tool:
    @_as_result
    def read_file(path: str, start_line: int = 1, end_line: int = 0) -> str:
        """Read a text file under the root, optionally only some of its lines.

        Args:
            path: The file's path, relative to the root.
            start_line: The first line to return (1 is the first line of the file).
            end_line: The last line to return; 0 reads to the end.
        """
        text = base.read_text(base.resolve(path))
        if start_line > 1 or end_line > 0:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[max(start_line, 1) - 1 : end_line if end_line > 0 else None])
        return _cap(text, "the file")

    return tool(read_file)


def _list_dir(base: Root) -> Tool:
    @_as_result
    def list_dir(path: str = ".") -> str:
        """List a folder under the root: one name per line, folders end with '/'.

        Args:
            path: The folder, relative to the root ("." is the root itself).
        """
        full = base.resolve(path)
        try:
            names = base.list_names(full)
        except NotADirectoryError:
            raise Refused(f"{path!r} is not a folder") from None
        if len(names) > MAX_ENTRIES:
            names = [*names[:MAX_ENTRIES], f"[{len(names) - MAX_ENTRIES} more not shown]"]
        return _cap("\n".join(names), "the listing") or "(empty folder)"

    return tool(list_dir)


def _glob(base: Root) -> Tool:
    @_as_result
    def glob(pattern: str, path: str = ".") -> str:
        """Find files whose path (relative to the root) matches a glob pattern such as '**/*.py'.

        Args:
            pattern: '*' and '?' match within one folder name, '**' across folders.
            path: The folder to search in, relative to the root.
        """
        base.resolve(pattern.replace("*", "x").replace("?", "x"))  # the same rules as any path
        top = base.resolve(path)
        matcher = _glob_regex(pattern)
        found = []
        for full in base.walk(top):
            rel = os.path.relpath(full, top).replace(os.sep, "/")
            if matcher.fullmatch(rel):
                found.append(base.relative(full))
                if len(found) > MAX_ENTRIES:
                    found[-1] = f"[more than {MAX_ENTRIES} matches; narrow the pattern]"
                    break
        return _cap("\n".join(found), "the list") or "(no match)"

    return tool(glob)


def _grep(base: Root) -> Tool:
    @_as_result
    def grep(pattern: str, path: str = ".", include: str = "", ignore_case: bool = False) -> str:
        """Search text files under the root for a regular expression; prints 'path:line: text' per match.

        Args:
            pattern: A Python regular expression.
            path: A file or folder to search, relative to the root.
            include: Only search files whose name matches this glob, e.g. '*.py'.
            ignore_case: Match letters in either case.
        """
        try:
            regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        except re.error as exc:
            raise Refused(f"invalid regular expression: {exc}") from None
        top = base.resolve(path)
        files = list(base.walk(top)) if base.is_dir(top) else [top]
        name_ok = _glob_regex(include).fullmatch if include else None
        out: list[str] = []
        for full in files:
            if name_ok is not None and not name_ok(os.path.basename(full)):
                continue
            try:
                text = base.read_text(full)
            except (Refused, OSError):
                continue  # binary, huge or unreadable files are skipped, not fatal
            for number, line in enumerate(text.splitlines(), 1):
                if regex.search(line):
                    shown = line if len(line) <= MAX_LINE else line[:MAX_LINE] + "..."
                    out.append(f"{base.relative(full)}:{number}: {shown}")
                    if len(out) >= MAX_MATCHES:
                        out.append(f"[stopped after {MAX_MATCHES} matches; narrow the search]")
                        return _cap("\n".join(out), "the output")
        return _cap("\n".join(out), "the output") or "(no match)"

    return tool(grep)


def _write_file(base: Root) -> Tool:
    @_as_result
    def write_file(path: str, content: str) -> str:
        """Create or replace a text file under the root (missing folders are created).

        Args:
            path: The file's path, relative to the root.
            content: The whole new text of the file.
        """
        full = base.resolve(path)
        base.write_atomic(full, content)
        return f"wrote {len(content.encode('utf-8'))} bytes to {base.relative(full)}"

    return tool(permission="write")(write_file)


def _edit_file(base: Root) -> Tool:
    @_as_result
    def edit_file(path: str, old_text: str, new_text: str) -> str:
        """Replace one exact piece of text in a file under the root; it must occur exactly once.

        Args:
            path: The file's path, relative to the root.
            old_text: The text to replace, with enough context to be unique.
            new_text: What to put in its place.
        """
        full = base.resolve(path)
        text = base.read_text(full)
        if not old_text:
            raise Refused("old_text is empty; give the exact text to replace")
        count = text.count(old_text)
        if count == 0:
            raise Refused(f"old_text was not found in {path!r}")
        if count > 1:
            raise Refused(f"old_text occurs {count} times in {path!r}; include more context so it is unique")
        base.write_atomic(full, text.replace(old_text, new_text, 1))
        return f"edited {base.relative(full)}"

    return tool(permission="write")(edit_file)
