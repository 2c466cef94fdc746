"""Helpers for the apply tests: a lab with its inventory on disk, plans written as exfix plan
writes them, and snapshots of a lab host's state to compare before and after."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent.apply import ApplyReport, FleetPlan, PlanFile, apply_plan, plan_fleet, read_plan_file
from agent.inventory import Inventory, load_inventory
from agent.model.command import CmdletCall, Endpoint
from agent.model.plan import PlanSource, SourceKind
from agent.review import write_plan_dir
from agent.transport import connect
from mock_remoting.lab import Lab

REPO = Path(__file__).resolve().parents[2]


# The inventory variable transport-external-dns-unresolvable's fix needs, and the organisation
# step it plans (the internet connector's switch, applied before the host's own steps).
EXTERNAL_DNS_VARS = {"exfix_external_dns_servers": ["8.8.8.8"]}
CONNECTOR_SWITCH = "org-01-use-external-dns-on-connector"


def exfix_command() -> list[str]:
    """How to run the exfix CLI in a subprocess (the console script when installed)."""
    script = shutil.which("exfix")
    return [script] if script else [sys.executable, "-c", "from agent.cli import main; main()"]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NO_COLOR", None)
    return env


def write_inventory(lab: Lab, path: Path, extra_vars: Mapping[str, Any] | None = None) -> Path:
    """The lab's inventory, plus variables an admin would add (exfix_external_dns_servers)."""
    data = lab.inventory()
    data["all"]["vars"].update(extra_vars or {})
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class LabFleet:
    lab: Lab
    inventory_path: Path
    inventory: Inventory

    @property
    def targets(self) -> Any:
        return self.inventory.select(None)

    def credentials(self) -> Any:
        return self.inventory.credentials()

    def plan(self, out: Path) -> tuple[FleetPlan, PlanFile]:
        result = plan_fleet(self.targets, self.credentials(),
                            source=PlanSource(SourceKind.INVENTORY, str(self.inventory_path)))  # fmt: skip
        write_plan_dir(result.plan, out)
        return result, read_plan_file(out / "plan.json")

    def apply(self, plan_file: PlanFile, **options: Any) -> ApplyReport:
        options.setdefault("approve", plan_file.plan.digest)
        options.setdefault("verify_timeout", 5.0)
        options.setdefault("operator", "tester")
        return apply_plan(plan_file, self.targets, self.credentials(), **options)

    def host(self, name: str) -> Any:
        return self.lab.fleet.host(name)

    def set_nic_dns_servers(self, servers: Sequence[str], interface: int = 4) -> None:
        """A person changes the (only) host's NIC DNS servers, over the real protocol: 4 is the
        MAPI NIC of the single-host scenarios."""
        (target,) = self.targets
        with connect(target, self.credentials().resolve(target)) as conn:
            call = (("InterfaceIndex", interface), ("ServerAddresses", tuple(servers)))
            conn.run(CmdletCall(Endpoint.OS, "Set-DnsClientServerAddress", call))


@contextlib.contextmanager
def lab_fleet(scenario: str | Path, tmp: Path, extra_vars: Mapping[str, Any] | None = None,
              **lab_options: Any) -> Iterator[LabFleet]:  # fmt: skip
    with Lab(scenario, **lab_options) as lab:
        path = write_inventory(lab, tmp / "inventory.yaml", extra_vars)
        yield LabFleet(lab, path, load_inventory(str(path)))


def config_state(lab: Lab, host: str) -> dict[str, Any]:
    """Everything apply may change on a host, deep-copied: NICs, transport settings, the config
    file's DnsFaultTolerance, the service, the transport's cached configuration, the DNS client
    cache (and how often it was flushed), the organisation's send connectors, and the host's
    Windows Firewall rules."""
    state = lab.fleet.host(host).state
    with lab.fleet.org.lock:
        return {
            "nics": copy.deepcopy(state.nics),
            "transport": copy.deepcopy(state.transport),
            "dns_fault_tolerance": state.dns_fault_tolerance,
            "transport_running": state.transport_running,
            "cache": state.cache,
            "connectors": copy.deepcopy(lab.fleet.org.connectors),
            "dns_client_cache": list(state.dns_cache),
            "dns_cache_clears": state.dns_cache_clears,
            "firewall_rules": copy.deepcopy(state.firewall_rules),
        }


def queue_state(lab: Lab, host: str) -> tuple[Any, ...]:
    return tuple(lab.fleet.host(host).queues)


def full_state(lab: Lab, host: str) -> dict[str, Any]:
    """config_state plus the queues and how often transport started: what a dry run must leave
    exactly as it was."""
    out = config_state(lab, host)
    out["queues"] = queue_state(lab, host)
    out["transport_starts"] = lab.fleet.host(host).state.transport_starts
    return out


def journal_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="ascii").splitlines() if line.strip()]


def wait_in_journal(
    path: Path, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    """The first record of the journal at ``path`` (written by a running apply) that
    ``predicate`` accepts, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for record in journal_lines(path):
                if predicate(record):
                    return record
        time.sleep(0.02)
    raise AssertionError(f"nothing in {path} matched within {timeout} s")


LOCK_PHASES = ("lock", "unlock")


def phases(
    lines: Sequence[Mapping[str, Any]], host: str | None = None, *, locks: bool = False, gates: bool = False
) -> list[tuple[Any, ...]]:
    """(phase, action, result) of the journal records (of ``host``). The records of the host
    locks every run takes (agent/apply/lock.py) are left out unless ``locks``, and those of the
    restart gate every host with a restart passes (agent/apply/steps.py) unless ``gates``: they
    are tests/apply/test_apply_lock.py's and test_apply_rolling.py's subjects, and every other
    sequence reads plainer without."""
    return [
        (r["phase"], r["action"], r["result"])
        for r in lines
        if (host is None or r["host"] == host)
        and (locks or r["phase"] not in LOCK_PHASES)
        and (gates or r["phase"] != "gate")
    ]


def unstamped(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` with the connectors' WhenChanged stamps blanked: undoing a connector change
    sets the connector again, so the stamp moves even when every setting is back as it was."""
    out = dict(state)
    out["connectors"] = [dataclasses.replace(c, changed=None) for c in state["connectors"]]
    return out


def connector_flags(lab: Lab) -> dict[str, bool]:
    """UseExternalDNSServersEnabled per send connector: what the organisation unit's
    Set-SendConnector step changes."""
    with lab.fleet.org.lock:
        return {c.name: c.use_external_dns_servers_enabled for c in lab.fleet.org.connectors}
