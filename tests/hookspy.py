"""A hooks object that records every hook call, for the hooks, OpenTelemetry and key tests."""

from __future__ import annotations

import threading
from typing import Any

from llmstreamer.hooks import HOOK_NAMES, EndSummary


class HookSpy:
    """Records ``(hook name, value)`` for every hook, the thread each ran on, and signals the end."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.threads: set[str] = set()
        self.ended = threading.Event()

    def __getattr__(self, name: str) -> Any:
        if name not in HOOK_NAMES:
            raise AttributeError(name)

        def hook(value: Any) -> None:
            self.threads.add(threading.current_thread().name)
            self.calls.append((name, value))
            if name == "on_end":
                self.ended.set()

        return hook

    def names(self) -> list[str]:
        """The hook names in call order, runs of ``on_event`` folded into one."""
        out: list[str] = []
        for name, _ in self.calls:
            if not (name == "on_event" and out and out[-1] == "on_event"):
                out.append(name)
        return out

    def values(self, name: str) -> list[Any]:
        """Every value given to hook ``name``."""
        return [v for n, v in self.calls if n == name]

    @property
    def summary(self) -> EndSummary:
        """The one `EndSummary` of the stream."""
        (found,) = self.values("on_end")
        assert isinstance(found, EndSummary)
        return found
