"""At fleet size, what the servers share is planned and applied once.

On the 200-host lab (remote-domain-aaaa-broken repeated: every server's queue to one remote
domain fails), the plan holds exactly one connector action for the domain, naming every
server, and applying it cures every affected queue. Before the organisation level, the fix
was planned once per host: the second identical New-SendConnector found the connector there,
the host counted as drifted and was rolled back, and with the default --max-fail 0 the other
hosts were skipped. The send connector switch a host's fix asks for (set-transport-external-
dns) is likewise one step, however many servers ask."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from agent.apply import HostOutcome
from agent.errors import EXIT_OK
from apply._apply_support import lab_fleet

pytestmark = pytest.mark.lab

HOSTS = 200


def test_200_servers_one_connector_and_every_queue_cured(tmp_path: Path) -> None:
    with lab_fleet("remote-domain-aaaa-broken", tmp_path, hosts=HOSTS, auth="basic") as fleet:
        result, plan_file = fleet.plan(tmp_path / "plan")
        plan = result.plan
        assert len(plan.hosts) == HOSTS and not plan.hosts[0].actions
        (unit,) = plan.organizations
        (action,) = unit.actions
        assert action.kind == "new-smart-host-connector" and action.id == "org-01-new-smart-host-connector"
        params = dict(action.call.parameters)
        assert params["AddressSpaces"] == ("SMTP:wingtiptoys.com;1",)
        names = {h.facts.exchange.name for h in result.scan.hosts if h.facts is not None}
        assert len(names) == HOSTS and set(params["SourceTransportServers"]) == names  # type: ignore[arg-type]
        assert unit.servers == tuple(h.host for h in plan.hosts)
        (finding,) = unit.findings  # one finding for the organisation, naming the 200 servers
        assert finding.servers == unit.servers and finding.host == unit.organization

        report = fleet.apply(plan_file, max_fail=0)
        assert report.exit_code == EXIT_OK, [(u.host, u.outcome, u.error) for u in report.hosts if not u.ok]
        (done,) = report.organizations
        assert done.outcome is HostOutcome.DONE and done.verified is True
        assert all(h.outcome is HostOutcome.NOTHING_TO_DO and h.verified is True for h in report.hosts)
        for host in fleet.lab.fleet.hosts:  # every queue that failed is empty, its mail delivered
            for queue in host.queues:
                assert queue.queued == 0, (host.name, queue)
        with fleet.lab.fleet.org.lock:
            connectors = [c for c in fleet.lab.fleet.org.connectors if "wingtiptoys.com" in c.name]
        assert len(connectors) == 1


def test_the_connector_switch_many_servers_ask_for_is_one_step(tmp_path: Path) -> None:
    extra = {"exfix_external_dns_servers": ["8.8.8.8"]}
    with lab_fleet("transport-external-dns-unresolvable", tmp_path, extra, hosts=12, auth="basic") as fleet:
        result, plan_file = fleet.plan(tmp_path / "plan")
        plan = result.plan
        assert all(a.kind != "use-external-dns-on-connector" for h in plan.hosts for a in h.actions)
        assert all("set-transport-external-dns" in {a.kind for a in h.actions} for h in plan.hosts)
        (unit,) = plan.organizations
        switches = Counter(dict(a.call.parameters)["Identity"] for a in unit.actions)
        assert switches and set(switches.values()) == {1}
        assert set(unit.servers) == {h.host for h in plan.hosts}  # the servers that asked

        report = fleet.apply(plan_file, allow_restart=True, serial=4)
        assert report.exit_code == EXIT_OK
        assert report.organizations[0].verified is True and all(h.ok for h in report.hosts)
