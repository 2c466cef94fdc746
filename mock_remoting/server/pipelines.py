"""A client's CreatePipeline message as the commands the host runtime runs, deserialized once
per shape of text.

psrpcore's deserializer builds a PSObject for every element of the message (about 2.4 kB of
CLIXML per pipeline from pypsrp: the command's merge settings, its arguments, the host
information) and reads them back through ``PSObject.__getattribute__``; on a mixed-fleet
scan that was a fifth of the lab's CPU (py-spy ``--gil``: ``deserialize`` 12.5 %,
``PowerShell.FromPSObjectForRemoting`` 7.4 %), although the texts repeat. The exact text
repeats across hosts for cmdlets without per-host arguments (the server's
:class:`~mock_remoting.server.clixml_cache.ParsedCache`); the rest differ from host to host
only in the contents of ``<S>`` elements (``-Identity EX01-0042``, ``-Name
_ldap._tcp.dc._msdcs.contoso.local``): a 200-host scan sends a few hundred distinct texts of
seven shapes.

A *shape* is the text with every ``<S>`` content blanked. For a shape seen the first time,
psrpcore deserializes the text with each ``<S>`` content replaced by a numbered marker, and
the commands it yields become a recipe: a command name, parameter name or parameter value
that is a marker is a slot, filled for every later text of that shape with that text's own
string, decoded as psrpcore decodes an ``<S>`` (XML entities, then the ``_xHHHH_`` escapes of
MS-PSRP 2.2.5.1.16) and typed ``PSString`` as psrpcore types it. A shape where a marker ends
up anywhere else (inside a list or an object passed as an argument) is not a recipe, and its
texts are deserialized by psrpcore every time. The host names in one text can never reach
another host's pipeline: the recipe holds markers, never a host's strings.
"""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psrpcore import PowerShell
from psrpcore.types import PSObject, PSString
from psrpcore.types._serializer import _deserialize_string

from mock_remoting.backend import Command, Parameter

Statements = tuple[tuple[Command, ...], ...]

# An <S> element with its optional N attribute (pypsrp writes no other attribute on <S>) and
# its content, which cannot hold "<" in well-formed XML.
_STRING = re.compile(rb'<S( N="[^"]*")?>([^<]*)</S>')
_MARKER = "ExfixLabSlot"
_MARKED = re.compile(_MARKER + r"(\d+)\Z")


def to_commands(metadata: Any) -> Statements:
    """psrpcore's PowerShell metadata -> statements of backend Commands, parameters in order."""
    statements: list[list[Command]] = [[]]
    for cmd in metadata.commands:
        params = tuple(Parameter(name, value) for name, value in cmd.parameters)
        statements[-1].append(
            Command(name=str(cmd.command_text), is_script=bool(cmd.is_script), parameters=params)
        )
        if cmd.end_of_statement:
            statements.append([])
    return tuple(tuple(s) for s in statements if s)


@dataclass(frozen=True, slots=True)
class _Slot:
    index: int


@dataclass(frozen=True, slots=True)
class _Recipe:
    # per statement, per command: name, is_script, ((parameter name, value), ...), where a
    # name or value may be a _Slot
    commands: tuple[tuple[tuple[str | _Slot, bool, tuple[tuple[Any, Any], ...]], ...], ...]

    def fill(self, strings: Sequence[PSString]) -> Statements:
        def pick(value: Any) -> Any:
            return strings[value.index] if type(value) is _Slot else value

        return tuple(
            tuple(
                Command(
                    name=str(pick(name)),
                    is_script=is_script,
                    parameters=tuple(Parameter(pick(p), pick(v)) for p, v in params),
                )
                for name, is_script, params in statement
            )
            for statement in self.commands
        )


def shape_of(text: bytes) -> bytes:
    """The text with every ``<S>`` content blanked (NUL cannot occur in XML text)."""
    return _STRING.sub(lambda m: b"<S" + (m.group(1) or b"") + b">\x00</S>", text)


def strings_of(text: bytes) -> list[PSString]:
    """The ``<S>`` contents of ``text`` in order, as psrpcore's deserializer returns them."""
    found: list[PSString] = []
    for match in _STRING.finditer(text):
        raw = match.group(2)
        if b"&" in raw or b"\r" in raw:
            # entities and line-end normalisation exactly as the XML parser does them
            value = ET.fromstring(b"<S>" + raw + b"</S>").text or ""
        else:
            value = raw.decode("utf-8")
        found.append(PSString(_deserialize_string(value) if "_x" in value else value))
    return found


def _slot_of(value: Any) -> _Slot | None:
    if type(value) is PSString:
        match = _MARKED.match(value)
        if match is not None:
            if object.__getattribute__(value, "PSObject").extended_properties:
                raise ValueError("a string with properties")
            return _Slot(int(match.group(1)))
    return None


def _plain(value: Any) -> bool:
    """A value that holds no marker: primitives, and lists of them."""
    if value is None or isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, str):
        return _MARKER not in value and (
            not isinstance(value, PSObject)
            or not object.__getattribute__(value, "PSObject").extended_properties
        )
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    return False


def recipe_for(text: bytes, deserialize: Any) -> _Recipe | None:
    """The recipe of ``text``'s shape (``deserialize(bytes) -> psrpcore object``), or None when
    its strings do not map onto whole command names, parameter names and values."""
    counter = iter(range(1 << 30))
    marked = _STRING.sub(
        lambda m: b"<S" + (m.group(1) or b"") + b">" + f"{_MARKER}{next(counter)}".encode() + b"</S>", text
    )
    try:
        statements = to_commands(PowerShell.FromPSObjectForRemoting(deserialize(marked)))
        recipe: list[tuple[tuple[str | _Slot, bool, tuple[tuple[Any, Any], ...]], ...]] = []
        for statement in statements:
            commands = []
            for command in statement:
                name: str | _Slot | None = _slot_of(PSString(command.name))
                if name is None:
                    if _MARKER in command.name:
                        return None
                    name = command.name
                params = []
                for parameter in command.parameters:
                    key = _slot_of(parameter.name)
                    value = _slot_of(parameter.value)
                    if key is None and not _plain(parameter.name):
                        return None
                    if value is None and not _plain(parameter.value):
                        return None
                    params.append((key or parameter.name, value or parameter.value))
                commands.append((name, command.is_script, tuple(params)))
            recipe.append(tuple(commands))
    except Exception:  # a shape psrpcore will reject: leave the error to its own path
        return None
    return _Recipe(tuple(recipe))


class Recipes:
    """Thread-safe table of ``shape -> recipe`` (None: not a recipe), bounded by count: a fleet
    has a handful of shapes, and a table full of one client's oddities is simply started
    again."""

    def __init__(self, limit: int = 2048) -> None:
        self.limit = limit
        self.hits = 0
        self.misses = 0
        self._entries: dict[bytes, _Recipe | None] = {}
        self._lock = threading.Lock()

    def statements(self, text: bytes, deserialize: Any) -> Statements | None:
        """The commands of ``text``, or None when its shape has no recipe."""
        shape = shape_of(text)
        with self._lock:
            known = shape in self._entries
            recipe = self._entries.get(shape)
        if not known:
            recipe = recipe_for(text, deserialize)
            with self._lock:
                if len(self._entries) >= self.limit:
                    self._entries.clear()
                self._entries[shape] = recipe
        if recipe is None:
            self.misses += 1
            return None
        self.hits += 1
        return recipe.fill(strings_of(text))
