"""The exfix.exchange collection as Ansible users run it: built with ansible-galaxy, installed
into a temporary collections path, its playbooks run by ansible-playbook (a separate program)
against the lab over real sockets on 127.0.0.1.

- the three runs of the remediate playbook: check mode (changed, nothing touched on the lab),
  apply (changed, verified, journaled on the controller), again (not changed);
- the task that applies holds its host before collecting it: one collection fewer than planning
  then applying without a hold (the lab's command counts), the marker let go of; a refused task
  (another digest, a restart not allowed) lets go of it too, one without a digest holds
  nothing, and one whose host is unreachable says so as before;
- the diagnose playbook on the mixed fleet finds what ``exfix scan`` finds, host by host;
- an unreachable host fails only itself, and the connection password comes from a file
  encrypted with Ansible Vault (which only Ansible can read: exfix's own reader refuses it).
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.apply import apply_plan, plan_fleet
from agent.apply.lock import MARKER_NAME
from agent.inventory import load_inventory
from agent.scan import scan_fleet
from e2e.conftest import run_exfix
from mock_remoting.lab import Lab
from support.ansible_collection import Collection, ansible_program, build_and_install

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Collection:
    if ansible_program("ansible-playbook") is None:
        pytest.skip("ansible-core is not installed beside this Python (pip install '.[test]' brings it)")
    return build_and_install(Path(tmp_path_factory.mktemp("collection")))


def lab_rules(inventory: Path) -> dict[str, set[str]]:
    """What exfix itself finds on the lab now (each host's rule ids, the organisation's too)."""
    inv = load_inventory(inventory)
    report = scan_fleet(inv.hosts, inv.credentials(), source=str(inventory), forks=4, host_timeout=60)
    return {h.host: {f.rule_id for f in report.findings_for(h.host)} for h in report.hosts}


def test_remediate_check_then_apply_then_nothing_to_do(collection: Collection, tmp_path: Path) -> None:
    with Lab("nic-registration-disabled") as lab:
        inventory = lab.write_inventory(tmp_path / "lab.yaml")
        (host,) = lab_rules(inventory)
        assert "nic-dns-registration-disabled" in lab_rules(inventory)[host]
        restart = ("-e", "exfix_allow_restart=true", "-e", "exfix_ticket=CHG0042")

        check = collection.play("exfix.exchange.remediate", inventory, "--check", "--diff", *restart,
                                "-e", "exfix_approval_out=approved.json", cwd=tmp_path)  # fmt: skip
        assert check.exit_code == 0, check.describe()
        planned = check.results("Plan (check mode, nothing changes)")[host]
        assert planned["status"] == "changed", check.describe()
        plan = planned["result"]
        assert plan["ticket"] == "CHG0042"
        assert [a["kind"] for a in plan["actions"]] == [
            "enable-nic-dns-registration", "register-dns-client", "restart-transport"
        ]  # fmt: skip
        assert {"before_header": f"{host}: 01-enable-nic-dns-registration RegisterThisConnectionsAddress",
                "after_header": f"{host}: 01-enable-nic-dns-registration RegisterThisConnectionsAddress",
                "before": "RegisterThisConnectionsAddress: false\n",
                "after": "RegisterThisConnectionsAddress: true\n"} in plan["diff"]  # fmt: skip
        assert "Set-DnsClient -InterfaceIndex 4 -RegisterThisConnectionsAddress $true" in (
            plan["scripts"][host]["remediate.ps1"]
        )
        assert check.results("Apply the approved plan, verify it, roll back on failure")[host]["status"] == (
            "skipped"
        )
        assert check.custom == {"exfix_approved": {host: plan["digest"]}}
        # Nothing touched: the finding is still there, and no journal was written.
        assert "nic-dns-registration-disabled" in lab_rules(inventory)[host]
        journals = collection.home / "state" / "exfix" / "ansible"
        assert not journals.exists() or not list(journals.iterdir())

        # The same digests in the file the check run wrote, relative to where it ran.
        approved = tmp_path / "approved.json"
        assert json.loads(approved.read_text(encoding="utf-8")) == check.custom
        applied = collection.play("exfix.exchange.remediate", inventory, "-e", f"@{approved}", *restart,
                                  cwd=tmp_path)  # fmt: skip
        assert applied.exit_code == 0, applied.describe()
        done = applied.results("Apply the approved plan, verify it, roll back on failure")[host]
        assert done["status"] == "changed", applied.describe()
        result = done["result"]
        assert result["verified"] is True
        assert result["apply"]["hosts"][0]["outcome"] == "done"
        assert [s["status"] for s in result["apply"]["hosts"][0]["steps"]] == ["ok", "ok", "ok"]
        # The journal stays on the controller (the default path), the ticket in every record.
        journal = Path(result["journal"])
        assert journal.parent == journals and journal.exists()
        records = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
        assert {r["ticket"] for r in records} == {"CHG0042"}
        # The host held before it was collected: the hold's records (no plan yet, no digest),
        # then apply's, one run.
        assert [(r["phase"], r["plan_digest"]) for r in records[:2]] == [("hold", ""), ("lock", "")]
        assert {r["plan_digest"] for r in records[2:]} == {plan["digest"]}
        assert len({r["run"] for r in records}) == 1
        assert [(r["phase"], r["result"]) for r in result["journal_records"]] == [
            (r["phase"], r["result"]) for r in records
        ]
        assert "nic-dns-registration-disabled" not in lab_rules(inventory)[host]

        again = collection.play("exfix.exchange.remediate", inventory, "-e", f"@{approved}", *restart,
                                cwd=tmp_path)  # fmt: skip
        assert again.exit_code == 0, again.describe()
        unchanged = again.results("Apply the approved plan, verify it, roll back on failure")[host]
        assert unchanged["status"] == "ok", again.describe()
        assert unchanged["result"]["actions"] == []
        assert again.recap[host]["changed"] == 0


APPLY_TASK = "Apply the approved plan, verify it, roll back on failure"


def _commands(lab: Lab, host: str) -> int:
    """The commands (WSMan Command requests, both endpoints) the lab's host has been sent."""
    return lab.counters.get(host, action="Command")


def _marker(lab: Lab, host: str) -> str | None:
    """The change marker on the lab's host (agent/apply/lock.py), None when there is none."""
    files = lab.fleet.host(host).state.files.items()
    hits = [text for path, text in files if path.endswith(MARKER_NAME.lower())]
    return hits[0] if hits else None


def _journal(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_applying_task_holds_its_host_and_collects_it_once(
    collection: Collection, tmp_path: Path
) -> None:
    """The task that applies holds the host before it collects it and hands those facts to
    apply's stale check: one collection fewer than planning and then applying without a hold
    (what exfix_remediate ran before: plan_fleet, then apply_plan, whose stale check collects
    the host again), the same steps done, verified, the marker let go of."""
    for name in ("without", "with"):
        (tmp_path / name).mkdir()
    scenario = "nic-external-dns"
    with Lab(scenario) as before, Lab(scenario) as lab:
        # Without a hold, on a lab of its own: plan (one collection), then apply.
        old = load_inventory(before.write_inventory(tmp_path / "without" / "lab.yaml"))
        (host,) = (t.name for t in old.hosts)
        start = _commands(before, host)
        fleet = plan_fleet(old.hosts, old.credentials(), source=None, forks=1)
        one_collection = _commands(before, host) - start
        assert fleet.plan.organizations == () and fleet.plan.actions
        report = apply_plan(fleet.plan, old.hosts, old.credentials(), approve=fleet.plan.digest,
                            allow_restart=True, journal=tmp_path / "without" / "journal.jsonl",
                            operator="tester", forks=1)  # fmt: skip
        assert report.exit_code == 0
        without_hold = _commands(before, host) - start

        inventory = lab.write_inventory(tmp_path / "with" / "lab.yaml")
        restart = ("-e", "exfix_allow_restart=true", "-e", "exfix_ticket=CHG0042")
        check = collection.play("exfix.exchange.remediate", inventory, "--check", *restart,
                                "-e", "exfix_approval_out=approved.json", cwd=tmp_path / "with")  # fmt: skip
        assert check.exit_code == 0, check.describe()
        assert _marker(lab, host) is None  # check mode holds nothing
        journal = tmp_path / "with" / "journal.jsonl"
        start = _commands(lab, host)
        applied = collection.play("exfix.exchange.remediate", inventory, "-e", "@approved.json", *restart,
                                  "-e", f"exfix_journal={journal}", cwd=tmp_path / "with")  # fmt: skip
        with_hold = _commands(lab, host) - start
        assert applied.exit_code == 0, applied.describe()
        result = applied.results(APPLY_TASK)[host]["result"]
        assert result["verified"] is True and result["apply"]["hosts"][0]["outcome"] == "done"
        assert [s["status"] for s in result["apply"]["hosts"][0]["steps"]] == [
            s["status"] for s in report.to_dict()["hosts"][0]["steps"]
        ]
        assert _marker(lab, host) is None
    assert one_collection > 10
    assert without_hold - with_hold == one_collection, (without_hold, with_hold, one_collection)

    records = _journal(journal)
    assert len({r["run"] for r in records}) == 1  # the hold and its apply are one run
    assert [(r["phase"], r["result"]) for r in records[:3]] == [("hold", "taken"), ("lock", "acquired"),
                                                                ("start", "ok")]  # fmt: skip
    purpose = records[0]["detail"]["purpose"]
    assert "exfix_remediate" in purpose and "CHG0042" in purpose
    (stale,) = [r for r in records if r["phase"] == "stale-check"]
    assert stale["result"] == "fresh" and stale["detail"]["facts"] == "reused"
    assert [(r["phase"], r["result"]) for r in records[-2:]] == [("unlock", "released"), ("end", "ok")]
    assert [(r["phase"], r["result"]) for r in result["journal_records"]] == [
        (r["phase"], r["result"]) for r in records
    ]


def test_a_plan_that_is_not_the_approved_one_is_refused(collection: Collection, tmp_path: Path) -> None:
    with Lab("nic-registration-disabled") as lab:
        inventory = lab.write_inventory(tmp_path / "lab.yaml")
        (host,) = lab_rules(inventory)
        journal = tmp_path / "journal.jsonl"
        approved = tmp_path / "approved.json"
        approved.write_text(json.dumps({"exfix_approved": {host: "0" * 64}}), encoding="utf-8")
        run = collection.play("exfix.exchange.remediate", inventory, "-e", f"@{approved}",
                              "-e", "exfix_allow_restart=true", "-e", f"exfix_journal={journal}",
                              cwd=tmp_path)  # fmt: skip
        assert run.exit_code == 2, run.describe()
        refused = run.results(APPLY_TASK)[host]
        assert refused["status"] == "failed"
        assert refused["result"]["changed"] is False
        message = refused["result"]["msg"]
        assert f"the approved digest {'0' * 64} is not the plan for these hosts now" in message
        assert "journal" not in refused["result"] and "journal_records" not in refused["result"]
        assert "nic-dns-registration-disabled" in lab_rules(inventory)[host]
        # The host was held while it was collected and planned, and let go of: no marker left,
        # and the journal says that the hold ended with nothing applied.
        assert _marker(lab, host) is None
        records = _journal(journal)
        assert [(r["phase"], r["result"]) for r in records] == [
            ("hold", "taken"), ("lock", "acquired"), ("unlock", "released"), ("end", "ok"),
        ]  # fmt: skip
        assert records[-1]["detail"] == {"applied": False}

        # The plan's own digest, but a restart it may not do: apply refuses, under the hold.
        check = collection.play("exfix.exchange.remediate", inventory, "--check",
                                "-e", "exfix_approval_out=approved.json", cwd=tmp_path)  # fmt: skip
        assert check.exit_code == 0, check.describe()
        journal.unlink()
        run = collection.play("exfix.exchange.remediate", inventory, "-e", f"@{approved}",
                              "-e", f"exfix_journal={journal}", cwd=tmp_path)  # fmt: skip
        assert run.exit_code == 2, run.describe()
        assert run.results(APPLY_TASK)[host]["status"] == "failed"
        refused = run.results(APPLY_TASK)[host]["result"]
        assert refused["changed"] is False
        assert "set the allow_restart option" in refused["msg"]
        assert refused["journal"] == str(journal)
        assert _marker(lab, host) is None
        records = _journal(journal)
        assert [(r["phase"], r["result"]) for r in refused["journal_records"]] == [
            (r["phase"], r["result"]) for r in records
        ]
        assert [r["phase"] for r in records][:3] == ["hold", "lock", "start"]
        assert ("unlock", "released") in [(r["phase"], r["result"]) for r in records]
        assert "nic-dns-registration-disabled" in lab_rules(inventory)[host]

        # No digest for this host: refused as before, nothing held, no journal written.
        journal.unlink()
        other = {"exfix_approved": {"ex99.contoso.local": "0" * 64}}
        approved.write_text(json.dumps(other), encoding="utf-8")
        run = collection.play("exfix.exchange.remediate", inventory, "-e", f"@{approved}",
                              "-e", f"exfix_journal={journal}", cwd=tmp_path)  # fmt: skip
        assert run.exit_code == 2, run.describe()
        assert run.results(APPLY_TASK)[host]["result"]["msg"].startswith("no digest: ")
        assert not journal.exists() and _marker(lab, host) is None


def test_the_organisations_step_runs_once_and_is_verified_on_its_servers(
    collection: Collection, tmp_path: Path
) -> None:
    with Lab("remote-domain-aaaa-broken") as lab:
        inventory = lab.write_inventory(tmp_path / "lab.yaml")
        (host,) = lab_rules(inventory)
        assert "remote-domain-aaaa-broken" in lab_rules(inventory)[host]

        check = collection.play("exfix.exchange.remediate", inventory, "--check", cwd=tmp_path)
        assert check.exit_code == 0, check.describe()
        own = check.results("Plan (check mode, nothing changes)")[host]
        assert own["status"] == "ok" and own["result"]["actions"] == []
        assert "not run per host" in own["result"]["warnings"][0]
        shared = check.results("Plan the organisations' shared steps, once (check mode)")[host]
        assert shared["status"] == "changed"
        assert [a["kind"] for a in shared["result"]["actions"]] == ["new-smart-host-connector"]
        assert check.custom == {"exfix_approved_organization": shared["result"]["digest"]}
        assert "remote-domain-aaaa-broken" in lab_rules(inventory)[host]

        approved = tmp_path / "approved.json"
        approved.write_text(json.dumps(check.custom), encoding="utf-8")
        task = "Apply the organisations' approved steps once, verified on their servers"
        applied = collection.play("exfix.exchange.remediate", inventory, "-e", f"@{approved}", cwd=tmp_path)
        assert applied.exit_code == 0, applied.describe()
        done = applied.results(task)[host]
        assert done["status"] == "changed", applied.describe()
        assert done["result"]["verified"] is True
        (organization,) = done["result"]["apply"]["organizations"]
        assert organization["outcome"] == "done" and organization["verified"] is True
        assert "remote-domain-aaaa-broken" not in lab_rules(inventory)[host]

        again = collection.play("exfix.exchange.remediate", inventory, "-e", f"@{approved}", cwd=tmp_path)
        assert again.exit_code == 0, again.describe()
        assert again.results(task)[host]["status"] == "ok"
        assert again.recap[host]["changed"] == 0


def _findings(host: dict[str, Any], organizations: list[dict[str, Any]]) -> dict[str, Any]:
    """A host's own findings as the scan JSON holds them, and its organisation's by rule and
    subject (an organisation finding names every server scanned with it)."""
    shared = sorted(
        (f["rule"], f["subject"])
        for o in organizations
        for f in o["findings"]
        if host["host"] in f["servers"]
    )
    return {"own": host["findings"], "shared": shared}


def test_diagnose_finds_what_exfix_scan_finds(collection: Collection, tmp_path: Path) -> None:
    with Lab("mixed-fleet") as lab:
        inventory = lab.write_inventory(tmp_path / "lab.yaml")
        run = collection.play("exfix.exchange.diagnose", inventory, "-e", "exfix_ticket=INC0012345",
                              cwd=tmp_path)  # fmt: skip
        scan = run_exfix("scan", "-i", str(inventory), "--format", "json")
    assert run.exit_code == 0, run.describe()
    expected = {h["host"]: _findings(h, scan.doc["organizations"]) for h in scan.doc["hosts"]}
    results = run.results("Scan the server")
    assert set(results) == set(expected)
    for name, record in results.items():
        assert record["status"] == "ok", record
        result = record["result"]
        assert result["changed"] is False
        assert result["ticket"] == "INC0012345"
        assert result["schema"] == scan.doc["schema"]
        assert _findings(result["host"], result["organizations"]) == expected[name], name
        assert result["rules"] == sorted({r for r, _ in expected[name]["shared"]}
                                         | {f["rule"] for f in expected[name]["own"]})  # fmt: skip
    assert any(expected[name]["own"] for name in expected)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_host_fails_only_itself_and_vault_is_ansibles(
    collection: Collection, tmp_path: Path
) -> None:
    with Lab("healthy") as lab:
        data = lab.inventory()
        # The password moves into group_vars encrypted whole with Ansible Vault.
        password = data["all"]["vars"].pop("ansible_password")
        hosts = data["all"]["children"]["exchange"]["hosts"]
        good = sorted(hosts)
        port = _closed_port()
        hosts["ex99.contoso.local"] = {**hosts[good[0]], "ansible_port": port, "exfix_exchange_port": port}
        directory = tmp_path / "inventory"
        (directory / "group_vars").mkdir(parents=True)
        (directory / "hosts.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
        secret = directory / "group_vars" / "all.yaml"
        secret.write_text(yaml.safe_dump({"ansible_password": password}), encoding="utf-8")
        vault_password = tmp_path / "vault-password"
        vault_password.write_text("throwaway-vault-password\n", encoding="utf-8")
        vault = ansible_program("ansible-vault")
        assert vault is not None
        subprocess.run([str(vault), "encrypt", "--vault-password-file", str(vault_password), str(secret)],
                       check=True, capture_output=True, env=collection.env(tmp_path / "unused"))  # fmt: skip
        assert secret.read_text(encoding="utf-8").startswith("$ANSIBLE_VAULT")

        run = collection.play("exfix.exchange.diagnose", directory, "--vault-password-file",
                              str(vault_password), cwd=tmp_path)  # fmt: skip
    assert run.exit_code == 4, run.describe()  # ansible-playbook: a host unreachable
    assert run.recap["ex99.contoso.local"]["unreachable"] == 1
    results = run.results("Scan the server")
    assert results["ex99.contoso.local"]["status"] == "unreachable"
    assert results["ex99.contoso.local"]["result"]["msg"].startswith("unreachable: ")
    for name in good:
        assert run.recap[name]["unreachable"] == 0 and run.recap[name]["failures"] == 0
        assert results[name]["status"] == "ok"
        assert results[name]["result"]["host"]["status"] == "scanned"
    # The task after the scan ran for the reachable hosts only.
    assert set(run.results("What was found")) == set(good)


def test_an_applying_task_whose_host_is_unreachable_says_so_and_holds_nothing(
    collection: Collection, tmp_path: Path
) -> None:
    """The hold cannot reach the host and leaves it out; the scan finds it unreachable, and the
    task says so as before, with the hold's end journaled (nothing was applied)."""
    with Lab("healthy") as lab:
        data = lab.inventory()
        hosts = data["all"]["children"]["exchange"]["hosts"]
        port = _closed_port()
        closed = {"ansible_port": port, "exfix_exchange_port": port}
        hosts["ex99.contoso.local"] = {**hosts[sorted(hosts)[0]], **closed}
        inventory = tmp_path / "lab.yaml"
        inventory.write_text(yaml.safe_dump(data), encoding="utf-8")
        approved = tmp_path / "approved.json"
        digests = {"exfix_approved": {"ex99.contoso.local": "0" * 64}}
        approved.write_text(json.dumps(digests), encoding="utf-8")
        journal = tmp_path / "journal.jsonl"
        run = collection.play("exfix.exchange.remediate", inventory, "-e", f"@{approved}",
                              "-e", "exfix_hosts=ex99.contoso.local", "-e", f"exfix_journal={journal}",
                              cwd=tmp_path)  # fmt: skip
    assert run.exit_code == 4, run.describe()  # ansible-playbook: a host unreachable
    record = run.results(APPLY_TASK)["ex99.contoso.local"]
    assert record["status"] == "unreachable"
    assert record["result"]["msg"].startswith("unreachable: ")
    records = _journal(journal)
    assert [(r["phase"], r["result"]) for r in records] == [("hold", "taken"), ("lock", "failed"),
                                                            ("end", "ok")]  # fmt: skip
    assert records[1]["host"] == "ex99.contoso.local" and records[-1]["detail"] == {"applied": False}


def test_the_command_lines_account_is_used_where_the_inventory_gives_none(
    collection: Collection, tmp_path: Path
) -> None:
    """-u and --connection-password-file (how an AWX Machine credential hands them over) give
    the account; a host's own ansible_user would override them, as in Ansible."""
    with Lab("healthy") as lab:
        data = lab.inventory()
        user = data["all"]["vars"].pop("ansible_user")
        password = data["all"]["vars"].pop("ansible_password")
        inventory = tmp_path / "lab.yaml"
        inventory.write_text(yaml.safe_dump(data), encoding="utf-8")
        secret = tmp_path / "connection-password"
        secret.write_text(password + "\n", encoding="utf-8")
        given = collection.play("exfix.exchange.diagnose", inventory, "-u", user,
                                "--connection-password-file", str(secret), cwd=tmp_path)  # fmt: skip
        without = collection.play("exfix.exchange.diagnose", inventory, cwd=tmp_path)
    assert given.exit_code == 0, given.describe()
    assert {r["status"] for r in given.results("Scan the server").values()} == {"ok"}
    # Without them exfix has no account to offer NTLM: the host is not scanned, and says why.
    assert without.exit_code != 0
    assert {r["status"] for r in without.results("Scan the server").values()} <= {"failed", "unreachable"}
