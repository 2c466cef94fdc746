"""The cmdlet registry: every area module is listed, every name is registered once, and each
cmdlet is served where the lab's README says it is."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from typing import Any

import pytest

from mock_remoting.backend import Endpoint
from mock_remoting.exchange import cmdlets
from mock_remoting.exchange.binding import Kind, P
from mock_remoting.exchange.cmdlets.base import Registry, cmdlet_table

EXCHANGE_CMDLETS = {
    "Get-ExchangeServer",
    "Get-MailboxServer",
    "Get-Queue",
    "Retry-Queue",
    "Get-TransportService",
    "Set-TransportService",
    "Get-TransportServer",
    "Set-TransportServer",
    "Get-SendConnector",
    "New-SendConnector",
    "Set-SendConnector",
    "Remove-SendConnector",
    "Get-MessageTrackingLog",
}
OS_CMDLETS = {
    "Get-NetFirewallRule",
    "Get-NetFirewallPortFilter",
    "Get-NetFirewallAddressFilter",
    "Get-NetFirewallProfile",
    "New-NetFirewallRule",
    "Remove-NetFirewallRule",
    "Enable-NetFirewallRule",
    "Disable-NetFirewallRule",
    "Get-DnsClient",
    "Set-DnsClient",
    "Get-DnsClientServerAddress",
    "Set-DnsClientServerAddress",
    "Get-NetIPConfiguration",
    "Register-DnsClient",
    "Clear-DnsClientCache",
    "Get-DnsClientCache",
    "Resolve-DnsName",
    "Get-Service",
    "Restart-Service",
    "Get-ItemProperty",
    "Get-Content",
    "New-Item",  # exfix's change marker under <install path>Logging\ (agent/apply/lock.py)
    "Remove-Item",
    "Start-Sleep",
}


def test_every_area_module_with_a_registry_is_listed() -> None:
    listed = {id(registry) for registry in cmdlets.AREAS}
    for module in pkgutil.iter_modules(cmdlets.__path__):
        area = importlib.import_module(f"{cmdlets.__name__}.{module.name}")
        registry = getattr(area, "REGISTRY", None)
        if registry is not None:
            assert id(registry) in listed, f"{module.name}.REGISTRY is not in cmdlets.AREAS"


def test_the_table_holds_what_the_readme_lists() -> None:
    def served(endpoint: Endpoint) -> set[str]:
        return {d.name for d in cmdlets.CMDLETS.values() if d.endpoints == (endpoint,)}

    assert served(Endpoint.EXCHANGE) == EXCHANGE_CMDLETS
    assert served(Endpoint.OS) == OS_CMDLETS
    select = cmdlets.CMDLETS["select-object"]
    assert set(select.endpoints) == {Endpoint.EXCHANGE, Endpoint.OS}
    assert select.whole_input


def test_a_name_registered_twice_is_refused() -> None:
    first, second = Registry(), Registry()

    @first.cmdlet("Get-Thing", Endpoint.OS, P("Name", Kind.STRING, position=0))
    @second.cmdlet("get-thing", Endpoint.OS)
    def get_thing(ctx: cmdlets.Context, args: dict[str, Any], inputs: Sequence[Any]) -> None:
        del ctx, args, inputs

    with pytest.raises(ValueError, match="registered twice"):
        cmdlet_table((first, second))
    (definition,) = cmdlet_table((first,)).values()
    assert definition.run is get_thing
    assert definition.params == (P("Name", Kind.STRING, position=0),)
