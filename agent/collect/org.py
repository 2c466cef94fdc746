"""The organisation's facts, read once per organisation (IO side).

Send connectors live in Active Directory, so every server of an organisation returns the
same Get-SendConnector output, and each connector lists its SourceTransportServers: read on
every host, the work and the memory grow with the square of the fleet. The first server of an
organisation to get here reads them; the others of the same organisation (known cheaply, from
the DistinguishedName Get-ExchangeServer already returned) wait for that read and share the
one OrgFacts object.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from agent.collect.dns_probe import ProbeCache
from agent.errors import RemoteCommandError, one_line
from agent.model.facts import AreaIssue, CollectionArea, OrgFacts, SendConnectorFacts

AREA = CollectionArea.SEND_CONNECTORS


class OrgFactsCache:
    """Thread-safe: one per scan. A read the host answers with an error (an error record,
    unusable output) is not kept, so the next server of the organisation tries again (its
    account may have the RBAC role the first one lacked); a transport failure propagates to
    the host that was reading."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._org_locks: dict[str, threading.Lock] = {}
        self._known: dict[str, OrgFacts] = {}
        # The other thing one scan's hosts share: the orchestrator's DNS answers, asked from
        # where exfix runs and so the same for every host that names the same server.
        self.probes = ProbeCache()

    def get(
        self, organization: str, host: str, read: Callable[[], tuple[SendConnectorFacts, ...]]
    ) -> OrgFacts:
        """The facts of ``organization`` as seen from ``host``: shared when another server of
        it read them already. A server whose organisation is unknown ("") reads its own."""
        key = organization or f"\0{host}"
        with self._lock:
            lock = self._org_locks.setdefault(key, threading.Lock())
        with lock:
            known = self._known.get(key)
            if known is not None:
                return known
            try:
                facts = OrgFacts(organization, read(), host)
            except RemoteCommandError as exc:
                return OrgFacts(organization, (), host, AreaIssue(AREA, one_line(exc.reason)))
            self._known[key] = facts
            return facts

    def organizations(self) -> tuple[OrgFacts, ...]:
        with self._lock:
            return tuple(self._known.values())
