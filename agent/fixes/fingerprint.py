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

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from agent.errors import StaleSetting
from agent.fixes._derive import connectors_for_domain, mail_route, nic_by_index
from agent.model import dns_servers
from agent.model.facts import DnsLookupSettings, HostFacts, SendConnectorFacts
from agent.model.plan import Action, FactArea, FactRef, canonical_json, sha256_hex


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
    if area is FactArea.FIREWALL_RULE:
        # The rule as read (enabled outbound rules for port 53 only): gone from the facts once it
        # is disabled or removed, so None then.
        if facts.firewall is None:
            return None
        wanted = ref.key.strip().lower()
        rules = [r for r in facts.firewall.rules if r.name.strip().lower() == wanted]
        if len(rules) != 1:
            return None
        rule = rules[0]
        return {
            "name": rule.name,
            "display_name": rule.display_name,
            "action": rule.action,
            "enabled": rule.enabled,
            "profile": list(rule.profile),
            "protocol": rule.protocol,
            "remote_port": list(rule.remote_port),
            "remote_address": list(rule.remote_address),
            "policy_store_source_type": rule.policy_store_source_type,
        }
    if area is FactArea.FIREWALL_PROFILE:
        # The profile as read: None where the profiles were not read or it is not there.
        if facts.firewall is None:
            return None
        wanted = ref.key.strip().lower()
        for profile in facts.firewall.profiles or ():
            if profile.name.strip().lower() == wanted:
                return {
                    "name": profile.name,
                    "enabled": profile.enabled,
                    "default_outbound_action": profile.default_outbound_action,
                    "allow_local_rules": profile.allow_local_rules,
                }
        return None
    raise ValueError(f"unknown fact area {area!r}")  # pragma: no cover - the enum is closed


def _fingerprint_of(slices: dict[FactRef, Any]) -> str:
    content = [{"area": r.area.value, "key": r.key, "facts": slices[r]} for r in sorted(slices)]
    return sha256_hex(canonical_json(content))


def fingerprint_for(depends_on: Iterable[FactRef], facts: HostFacts) -> str:
    """sha256 (hex) of the canonical JSON of the named slices of ``facts``, sorted and
    de-duplicated. The same function computes an action's fingerprint when planning and
    when apply checks for drift; a host's fingerprint is this over all its actions' refs."""
    return _fingerprint_of({r: facts_for(r, facts) for r in set(depends_on)})


# --- what changed: the plan's recorded values against the current slices --------------------


@dataclass(frozen=True, slots=True)
class _Field:
    """Where a ``Change.property`` lives in a slice of ``area``: how to read it from the
    slice as the planner computed ``before``, and how to put a planned value back."""

    area: FactArea
    read: Callable[[Any], Any]
    write: Callable[[Any, Any], None]


def _member(area: FactArea, name: str) -> _Field:
    def read(slice_: Any) -> Any:
        return _frozen(slice_[name])

    def write(slice_: Any, value: Any) -> None:
        slice_[name] = _thawed(value)

    return _Field(area, read, write)


def _connector_member(name: str) -> _Field:
    # A SEND_CONNECTOR slice is the list of connectors of that name; a step changes one.
    def read(slice_: Any) -> Any:
        return _frozen(slice_[0][name]) if len(slice_) == 1 else None

    def write(slice_: Any, value: Any) -> None:
        if len(slice_) != 1:
            raise LookupError(name)
        slice_[0][name] = _thawed(value)

    return _Field(FactArea.SEND_CONNECTOR, read, write)


def _server_addresses() -> _Field:
    # set-nic-dns-servers records ServerAddresses as the NIC's configured servers, IPv4 then
    # IPv6 (NicFacts.dns_servers, agent/model/dns_servers.py: without Windows' fec0:0:0:ffff::1-3
    # placeholders, empty entries and repeats); putting a planned value back keeps today's
    # entries that are no servers, so they are neither drift nor lost.
    def read(slice_: Any) -> Any:
        return dns_servers.configured(slice_["ipv4_dns_servers"] + slice_["ipv6_dns_servers"])

    def write(slice_: Any, value: Any) -> None:
        servers = [str(s) for s in value or ()]
        slice_["ipv4_dns_servers"] = [s for s in servers if ":" not in s]
        aside = [s for s in slice_["ipv6_dns_servers"] if dns_servers.not_a_server(s) is not None]
        slice_["ipv6_dns_servers"] = [s for s in servers if ":" in s] + aside

    return _Field(FactArea.NIC_DNS_SERVERS, read, write)


# Change.property -> its place in a slice. A property missing here (Status, a connector that
# does not exist yet) has no planned value in the facts' terms: drift in it is "not recorded".
_FIELDS: dict[str, _Field] = {
    "RegisterThisConnectionsAddress": _member(FactArea.NIC_REGISTRATION, "register_this_connections_address"),
    "ServerAddresses": _server_addresses(),
    "ExternalDNSServers": _member(FactArea.TRANSPORT_EXTERNAL_DNS, "servers"),
    "ExternalDNSAdapterEnabled": _member(FactArea.TRANSPORT_EXTERNAL_DNS, "adapter_enabled"),
    "InternalDNSServers": _member(FactArea.TRANSPORT_INTERNAL_DNS, "servers"),
    "InternalDNSAdapterEnabled": _member(FactArea.TRANSPORT_INTERNAL_DNS, "adapter_enabled"),
    "UseExternalDNSServersEnabled": _connector_member("use_external_dns_servers_enabled"),
    "DnsFaultTolerance": _member(FactArea.EDGE_CONFIG, "dns_fault_tolerance"),
    "Enabled": _member(FactArea.FIREWALL_RULE, "enabled"),
}


def _frozen(value: Any) -> Any:
    # StaleSetting is a frozen value: lists become tuples, a slice shown whole a read-only mapping.
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    return value


def _thawed(value: Any) -> Any:
    return [_thawed(v) for v in value] if isinstance(value, tuple) else value


def stale_settings(host: str, action: Action, facts: HostFacts) -> tuple[StaleSetting, ...]:
    """What changed, in ``facts`` (collected now), among the slices ``action`` depends on;
    empty when its fingerprint still matches.

    The plan holds each slice only as a fingerprint, and the planned value only of the
    settings the action changes (``changes[*].before``: their value in the facts the plan was
    made from). So: each recorded setting whose current value differs is reported with both
    values. Then the planned slices are rebuilt from today's with the recorded values put
    back; if they hash to the action's fingerprint, those settings are all that changed.
    Otherwise something the plan does not record changed too, and each slice that holds
    unrecorded settings is reported as ``recorded=False`` (``certain=False`` when there are
    several: the one fingerprint over them cannot say which). Nothing is guessed.
    """
    if fingerprint_for(action.depends_on, facts) == action.fingerprint:
        return ()
    refs = sorted(set(action.depends_on))
    current = {r: facts_for(r, facts) for r in refs}
    rebuilt = copy.deepcopy(current)
    out: list[StaleSetting] = []
    complete = True
    for change in action.changes:
        field = _FIELDS.get(change.property)
        owners = [r for r in refs if field is not None and r.area is field.area]
        if field is None or len(owners) != 1:
            continue
        (ref,) = owners
        now = None if current[ref] is None else field.read(current[ref])
        if now != change.before:
            out.append(StaleSetting(host, action.id, ref.area.value, ref.key, change.property,
                                    change.before, now))  # fmt: skip
        if rebuilt[ref] is None:
            complete = False
            continue
        try:
            field.write(rebuilt[ref], change.before)
        except (LookupError, TypeError):
            complete = False
    if complete and _fingerprint_of(rebuilt) == action.fingerprint:
        return tuple(out)
    # Every slice holds settings no step records (an alias, a name, a GUID), so each of the
    # action's slices may hold the change; one fingerprint over all of them cannot say which.
    certain = len(refs) == 1
    out.extend(
        StaleSetting(host, action.id, r.area.value, r.key, None, None, _frozen(current[r]),
                     recorded=False, certain=certain)
        for r in refs
    )  # fmt: skip
    return tuple(out)
