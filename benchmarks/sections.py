"""One marked section of RESULTS.md, replaced in place (or appended) by a benchmark script.

Each script that owns a section writes it between its own ``<!-- name:start -->`` and
``<!-- name:end -->`` markers; `report.py` keeps those sections when it re-renders the rest.
"""

from __future__ import annotations

import os

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def put_section(section: str, start: str, end: str, path: str = RESULTS) -> None:
    """Put ``section`` (which begins with ``start`` and ends with ``end``) in place of the marked one in ``path``."""
    body = section.rstrip("\n")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if start in text and end in text:
        first = text.index(start)
        last = text.index(end, first) + len(end)
        text = text[:first] + body + text[last:]
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
