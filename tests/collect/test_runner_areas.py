"""collect_host keeps one failing fact area from taking the host with it (issue 9, class 1).

A plain-data host answers every cmdlet the collectors ask, the way a real server's objects
arrive (RemoteObjects as the CLIXML reader builds them); one test at a time makes one area's
command fail, or its output unreadable. The other areas must come back as usual, the failed area
must be named with its reason, and the rules that read it must be reported not judged, while
the rules that do not read it still judge, and fire.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from agent.collect.runner import CollectOptions, collect_host
from agent.errors import RIGHTS_HINT, CmdletError, UnreachableError
from agent.evaluate import judge
from agent.model.command import CmdletCall
from agent.model.facts import CollectionArea, HostFacts
from agent.model.remote import RemoteObject
from agent.transport.base import CommandResult

INSTALL = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\"
CONFIG = INSTALL + "Bin\\EdgeTransport.exe.config"
CIM = "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/"
RETRY = "451 4.4.0 DNS query failed. The error was: DNS query failed with error ErrorRetry"


def edge_config(settings: str = '<add key="DnsFaultTolerance" value="Normal" />') -> str:
    # As Get-Content -Raw returns a CRLF file: the BOM already gone, the line breaks kept.
    return "\r\n".join(
        [
            '<?xml version="1.0" encoding="utf-8"?>',
            "<configuration>",
            "  <runtime>",
            '    <gcServer enabled="true" />',
            "  </runtime>",
            "  <appSettings>",
            '    <add key="AgentLogEnabled" value="true" />',
            f"    {settings}",
            "  </appSettings>",
            "</configuration>",
            "",
        ]
    )


def _server() -> RemoteObject:
    return RemoteObject(
        ("Deserialized.Microsoft.Exchange.Data.Directory.Management.ExchangeServer",),
        {"Name": "EX01", "Fqdn": "ex01.contoso.local", "Domain": "contoso.local",
         "AdminDisplayVersion": "Version 15.2 (Build 1118.7)", "ServerRole": "Mailbox"},
        "EX01",
    )  # fmt: skip


def _transport() -> RemoteObject:
    return RemoteObject(
        ("Microsoft.Exchange.Data.Directory.SystemConfiguration.TransportServerPresentationObject",),
        {"ExternalDNSAdapterEnabled": True, "ExternalDNSServers": None, "InternalDNSAdapterEnabled": True,
         "InternalDNSServers": None, "ExternalDNSProtocolOption": "Any", "InternalDNSProtocolOption": "Any"},
    )  # fmt: skip


def _queue() -> RemoteObject:
    return RemoteObject(
        ("Microsoft.Exchange.Data.QueueViewer.ExtensibleQueueInfo",),
        {"Identity": "EX01\\12", "DeliveryType": "DnsConnectorDelivery", "Status": "Retry", "MessageCount": 9,
         "NextHopDomain": "fabrikam.com", "NextHopCategory": "External", "LastError": RETRY},
    )  # fmt: skip


def _connector() -> RemoteObject:
    return RemoteObject(
        ("Microsoft.Exchange.Data.Directory.SystemConfiguration.SmtpSendConnectorConfig",),
        {"Name": "Internet", "AddressSpaces": ("SMTP:*;1",), "SmartHosts": (), "DNSRoutingEnabled": True,
         "UseExternalDNSServersEnabled": False, "SourceTransportServers": ("EX01",), "Enabled": True},
    )  # fmt: skip


def _dns_client() -> RemoteObject:
    # Registration off on the only NIC: the fault the NIC rule must still find.
    return RemoteObject(
        (CIM + "MSFT_DNSClient",),
        {"InterfaceIndex": 4, "InterfaceAlias": "Ethernet", "RegisterThisConnectionsAddress": False,
         "UseSuffixWhenRegistering": False},
    )  # fmt: skip


def _firewall_rule() -> RemoteObject:
    return RemoteObject(
        (CIM + "MSFT_NetFirewallRule",),
        {"Name": "Block-DNS", "InstanceID": "Block-DNS", "DisplayName": "Block DNS", "Direction": "Outbound",
         "Action": "Block", "Enabled": "True", "Profile": "Any", "PolicyStoreSourceType": "Local"},
    )  # fmt: skip


def _firewall_profiles() -> tuple[RemoteObject, ...]:
    # As Get-NetFirewallProfile -PolicyStore ActiveStore shows a hardened server: the Domain
    # profile's DefaultOutboundAction set to Block (as a name), Private's as the CIM number 4,
    # Public's left NotConfigured (0), its Enabled a GpoBoolean number.
    return (
        RemoteObject((CIM + "MSFT_NetFirewallProfile",),
                     {"Name": "Domain", "Enabled": "True", "DefaultOutboundAction": "Block",
                      "AllowLocalFirewallRules": "NotConfigured"}),
        RemoteObject((CIM + "MSFT_NetFirewallProfile",),
                     {"Name": "Private", "Enabled": 1, "DefaultOutboundAction": 4,
                      "AllowLocalFirewallRules": 0}),
        RemoteObject((CIM + "MSFT_NetFirewallProfile",),
                     {"Name": "Public", "Enabled": 0, "DefaultOutboundAction": 0}),
    )  # fmt: skip


def _server_address() -> RemoteObject:
    return RemoteObject(
        (CIM + "MSFT_DNSClientServerAddress",),
        {"InterfaceIndex": 4, "InterfaceAlias": "Ethernet", "AddressFamily": 2,
         "ServerAddresses": ("10.0.0.10",)},
    )  # fmt: skip


def _ip_config() -> RemoteObject:
    ip = "10.0.0.21"
    address = RemoteObject((CIM + "MSFT_NetIPAddress",), {"IPAddress": ip, "AddressFamily": 2}, ip)
    route = RemoteObject((CIM + "MSFT_NetRoute",), {"NextHop": "10.0.0.1", "DestinationPrefix": "0.0.0.0/0"})
    return RemoteObject(
        ("NetIPConfiguration",),
        {"InterfaceIndex": 4, "InterfaceAlias": "Ethernet", "IPv4Address": (address,),
         "IPv4DefaultGateway": (route,), "IPv6DefaultGateway": None},
    )  # fmt: skip


def _content(text: str) -> RemoteObject:
    # Get-Content's string carries PSPath and friends, so it travels as an object.
    return RemoteObject(("System.String", "System.Object"), {"PSPath": CONFIG, "ReadCount": 1}, text)


Answer = Callable[[CmdletCall], tuple[RemoteObject, ...]]


class PlainHost:
    """Answers every cmdlet the collectors run with plain objects; ``answers`` replaces the
    answer of one cmdlet (a function of the call: it may raise, as the transport does)."""

    def __init__(self, **answers: Answer) -> None:
        defaults: dict[str, Answer] = {
            "Get-ExchangeServer": lambda c: (_server(),),
            "Get-MailboxServer": lambda c: (RemoteObject(
                ("Deserialized.Microsoft.Exchange.Data.Directory.Management.MailboxServer",),
                {"Name": "EX01", "DatabaseAvailabilityGroup": "DAG01"}, "EX01"),),
            "Get-TransportService": lambda c: (_transport(),),
            "Get-Queue": lambda c: (_queue(),),
            "Get-SendConnector": lambda c: (_connector(),),
            "Get-DnsClient": lambda c: (_dns_client(),),
            "Get-DnsClientServerAddress": lambda c: (_server_address(),),
            "Get-NetIPConfiguration": lambda c: (_ip_config(),),
            "Get-ItemProperty": lambda c: (RemoteObject(("System.Management.Automation.PSCustomObject",),
                                                        {"MsiInstallPath": INSTALL}),),
            "Get-Content": lambda c: (_content(edge_config()),),
            "Get-DnsClientCache": lambda c: (),
            "Get-NetFirewallRule": lambda c: (_firewall_rule(),),
            "Get-NetFirewallPortFilter": lambda c: (RemoteObject((CIM + "MSFT_NetProtocolPortFilter",),
                {"InstanceID": "Block-DNS", "Protocol": "UDP", "RemotePort": "53"}),),
            "Get-NetFirewallAddressFilter": lambda c: (RemoteObject((CIM + "MSFT_NetAddressFilter",),
                {"InstanceID": "Block-DNS", "RemoteAddress": "Any"}),),
            "Get-NetFirewallProfile": lambda c: _firewall_profiles(),
        }  # fmt: skip
        self.answers = {**defaults, **{k.replace("_", "-"): v for k, v in answers.items()}}
        self.asked: list[str] = []

    def run(self, call: CmdletCall, *, timeout: float | None = None) -> tuple[RemoteObject, ...]:
        self.asked.append(call.cmdlet)
        return self.answers[call.cmdlet](call)

    def invoke(self, call: CmdletCall, *, timeout: float | None = None) -> CommandResult:
        self.asked.append(call.cmdlet)
        return CommandResult()  # Resolve-DnsName: nothing came back


def collect(host: PlainHost, *, parallel: bool = True) -> HostFacts:
    options = CollectOptions(orchestrator_probe=False, parallel_endpoints=parallel)
    return collect_host(host, "ex01.contoso.local", options)


def denied(cmdlet: str) -> Answer:
    def answer(call: CmdletCall) -> tuple[RemoteObject, ...]:
        raise CmdletError("ex01.contoso.local", cmdlet, f"The term '{cmdlet}' is not recognized",
                          "CommandNotFoundException")  # fmt: skip

    return answer


def issues(facts: HostFacts) -> dict[str, str]:
    return {issue.area.value: issue.reason for issue in facts.status.issues}


def test_a_host_whose_areas_all_answer_has_no_failed_area() -> None:
    facts = collect(PlainHost())
    assert facts.status.issues == ()
    assert facts.transport is not None and facts.queues and facts.nics and facts.send_connectors
    assert facts.edge_config_file is not None and facts.edge_config_file.well_formed
    assert facts.edge_config is not None and facts.edge_config.dns_fault_tolerance == "Normal"
    judged = judge(facts)
    assert judged.not_judged == ()
    assert {f.rule_id for f in judged.findings} >= {"nic-dns-registration-disabled", "dns-fault-tolerance"}


def test_the_dag_membership_is_read_and_a_refused_read_leaves_it_unknown_at_no_area() -> None:
    assert collect(PlainHost()).exchange.dag == "DAG01"
    none = RemoteObject(("MailboxServer",), {"Name": "EX01", "DatabaseAvailabilityGroup": None}, "EX01")
    assert collect(PlainHost(Get_MailboxServer=lambda c: (none,))).exchange.dag == ""
    facts = collect(PlainHost(Get_MailboxServer=denied("Get-MailboxServer")))
    assert facts.exchange.dag is None and facts.status.issues == ()


def test_one_failing_cmdlet_of_an_area_costs_that_area_only() -> None:
    facts = collect(PlainHost(Get_NetIPConfiguration=denied("Get-NetIPConfiguration")))
    assert issues(facts) == {
        "nics": "Get-NetIPConfiguration: The term 'Get-NetIPConfiguration' is not recognized "
        "[CommandNotFoundException]" + RIGHTS_HINT
    }
    assert facts.nics == ()
    # Everything else was collected as if nothing had happened.
    assert facts.transport is not None and facts.queues and facts.send_connectors
    assert facts.edge_config is not None and facts.edge_config.dns_fault_tolerance == "Normal"
    judged = judge(facts)
    skipped = {j.rule_id: j for j in judged.not_judged}
    # Every rule that reads the NICs is not judged, and says why ...
    assert set(skipped) == {
        "nic-dns-registration-disabled", "nic-external-dns-server", "transport-external-dns-unresolvable",
        "transport-internal-dns-misconfigured", "transport-no-dns-configured", "remote-domain-aaaa-broken",
        "remote-domain-no-mail-dns", "dns-server-unreachable", "dns-server-intermittent",
        "dns-client-cache-negative",
        "host-firewall-blocks-dns",
        "server-a-record-wrong-nic",
    }  # fmt: skip
    reason = skipped["nic-dns-registration-disabled"].reason
    assert skipped["nic-dns-registration-disabled"].areas == ("nics",)
    assert "it reads nics" in reason and "Get-NetIPConfiguration" in reason and "not recognized" in reason
    # ... and the rules that do not read them still judge, and fire.
    assert {f.rule_id for f in judged.findings} == {"queue-dns-failure", "dns-fault-tolerance"}


def test_firewall_rules_are_read_and_joined_to_their_filters() -> None:
    facts = collect(PlainHost())
    assert facts.firewall is not None
    (rule,) = facts.firewall.rules
    assert (rule.name, rule.action, rule.protocol, rule.remote_port, rule.remote_address) == (
        "Block-DNS", "Block", "UDP", ("53",), ("Any",)
    )
    assert facts.firewall.blocking("10.0.0.10", ()) == (rule,)


def test_firewall_profiles_are_read_names_and_numbers_alike_not_configured_as_the_default() -> None:
    facts = collect(PlainHost())
    assert facts.firewall is not None and facts.firewall.profiles is not None
    domain, private, public = facts.firewall.profiles
    assert (domain.name, domain.enabled, domain.default_outbound_action, domain.allow_local_rules) == (
        "Domain", True, "Block", True
    )  # fmt: skip
    assert (private.default_outbound_action, private.allow_local_rules) == ("Block", False)
    assert (public.enabled, public.default_outbound_action) == (False, "NotConfigured")
    # NotConfigured is the computer's default for outbound traffic, Allow (Set-NetFirewallProfile).
    assert public.effective_outbound_action == "Allow" and not public.blocks_by_default
    assert domain.blocks_by_default and facts.firewall.host_profile() == domain
    # The rule blocks UDP 53 itself; with it, the default Block is not what drops the query.
    assert facts.firewall.default_block_without_allow("10.0.0.10", ()) == domain


def test_unreadable_firewall_rules_cost_that_area_only_and_the_firewall_rule_is_still_judged() -> None:
    def refused(call: CmdletCall) -> tuple[RemoteObject, ...]:
        raise CmdletError("ex01.contoso.local", "Get-NetFirewallRule", "Access is denied.",
                          "CimException")  # fmt: skip

    facts = collect(PlainHost(Get_NetFirewallRule=refused))
    assert list(issues(facts)) == ["firewall"]
    assert "Access is denied" in issues(facts)["firewall"]
    assert facts.firewall is None and facts.nics and facts.transport is not None
    judged = judge(facts)
    assert judged.not_judged == ()  # the firewall is evidence, not the verdict


def test_a_parser_that_cannot_read_the_output_costs_the_area_not_the_host() -> None:
    class Unreadable(Mapping[str, Any]):
        """Properties that cannot even be looked at: a parser bug on odd output, as it would
        surface in any collector."""

        def __getitem__(self, key: str) -> Any:
            raise RuntimeError("property bag is corrupt")

        def __iter__(self) -> Iterator[str]:
            raise RuntimeError("property bag is corrupt")

        def __len__(self) -> int:
            return 1

        def __contains__(self, key: object) -> bool:
            raise RuntimeError("property bag is corrupt")

    odd = RemoteObject(("Microsoft.Exchange.Data.QueueViewer.ExtensibleQueueInfo",), Unreadable())
    facts = collect(PlainHost(Get_Queue=lambda c: (odd,)))
    assert issues(facts) == {
        "queues": "exfix could not read the output: RuntimeError: property bag is corrupt"
    }
    assert facts.queues == () and facts.nics and facts.transport is not None
    judged = judge(facts)
    # The queues are part of the mail path the transport rules judge settings on, too.
    assert {j.rule_id for j in judged.not_judged} == {
        "queue-dns-failure", "remote-domain-aaaa-broken", "remote-domain-no-mail-dns",
        "transport-external-dns-unresolvable", "transport-internal-dns-misconfigured",
        "transport-no-dns-configured", "dns-server-unreachable", "dns-server-intermittent",
        "dns-client-cache-negative",
        "host-firewall-blocks-dns",
    }  # fmt: skip
    assert "nic-dns-registration-disabled" in {f.rule_id for f in judged.findings}


def test_a_malformed_edge_config_is_read_as_a_file_but_its_settings_are_not_collected() -> None:
    broken = edge_config('<add key="DnsFaultTolerance" value="Normal" >')  # never closed
    facts = collect(PlainHost(Get_Content=lambda c: (_content(broken),)))
    assert facts.edge_config is None
    assert facts.edge_config_file is not None and facts.edge_config_file.config_path == CONFIG
    error = facts.edge_config_file.xml_error
    assert error is not None and (error.line, error.column, error.message) == (9, 5, "mismatched tag")
    assert error.text == "  </appSettings>"
    assert list(issues(facts)) == ["edge_config"]
    assert issues(facts)["edge_config"] == (
        f"Get-Content: {CONFIG}: not well-formed XML: line 9, column 5: mismatched tag"
    )
    judged = judge(facts)
    assert [j.rule_id for j in judged.not_judged] == ["dns-fault-tolerance"]
    found = {f.rule_id: f for f in judged.findings}
    expected = {"edge-transport-config-malformed", "nic-dns-registration-disabled", "queue-dns-failure"}
    assert expected <= set(found)
    (evidence,) = found["edge-transport-config-malformed"].evidence
    assert evidence.value("line") == 9 and evidence.value("column") == 5


def test_an_unreadable_edge_config_file_leaves_both_of_its_rules_not_judged() -> None:
    facts = collect(PlainHost(Get_Content=denied("Get-Content")))
    assert list(issues(facts)) == ["edge_config_file"]  # one issue: the settings were never reachable
    assert facts.edge_config_file is None and facts.edge_config is None
    assert not facts.status.collected(CollectionArea.EDGE_CONFIG)
    skipped = {j.rule_id: j for j in judge(facts).not_judged}
    assert set(skipped) == {"dns-fault-tolerance", "edge-transport-config-malformed"}
    assert "which needs edge_config_file" in skipped["dns-fault-tolerance"].reason


@pytest.mark.parametrize("cmdlet", ["Get-Queue", "Get-Content", "Get-DnsClient"])
def test_a_host_that_stops_answering_is_still_lost_whole(cmdlet: str) -> None:
    def unreachable(call: CmdletCall) -> tuple[RemoteObject, ...]:
        raise UnreachableError("ex01.contoso.local", "connection reset")

    host = PlainHost(**{cmdlet.replace("-", "_"): unreachable})
    with pytest.raises(UnreachableError):
        collect(host, parallel=False)
    assert host.asked[-1] == cmdlet  # nothing more is asked of a host that is gone
    # The endpoints side by side: the other side may finish the one command it had in flight,
    # and asks nothing after it.
    host = PlainHost(**{cmdlet.replace("-", "_"): unreachable})
    with pytest.raises(UnreachableError):
        collect(host)
    assert len(host.asked) - host.asked.index(cmdlet) <= 2, host.asked


def test_an_unclassified_failure_of_a_command_is_not_taken_for_an_area() -> None:
    # The transport raises what it could not classify: that says nothing about one area, so the
    # host is given up as before (status failed), not scanned with every area missing.
    def broken(call: CmdletCall) -> tuple[RemoteObject, ...]:
        raise OSError("socket closed under us")

    with pytest.raises(OSError, match="socket closed"):
        collect(PlainHost(Get_TransportService=broken))


def _cache_row(entry: str, type_: object, status: object, ttl: int = 240) -> RemoteObject:
    return RemoteObject(
        (CIM + "MSFT_DNSClientCache",),
        {"Entry": entry, "Name": entry, "Type": type_, "Status": status, "Section": 1, "TimeToLive": ttl,
         "DataLength": 0, "Data": None},
    )  # fmt: skip


def test_the_dns_client_cache_is_collected_as_typed_rows() -> None:
    rows = (_cache_row("fabrikam.com", 15, 9003), _cache_row("mail.fabrikam.com", "A", "NoRecords", 60))
    facts = collect(PlainHost(Get_DnsClientCache=lambda c: rows))
    assert facts.status.issues == ()
    assert facts.dns_cache is not None
    first, second = facts.dns_cache
    assert (first.entry, first.type_name, first.status_name, first.time_to_live) == ("fabrikam.com", "MX",
                                                                                      "NotExist", 240)
    assert (second.record_type, second.status, second.negative) == (1, 9501, True)
    assert facts.negative_cache_entries("FABRIKAM.COM.") == (first,)


def test_an_unreadable_dns_client_cache_costs_only_that_area() -> None:
    facts = collect(PlainHost(Get_DnsClientCache=denied("Get-DnsClientCache")))
    assert list(issues(facts)) == ["dns_cache"]
    assert facts.dns_cache is None
    assert facts.transport is not None and facts.queues and facts.nics and facts.edge_config is not None
    judged = judge(facts)
    assert [j.rule_id for j in judged.not_judged] == ["dns-client-cache-negative"]
    assert "nic-dns-registration-disabled" in {f.rule_id for f in judged.findings}


def test_a_cache_row_without_a_readable_status_fails_the_area_with_the_reason() -> None:
    facts = collect(PlainHost(Get_DnsClientCache=lambda c: (_cache_row("fabrikam.com", 15, "Pending"),)))
    assert issues(facts) == {
        "dns_cache": "Get-DnsClientCache: the cache row for 'fabrikam.com' has no readable Status"
    }
    assert facts.dns_cache is None and facts.nics
