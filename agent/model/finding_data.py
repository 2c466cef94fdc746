"""What a finding carries beyond its evidence: one frozen, typed value per rule.

For a cause rule it is the request its fix's planner acts on (``EnableRegistration``: which
NIC); for the symptom and the advisories it is what linking and the reports read
(``QueueSymptom``: the scope and the domains). Evidence stays display data; this is the part
code reads, so it is typed rather than looked up by key.

Each class names its rule (``RULE``) and the rule's metadata names its class
(``RuleMetadata.data``); :data:`FINDING_DATA` is the explicit list plan.json decodes with, and
the rule registry checks that the two agree. In JSON (``Finding.to_dict()["data"]``, the scan
document, plan.json) a value is an object keyed by field name in field order, tuples as lists
and enums by value: the keys the field names say, nothing else.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from agent.errors import FactsFileError
from agent.model.document import Document, encode
from agent.model.facts import TransportNoun

# Which of transport's two groups of DNS settings: External* or Internal* (Set-TransportService).
LookupSide = Literal["external", "internal"]


class FindingData:
    """The base of every rule's data. ``RULE`` is the id of the rule whose findings carry it."""

    __slots__ = ()
    RULE: ClassVar[str]
    # Every subclass is a dataclass (checked by by_rule); declared so that the type checker
    # treats a FindingData as one (dataclasses.fields, dataclasses.replace).
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object plan.json and the scan document hold (field order, tuples as lists)."""
        encoded: dict[str, Any] = encode(self)
        return encoded


class SymptomScope(str, enum.Enum):
    """Which queues a queue-dns-failure finding is about: the scopes cause rules declare they
    explain (``Explains.scopes``)."""

    INTERNAL = "internal"  # next hops inside the organisation
    ALL_EXTERNAL = "all-external"  # every external queue fails, none delivers
    DOMAIN = "domain"  # one failing remote domain


@dataclass(frozen=True, slots=True)
class QueueSymptom(FindingData):
    """queue-dns-failure: the failing queues of one scope, their error classes, the remote
    domains they go to, and how many messages wait."""

    RULE: ClassVar[str] = "queue-dns-failure"

    scope: SymptomScope
    queues: tuple[str, ...]  # queue identities, "EX01\\12"
    error_classes: tuple[str, ...]  # LastError classes, first seen first
    domains: tuple[str, ...]  # NextHopDomain of the queues, as the host wrote them
    message_count: int


@dataclass(frozen=True, slots=True)
class RemoteDomain(FindingData):
    """Data about one remote domain: a cause declaring ``Explains(same_domain=True)`` explains
    only the queue symptoms whose domains hold this one (agent.evaluate.link)."""

    domain: str  # lower case, no trailing dot


@dataclass(frozen=True, slots=True)
class EnableRegistration(FindingData):
    """nic-dns-registration-disabled: turn registration on for this NIC (by index; the alias only
    describes it) so that ``fqdn`` is registered again."""

    RULE: ClassVar[str] = "nic-dns-registration-disabled"

    interface_index: int
    interface_alias: str
    fqdn: str


@dataclass(frozen=True, slots=True)
class RegisterMapiNic(FindingData):
    """server-a-record-wrong-nic: the server's A record as probed holds addresses of other NICs
    (``other_*``, one entry per NIC, in the same order) instead of, or beside, the MAPI NIC's.
    The fix turns registration on for the MAPI NIC (by index) and off for the NICs in
    ``turn_off``, the dedicated backup, replication or iSCSI networks; ``decisions`` says per
    other NIC why it is turned off or left as it is."""

    RULE: ClassVar[str] = "server-a-record-wrong-nic"

    fqdn: str
    a_record: tuple[str, ...]  # the A record's values as probed
    interface_index: int  # the MAPI NIC
    interface_alias: str
    mapi_addresses: tuple[str, ...]
    other_indexes: tuple[int, ...]
    other_aliases: tuple[str, ...]
    decisions: tuple[str, ...]
    turn_off: tuple[int, ...]  # of other_indexes: registration goes off there


@dataclass(frozen=True, slots=True)
class SetNicDnsServers(FindingData):
    """nic-external-dns-server: the MAPI NIC's servers, which to drop and which to keep, and the
    servers the probes saw resolve the AD domain (offered, never added)."""

    RULE: ClassVar[str] = "nic-external-dns-server"

    interface_index: int
    interface_alias: str
    current_servers: tuple[str, ...]
    keep_servers: tuple[str, ...]
    drop_servers: tuple[str, ...]
    candidate_servers: tuple[str, ...]
    ad_domain: str


@dataclass(frozen=True, slots=True)
class SetExternalDns(FindingData):
    """transport-external-dns-unresolvable: the servers transport uses for internet names now
    (from which group of settings), the servers the probes saw resolve ``public_name``, and the
    internet connectors that must be told to use the External* settings."""

    RULE: ClassVar[str] = "transport-external-dns-unresolvable"

    transport_noun: TransportNoun
    settings_side: LookupSide
    adapter_enabled: bool
    current_servers: tuple[str, ...]
    candidate_servers: tuple[str, ...]
    connectors_to_switch: tuple[str, ...]
    public_name: str


@dataclass(frozen=True, slots=True)
class SetInternalDns(FindingData):
    """transport-internal-dns-misconfigured: InternalDNSServers now, the servers that resolved
    the AD domain, and the MAPI NIC's servers (the adapter the fix may turn back on)."""

    RULE: ClassVar[str] = "transport-internal-dns-misconfigured"

    transport_noun: TransportNoun
    current_servers: tuple[str, ...]
    candidate_servers: tuple[str, ...]
    adapter_servers: tuple[str, ...]
    ad_domain: str


@dataclass(frozen=True, slots=True)
class ConfigureTransportDns(FindingData):
    """transport-no-dns-configured: the sides with neither the adapter nor servers, and the
    MAPI NIC's servers."""

    RULE: ClassVar[str] = "transport-no-dns-configured"

    transport_noun: TransportNoun
    sides: tuple[LookupSide, ...]
    adapter_servers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AddSmartHostConnector(RemoteDomain):
    """remote-domain-aaaa-broken: the domain, its MX hosts and their IPv4 addresses, the failing
    queues, and the servers a connector for it would send from."""

    RULE: ClassVar[str] = "remote-domain-aaaa-broken"

    mx_hosts: tuple[str, ...]
    smart_hosts: tuple[str, ...]
    queues: tuple[str, ...]
    source_transport_servers: tuple[str, ...]
    connector_name: str


@dataclass(frozen=True, slots=True)
class DomainWithoutMailDns(RemoteDomain):
    """remote-domain-no-mail-dns (advisory): the domain and its failing queues."""

    RULE: ClassVar[str] = "remote-domain-no-mail-dns"

    queues: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnreachableDnsServer(FindingData):
    """dns-server-unreachable (advisory): the server, where it is configured, and the vantages
    whose probes all timed out."""

    RULE: ClassVar[str] = "dns-server-unreachable"

    server: str
    configured_on: tuple[str, ...]  # NIC labels, "ExternalDNSServers", "InternalDNSServers"
    vantages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IntermittentDnsServer(FindingData):
    """dns-server-intermittent (advisory): the server, where it is in use, and over every
    attempt from the vantages that saw it fail some but not all of the same questions: how
    many queries, how many it let down, that share in percent, and the latency of the ones it
    answered (microseconds; None when it answered none)."""

    RULE: ClassVar[str] = "dns-server-intermittent"

    server: str
    configured_on: tuple[str, ...]
    vantages: tuple[str, ...]
    attempts: int
    failures: int
    failure_percent: int
    latency_avg_us: int | None
    latency_max_us: int | None


@dataclass(frozen=True, slots=True)
class DisableFirewallBlock(FindingData):
    """host-firewall-blocks-dns (cause): ``server`` answers exfix but not the host. The Names
    of the block rules that match (the rules themselves are in the facts and the evidence;
    empty where the firewall could not be read: ``firewall_read`` False, ``firewall_issue``
    why), the outcomes from each vantage, and where the server is used. ``default_block_profile``
    names the host's firewall profile where it blocks outbound traffic by default
    (DefaultOutboundAction Block) and no enabled allow rule matches UDP 53 to the server ("" where
    that is not so, or the profiles were not read)."""

    RULE: ClassVar[str] = "host-firewall-blocks-dns"

    server: str
    configured_on: tuple[str, ...]
    host_outcomes: tuple[str, ...]
    orchestrator_outcomes: tuple[str, ...]
    rules: tuple[str, ...]
    firewall_read: bool
    firewall_issue: str = ""
    default_block_profile: str = ""


@dataclass(frozen=True, slots=True)
class SetDnsFaultTolerance(FindingData):
    """dns-fault-tolerance: the config file, the value it holds and the value the fix writes."""

    RULE: ClassVar[str] = "dns-fault-tolerance"

    config_path: str
    current_value: str
    desired_value: str


@dataclass(frozen=True, slots=True)
class MalformedEdgeConfig(FindingData):
    """edge-transport-config-malformed (advisory): the file, and where it stops being
    well-formed XML (1-based line and column, in characters)."""

    RULE: ClassVar[str] = "edge-transport-config-malformed"

    config_path: str
    line: int
    column: int
    xml_error: str


# The data class of every rule, one per rule id: what plan.json decodes a finding's data with.
@dataclass(frozen=True, slots=True)
class ClearDnsClientCache(RemoteDomain):
    """dns-client-cache-negative: the remote domain whose failing queues met a stale negative
    entry of the host's DNS client cache, and those entries (parallel tuples: the entry's name,
    its record type by name, its status number and the TTL it had left) that a probe of a
    configured server now answers."""

    RULE: ClassVar[str] = "dns-client-cache-negative"

    queues: tuple[str, ...]
    entries: tuple[str, ...]
    record_types: tuple[str, ...]
    statuses: tuple[int, ...]
    time_to_live: tuple[int, ...]


FINDING_DATA: tuple[type[FindingData], ...] = (
    QueueSymptom,
    IntermittentDnsServer,
    DisableFirewallBlock,
    EnableRegistration,
    RegisterMapiNic,
    SetNicDnsServers,
    SetExternalDns,
    SetInternalDns,
    ConfigureTransportDns,
    AddSmartHostConnector,
    DomainWithoutMailDns,
    UnreachableDnsServer,
    SetDnsFaultTolerance,
    MalformedEdgeConfig,
    ClearDnsClientCache,
)


def merged(values: Sequence[FindingData]) -> FindingData:
    """The data of one subject seen on several servers, as one value of the first one's class:
    each tuple field joined in order without repeats (the queues, SourceTransportServers),
    every other field from the first. Raises ValueError for no values or values of two rules."""
    if not values:
        raise ValueError("nothing to merge")
    first = values[0]
    if any(type(value) is not type(first) for value in values):
        raise ValueError(f"cannot merge the data of different rules into {type(first).__name__}")
    joined = {
        f.name: tuple(dict.fromkeys(item for value in values for item in getattr(value, f.name)))
        for f in fields(first)
        if isinstance(getattr(first, f.name), tuple)
    }
    return dataclasses.replace(first, **joined)


class FindingDataError(ValueError):
    """The list of data classes is inconsistent. Raised when this module is imported."""


def by_rule(classes: tuple[type[FindingData], ...]) -> Mapping[str, type[FindingData]]:
    """rule id -> data class, or FindingDataError: every class a frozen, slotted dataclass that
    names a rule (``RULE``), no rule named twice."""
    out: dict[str, type[FindingData]] = {}
    for cls in classes:
        name = cls.__name__
        rule = getattr(cls, "RULE", None)
        if not (isinstance(cls, type) and issubclass(cls, FindingData) and is_dataclass(cls)):
            raise FindingDataError(f"{name} is not a FindingData dataclass")
        if not isinstance(rule, str) or not rule:
            raise FindingDataError(f"{name} names no rule (RULE)")
        params = getattr(cls, "__dataclass_params__", None)
        if params is None or not params.frozen or "__dict__" in dir(cls) or not fields(cls):
            raise FindingDataError(f"{name} must be a frozen, slotted dataclass with fields")
        if rule in out:
            raise FindingDataError(f"rule {rule!r} has two data classes: {out[rule].__name__} and {name}")
        out[rule] = cls
    return MappingProxyType(out)


DATA_BY_RULE: Mapping[str, type[FindingData]] = by_rule(FINDING_DATA)

_DOCUMENTS: Mapping[str, Document[Any]] = MappingProxyType(
    {
        rule: Document(cls, FactsFileError, what=f"the data of a {rule} finding")
        for rule, cls in DATA_BY_RULE.items()
    }
)


def data_from_dict(rule_id: str, data: object, *, source: str) -> FindingData:
    """The data of a ``rule_id`` finding, read strictly from JSON (as :meth:`FindingData.to_dict`
    writes it). Raises FactsFileError with the key inside ``data`` (None for the object itself),
    for an unknown rule, a missing or unknown key, or a value of the wrong type."""
    document = _DOCUMENTS.get(rule_id)
    if document is None:
        raise FactsFileError(source, f"rule {rule_id!r} has no data exfix can read")
    value: FindingData = document.read_data(data, source=source).value
    return value
