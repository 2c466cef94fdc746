"""A host that answers Get-ExchangeServer with an ErrorRecord is ``command-failed`` (exit 7), not
unreachable: over real sockets, for ``exfix scan``, ``exfix plan`` and a playbook run, and with the
exit-code precedence (3 beats 7, 7 beats 2) across a fleet.

Two real ways the lab makes Get-ExchangeServer fail:

- EX02 is in the inventory under a name the organisation does not know (``ex42``), as when the
  inventory uses a DNS alias or the account's RBAC scope hides the server: Exchange answers a
  non-terminating ManagementObjectNotFoundException ErrorRecord;
- EX03 replays Get-ExchangeServer from a capture file that is not CLIXML: the lab fails the
  pipeline with a terminating ErrorRecord (LabReplayError).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.conftest import base_scenario, host_spec, run_exfix, write_scenario

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
ALIAS = "ex42.contoso.local"


def _fleet(tmp_path: Path, lab: Callable[..., Any], *, ex01_dns: list[str] | None = None,
           hosts: int = 4) -> Path:
    """EX01 healthy (or with ``ex01_dns`` on its NIC), EX02 under an unknown name, EX03 with a
    broken capture, EX04 refusing the credentials (auth-failed, exit 3); the first ``hosts`` of
    them, and their inventory as an admin would have written it."""
    (tmp_path / "not-clixml.xml").write_text("this is not an Export-Clixml file\n", encoding="utf-8")
    data = base_scenario()
    ex01 = host_spec("EX01", 21)
    if ex01_dns is not None:
        ex01["nics"][0]["dns_servers"] = ex01_dns
    data["hosts"] = [
        ex01,
        host_spec("EX02", 22),
        host_spec("EX03", 23, replay={"Get-ExchangeServer": "not-clixml.xml"}),
        host_spec("EX04", 24, faults={"fail": {"kind": "http-401", "endpoint": "exchange"}}),
    ][:hosts]
    data["send_connectors"][0]["source_transport_servers"] = [h["name"] for h in data["hosts"]]
    running = lab(write_scenario(tmp_path / "command-failed.yaml", data))
    inventory = running.inventory()
    names = inventory["all"]["children"]["exchange"]["hosts"]
    names[ALIAS] = names.pop("ex02.contoso.local")
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    return path


def _by_name(doc: dict[str, Any], key: str = "status") -> dict[str, Any]:
    return {h["host"].split(".")[0]: h[key] for h in doc["hosts"]}


def test_get_exchangeserver_errorrecord_is_command_failed_and_exit_7(
    tmp_path: Path, lab: Callable[..., Any], validate_scan: Callable[[Any], None]
) -> None:
    inventory = _fleet(tmp_path, lab)
    without_auth_failure = ("--limit", "exchange:!ex04*")

    run = run_exfix("scan", "-i", str(inventory), *without_auth_failure, "--format", "json")
    assert run.exit_code == 7, run.describe()
    doc = run.doc
    validate_scan(doc)
    assert doc["schema"] == "exfix.scan/4" and doc["exit_code"] == 7
    assert _by_name(doc) == {"ex01": "scanned", "ex42": "command-failed", "ex03": "command-failed"}
    hosts = {h["host"].split(".")[0]: h for h in doc["hosts"]}
    # The ErrorRecord itself is the reason: the cmdlet, Exchange's message and its error id.
    assert hosts["ex42"]["error"].startswith("Get-ExchangeServer: The operation couldn't be performed")
    assert ALIAS in hosts["ex42"]["error"] and "ManagementObjectNotFoundException" in hosts["ex42"]["error"]
    assert hosts["ex03"]["error"].startswith("Get-ExchangeServer: ")
    assert "LabReplayError" in hosts["ex03"]["error"]
    assert hosts["ex42"]["findings"] == [] and hosts["ex42"]["exchange_version"] is None
    summary = doc["summary"]
    assert (summary["scanned"], summary["command-failed"], summary["failed"], summary["unreachable"]) == (
        1, 2, 0, 0,
    )  # fmt: skip

    # 3 beats 7: a host exfix cannot talk to (401) outranks the hosts that answered.
    run = run_exfix("scan", "-i", str(inventory), "--format", "json")
    assert run.exit_code == 3, run.describe()
    validate_scan(run.doc)
    assert _by_name(run.doc) == {
        "ex01": "scanned", "ex42": "command-failed", "ex03": "command-failed", "ex04": "auth-failed",
    }  # fmt: skip

    # The text report names the status and the exit code.
    text = run_exfix("scan", "-i", str(inventory), *without_auth_failure)
    assert text.exit_code == 7
    assert "command-failed" in text.stdout and "exit 7" in text.stdout

    # exfix plan: the host is left out of the plan and the run exits 7.
    plan = run_exfix("plan", "-i", str(inventory), *without_auth_failure, "--out", str(tmp_path / "plan"))
    assert plan.exit_code == 7, plan.describe()


def test_7_beats_findings_and_a_playbook_reports_command_failed(
    tmp_path: Path, lab: Callable[..., Any]
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    # EX01 has a finding: its NIC lists the public resolver (nic-external-dns-server, exit 2).
    inventory = _fleet(tmp_path, lab, ex01_dns=["10.0.0.10", "8.8.8.8"], hosts=2)

    scan = run_exfix("scan", "-i", str(inventory), "--format", "json")
    assert scan.exit_code == 7, scan.describe()
    assert _by_name(scan.doc) == {"ex01": "scanned", "ex42": "command-failed"}
    assert "nic-external-dns-server" in {f["rule"] for f in scan.doc["hosts"][0]["findings"]}

    out = ("--out", str(tmp_path / "runs"))
    run = run_exfix("playbook", "run", "dns-451-diagnose", "-i", str(inventory), *out, "--format", "json")
    assert run.exit_code == 7, run.describe()
    doc = run.doc
    schema = json.loads((REPO / "agent" / "schemas" / "playbook-run.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert doc["schema"] == "exfix.playbook-run/4"
    assert doc["outcome"] == "command-failed" and doc["exit_code"] == 7
    assert _by_name(doc, "outcome") == {"ex01": "findings", "ex42": "command-failed"}
    assert doc["summary"]["command-failed"] == 1 and doc["summary"]["unreachable"] == 0
    failed = next(h for h in doc["hosts"] if h["host"] == ALIAS)
    assert failed["error"].startswith("Get-ExchangeServer: ") and "answered with an error" in failed["reason"]
