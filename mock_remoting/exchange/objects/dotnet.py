"""Building blocks for cmdlet output: .NET objects and typed lists as psrpcore values.

.NET objects carry their properties as *adapted* properties (``<Props>``), as real servers
send them; the type names follow the real captures in ``shared/fixtures/real-clixml``.
``exchange.py`` builds Exchange's objects from these, ``windows.py`` the OS endpoint's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psrpcore.types import PSList, PSNoteProperty, PSObject

from mock_remoting.exchange.records import clixml_text


def note(name: str, value: Any) -> PSNoteProperty:
    """``PSNoteProperty(name, value)`` without its cost: psrpcore's constructor builds a
    throwaway PSObject to hand to ``set_value``, which for a property without a type or a
    setter only stores the value. The instance gets exactly the attributes psrpcore 0.3.1's
    constructor gives it (pinned in pyproject.toml; tests/lab/server/test_fastclixml.py
    compares the two)."""
    prop = object.__new__(PSNoteProperty)
    # Item by item, in the constructor's order: 2.5x faster than one update() with keywords
    # (a mixed-fleet host's answers have thousands of properties).
    attributes = prop.__dict__
    attributes["name"] = name
    attributes["ps_type"] = None
    attributes["mandatory"] = False
    attributes["_value"] = value
    attributes["_getter"] = None
    attributes["_setter"] = None
    return prop


def dotnet(
    type_names: Sequence[str],
    props: Iterable[tuple[str, Any]],
    *,
    to_string: str | None = None,
    extended: Iterable[tuple[str, Any]] = (),
) -> PSObject:
    """A .NET object: ``props`` become adapted properties (<Props>), ``extended`` go to <MS>."""
    obj = PSObject()
    # Every attribute read of a PSObject, ``obj.PSObject`` included, first builds a dictionary
    # of all its properties (psrpcore's PSObject.__getattribute__): read the metadata once.
    meta = object.__getattribute__(obj, "PSObject")
    meta.type_names = list(type_names)
    meta.adapted_properties.extend(note(name, value) for name, value in props)
    meta.extended_properties.extend(note(name, value) for name, value in extended)
    if to_string is not None:
        meta.to_string = clixml_text(to_string)
    return obj


def typed_list(type_names: Sequence[str], values: Iterable[Any]) -> PSList:
    result = PSList(list(values))
    object.__getattribute__(result, "PSObject").type_names = list(type_names)  # see dotnet()
    return result


def string_array(values: Iterable[str]) -> PSList:
    return typed_list(["System.String[]", "System.Array", "System.Object"], values)
