"""The emulated cmdlets, one module per area, each cmdlet registered on its function with its
parameters (``@REGISTRY.cmdlet(...)``, :class:`base.Registry`).

:data:`CMDLETS` is the one table the hosts look cmdlets up in: the union of the areas listed
here, by lower-cased name. An area module that is not listed serves nothing.
"""

from __future__ import annotations

from mock_remoting.exchange.cmdlets import (
    connectors,
    dnscache,
    dnsclient,
    firewall,
    items,
    netip,
    queues,
    resolve,
    servers,
    services,
    tracking,
    utility,
)
from mock_remoting.exchange.cmdlets.base import CmdletDef, Context, Terminating, cmdlet_table, property_value

AREAS = (
    servers.REGISTRY,
    queues.REGISTRY,
    connectors.REGISTRY,
    dnsclient.REGISTRY,
    netip.REGISTRY,
    resolve.REGISTRY,
    firewall.REGISTRY,
    services.REGISTRY,
    tracking.REGISTRY,
    items.REGISTRY,
    utility.REGISTRY,
    dnscache.REGISTRY,
)
CMDLETS: dict[str, CmdletDef] = cmdlet_table(AREAS)

__all__ = ["AREAS", "CMDLETS", "CmdletDef", "Context", "Terminating", "property_value"]
