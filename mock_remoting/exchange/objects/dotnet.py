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


def dotnet(
    type_names: Sequence[str],
    props: Iterable[tuple[str, Any]],
    *,
    to_string: str | None = None,
    extended: Iterable[tuple[str, Any]] = (),
) -> PSObject:
    """A .NET object: ``props`` become adapted properties (<Props>), ``extended`` go to <MS>."""
    obj = PSObject()
    obj.PSObject.type_names = list(type_names)
    for name, value in props:
        obj.PSObject.adapted_properties.append(PSNoteProperty(name, value))
    for name, value in extended:
        obj.PSObject.extended_properties.append(PSNoteProperty(name, value))
    if to_string is not None:
        obj.PSObject.to_string = clixml_text(to_string)
    return obj


def typed_list(type_names: Sequence[str], values: Iterable[Any]) -> PSList:
    result = PSList(list(values))
    result.PSObject.type_names = list(type_names)
    return result


def string_array(values: Iterable[str]) -> PSList:
    return typed_list(["System.String[]", "System.Array", "System.Object"], values)
