"""What a remote command returns, independent of the transport that carried it.

pypsrp (PSRP) and pywinrm (CLIXML printed by ``powershell -OutputFormat XML``) both end up
here, and so do Export-Clixml captures read from disk. The collectors' parse functions take
only these values, so they can be tested with plain data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.model.document import encode_object

DESERIALIZED_PREFIX = "Deserialized."


def strip_deserialized(type_name: str) -> str:
    """Type names are compared without the ``Deserialized.`` prefix that psrpcore and
    pypsrp 1.0 add (pypsrp 0.9 shows them as sent)."""
    return type_name[len(DESERIALIZED_PREFIX):] if type_name.startswith(DESERIALIZED_PREFIX) else type_name


@dataclass(frozen=True, slots=True)
class RemoteObject:
    """One deserialized .NET object.

    ``properties`` merges adapted (``<Props>``) and extended (``<MS>``) properties; adapted win
    on a clash because they are the object's own. Values are str, int, float, bool, None,
    tuples, dicts or nested RemoteObjects. Enums arrive as their string form where the server
    sent one (Exchange does over remote PowerShell).
    """

    type_names: tuple[str, ...]
    properties: Mapping[str, Any] = field(default_factory=dict)
    to_string: str | None = None

    def is_a(self, type_name: str) -> bool:
        """True when ``type_name`` is one of this object's types (case-insensitive, prefix-free)."""
        wanted = strip_deserialized(type_name).lower()
        return any(strip_deserialized(t).lower() == wanted for t in self.type_names)

    def get(self, name: str, default: Any = None) -> Any:
        """A property by name, case-insensitively as PowerShell does."""
        if name in self.properties:
            return self.properties[name]
        lowered = name.lower()
        for key, value in self.properties.items():
            if key.lower() == lowered:
                return value
        return default


@dataclass(frozen=True, slots=True)
class RemoteError:
    """One ErrorRecord a remote command wrote, independent of the transport that carried it.

    ``message`` is what PowerShell shows first (ErrorDetails, else the exception's message);
    ``fully_qualified_error_id`` is the stable id to match on (e.g.
    ``NamedParameterNotFound,Microsoft.Exchange.Management...``); ``category`` is the
    ErrorCategory name (``ObjectNotFound``, ``InvalidArgument``...); ``target`` is the
    ErrorCategory target name where the server gave one.
    """

    message: str
    fully_qualified_error_id: str | None = None
    category: str = "NotSpecified"
    target: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return encode_object(self)
