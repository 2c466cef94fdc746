"""Rundeck's job-step data: what ``--format rundeck`` adds to the text output.

Rundeck's "Key Value Data" log filter reads lines matching ``^RUNDECK:DATA:(.+?)\\s*=\\s*(.+)$``
and makes ``${data.KEY}`` available to later job steps, which often paste it into a command
line. So a value is one line of a conservative character set (anything else becomes ``_``),
a key is lower-case ASCII, and a text line that looks like a data line (a host named
"RUNDECK:DATA:outcome=...") is indented, so only exfix's own lines set data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_UNSAFE = re.compile(r"[^A-Za-z0-9 ._:/@+,=()-]")
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


def value(raw: object) -> str:
    text = "" if raw is None else str(raw)
    text = _UNSAFE.sub("_", " ".join(text.split()))
    return text[:1000] or "-"


def data(pairs: Iterable[tuple[str, object]]) -> list[tuple[str, str]]:
    out = []
    for key, raw in pairs:
        if not _KEY.match(key):
            raise ValueError(f"not a Rundeck data key: {key!r}")
        out.append((key, value(raw)))
    return out


def render(text: str, pairs: Iterable[tuple[str, object]]) -> str:
    """``text`` (the human output) with its lookalike lines indented, then the data lines."""
    lines = [(" " + line if line.startswith("RUNDECK:") else line) for line in text.splitlines()]
    lines.extend(f"RUNDECK:DATA:{key}={val}" for key, val in data(pairs))
    return "\n".join(lines) + "\n"
