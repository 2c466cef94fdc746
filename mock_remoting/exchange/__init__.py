"""Emulated Exchange hosts: scenario loading, host state, cmdlets, serialization, mail flow.

Public API (contract 3 of the lab): :func:`load_scenario`, :class:`Scenario`, :class:`HostSpec`,
:class:`Fleet` and :class:`EmulatedHost` (a ``mock_remoting.backend.HostRuntime``).
"""

from mock_remoting.exchange.host import EmulatedHost, Fleet, QueueView, command
from mock_remoting.exchange.scenario import (
    RULE_IDS,
    HostSpec,
    Scenario,
    load_scenario,
    scenario_path,
    shipped_scenarios,
)

__all__ = [
    "RULE_IDS",
    "EmulatedHost",
    "Fleet",
    "HostSpec",
    "QueueView",
    "Scenario",
    "command",
    "load_scenario",
    "scenario_path",
    "shipped_scenarios",
]
