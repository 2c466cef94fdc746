"""End to end with the CLI as subprocesses: lab serve, plan, apply, scan."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from apply._apply_support import exfix_command, subprocess_env
from mock_remoting.credentials import LAB_PASSWORD

pytestmark = pytest.mark.lab


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*exfix_command(), *args], capture_output=True, text=True, timeout=timeout,
                          env=subprocess_env())  # fmt: skip


def test_serve_plan_apply_scan(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.yaml"
    server = subprocess.Popen(
        [*exfix_command(), "lab", "serve", "--scenario", "mixed-fleet", "--inventory-out", str(inventory)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(),
    )  # fmt: skip
    outputs: list[str] = []
    try:
        assert server.stdout is not None
        ready = server.stdout.readline()
        assert ready.startswith("ready "), ready
        # The lab's inventory names the internet resolvers transport may use (its working
        # public resolver), with a comment saying what they are: the inventory is used as written.
        data = yaml.safe_load(inventory.read_text(encoding="utf-8"))
        assert data["all"]["vars"]["exfix_external_dns_servers"] == ["8.8.8.8"]
        assert "# 8.8.8.8: the lab's working public resolver" in inventory.read_text(encoding="utf-8")

        out = tmp_path / "plan"
        planned = _run("plan", "--inventory", str(inventory), "--out", str(out))
        outputs += [planned.stdout, planned.stderr]
        assert planned.returncode == 2, planned.stderr
        plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
        assert plan["source"] == {"kind": "inventory", "value": str(inventory.resolve())}
        digest = plan["digest"]
        assert f"Digest: {digest}" in planned.stdout
        command = re.search(r"^\s+(exfix apply .*)$", planned.stdout, re.MULTILINE)
        assert command is not None and command.group(1).endswith(f"--approve {digest} --allow-restart")

        # The recorded inventory is used: no --inventory here.
        applied = _run("apply", str(out / "plan.json"), "--approve", digest, "--allow-restart",
                       "--verify-timeout", "5", "--ticket", "CHG0012345")  # fmt: skip
        outputs += [applied.stdout, applied.stderr]
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "exit 0" in applied.stdout

        scanned = _run("scan", "--inventory", str(inventory), "--format", "json")
        outputs += [scanned.stdout, scanned.stderr]
        report = json.loads(scanned.stdout)
        leftovers = [f for h in report["hosts"] for f in h["findings"]]
        # Only findings without an automatic fix may remain (advice); mixed-fleet has none.
        assert all(f["fix"] is None for f in leftovers), leftovers
        assert scanned.returncode == (2 if leftovers else 0)

        replanned = _run("plan", "--inventory", str(inventory), "--out", str(tmp_path / "again"))
        assert replanned.returncode == 0, replanned.stdout
        assert "Nothing to do." in replanned.stdout

        journal = (out / "journal.jsonl").read_text(encoding="ascii")
        records = [json.loads(line) for line in journal.splitlines()]
        assert {r["ticket"] for r in records} == {"CHG0012345"}
        # No secret anywhere: not in the journal, the plan directory or any output.
        for path in out.rglob("*"):
            if path.is_file():
                assert LAB_PASSWORD not in path.read_text(encoding="utf-8", errors="replace"), path
        for text in outputs:
            assert LAB_PASSWORD not in text
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()
