"""A cmdlet call as structured data: the unit that collectors run, plans hold and apply executes.

Values reach PowerShell as parameters (pypsrp ``add_parameter``), never as pasted text. Where
a call must appear in a rendered script, one audited quoting filter renders it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Endpoint(str, enum.Enum):
    """Where a cmdlet runs. Exchange cmdlets go to the NoLanguage Exchange endpoint; OS
    cmdlets (DNS client, services, files) go to WinRM's Microsoft.PowerShell endpoint."""

    EXCHANGE = "exchange"
    OS = "os"


@dataclass(frozen=True, slots=True)
class Switch:
    """A switch parameter given without a value (``-Force``)."""


SWITCH = Switch()

ParamValue = str | int | bool | None | Switch | tuple[str, ...] | tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CmdletCall:
    """One cmdlet with its parameters in order. ``parameters`` keeps the order the script shows."""

    endpoint: Endpoint
    cmdlet: str
    parameters: tuple[tuple[str, ParamValue], ...] = ()

    def param(self, name: str) -> ParamValue:
        """The value of a parameter (case-insensitive); KeyError when absent."""
        for key, value in self.parameters:
            if key.lower() == name.lower():
                return value
        raise KeyError(name)
