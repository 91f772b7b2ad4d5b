"""`Closing`: the base of what holds a connection or a server, so that ``with`` closes it."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["Closing"]

_T = TypeVar("_T", bound="Closing")


class Closing:
    """``with thing: ...`` calls ``thing.close()`` at the end, however the block ends."""

    def close(self) -> None:
        """Release what the object holds (a subclass says what)."""

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
