"""Every shipped scenario, scanned end to end: the lab on real sockets, `exfix scan --lab NAME
--format json`, the reported rules compared with the scenario file's own ``expect.rules``, and
the fact areas reported as not collected with its ``expect.failed_areas`` (none, unless the
scenario says so).

The expectations are read from the YAML, not repeated here, so a scenario and its test cannot
drift apart: per host where the hosts carry their own ``expect``, else for the whole fleet.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.rules.registry import RULES_BY_ID
from e2e.conftest import SCENARIOS, Run, scan_shipped

pytestmark = pytest.mark.lab

SHIPPED = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
QUEUE_RULE = "queue-dns-failure"


def expected_rules(name: str) -> dict[str, set[str]]:
    """Per host FQDN, the rules the scenario file says exfix must report."""
    data = yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8"))
    fleet = set((data.get("expect") or {}).get("rules") or ())
    ad_domain = data["organization"]["ad_domain"]
    per_host: dict[str, set[str]] = {}
    for spec in data["hosts"]:
        fqdn = str(spec.get("fqdn") or f"{spec['name']}.{ad_domain}").lower()
        if "expect" in spec:
            per_host[fqdn] = set((spec["expect"] or {}).get("rules") or ())
    if per_host:
        assert set().union(*per_host.values()) == fleet, f"{name}: expect.rules is not the union"
        return per_host
    # No per-host expectations: the fleet's rules are the union over its hosts.
    return {"*": fleet}


def expected_failed_areas(name: str) -> dict[str, set[str]]:
    """Per host FQDN, the fact areas the scenario file says exfix must report not collected."""
    data = yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8"))
    fleet = set((data.get("expect") or {}).get("failed_areas") or ())
    ad_domain = data["organization"]["ad_domain"]
    out: dict[str, set[str]] = {}
    for spec in data["hosts"]:
        fqdn = str(spec.get("fqdn") or f"{spec['name']}.{ad_domain}").lower()
        out[fqdn] = set((spec.get("expect") or {}).get("failed_areas") or ()) if "expect" in spec else fleet
    return out


def check_scan(name: str, run: Run, validate_scan: Callable[[Any], None]) -> None:
    doc = run.doc
    validate_scan(doc)
    assert doc["source"] == f"lab:{name}"
    assert all(h["status"] == "scanned" and h["error"] is None for h in doc["hosts"]), run.describe()
    reported = run.rules()
    expected = expected_rules(name)
    if "*" in expected:
        assert set().union(*reported.values()) == expected["*"], run.describe()
    else:
        assert reported == expected, run.describe()
    # What could not be collected is exactly what the scenario says (nothing, for most), and
    # every rule not judged reads one of those areas.
    failed = {h["host"]: {a["area"] for a in h["failed_areas"]} for h in doc["hosts"]}
    assert failed == expected_failed_areas(name), run.describe()
    needs = {"edge_config": {"edge_config_file"}}  # the settings are read from the file
    for host in doc["hosts"]:
        mine = failed[host["host"]]
        for skipped in host["not_judged"]:
            assert all(a in mine or needs.get(a, set()) & mine for a in skipped["areas"]), run.describe()
        # A rule is not judged only where an area it needs failed; an area rules use only where
        # it was collected (RuleMetadata.reads_if_collected: the firewall) stops none.
        needed = {a.value for rule in RULES_BY_ID.values() for a in rule.metadata.reads}
        assert bool(host["not_judged"]) == bool(mine & (needed | set(needs))), run.describe()
    any_findings = any(reported.values())
    partial = any(failed.values())
    assert run.exit_code == doc["exit_code"] == (2 if any_findings else 8 if partial else 0), run.describe()
    assert doc["summary"]["partial"] == sum(1 for areas in failed.values() if areas)
    shared = [f for o in doc["organizations"] for f in o["findings"]]
    assert doc["summary"]["findings"] == len(shared) + sum(len(h["findings"]) for h in doc["hosts"])
    names = [h["host"] for h in doc["hosts"]]
    for finding in shared:  # an organisation finding names servers of the scan, in scan order
        assert finding["level"] == "organization" and finding["servers"]
        assert finding["servers"] == [n for n in names if n in finding["servers"]]

    # Wherever queues fail, the symptom names its cause on the same host, or the organisation
    # finding that names the host.
    for host in doc["hosts"]:
        mine = run.findings_for(host)
        ids = {f["id"]: f for f in mine}
        # Every cause found that can explain a queue symptom does; a finding that explains none
        # (a config file that would stop transport at its next start) is no cause of these.
        explaining = {r.id for r in RULES_BY_ID.values() if r.metadata.explains}
        causes = {f["rule"] for f in mine if f["rule"] in explaining}
        symptoms = [f for f in host["findings"] if f["rule"] == QUEUE_RULE]
        named: set[str] = set()
        for symptom in symptoms:
            assert symptom["explained_by"], f"{host['host']}: {symptom['id']} names no cause"
            for cause_id in symptom["explained_by"]:
                assert cause_id in ids, f"{host['host']}: {cause_id} is not a finding of this host"
                assert ids[cause_id]["rule"] != QUEUE_RULE
                named.add(ids[cause_id]["rule"])
        if symptoms:
            assert named == causes, f"{host['host']}: causes {causes}, symptoms name {named}"
        # Each DNS question is asked, and shown as evidence, once per vantage.
        for finding in mine:
            asked = [
                (
                    e["vantage"],
                    e["values"]["server"],
                    e["values"]["qname"].rstrip(".").lower(),
                    e["values"]["type"],
                )
                for e in finding["evidence"]
                if e["source"] in ("Resolve-DnsName", "dns-probe")
            ]
            assert len(asked) == len(set(asked)), f"{finding['id']}: a DNS question repeated: {asked}"
        # And only failing queues make the symptom: the cause findings never explain anything.
        assert all(not f["explained_by"] for f in mine if f["rule"] != QUEUE_RULE)


def test_every_rule_id_named_by_a_scenario_exists() -> None:
    from agent.rules.registry import RULES_BY_ID

    for name in SHIPPED:
        for rules in expected_rules(name).values():
            assert rules <= set(RULES_BY_ID), f"{name}: unknown rule ids {rules - set(RULES_BY_ID)}"


def test_the_shipped_scenarios_are_the_documented_ones() -> None:
    assert set(SHIPPED) >= {
        "healthy",
        "nic-registration-disabled",
        "nic-external-dns",
        "transport-external-dns-unresolvable",
        "remote-domain-aaaa-broken",
        "dns-server-unreachable",
        "dns-fault-tolerance-normal",
        "exchange-2010",
        "mixed-fleet",
        "edge-config-malformed",
    }


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenario_reports_exactly_its_expected_rules(
    name: str, validate_scan: Callable[[Any], None]
) -> None:
    check_scan(name, scan_shipped(name), validate_scan)


def test_healthy_is_clean_exit_0() -> None:
    run = scan_shipped("healthy")
    assert run.exit_code == 0, run.describe()
    assert run.doc["summary"]["findings"] == 0 and len(run.doc["hosts"]) == 2


def test_exchange_2010_is_read_through_get_transportserver() -> None:
    run = scan_shipped("exchange-2010")
    (host,) = run.doc["hosts"]
    assert host["exchange_version"].startswith("14.")
    sources = {e["source"] for f in host["findings"] for e in f["evidence"]}
    assert "Get-TransportServer" in sources and "Get-TransportService" not in sources
    (cause,) = [f for f in host["findings"] if f["rule"] == "transport-external-dns-unresolvable"]
    assert cause["data"]["transport_noun"] == "TransportServer"


def test_the_real_console_script_scans_the_mixed_fleet(validate_scan: Callable[[Any], None]) -> None:
    """`exfix` as installed (the console script), in its own process."""
    script = Path(sys.executable).parent / "exfix"
    if not script.exists():
        pytest.skip(f"the exfix console script is not installed beside {sys.executable}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXFIX_", "COLUMNS"))}
    started = time.monotonic()
    result = subprocess.run(
        [str(script), "scan", "--lab", "mixed-fleet", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    run = Run(result.returncode, result.stdout, result.stderr)
    assert result.stderr == "", run.describe()
    check_scan("mixed-fleet", run, validate_scan)
    assert run.exit_code == 2
    assert time.monotonic() - started < 120


# --- the schema is strict -----------------------------------------------------------------


def _paths_of_keys(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every key of every object in ``doc`` (lists by index)."""
    out: list[tuple[Any, ...]] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.append((*prefix, key))
            out.extend(_paths_of_keys(value, (*prefix, key)))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out.extend(_paths_of_keys(value, (*prefix, index)))
    return out


def _schema_keys(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    # Open maps (evidence values, fix data, counts by rule) have no fixed keys.
    open_maps = {"values", "data", "by_rule", "by_severity"}
    return [p for p in _paths_of_keys(doc) if not (set(p[:-1]) & open_maps)]


def test_the_schema_rejects_a_missing_or_extra_key_anywhere(validate_scan: Callable[[Any], None]) -> None:
    invalid = pytest.importorskip("jsonschema").ValidationError

    doc = scan_shipped("mixed-fleet").doc
    paths = _schema_keys(doc)
    assert len(paths) > 50
    for path in paths:
        broken = copy.deepcopy(doc)
        parent = broken
        for step in path[:-1]:
            parent = parent[step]
        del parent[path[-1]]
        with pytest.raises(invalid):
            validate_scan(broken)
    mutations: list[Callable[[dict[str, Any]], None]] = [
        lambda d: d.update(extra=1),
        lambda d: d["hosts"][1].update(extra=1),
        lambda d: d["hosts"][1]["findings"][0].update(extra=1),
        lambda d: d["hosts"][1]["findings"][0]["evidence"][0].update(extra=1),
        lambda d: d["hosts"][0].update(status="gone"),
        lambda d: d["hosts"][1].update(status="unreachable"),  # not scanned needs an error, no findings
        lambda d: d["hosts"][1]["findings"][0].update(severity="urgent"),
        lambda d: d["hosts"][1]["findings"][0]["data"].update(bad={"nested": 1}),
        lambda d: d.update(exit_code=1),
        lambda d: d.update(schema="exfix.scan/5"),
        lambda d: d.update(schema="exfix.scan/3"),  # a /3 document has no dns_servers
        lambda d: d.update(schema="exfix.scan/2"),  # a /2 document has no failed areas
        lambda d: d.update(schema="exfix.scan/1"),  # a /1 document has no command-failed count
        lambda d: d["summary"].update(hosts=-1),
    ]
    for mutate in mutations:
        broken = copy.deepcopy(doc)
        mutate(broken)
        with pytest.raises(invalid):
            validate_scan(broken)
    validate_scan(json.loads(json.dumps(doc)))  # and the document itself stays valid
