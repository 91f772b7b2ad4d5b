"""Built-in file tools confined to one directory: read, list, glob, grep, and (opt-in) write and edit.

`file_tools(root)` returns a `Toolbox` the model can use on the files under ``root`` and nowhere
else. Every path the model gives is relative to ``root``; absolute paths, ``..`` components,
NUL bytes and symbolic links that resolve outside ``root`` are refused before any file is
opened. Links inside ``root`` are followed as before: the path is resolved and checked first, then
opened by walking from a descriptor of ``root`` one name at a time with ``O_NOFOLLOW``, so a link
swapped in between the check and the open stops the tool instead of leading out (POSIX ``dir_fd``
calls; the temporary file of a write is made and renamed inside its folder's descriptor). Outputs are capped, binary files are refused, and the write tools carry the ``write``
permission, so they run only when ``confirm_tool`` approves. A refusal or a failure is an error
result for the model (``error: ...``), never an exception in the stream.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import secrets
import stat
from typing import Any, Callable, Iterator

from .errors import ConfigurationError
from .models import ToolResult
from .tools import Tool, Toolbox, tool

__all__ = ["file_tools"]

MAX_OUTPUT = 64 * 1024  # characters a tool returns at most
MAX_FILE = 4 * 1024 * 1024  # bytes a file may have to be read or searched
MAX_ENTRIES = 500  # names listed or matched at most
MAX_MATCHES = 200  # grep lines at most
MAX_LINE = 400  # characters of one grep line shown
MAX_PATH = 4096  # bytes of a resolved path at most (Linux's PATH_MAX; walking by descriptors has none)
MAX_DEPTH = 64  # folders below the root at most
_SNIFF = 8192  # bytes looked at to tell a binary file
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC


class _Refused(Exception):
    """A path or request the tool will not serve; its text goes back to the model."""


def _as_result(fn: Callable[..., str]) -> Callable[..., Any]:
    """Turn `_Refused` and OS errors into error results with a plain message."""

    @functools.wraps(fn)
    def run(**kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except _Refused as exc:
            return ToolResult("", "", f"error: {exc}", is_error=True)
        except OSError as exc:
            return ToolResult("", "", f"error: {exc.strerror or type(exc).__name__}", is_error=True)

    return run


class _Root:
    """One confined directory: resolves the model's relative paths and reads and writes under it."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = os.path.realpath(os.fspath(root))
        if not os.path.isdir(path):
            raise ConfigurationError(f"file_tools: root {os.fspath(root)!r} is not a directory")
        self.path = path

    def resolve(self, rel: Any) -> str:
        """The real path of ``rel`` under the root; refuses anything that could leave it."""
        if not isinstance(rel, str):
            raise _Refused("a path must be text")
        if "\x00" in rel:
            raise _Refused("a path may not contain a NUL byte")
        rel = rel.strip() or "."
        if os.path.isabs(rel) or rel.startswith("~"):
            raise _Refused(f"{rel!r}: give a path relative to the root, not an absolute one")
        if ".." in re.split(r"[/\\]", rel):
            raise _Refused(f"{rel!r}: '..' is not allowed; paths stay under the root")
        full = os.path.realpath(os.path.join(self.path, rel))
        if len(os.fsencode(full)) >= MAX_PATH or full.count(os.sep) - self.path.count(os.sep) > MAX_DEPTH:
            raise _Refused(f"the path is too long (at most {MAX_PATH} bytes and {MAX_DEPTH} folders deep)")
        if not self.inside(full):
            raise _Refused(f"{rel!r} leads outside the root (through a symbolic link)")
        return full

    def inside(self, full: str) -> bool:
        return full == self.path or full.startswith(self.path + os.sep)

    def relative(self, full: str) -> str:
        rel = os.path.relpath(full, self.path)
        return rel.replace(os.sep, "/")

    def _names(self, full: str) -> list[str]:
        rel = os.path.relpath(full, self.path)
        return [] if rel == os.curdir else rel.split(os.sep)

    def open_dir(self, full: str, *, create: bool = False) -> int:
        """A descriptor of the folder ``full`` (a resolved path under the root), opened name by name.

        The walk starts at a descriptor of the root and opens each name relative to the last
        with ``O_NOFOLLOW``: a symbolic link swapped in after `resolve` checked the path stops
        the walk instead of leading out of the root. ``create`` makes missing folders on the way.
        """
        fd = os.open(self.path, _DIR)
        try:
            for name in self._names(full):
                if create:
                    try:
                        os.mkdir(name, 0o777, dir_fd=fd)
                    except FileExistsError:
                        pass
                inner = os.open(name, _DIR, dir_fd=fd)
                os.close(fd)
                fd = inner
        except OSError as exc:
            os.close(fd)
            if exc.errno == errno.ELOOP:
                raise _Refused(f"{self.relative(full)!r} leads outside the root (a symbolic link in its path)") from None
            raise
        return fd

    def open_file(self, full: str, flags: int) -> int:
        """A descriptor of the file ``full`` under the root; no link is followed anywhere on the way."""
        names = self._names(full)
        if not names:
            return os.open(self.path, os.O_RDONLY | _CLOEXEC)
        parent = self.open_dir(os.path.dirname(full))
        try:
            return os.open(names[-1], flags | _NOFOLLOW | _CLOEXEC, dir_fd=parent)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _Refused(f"{self.relative(full)!r} is a symbolic link that leads outside the root") from None
            raise
        finally:
            os.close(parent)

    def is_dir(self, full: str) -> bool:
        """True when ``full`` is a folder reached without following a link (False for anything else)."""
        try:
            os.close(self.open_dir(full))
        except (OSError, _Refused):
            return False
        return True

    def read_text(self, full: str) -> str:
        """The text of a regular file under the root; refuses binary, huge and special files."""
        fd = self.open_file(full, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise _Refused(f"{self.relative(full)!r} is not a regular file")
            if info.st_size > MAX_FILE:
                raise _Refused(f"{self.relative(full)!r} is {info.st_size} bytes; the limit is {MAX_FILE}")
            data = fh.read(MAX_FILE + 1)
        if b"\x00" in data[:_SNIFF]:
            raise _Refused(f"{self.relative(full)!r} is a binary file")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused(f"{self.relative(full)!r} is not UTF-8 text") from None

    def list_names(self, full: str) -> list[str]:
        """The names in the folder ``full``, sorted; folders end with '/' (links are not followed)."""
        fd = self.open_dir(full)
        try:
            with os.scandir(fd) as entries:
                return sorted(e.name + ("/" if e.is_dir(follow_symlinks=False) else "") for e in entries)
        finally:
            os.close(fd)

    def walk(self, top: str) -> Iterator[str]:
        """Every regular file under ``top`` (symbolic links are not followed), sorted, as full paths."""
        fd = self.open_dir(top)
        try:
            for folder, dirs, files, dir_fd in os.fwalk(os.curdir, dir_fd=fd, follow_symlinks=False):
                dirs.sort()
                for name in sorted(files):
                    if stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                        yield os.path.normpath(os.path.join(top, folder, name))
        finally:
            os.close(fd)

    def write_atomic(self, full: str, text: str) -> None:
        """Replace (or create) the file at ``full`` in one step: a temporary file, then a rename.

        Both are made inside a descriptor of the parent folder (see `open_dir`), so the file
        lands in the folder that was checked even if a link is swapped in meanwhile.
        """
        names = self._names(full)
        if not names:
            raise _Refused(f"{self.relative(full)!r} is a folder")
        name = names[-1]
        parent = self.open_dir(os.path.dirname(full), create=True)
        try:
            try:
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                mode = 0o644
            else:
                if stat.S_ISLNK(info.st_mode):
                    raise _Refused(f"{self.relative(full)!r} is a symbolic link; write to its target's path instead")
                if stat.S_ISDIR(info.st_mode):
                    raise _Refused(f"{self.relative(full)!r} is a folder")
                mode = info.st_mode & 0o777
            tmp = f".llmstreamer-{secrets.token_hex(8)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600, dir_fd=parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fchmod(fh.fileno(), mode)
                os.replace(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=parent)
                except FileNotFoundError:
                    pass
                raise
        finally:
            os.close(parent)


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
    base = _Root(root)
    tools = [_read_file(base), _list_dir(base), _glob(base), _grep(base)]
    if write:
        tools += [_write_file(base), _edit_file(base)]
    return Toolbox(tools)


def _read_file(base: _Root) -> Tool:
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


def _list_dir(base: _Root) -> Tool:
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
            raise _Refused(f"{path!r} is not a folder") from None
        if len(names) > MAX_ENTRIES:
            names = [*names[:MAX_ENTRIES], f"[{len(names) - MAX_ENTRIES} more not shown]"]
        return _cap("\n".join(names), "the listing") or "(empty folder)"

    return tool(list_dir)


def _glob(base: _Root) -> Tool:
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


def _grep(base: _Root) -> Tool:
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
            raise _Refused(f"invalid regular expression: {exc}") from None
        top = base.resolve(path)
        files = list(base.walk(top)) if base.is_dir(top) else [top]
        name_ok = _glob_regex(include).fullmatch if include else None
        out: list[str] = []
        for full in files:
            if name_ok is not None and not name_ok(os.path.basename(full)):
                continue
            try:
                text = base.read_text(full)
            except (_Refused, OSError):
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


def _write_file(base: _Root) -> Tool:
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


def _edit_file(base: _Root) -> Tool:
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
            raise _Refused("old_text is empty; give the exact text to replace")
        count = text.count(old_text)
        if count == 0:
            raise _Refused(f"old_text was not found in {path!r}")
        if count > 1:
            raise _Refused(f"old_text occurs {count} times in {path!r}; include more context so it is unique")
        base.write_atomic(full, text.replace(old_text, new_text, 1))
        return f"edited {base.relative(full)}"

    return tool(permission="write")(edit_file)
