"""set-transport-external-dns and set-transport-internal-dns: point transport's DNS lookups at
servers that work.

External lookups (set-transport-external-dns; rules transport-external-dns-unresolvable and
transport-no-dns-configured): ``Set-TransportService -ExternalDNSServers <chosen>
-ExternalDNSAdapterEnabled $false`` (Set-TransportServer on Exchange 2010), and
``Set-SendConnector -UseExternalDNSServersEnabled $true`` on the internet connectors that do not
use them yet, because a connector only uses the External* settings when that flag is on
(Set-SendConnector docs; "451 4.4.0 DNS query failed Exchange Server error in message queue",
all remote domains). Which internet DNS servers to use is the admin's choice: exfix never
invents public DNS servers. Without ``exfix_external_dns_servers`` for the
host there is no action, only an advisory naming the variable.

Internal lookups (set-transport-internal-dns; rule transport-internal-dns-misconfigured, and
transport-no-dns-configured for the internal side), the safest choice first:

1. ``-InternalDNSAdapterEnabled $true`` when every DNS server of the MAPI NIC is internal and
   resolves the AD domain: the Exchange default, and the servers Windows itself already
   depends on for AD (for transport-no-dns-configured the NIC's servers are taken as they are;
   a bad NIC server is nic-external-dns-server's finding);
2. otherwise ``-InternalDNSServers <servers that resolved the AD domain in the probes>``;
3. otherwise nothing, and an advisory.

Every change here takes effect after the MSExchangeTransport restart build_plan adds.
"""

from __future__ import annotations

import dataclasses

from agent.fixes import _predict
from agent.fixes._draft import Draft, Planned, advise, request
from agent.fixes._setting import PropertyChange, Setting, SettingChange, setting_draft
from agent.fixes.spec import FixSpec, Step
from agent.model.command import Endpoint
from agent.model.facts import HostFacts
from agent.model.finding_data import ConfigureTransportDns, SetExternalDns, SetInternalDns
from agent.model.findings import Finding, Level
from agent.model.plan import EXTERNAL_DNS_VARIABLE, AdvisoryKind, FactArea, FactRef, HostVars
from agent.rules import _common as rules_common

EXTERNAL_FIX_ID = "set-transport-external-dns"
INTERNAL_FIX_ID = "set-transport-internal-dns"

# The kinds of step this fix plans (plan.json "kind").
SET_EXTERNAL_DNS = "set-transport-external-dns"
USE_EXTERNAL_DNS_ON_CONNECTOR = "use-external-dns-on-connector"
SET_INTERNAL_DNS_SERVERS = "set-transport-internal-dns-servers"
ENABLE_INTERNAL_DNS_ADAPTER = "enable-transport-internal-dns-adapter"

_EXCHANGE = FactRef(FactArea.EXCHANGE_SERVER)
_EXTERNAL = FactRef(FactArea.TRANSPORT_EXTERNAL_DNS)
_INTERNAL = FactRef(FactArea.TRANSPORT_INTERNAL_DNS)


def _transport(noun: str, server: str) -> Setting:
    """Set-/Get-TransportService (TransportServer on Exchange 2010) of one server."""
    return Setting.of(Endpoint.EXCHANGE, noun, ("Identity", server))


def external_drafts(
    noun: str,
    server: str,
    before_servers: tuple[str, ...],
    before_adapter: bool,
    servers: tuple[str, ...],
    connectors: tuple[str, ...],
    finding_ids: tuple[str, ...],
    fix_id: str = EXTERNAL_FIX_ID,
) -> tuple[Draft, ...]:
    """Set-<noun> for the external lookups of ``server``, then one Set-SendConnector per name."""
    external = SettingChange(
        _transport(noun, server),
        (
            PropertyChange("ExternalDNSServers", before_servers, servers),
            PropertyChange("ExternalDNSAdapterEnabled", before_adapter, False),
        ),
    )
    out = [
        setting_draft(
            external,
            kind=SET_EXTERNAL_DNS,
            fix_id=fix_id,
            description=(
                f"Make transport on {server} resolve internet names with {', '.join(servers)} "
                "(ExternalDNSServers), not the NIC's DNS servers"
            ),
            restart_required=True,
            finding_ids=finding_ids,
            depends_on=(_EXCHANGE, _EXTERNAL),
        )
    ]
    for name in connectors:
        connector = SettingChange(
            Setting.of(Endpoint.EXCHANGE, "SendConnector", ("Identity", name)),
            (PropertyChange("UseExternalDNSServersEnabled", False, True),),
        )
        out.append(
            setting_draft(
                connector,
                kind=USE_EXTERNAL_DNS_ON_CONNECTOR,
                fix_id=fix_id,
                description=f"Make send connector {name!r} use transport's external DNS servers",
                restart_required=False,
                finding_ids=finding_ids,
                depends_on=(FactRef(FactArea.SEND_CONNECTOR, name),),
            )
        )
    return tuple(out)


def internal_servers_draft(
    noun: str, server: str, before: tuple[str, ...], after: tuple[str, ...], finding_ids: tuple[str, ...],
    fix_id: str = INTERNAL_FIX_ID,
) -> Draft:  # fmt: skip
    return setting_draft(
        SettingChange(_transport(noun, server), (PropertyChange("InternalDNSServers", before, after),)),
        kind=SET_INTERNAL_DNS_SERVERS,
        fix_id=fix_id,
        description=(
            f"Make transport on {server} resolve internal names with {', '.join(after)}, which resolve "
            f"the AD domain (InternalDNSServers was {', '.join(before) or 'empty'})"
        ),
        restart_required=True,
        finding_ids=finding_ids,
        depends_on=(_EXCHANGE, _INTERNAL),
    )


def _noun(facts: HostFacts) -> str:
    return facts.exchange.transport_noun.value


def _plan_external(
    finding: Finding, facts: HostFacts, host_vars: HostVars, wanted: SetExternalDns | ConfigureTransportDns
) -> Planned:
    assert facts.transport is not None
    servers = host_vars.external_dns_servers
    public = facts.probe_targets.public_name
    if not servers:
        seen = wanted.candidate_servers if isinstance(wanted, SetExternalDns) else ()
        hint = (
            f" In the probes, {', '.join(seen)} resolved {public}; exfix does not pick them for you."
            if seen
            else ""
        )
        return advise(
            AdvisoryKind.MISSING_VARIABLE,
            finding,
            f"Transport needs DNS servers that resolve internet names, and only you can choose them "
            f"(your forwarders or your provider's resolvers). Set {EXTERNAL_DNS_VARIABLE} for host "
            f"{facts.host} in the inventory (a list of IP addresses) and plan again.{hint}",
            variable=EXTERNAL_DNS_VARIABLE,
        )
    failing = [
        s for s in servers
        if rules_common.public_verdict(facts, s).verdict in (rules_common.Verdict.FAILS,
                                                             rules_common.Verdict.TIMES_OUT)
    ]  # fmt: skip
    if failing:
        return advise(
            AdvisoryKind.CANNOT_PLAN,
            finding,
            f"{EXTERNAL_DNS_VARIABLE} for host {facts.host} lists {', '.join(failing)}, which did not "
            f"resolve {public} in the probes; exfix will not point transport at a server that does not work. "
            "Choose servers that resolve internet names and plan again.",
            variable=EXTERNAL_DNS_VARIABLE,
        )
    # transport-no-dns-configured names the External* group only when a connector with
    # UseExternalDNSServersEnabled uses it (agent/rules/_mail_path.py): no connector to switch.
    connectors = wanted.connectors_to_switch if isinstance(wanted, SetExternalDns) else ()
    external = facts.transport.external
    if external.servers == servers and not external.adapter_enabled and not connectors:
        return Planned()
    return Planned(
        external_drafts(
            _noun(facts), facts.exchange.name, external.servers, external.adapter_enabled, servers,
            connectors, (finding.id,), fix_id=finding.fix_id or EXTERNAL_FIX_ID,
        )
    )  # fmt: skip


def adapter_draft(
    noun: str, server: str, index: int, nic_servers: tuple[str, ...], finding_ids: tuple[str, ...],
    fix_id: str = INTERNAL_FIX_ID,
) -> Draft:  # fmt: skip
    """InternalDNSAdapterEnabled $true; depends on the MAPI NIC ``index``'s servers too."""
    return setting_draft(
        SettingChange(_transport(noun, server), (PropertyChange("InternalDNSAdapterEnabled", False, True),)),
        kind=ENABLE_INTERNAL_DNS_ADAPTER,
        fix_id=fix_id,
        description=(
            f"Make transport on {server} resolve internal names with the MAPI NIC's DNS servers "
            f"({', '.join(nic_servers)}), the Exchange default (InternalDNSAdapterEnabled)"
        ),
        restart_required=True,
        finding_ids=finding_ids,
        depends_on=(_EXCHANGE, _INTERNAL, FactRef(FactArea.NIC_DNS_SERVERS, str(index))),
    )


def _plan_internal(finding: Finding, facts: HostFacts, wanted: SetInternalDns) -> Planned:
    """transport-internal-dns-misconfigured: the adapter if all its servers are good, else the
    servers that resolved the AD domain, else advice."""
    assert facts.transport is not None
    noun, server = _noun(facts), facts.exchange.name
    candidates = wanted.candidate_servers
    nic = facts.mapi
    if nic is not None and nic.dns_servers and all(s in candidates for s in nic.dns_servers):
        return Planned((adapter_draft(noun, server, nic.interface_index, nic.dns_servers, (finding.id,)),))
    if candidates:
        before = facts.transport.internal.servers
        return Planned((internal_servers_draft(noun, server, before, candidates, (finding.id,)),))
    return advise(
        AdvisoryKind.NO_CANDIDATE,
        finding,
        f"None of transport's internal DNS servers resolves the AD domain {facts.ad_domain}, and no DNS "
        "server that does was found in the probes or on the MAPI NIC, so exfix plans no change. Give "
        "transport a DNS server that holds the AD zone.",
    )


def _plan_internal_side_empty(finding: Finding, facts: HostFacts) -> Planned:
    """transport-no-dns-configured, internal side: no servers and the adapter off. Turning the
    adapter back on is the Exchange default; it needs the MAPI NIC to have DNS servers."""
    nic = facts.mapi
    if nic is None or not nic.dns_servers:
        return advise(
            AdvisoryKind.NO_CANDIDATE,
            finding,
            "Transport has no DNS server for internal lookups, and the MAPI NIC has none either, so exfix "
            "plans no change for internal lookups. Give the MAPI NIC its internal DNS servers first.",
        )
    draft = adapter_draft(
        _noun(facts), facts.exchange.name, nic.interface_index, nic.dns_servers, (finding.id,),
        fix_id=finding.fix_id or EXTERNAL_FIX_ID,
    )  # fmt: skip
    return Planned((draft,))


def _no_request(finding: Finding) -> Planned:
    message = "The finding says nothing this fix can act on; scan the host again."
    return advise(AdvisoryKind.CANNOT_PLAN, finding, message)


def _merge(*parts: Planned) -> Planned:
    return Planned(tuple(d for p in parts for d in p.drafts), tuple(a for p in parts for a in p.advisories))


def plan_external(finding: Finding, facts: HostFacts, host_vars: HostVars) -> Planned:
    """The planner of set-transport-external-dns (transport-external-dns-unresolvable and
    transport-no-dns-configured)."""
    if facts.transport is None:
        return advise(AdvisoryKind.CANNOT_PLAN, finding, "The transport settings were not collected.")
    wanted = finding.data
    if isinstance(wanted, SetExternalDns):
        return _plan_external(finding, facts, host_vars, wanted)
    if not isinstance(wanted, ConfigureTransportDns):
        return _no_request(finding)
    parts = []
    if "external" in wanted.sides:
        parts.append(_plan_external(finding, facts, host_vars, wanted))
    if "internal" in wanted.sides:
        parts.append(_plan_internal_side_empty(finding, facts))
    return _merge(*parts)


def plan_internal(finding: Finding, facts: HostFacts, host_vars: HostVars) -> Planned:
    """The planner of set-transport-internal-dns."""
    if facts.transport is None:
        return advise(AdvisoryKind.CANNOT_PLAN, finding, "The transport settings were not collected.")
    wanted = request(finding, SetInternalDns)
    if wanted is None:
        return _no_request(finding)
    return _plan_internal(finding, facts, wanted)


def predict_external(step: _predict.PlannedStep, facts: HostFacts) -> HostFacts:
    servers = _predict.texts(_predict.after(step, "ExternalDNSServers"))
    adapter = _predict.flag(_predict.after(step, "ExternalDNSAdapterEnabled"))
    return _predict.with_lookup(facts, "external", adapter=adapter, servers=servers)


def predict_connector(step: _predict.PlannedStep, facts: HostFacts) -> HostFacts:
    """The connector switched (it lives in AD: every server of the organisation sees it)."""
    name = str(_predict.parameter(step, "Identity"))
    flag = _predict.flag(_predict.after(step, "UseExternalDNSServersEnabled"))
    return _predict.with_connector(
        facts, name, lambda c: dataclasses.replace(c, use_external_dns_servers_enabled=flag)
    )


def predict_internal_servers(step: _predict.PlannedStep, facts: HostFacts) -> HostFacts:
    servers = _predict.texts(_predict.after(step, "InternalDNSServers"))
    return _predict.with_lookup(facts, "internal", servers=servers)


def predict_internal_adapter(step: _predict.PlannedStep, facts: HostFacts) -> HostFacts:
    adapter = _predict.flag(_predict.after(step, "InternalDNSAdapterEnabled"))
    return _predict.with_lookup(facts, "internal", adapter=adapter)


EXTERNAL_SPEC = FixSpec(
    id=EXTERNAL_FIX_ID,
    summary=(
        "Set-TransportService -ExternalDNSServers .. -ExternalDNSAdapterEnabled $false and "
        "Set-SendConnector -UseExternalDNSServersEnabled $true, restart MSExchangeTransport"
    ),
    disrupts_mail_flow=True,
    planner=plan_external,
    template=EXTERNAL_FIX_ID,
    steps=(
        Step(
            SET_EXTERNAL_DNS,
            risk=(
                "Transport will resolve internet domains only through the DNS servers chosen in the "
                "inventory."
            ),
            predict=predict_external,
        ),
        Step(
            USE_EXTERNAL_DNS_ON_CONNECTOR,
            risk="The internet send connector will use transport's external DNS servers.",
            # The connector is the organisation's: switched once, however many servers ask.
            level=Level.ORGANIZATION,
            predict=predict_connector,
        ),
    ),
    # transport-no-dns-configured's internal side is the internal fix's adapter step.
    reads=(
        FactArea.EXCHANGE_SERVER,
        FactArea.TRANSPORT_EXTERNAL_DNS,
        FactArea.SEND_CONNECTOR,
        FactArea.TRANSPORT_INTERNAL_DNS,
        FactArea.NIC_DNS_SERVERS,
    ),
)

INTERNAL_SPEC = FixSpec(
    id=INTERNAL_FIX_ID,
    summary=(
        "Set-TransportService -InternalDNSServers / -InternalDNSAdapterEnabled, restart MSExchangeTransport"
    ),
    disrupts_mail_flow=True,
    planner=plan_internal,
    template=INTERNAL_FIX_ID,
    steps=(
        Step(
            SET_INTERNAL_DNS_SERVERS,
            risk="Transport will resolve internal names only through the listed servers.",
            predict=predict_internal_servers,
        ),
        Step(
            ENABLE_INTERNAL_DNS_ADAPTER,
            risk=(
                "Transport will resolve internal names through the MAPI NIC's DNS servers (the Exchange "
                "default)."
            ),
            predict=predict_internal_adapter,
        ),
    ),
    reads=(FactArea.EXCHANGE_SERVER, FactArea.TRANSPORT_INTERNAL_DNS, FactArea.NIC_DNS_SERVERS),
)
