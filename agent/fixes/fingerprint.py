"""Fingerprints of exactly the facts an action depends on.

An action names the slices of facts it depends on (:class:`~agent.model.plan.FactRef`); its
fingerprint is the sha256 of the canonical JSON (agent/model/plan.py ``canonical_json``) of
those slices, in sorted order. apply re-collects the facts and calls :func:`fingerprint_for`
with the same references: a different fingerprint means the host drifted since the plan was
made, and the plan is stale (the terraform "Saved plan is stale" rule).

Each slice holds only what the action reads or writes, so an unrelated change (a queue
draining, another NIC's settings, a probe's timing) never makes a plan stale, and a change
to what the action is about always does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agent.fixes._derive import connectors_for_domain, mail_route, nic_by_index
from agent.model.facts import DnsLookupSettings, HostFacts, SendConnectorFacts
from agent.model.plan import FactArea, FactRef, canonical_json, sha256_hex


def _settings(settings: DnsLookupSettings) -> dict[str, Any]:
    return {
        "adapter_enabled": settings.adapter_enabled,
        "servers": list(settings.servers),
        "adapter_guid": settings.adapter_guid.strip("{}").lower(),
        "protocol_option": settings.protocol_option,
    }


def _connector(connector: SendConnectorFacts) -> dict[str, Any]:
    return {
        "name": connector.name,
        "address_spaces": list(connector.address_spaces),
        "smart_hosts": list(connector.smart_hosts),
        "dns_routing_enabled": connector.dns_routing_enabled,
        "use_external_dns_servers_enabled": connector.use_external_dns_servers_enabled,
        "source_transport_servers": list(connector.source_transport_servers),
        "enabled": connector.enabled,
    }


def _index(ref: FactRef) -> int:
    try:
        return int(ref.key)
    except ValueError:
        raise ValueError(f"{ref.area.value} needs an InterfaceIndex as key, not {ref.key!r}") from None


def facts_for(ref: FactRef, facts: HostFacts) -> Any:
    """The JSON-ready slice of ``facts`` that ``ref`` names (None where the item is absent)."""
    area = ref.area
    if area is FactArea.EXCHANGE_SERVER:
        ex = facts.exchange
        return {"name": ex.name, "fqdn": ex.fqdn, "transport_noun": ex.transport_noun.value}
    if area in (FactArea.NIC_REGISTRATION, FactArea.NIC_DNS_SERVERS):
        index = _index(ref)
        nic = nic_by_index(facts, index)
        if nic is None:
            return None
        out: dict[str, Any] = {
            "interface_index": nic.interface_index,
            "interface_alias": nic.interface_alias,
            "mapi": facts.mapi_nic.interface_index == index,
        }
        if area is FactArea.NIC_REGISTRATION:
            out["register_this_connections_address"] = nic.register_this_connections_address
        else:
            out["ipv4_dns_servers"] = list(nic.ipv4_dns_servers)
            out["ipv6_dns_servers"] = list(nic.ipv6_dns_servers)
        return out
    if area is FactArea.TRANSPORT_EXTERNAL_DNS:
        return None if facts.transport is None else _settings(facts.transport.external)
    if area is FactArea.TRANSPORT_INTERNAL_DNS:
        return None if facts.transport is None else _settings(facts.transport.internal)
    if area is FactArea.SEND_CONNECTOR:
        wanted = ref.key.strip().lower()
        found = [_connector(c) for c in facts.send_connectors if c.name.strip().lower() == wanted]
        return found or None
    if area is FactArea.DOMAIN_CONNECTORS:
        return [_connector(c) for c in connectors_for_domain(facts, ref.key)]
    if area is FactArea.DOMAIN_MAIL_HOSTS:
        route = mail_route(facts, ref.key)
        return {"preference": route.preference, "hosts": list(route.hosts), "ipv4": list(route.ipv4)}
    if area is FactArea.EDGE_CONFIG:
        config = facts.edge_config
        if config is None:
            return None
        return {
            "config_path": config.config_path,
            "dns_fault_tolerance": config.dns_fault_tolerance,
            "key_present": config.key_present,
        }
    raise ValueError(f"unknown fact area {area!r}")  # pragma: no cover - the enum is closed


def fingerprint_for(depends_on: Iterable[FactRef], facts: HostFacts) -> str:
    """sha256 (hex) of the canonical JSON of the named slices of ``facts``, sorted and
    de-duplicated. The same function computes an action's fingerprint when planning and
    when apply checks for drift; a host's fingerprint is this over all its actions' refs."""
    refs = sorted(set(depends_on))
    content = [{"area": r.area.value, "key": r.key, "facts": facts_for(r, facts)} for r in refs]
    return sha256_hex(canonical_json(content))
