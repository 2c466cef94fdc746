"""bench/fleet_scan.py: the baselines replay what exfix's collector ran, with plain pypsrp.

The benchmark asserts nothing itself; these tests check that what it compares is honest: the
recording covers every host kind, a clone replays its template's cmdlets under its own names,
both baselines get exactly the output the recording got, and neither imports exfix.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mock_remoting.lab import Lab

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "fleet_scan.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fleet_scan", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_bench()


def test_a_clone_is_of_its_templates_kind() -> None:
    templates = ["ex01.contoso.local", "exchange-server7.contoso.local"]
    assert bench.kind_of("EX01.contoso.local", templates) == "ex01.contoso.local"
    assert bench.kind_of("ex01-12.contoso.local", templates) == "ex01.contoso.local"
    # scale_fleet keeps the first nine characters of a template's name before "-generation"
    assert bench.kind_of("exchange--3.contoso.local", templates) == "exchange-server7.contoso.local"
    assert bench.kind_of("ex01-2.fabrikam.com", templates) is None
    assert bench.kind_of("ex09.contoso.local", templates) is None


def test_inventory_variables_merge_down_the_groups(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        "all:\n  vars: {ansible_user: u, ansible_password: p, ansible_psrp_protocol: http}\n"
        "  children:\n    ex:\n      vars: {exfix_exchange_port: 8080}\n"
        "      hosts:\n        a.example: {ansible_host: 127.0.0.2, ansible_port: 5985}\n"
        "        b.example: {exfix_exchange_port: 81, exfix_exchange_protocol: https}\n",
        encoding="utf-8",
    )
    hosts = bench.inventory_hosts(inventory)
    a = bench.endpoints("a.example", hosts["a.example"])
    b = bench.endpoints("b.example", hosts["b.example"])
    assert (a["os"]["server"], a["os"]["port"], a["os"]["scheme"]) == ("127.0.0.2", 5985, "http")
    exchange = a["exchange"]
    assert (exchange["server"], exchange["port"], exchange["path"]) == ("127.0.0.2", 8080, "PowerShell")
    assert (b["exchange"]["port"], b["exchange"]["scheme"], b["os"]["port"]) == (81, "https", 5985)
    assert a["os"]["configuration"] == "Microsoft.PowerShell"
    assert a["exchange"]["configuration"] == "Microsoft.Exchange"
    assert (b["os"]["username"], b["os"]["password"]) == ("u", "p")


def test_the_limit_model_weighs_kinds_and_counts_the_labs_cpu_on_the_same_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 2)
    summary = {
        "exfix": {
            "cpu_ms_per_host": {"median": 100.0},
            "lab_cpu_ms_per_host": {"median": 300.0},
            "lab_share": {"median": 0.4},  # 40 x 0.3 s over the 30 s exfix took
            "wall_s": {"median": 30.0},
        }
    }
    names = ["a.x", "b.x", "a-2.x", "a-3.x"]  # three of kind a (1 s alone), one of kind b (3 s)
    model = bench.limit_model(40, 4, {"a.x": 1.0, "b.x": 3.0}, ["a.x", "b.x"], names, summary)
    assert model["t_host_s"] == pytest.approx(1.5)
    assert model["latency_bound_s"] == pytest.approx(10 * 1.5)
    # Both processes' CPU over the 2 cores: 40 x (0.1 + 0.3) s / 2 = 8 s. At that speed the lab
    # takes 12 s / 8 s = 1.5 cores, so the client has 0.5: 40 x 0.1 s / 0.5 = 8 s again, the
    # same bound seen from the client. The share over the run's 30 s (0.4) would give 2.5 s.
    assert model["cpu_bound_s"] == pytest.approx(8.0)
    assert model["lab_share_cores"] == pytest.approx(1.5)
    assert model["cores"] == pytest.approx(0.5)
    assert 40 * model["cpu_client_s"] / model["cores"] == pytest.approx(model["cpu_bound_s"])
    assert model["lab_share_measured_cores"] == pytest.approx(0.4)
    assert (model["bound"], model["ratio"]) == ("latency", pytest.approx(2.0))
    assert model["lab_one_core_s"] == pytest.approx(12.0)  # printed beside the model, not in it


def test_compare_reads_the_one_round_format_too() -> None:
    old = {"args": {"hosts": 200, "rtt_ms": 20.0}, "results": {"scan": {"hosts": 200, "wall_s": 40.0}}}
    new = {
        "args": {"hosts": 200, "rtt_ms": 20.0},
        "summary": {"exfix": {m: {"median": 10.0, "min": 10.0, "max": 10.0} for m in bench.METRICS}},
        "ratios": {},
        "model": {},
    }
    lines = list(bench.compare(old, new))
    assert any("hosts_per_s" in line and "5.00 ->" in line and "+100%" in line for line in lines)


def run_plain(phase: str, *args: str | int) -> tuple[dict[str, Any], list[str]]:
    """A baseline phase in a fresh interpreter, and the exfix or lab modules it imported."""
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('fleet_scan', {str(SCRIPT)!r})\n"
        "m = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(m)\n"
        "from pathlib import Path\n"
        f"result = m.{phase}(Path({args[0]!r}), Path({args[1]!r}), *{list(args[2:])!r})\n"
        "ours = sorted(x for x in sys.modules if x.split('.')[0] in ('agent', 'mock_remoting'))\n"
        "print(json.dumps([result, ours]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result, modules = json.loads(done.stdout.strip().splitlines()[-1])
    return result, modules


@pytest.mark.lab
def test_the_baselines_replay_exfixs_cmdlets_with_plain_pypsrp(tmp_path: Path) -> None:
    inventory, calls = tmp_path / "inventory.yaml", tmp_path / "cmdlets.json"
    with Lab("mixed-fleet", hosts=7) as lab:
        lab.write_inventory(inventory)
        recorded = bench.record_phase(inventory, calls)
        # one host of each of mixed-fleet's five kinds; the clones are not recorded
        assert sorted(recorded["kinds"]) == [f"ex0{i}.contoso.local" for i in range(1, 6)]
        plan = {h["host"]: h for h in bench.host_plan(inventory, calls)}
        template, clone = plan["ex01.contoso.local"], plan["ex01-2.contoso.local"]
        assert [c["cmdlet"] for c in clone["calls"]] == [c["cmdlet"] for c in template["calls"]]
        first = clone["calls"][0]
        assert first["cmdlet"] == "Get-ExchangeServer"
        assert first["parameters"] == [["Identity", "ex01-2.contoso.local"]]
        assert ["Identity", "EX01-2"] in [p for c in clone["calls"] for p in c["parameters"]]
        # its own address or port: whatever the lab gives each host, from the inventory
        address = {h: (p["endpoints"]["os"]["server"], p["endpoints"]["os"]["port"]) for h, p in plan.items()}
        assert len(set(address.values())) == 7

        tasks = sum(len(h["calls"]) for h in plan.values())
        naive, naive_modules = run_plain("naive_phase", str(inventory), str(calls), 7)
        peer, peer_modules = run_plain("peer_phase", str(inventory), str(calls), 2, "linear")
        free, _ = run_plain("peer_phase", str(inventory), str(calls), 3, "free")
    for result in (naive, peer, free):
        assert (result["hosts"], result["tasks"], result["tasks_off"], result["errors"]) == (7, tasks, 0, {})
        assert result["cpu_s"] > 0 and result["peak_rss_mb"] > 0
    assert naive_modules == [] and peer_modules == []


def test_the_benchmark_runs_exfix_at_its_default_forks() -> None:
    from agent.scan import DEFAULT_FORKS

    assert load_bench().EXFIX_DEFAULT_FORKS == DEFAULT_FORKS
