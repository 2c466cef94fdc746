"""End-to-end helpers: run ``exfix`` over the lab (real sockets on 127.0.0.1) and read its output.

``run_exfix(*args, env=None)``  the CLI in-process through click's CliRunner; returns a
                                ``Run`` with exit code, stdout, stderr and the parsed JSON.
``scan_shipped(name)``          the JSON scan of a shipped scenario, run once per session.
``base_scenario()``, ``host_spec(name, octet)``, ``write_scenario(path, data)``: test-made
                                scenarios in the documented format (mock_remoting/README.md).
``started_lab(path)``           a running :class:`mock_remoting.lab.Lab` (stopped afterwards).
``kerberos_realm``              (fixture) a KDC on 127.0.0.1 for the session (tests/support/kdc.py).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from agent.cli import main

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO / "agent" / "schemas" / "scan.schema.json"
SCENARIOS = REPO / "mock_remoting" / "scenarios"


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def doc(self) -> dict[str, Any]:
        data = json.loads(self.stdout)
        assert isinstance(data, dict)
        return data

    def findings_for(self, host: dict[str, Any]) -> list[dict[str, Any]]:
        """What concerns one host (JSON output): the organisation findings naming it, then its own."""
        orgs = self.doc.get("organizations", [])
        shared = [f for o in orgs for f in o["findings"] if host["host"] in f["servers"]]
        return shared + list(host["findings"])

    def rules(self) -> dict[str, set[str]]:
        """Rule ids reported, per host (JSON output), organisation findings under each server
        they name."""
        return {h["host"]: {f["rule"] for f in self.findings_for(h)} for h in self.doc["hosts"]}

    def describe(self) -> str:
        return f"exit {self.exit_code}\nstderr: {self.stderr}\nstdout: {self.stdout[:4000]}"


def run_exfix(*args: str, env: dict[str, str] | None = None) -> Run:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


_scans: dict[str, Run] = {}


def scan_shipped(name: str) -> Run:
    """`exfix scan --lab NAME --format json`, once per shipped scenario per test session (the
    scenario tests and the rule tests read the same scan), with the scenario's own
    ``expect.probe_repeat`` (the --probe-repeat its expectations hold for) where it gives one."""
    if name not in _scans:
        data = yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8"))
        repeat = (data.get("expect") or {}).get("probe_repeat")
        extra = ("--probe-repeat", str(repeat)) if repeat is not None else ()
        _scans[name] = run_exfix("scan", "--lab", name, "--format", "json", *extra)
    return _scans[name]


def base_scenario() -> dict[str, Any]:
    """A healthy one-host organisation; tests change what they need."""
    return {
        "description": "test-made scenario",
        "expect": {"rules": []},
        "organization": {
            "ad_domain": "contoso.local",
            "domain_controllers": [{"name": "dc01.contoso.local", "address": "10.0.0.10"}],
        },
        "dns": {
            "servers": {
                "10.0.0.10": {"kind": "internal", "forward": True},
                "8.8.8.8": {"kind": "public"},
            },
            "internal_records": {"ex09.contoso.local": ["10.0.0.29"]},
            "internet": {
                "fabrikam.com": {
                    "mx": [{"preference": 10, "host": "mx1.fabrikam.com"}],
                    "a": {"mx1.fabrikam.com": ["203.0.113.10"]},
                },
                "tailspintoys.com": {
                    "mx": [{"preference": 10, "host": "mail.tailspintoys.com"}],
                    "a": {"mail.tailspintoys.com": ["203.0.113.20"]},
                },
            },
        },
        "send_connectors": [
            {"name": "Internet", "address_spaces": ["SMTP:*;1"], "source_transport_servers": ["EX01"]}
        ],
        "hosts": [host_spec("EX01", 21)],
    }


def host_spec(name: str, octet: int, **changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name,
        "version": "15.2.1118.7",
        "nics": [
            {
                "alias": "Ethernet",
                "index": 4,
                "mapi": True,
                "ipv4": f"10.0.0.{octet}/24",
                "gateway": "10.0.0.1",
                "dns_servers": ["10.0.0.10"],
            }
        ],
        "queues": [
            {"next_hop": "fabrikam.com", "messages": 4},
            {"next_hop": "tailspintoys.com", "messages": 2},
            {
                "next_hop": "site:default-first-site-name; version:15",
                "delivery_type": "SmtpRelayToMailboxDeliveryGroup",
                "target": "ex09.contoso.local",
                "messages": 3,
            },
        ],
    }
    spec.update(changes)
    return spec


def write_scenario(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(
        yaml.safe_dump(copy.deepcopy(data), sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    return path


@pytest.fixture(scope="session")
def scan_schema() -> dict[str, Any]:
    data = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def validate_scan(scan_schema: dict[str, Any]) -> Callable[[Any], None]:
    """Validates a document against agent/schemas/scan.schema.json (raises on any problem)."""
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(scan_schema)
    validator = jsonschema.Draft202012Validator(scan_schema)

    def check(document: Any) -> None:
        validator.validate(document)

    return check


# Lab hosts the Kerberos tests use (healthy and edge-config-malformed): their HTTP/ and WSMAN/
# principals are in the realm's service keytab.
KERBEROS_HOSTS = ("ex01.contoso.local", "ex02.contoso.local")
REQUIRE_KERBEROS = "EXFIX_REQUIRE_KERBEROS"


@pytest.fixture(scope="session")
def kerberos_realm() -> Iterator[Any]:
    """A temporary MIT realm (tests/support/kdc.py) with its KDC on 127.0.0.1, one per test
    session, which is one per pytest-xdist worker (each on a port of its own).

    Skips, saying what is missing, where the KDC programs or python-gssapi/k5test are absent;
    fails instead where ``EXFIX_REQUIRE_KERBEROS`` is set (.ci/run sets it: CI must run them).
    """
    from support import kdc  # lazy: only the Kerberos tests start a KDC

    reason = kdc.missing()
    if reason is not None:
        if os.environ.get(REQUIRE_KERBEROS):
            pytest.fail(f"{REQUIRE_KERBEROS} is set but {reason}", pytrace=False)
        pytest.skip(reason)
    realm = kdc.start_realm(KERBEROS_HOSTS)
    try:
        yield realm
    finally:
        realm.stop()
