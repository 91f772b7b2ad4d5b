"""One confined folder for the file tools: paths checked against it, files opened without following links.

`Root.resolve` turns the model's relative path into a checked real path under the root; the
open, list, walk and write methods then reach it by walking from a descriptor of the root one
name at a time with ``O_NOFOLLOW`` (POSIX ``dir_fd`` calls), so a link swapped in after the
check stops the tool instead of leading out of the root.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from typing import Any, Iterator

from .errors import ConfigurationError

__all__ = ["MAX_DEPTH", "MAX_FILE", "MAX_PATH", "Refused", "Root"]

MAX_FILE = 4 * 1024 * 1024  # bytes a file may have to be read or searched
MAX_PATH = 4096  # bytes of a resolved path at most (Linux's PATH_MAX; walking by descriptors has none)
MAX_DEPTH = 64  # folders below the root at most
_SNIFF = 8192  # bytes looked at to tell a binary file
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC


class Refused(Exception):
    """A path or request the tool will not serve; its text goes back to the model."""


class Root:
    """One confined directory: resolves the model's relative paths and reads and writes under it."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = os.path.realpath(os.fspath(root))
        if not os.path.isdir(path):
            raise ConfigurationError(f"file_tools: root {os.fspath(root)!r} is not a directory")
        self.path = path

    def resolve(self, rel: Any) -> str:
        """The real path of ``rel`` under the root; refuses anything that could leave it."""
        if not isinstance(rel, str):
            raise Refused("a path must be text")
        if "\x00" in rel:
            raise Refused("a path may not contain a NUL byte")
        rel = rel.strip() or "."
        if os.path.isabs(rel) or rel.startswith("~"):
            raise Refused(f"{rel!r}: give a path relative to the root, not an absolute one")
        if ".." in re.split(r"[/\\]", rel):
            raise Refused(f"{rel!r}: '..' is not allowed; paths stay under the root")
        full = os.path.realpath(os.path.join(self.path, rel))
        if len(os.fsencode(full)) >= MAX_PATH or full.count(os.sep) - self.path.count(os.sep) > MAX_DEPTH:
            raise Refused(f"the path is too long (at most {MAX_PATH} bytes and {MAX_DEPTH} folders deep)")
        if not self.inside(full):
            raise Refused(f"{rel!r} leads outside the root (through a symbolic link)")
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
                raise Refused(f"{self.relative(full)!r} leads outside the root (a symbolic link in its path)") from None
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
                raise Refused(f"{self.relative(full)!r} is a symbolic link that leads outside the root") from None
            raise
        finally:
            os.close(parent)

    def is_dir(self, full: str) -> bool:
        """True when ``full`` is a folder reached without following a link (False for anything else)."""
        try:
            os.close(self.open_dir(full))
        except (OSError, Refused):
            return False
        return True

    def read_text(self, full: str) -> str:
        """The text of a regular file under the root; refuses binary, huge and special files."""
        fd = self.open_file(full, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise Refused(f"{self.relative(full)!r} is not a regular file")
            if info.st_size > MAX_FILE:
                raise Refused(f"{self.relative(full)!r} is {info.st_size} bytes; the limit is {MAX_FILE}")
            data = fh.read(MAX_FILE + 1)
        if b"\x00" in data[:_SNIFF]:
            raise Refused(f"{self.relative(full)!r} is a binary file")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(f"{self.relative(full)!r} is not UTF-8 text") from None

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
            raise Refused(f"{self.relative(full)!r} is a folder")
        name = names[-1]
        parent = self.open_dir(os.path.dirname(full), create=True)
        try:
            try:
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                mode = 0o644
            else:
                if stat.S_ISLNK(info.st_mode):
                    raise Refused(f"{self.relative(full)!r} is a symbolic link; write to its target's path instead")
                if stat.S_ISDIR(info.st_mode):
                    raise Refused(f"{self.relative(full)!r} is a folder")
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
