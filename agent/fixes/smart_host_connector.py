"""add-smarthost-send-connector: a send connector for one remote domain whose DNS fails AAAA
queries, delivering to the IPv4 address of the domain's lowest-preference MX host ("451 4.4.0
DNS query failed Exchange Server error in message queue").

The connector routes by smart host (``-DNSRoutingEnabled $false``; setting SmartHosts requires
it in the same call, New-SendConnector docs), so transport no longer asks the broken DNS for
AAAA records. ``-Usage Custom``: the connector talks to a server outside the organisation with
no special permissions (New-SendConnector docs: Usage; -Custom/-Internet/-Internal/-Partner are
the switch forms of the same choice and cannot be combined with -Usage). Its name says it is
exfix's. Adding a connector does not restart anything; removing it is the rollback.
"""

from __future__ import annotations

from agent.fixes import _predict
from agent.fixes._derive import (
    connectors_for_domain,
    is_domain_name,
    mail_route,
    smart_host_connector_name,
)
from agent.fixes._draft import Draft, Planned, advise, request
from agent.fixes.spec import FixSpec, Step
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import HostFacts, SendConnectorFacts, normalize_name
from agent.model.finding_data import AddSmartHostConnector
from agent.model.findings import Finding, Level
from agent.model.plan import AdvisoryKind, Change, FactArea, FactRef, HostVars

FIX_ID = "add-smarthost-send-connector"

# The kinds of step this fix plans (plan.json "kind").
NEW_SMART_HOST_CONNECTOR = "new-smart-host-connector"


def address_space(domain: str) -> str:
    return f"SMTP:{domain};1"


def draft(
    domain: str, name: str, smart_hosts: tuple[str, ...], source_servers: tuple[str, ...],
    finding_ids: tuple[str, ...],
) -> Draft:  # fmt: skip
    space = address_space(domain)
    return Draft(
        kind=NEW_SMART_HOST_CONNECTOR,
        fix_id=FIX_ID,
        call=CmdletCall(
            Endpoint.EXCHANGE,
            "New-SendConnector",
            (
                ("Name", name),
                ("AddressSpaces", (space,)),
                ("SmartHosts", smart_hosts),
                ("DNSRoutingEnabled", False),
                ("SmartHostAuthMechanism", "None"),
                ("SourceTransportServers", source_servers),
                ("Usage", "Custom"),
            ),
        ),
        description=(
            f"Add send connector {name!r} for {domain}, delivering to {', '.join(smart_hosts)} (the IPv4 "
            "address of its lowest-preference MX host) without DNS lookups"
        ),
        # Before: the connector does not exist. Read back, Exchange shows AddressSpaces as
        # 'SMTP:domain;1' and an IP smart host in brackets ('[203.0.113.10]').
        changes=(
            Change("Name", None, name),
            Change("AddressSpaces", None, (space,)),
            Change("SmartHosts", None, smart_hosts),
            Change("DNSRoutingEnabled", None, False),
        ),
        read_back=CmdletCall(Endpoint.EXCHANGE, "Get-SendConnector", (("Identity", name),)),
        # Remove-* asks for confirmation by default; -Confirm:$false is the documented way to
        # skip it (New-SendConnector docs, -Confirm). The template writes the colon form.
        rollback=(
            CmdletCall(Endpoint.EXCHANGE, "Remove-SendConnector", (("Identity", name), ("Confirm", False))),
        ),
        restart_required=False,
        finding_ids=finding_ids,
        depends_on=(FactRef(FactArea.DOMAIN_CONNECTORS, domain), FactRef(FactArea.DOMAIN_MAIL_HOSTS, domain)),
    )


def plan(finding: Finding, facts: HostFacts, host_vars: HostVars) -> Planned:
    wanted = request(finding, AddSmartHostConnector)
    raw = wanted.domain if wanted is not None else ""
    domain = normalize_name(raw)
    if wanted is None or not is_domain_name(domain):
        return advise(
            AdvisoryKind.CANNOT_PLAN,
            finding,
            f"{raw!r} is not a domain name exfix can write into a connector's address space; no connector "
            "is planned.",
        )
    existing = connectors_for_domain(facts, domain)
    if existing:
        names = ", ".join(repr(c.name) for c in existing)
        return advise(
            AdvisoryKind.CANNOT_PLAN,
            finding,
            f"Send connector {names} already routes {domain} (or carries exfix's name for it); exfix does "
            "not add a second one. Check that connector's smart hosts.",
        )
    route = mail_route(facts, domain)
    if not route.ipv4:
        hosts = ", ".join(route.hosts) or "none found"
        return advise(
            AdvisoryKind.NO_CANDIDATE,
            finding,
            f"No IPv4 address was found for the lowest-preference MX host of {domain} ({hosts}), so there is "
            "no smart host to point a connector at.",
        )
    name = smart_host_connector_name(domain)
    # SourceTransportServers: every server whose queues to the domain fail (the organisation
    # finding joins them), by the name Exchange knows them by.
    servers = wanted.source_transport_servers or (facts.exchange.name,)
    return Planned((draft(domain, name, route.ipv4, servers, (finding.id,)),))


def predict(step: _predict.PlannedStep, facts: HostFacts) -> HostFacts:
    """The organisation with the new connector (New-SendConnector's own parameters)."""
    connector = SendConnectorFacts(
        name=str(_predict.parameter(step, "Name")),
        address_spaces=_predict.texts(_predict.parameter(step, "AddressSpaces")),
        smart_hosts=_predict.texts(_predict.parameter(step, "SmartHosts")),
        dns_routing_enabled=_predict.flag(_predict.parameter(step, "DNSRoutingEnabled")),
        use_external_dns_servers_enabled=False,
        source_transport_servers=_predict.texts(_predict.parameter(step, "SourceTransportServers")),
        enabled=True,
        cost=1,
    )
    return _predict.with_connectors(facts, (*facts.send_connectors, connector))


SPEC = FixSpec(
    id=FIX_ID,
    summary="New-SendConnector for the one domain with its MX host's IPv4 address as smart host",
    disrupts_mail_flow=False,
    planner=plan,
    template=FIX_ID,
    steps=(
        Step(
            NEW_SMART_HOST_CONNECTOR,
            level=Level.ORGANIZATION,
            risk=(
                "Mail to the one remote domain will go to a fixed IPv4 address; if that domain moves its "
                "mail servers, remove the connector (rollback.ps1)."
            ),
            predict=predict,
        ),
    ),
    reads=(FactArea.DOMAIN_CONNECTORS, FactArea.DOMAIN_MAIL_HOSTS),
    # The connector lives in Active Directory: one for the domain, for every server whose
    # queues to it fail, planned once from the organisation's finding.
    level=Level.ORGANIZATION,
)
