"""`AgentStore`: agents kept in a folder, every version of each, by name, ``name@version`` or id.

Layout: ``DIR/<name>/<version>.json``, one file per version (the agent's fields plus ``id``,
``version`` and ``created``), folders 0700 and files 0600. A version file is written to a
temporary file and linked into place only if that version does not exist yet, so two
processes updating one agent at once get two versions instead of one lost update.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from typing import Any, Iterator

import attrs

from .agents import FIELDS, Agent
from .errors import ConfigurationError

__all__ = ["AgentStore"]

_META = ("id", "version", "created")


class AgentStore:
    """Versioned agents in a folder.

    Example::

        store = llmstreamer.AgentStore("~/.config/llmstreamer/agents")
        store.update(Agent.from_file("translate.md"))   # version 1, then 2, 3... on changes
        agent = store.get("translate")                   # the newest; "translate@1" for the first
        store.delete("translate")                        # every version
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.path.expanduser(os.fspath(path)))

    def __repr__(self) -> str:
        return f"AgentStore({self.path!r})"

    # --- reading -------------------------------------------------------------------------------

    def _folder(self, name: str) -> str:
        Agent(name=name)  # validates the name: it becomes a folder name
        return os.path.join(self.path, name)

    def _version_numbers(self, name: str) -> list[int]:
        try:
            files = os.listdir(self._folder(name))
        except FileNotFoundError:
            return []
        return sorted(int(f[:-5]) for f in files if f.endswith(".json") and f[:-5].isdigit())

    def _load(self, name: str, version: int) -> Agent:
        file = os.path.join(self._folder(name), f"{version}.json")
        try:
            with open(file, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            raise ConfigurationError(f"no version {version} of agent {name!r} in {self.path}") from None
        except ValueError as exc:
            raise ConfigurationError(f"{file} is not a readable agent ({exc})") from None
        return Agent(**{k: data.get(k) for k in (*FIELDS, "template", *_META) if k in data})

    def versions(self, name: str) -> list[Agent]:
        """Every stored version of the agent ``name``, oldest first (empty when there is none)."""
        return [self._load(name, v) for v in self._version_numbers(name)]

    def names(self) -> list[str]:
        """The names of the stored agents, sorted."""
        try:
            entries = sorted(os.listdir(self.path))
        except FileNotFoundError:
            return []
        return [e for e in entries if self._version_numbers_safe(e)]

    def _version_numbers_safe(self, name: str) -> list[int]:
        try:
            return self._version_numbers(name)
        except ConfigurationError:
            return []

    def list(self) -> list[Agent]:
        """The newest version of each stored agent, by name."""
        return [self.get(name) for name in self.names()]

    def _all(self) -> Iterator[Agent]:
        for name in self.names():
            yield from self.versions(name)

    def get(self, ref: str, version: int | None = None) -> Agent:
        """An agent by name (its newest version), ``name@version``, or id.

        Raises:
            ConfigurationError: there is no such agent or version.
        """
        name, _, at = ref.partition("@")
        if at:
            if not at.isdigit():
                raise ConfigurationError(f"{ref!r}: a version is a number, as in {name}@2")
            version = int(at)
        if self._version_numbers_safe(name):
            return self._load(name, version if version is not None else self._version_numbers(name)[-1])
        for agent in self._all():
            if agent.id == ref:
                return agent
        raise ConfigurationError(f"no agent {ref!r} in {self.path}")

    def __contains__(self, ref: object) -> bool:
        try:
            self.get(str(ref))
        except ConfigurationError:
            return False
        return True

    # --- writing -------------------------------------------------------------------------------

    def create(self, agent: Agent) -> Agent:
        """Store a new agent as version 1 and return the stored copy (with id and version).

        Raises:
            ConfigurationError: an agent with that name is already stored (use `update`).
        """
        if self._version_numbers(agent.name):
            raise ConfigurationError(f"agent {agent.name!r} already exists in {self.path}; update() adds a version")
        return self._write(agent)

    def update(self, agent: Agent) -> Agent:
        """Store ``agent`` as the next version of its name (the first if new) and return the stored copy.

        An agent identical to the newest version is not stored again: that version is returned.
        """
        numbers = self._version_numbers(agent.name)
        if numbers:
            newest = self._load(agent.name, numbers[-1])
            if _content(newest) == _content(agent):
                return newest
        return self._write(agent)

    def _write(self, agent: Agent) -> Agent:
        folder = self._folder(agent.name)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        for _ in range(1000):  # bounded: each pass loses a race to another writer at most once
            version = (self._version_numbers(agent.name) or [0])[-1] + 1
            stored = attrs.evolve(agent, id=uuid.uuid4().hex, version=version, created=time.time())
            data = {**_content(stored), **{k: getattr(stored, k) for k in _META}}
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(data, fh, indent=2, ensure_ascii=False)
                    fh.flush()
                    os.fsync(fh.fileno())
                try:
                    os.link(tmp, os.path.join(folder, f"{version}.json"))  # fails if the version exists
                except FileExistsError:
                    continue
                return stored
            finally:
                os.unlink(tmp)
        raise ConfigurationError(f"could not store agent {agent.name!r}: too many concurrent writers")

    def delete(self, ref: str) -> int:
        """Delete ``name`` (every version) or ``name@version`` (that one); returns how many were deleted."""
        name, _, at = ref.partition("@")
        numbers = self._version_numbers(name)
        doomed = [int(at)] if at.isdigit() and int(at) in numbers else [] if at else numbers
        folder = self._folder(name)
        for version in doomed:
            os.unlink(os.path.join(folder, f"{version}.json"))
        if doomed and not self._version_numbers(name):
            try:
                os.rmdir(folder)
            except OSError:
                pass
        return len(doomed)


def _content(agent: Agent) -> dict[str, Any]:
    """What an agent says (not when or as what it was stored), as JSON-ready values."""
    data = {f: getattr(agent, f) for f in (*FIELDS, "template")}
    if data["tools"] is not None:
        data["tools"] = list(data["tools"])
    return json.loads(json.dumps(data))  # type: ignore[no-any-return]
