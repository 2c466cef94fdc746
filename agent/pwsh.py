"""The one audited way exfix writes a value into PowerShell text.

Values normally reach PowerShell as PSRP parameters (pypsrp ``add_parameter``) and are never
parsed as code. Two places must write them as text: the review scripts a change board reads
(remediate.ps1 / rollback.ps1, rendered through Jinja2 with the ``ps`` filter) and the WinRS
transport (``powershell -EncodedCommand``). Both use :func:`literal` and :func:`command`.

The rules, chosen so that no value can ever become code:

- Strings are single-quoted. Inside single quotes PowerShell expands nothing (no ``$()``, no
  backtick escapes). The only special characters are the quotes themselves, and PowerShell
  treats four typographic quotes as single quotes too: U+2018, U+2019, U+201A and U+201B
  (about_Quoting_Rules; the tokenizer's ``IsSingleQuote``). Every one of them is doubled.
- Characters that are not printable (newlines, ANSI escapes, bidi overrides, NUL...) are not
  put inside the quotes at all: the string is split there and the character is written as
  ``[char]0xNNNN``, joined with ``+`` inside parentheses. A reviewer sees every such character,
  and a newline in a NIC alias cannot start a new line of script.
- Booleans are ``$true``/``$false``, None is ``$null``, integers are decimal, and lists are
  ``@(...)`` so that a single-element list stays a list.
- Cmdlet and parameter names are checked against a strict pattern; they come from exfix's own
  code, never from a host, and a bad one is a bug (ValueError).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.model.command import CmdletCall, ParamValue, Switch

# about_Quoting_Rules: ' and the typographic single quotes all open/close a verbatim string.
SINGLE_QUOTES = frozenset("'\u2018\u2019\u201a\u201b")

_CMDLET = re.compile(r"^[A-Z][A-Za-z]+-[A-Z][A-Za-z0-9]+$")
_PARAMETER = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def _needs_char(ch: str) -> bool:
    return not ch.isprintable() or ch in "\u2028\u2029"


def _quote_run(run: str) -> str:
    return "'" + "".join(ch + ch if ch in SINGLE_QUOTES else ch for ch in run) + "'"


def string_literal(value: str) -> str:
    """``value`` as a PowerShell expression that evaluates to exactly ``value``."""
    parts: list[str] = []
    run: list[str] = []
    for ch in value:
        if _needs_char(ch):
            if run:
                parts.append(_quote_run("".join(run)))
                run = []
            parts.append(f"[char]0x{ord(ch):04X}" if ord(ch) <= 0xFFFF else _astral(ch))
        else:
            run.append(ch)
    if run or not parts:
        parts.append(_quote_run("".join(run)))
    if len(parts) == 1 and not parts[0].startswith("[char]"):
        return parts[0]
    # In argument mode a bare [char]0x41 is the string "[char]0x41": always parenthesize.
    # [char] + [char] would add numbers: start from a string so '+' concatenates.
    if parts[0].startswith("[char]"):
        parts.insert(0, "''")
    return "(" + " + ".join(parts) + ")"


def _astral(ch: str) -> str:
    # A character beyond the BMP is two UTF-16 code units in .NET.
    encoded = ch.encode("utf-16-le")
    high = int.from_bytes(encoded[0:2], "little")
    low = int.from_bytes(encoded[2:4], "little")
    return f"[char]0x{high:04X} + [char]0x{low:04X}"


def literal(value: ParamValue) -> str:
    """Render one parameter value. Raises TypeError for anything it does not know."""
    if isinstance(value, Switch):
        raise TypeError("a switch has no value to render; use command()")
    if value is None:
        return "$null"
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return string_literal(value)
    if isinstance(value, tuple):
        return "@(" + ", ".join(literal(item) for item in value) + ")"
    raise TypeError(f"cannot render {type(value).__name__} as a PowerShell literal")


def check_cmdlet(name: str) -> str:
    if not _CMDLET.match(name):
        raise ValueError(f"not a cmdlet name exfix writes: {name!r}")
    return name


def check_parameter(name: str) -> str:
    if not _PARAMETER.match(name):
        raise ValueError(f"not a parameter name exfix writes: {name!r}")
    return name


def parameters(params: Sequence[tuple[str, ParamValue]]) -> str:
    """`` -Name value -Switch -Flag:$false ...`` for the parameters in order (leading space
    included). Booleans use the colon form: it binds to Boolean and switch parameters alike,
    where ``-Confirm $false`` would bind $false as a separate positional argument
    (about_Parameters)."""
    out: list[str] = []
    for name, value in params:
        check_parameter(name)
        if isinstance(value, Switch):
            out.append(f" -{name}")
        elif isinstance(value, bool):
            out.append(f" -{name}:{literal(value)}")
        else:
            out.append(f" -{name} {literal(value)}")
    return "".join(out)


def command(call: CmdletCall) -> str:
    """One line of PowerShell that runs ``call`` with exactly its parameters."""
    return check_cmdlet(call.cmdlet) + parameters(call.parameters)
