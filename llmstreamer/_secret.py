"""The API key as a value that never shows itself, and the redaction of text that may carry it."""

from __future__ import annotations

__all__ = ["MIN_REDACTED", "Secret"]

# Shorter strings are not treated as keys: redacting "k" would mangle every message containing
# the letter, and no provider issues keys that short.
MIN_REDACTED = 8


class Secret:
    """A key that shows ``'***'`` in a repr, str or log record; ``.value`` holds the real one."""

    __slots__ = ("value",)

    def __init__(self, value: str | None) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "'***'" if self.value else "None"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self.value)

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the key replaced by ``***``."""
        value = self.value
        if value and len(value) >= MIN_REDACTED and value in text:
            return text.replace(value, "***")
        return text
