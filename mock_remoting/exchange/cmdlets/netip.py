"""The NetTCPIP module's Get-NetIPConfiguration: each interface with its adapter, addresses,
gateway, profile and DNS servers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mock_remoting.backend import Endpoint
from mock_remoting.exchange.binding import Kind, P
from mock_remoting.exchange.cmdlets.base import Context, Registry
from mock_remoting.exchange.cmdlets.nics import NIC_SELECT, select_nics
from mock_remoting.exchange.objects.windows import net_ip_configuration

REGISTRY = Registry()


@REGISTRY.cmdlet(
    "Get-NetIPConfiguration",
    Endpoint.OS,
    *NIC_SELECT,
    P("All", Kind.SWITCH),
    P("Detailed", Kind.SWITCH),
    P("AllCompartments", Kind.SWITCH),
)
def get_net_ip_configuration(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    for nic in select_nics(ctx, args, "MSFT_NetIPInterface", require=False):
        ctx.emit(net_ip_configuration(ctx.host, nic))
