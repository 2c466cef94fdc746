"""Fleet scan benchmark: ``exfix scan`` against an Ansible-like peer and a naive script, over the lab.

Run:  python bench/fleet_scan.py [--hosts 200] [--rtt-ms 20] [--rounds 3] [--forks 16] [--json FILE]
      python bench/fleet_scan.py --compare OLD.json ...     # the change against an earlier run

Everything runs on 127.0.0.1, each side in its own process, so every figure belongs to one side:

* the lab: a child process running ``mock_remoting.lab.Lab(scenario, hosts=N, latency_ms=RTT)``
  (``exfix lab serve`` has no latency option). It answers ``counters`` on its stdin with the
  request counters as one JSON line; EOF stops it. One lab process serves every phase.
* the recording (once, untimed): exfix's collector (``agent.collect.runner.collect_host``)
  scans one host of each kind of the scenario through a Runner that records every CmdletCall
  it issues (endpoint, cmdlet, parameters) and how many output objects and errors came back.
  That list is saved as plain JSON; it is all the two baselines learn from exfix.
* exfix: a child process that loads the inventory and calls ``agent.scan.scan_fleet(forks=F)``.
* the Ansible-like peer: plain pypsrp, no exfix import. It reads the connection facts from the
  inventory YAML (address, port, scheme, path, auth, user, password), and runs each host's
  recorded cmdlets the way Ansible's psrp connection plugin does with the default ``linear``
  strategy: ``--peer-forks`` worker processes (5, Ansible's default ``forks``), one task per
  cmdlet and host, each task a new WSMan connection and RunspacePool (Ansible closes the
  connection at the end of each task), and every host finishes task k before task k+1 starts.
* the naive script: plain pypsrp, no exfix import; hosts one after another, every cmdlet a new
  WSMan connection and RunspacePool, on the first K hosts (``--baseline-sample``), extrapolated
  to N (it is sequential, so that is honest).
* optionally (``--cli``) ``exfix scan -i INVENTORY --forks F --format json`` as a subprocess.

Rounds: the phases run interleaved, ABC CBA ABC ..., ``--rounds`` times against the same lab
process, so a change in the machine's load hits every side alike; each side's figures are the
median and the min-max over the rounds, and the ratios are taken within each round.

Round-trip time: the lab sleeps ``latency_ms`` once per WS-Management request (Create, Command,
Receive, Signal, Delete) before answering, so ``--rtt-ms R`` sets ``latency_ms = R``. The
authentication round trips, TCP connects and client-side DNS probes get no added latency; that
favours both baselines, which authenticate for every cmdlet.

The limit model: T >= max(ceil(N / C) x T_host, N x CPU_client / cores), C = exfix's forks,
T_host = one host's exfix scan alone (measured once per kind, before the rounds), CPU_client =
exfix's client CPU per host, cores = os.cpu_count() minus the lab's share (lab CPU / wall
during exfix's phase). Not a test: it prints numbers and asserts nothing. Linux only (/proc,
ru_maxrss in KiB).
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import math
import multiprocessing
import os
import queue
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

SCHEMA = "exfix-bench-fleet-scan/2"

DEFAULT_SCENARIO = "mixed-fleet"
# agent.scan.DEFAULT_FORKS, written out: the baselines' phases load this module and import nothing
# of exfix (tests/bench/test_fleet_scan.py checks both, and keeps the two numbers equal).
EXFIX_DEFAULT_FORKS = 128
CountKey = tuple[str, str, str]  # host, endpoint, action


# -- the lab process ------------------------------------------------------------------------


def serve_lab(scenario: str, hosts: int, latency_ms: float, inventory: Path) -> int:
    """Child mode: run the lab until stdin closes; ``counters`` prints them as one JSON line."""
    from mock_remoting.lab import Lab

    with Lab(scenario, hosts=hosts, latency_ms=latency_ms) as lab:
        lab.write_inventory(inventory)
        print(f"ready {inventory}", flush=True)
        for line in sys.stdin:
            if line.strip() == "counters":
                rows = [[k.host, k.endpoint, k.action, n] for k, n in lab.counters.snapshot().items()]
                print(json.dumps(rows), flush=True)
    return 0


class LabProcess:
    """The lab child seen from the orchestrator. Every wait is bounded."""

    def __init__(self, scenario: str, hosts: int, latency_ms: float, workdir: Path, timeout: float) -> None:
        self.inventory = workdir / "inventory.yaml"
        self._errlog = (workdir / "lab.stderr").open("w+")
        self._timeout = timeout
        self._proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve-lab",
                "--scenario",
                scenario,
                "--hosts",
                str(hosts),
                "--rtt-ms",
                str(latency_ms),
                "--inventory",
                str(self.inventory),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errlog,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(self._proc.stdout,), daemon=True).start()
        line = self._next_line()
        if not line.startswith("ready "):
            raise RuntimeError(f"the lab did not start: {line!r} {self.stderr()}")
        self.pid = self._proc.pid

    def _read(self, stream: TextIO | None) -> None:
        assert stream is not None
        for line in stream:
            self._lines.put(line.strip())
        self._lines.put(None)

    def _next_line(self) -> str:
        try:
            line = self._lines.get(timeout=self._timeout)
        except queue.Empty:
            raise RuntimeError(f"the lab did not answer within {self._timeout:g}s") from None
        if line is None:
            raise RuntimeError(f"the lab exited: {self.stderr()}")
        return line

    def stderr(self) -> str:
        self._errlog.seek(0)
        return self._errlog.read()[-2000:].strip()

    def counters(self) -> collections.Counter[CountKey]:
        assert self._proc.stdin is not None
        self._proc.stdin.write("counters\n")
        self._proc.stdin.flush()
        rows = json.loads(self._next_line())
        return collections.Counter({(h, e, a): int(n) for h, e, a, n in rows})

    def cpu_seconds(self) -> float:
        """The lab process's CPU so far (all its threads), from /proc/<pid>/stat."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the ")" of the command name, utime and stime are the 12th and 13th fields.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.terminate()
            self._proc.wait(10)
        self._errlog.close()


# -- the recording (the only place, besides the exfix phases, that imports exfix) ----------

# A clone of a scenario host is named after its template (mock_remoting.exchange.scenario's
# scale_fleet: the first nine characters of the name, "-", a generation number).
CLONE = re.compile(r"^(?P<base>[^.]+)-(?P<gen>\d+)(?P<rest>\..*)?$")


def kind_of(name: str, templates: Sequence[str]) -> str | None:
    """The template host ``name`` is (or is a clone of); None when none matches."""
    lowered = name.lower()
    for template in templates:
        if lowered == template.lower():
            return template
    match = CLONE.match(lowered)
    if match is None:
        return None
    for template in templates:
        label, _, rest = template.lower().partition(".")
        if label[:9] == match["base"] and (match["rest"] or "") == (f".{rest}" if rest else ""):
            return template
    return None


def record_phase(inventory: Path, out: Path) -> dict[str, Any]:
    """Child mode: exfix's collector on one host of each kind, through a recording Runner.

    The hosts of each kind share one organisation cache, as in ``scan_fleet``: the org-wide
    cmdlets (Get-SendConnector) are recorded for the first host only.
    """
    from agent.collect.org import OrgFactsCache
    from agent.collect.runner import DEFAULT_PUBLIC_NAME, CollectOptions, collect_host
    from agent.inventory import load_inventory
    from agent.model.command import CmdletCall, Switch
    from agent.transport.base import CommandResult
    from agent.transport.connection import connect

    def plain(value: Any) -> Any:
        if isinstance(value, Switch):
            return {"switch": True}
        return list(value) if isinstance(value, tuple) else value

    class Recording:
        """Passes every call to the real connection and writes down what went and came."""

        def __init__(self, conn: Any, log: list[dict[str, Any]]) -> None:
            self.conn, self.log = conn, log

        def _note(self, call: CmdletCall, objects: int, errors: int) -> None:
            self.log.append(
                {
                    "endpoint": call.endpoint.value,
                    "cmdlet": call.cmdlet,
                    "parameters": [[k, plain(v)] for k, v in call.parameters],
                    "objects": objects,
                    "errors": errors,
                }
            )

        def run(self, call: CmdletCall, *, timeout: float | None = None) -> Any:
            try:
                out = self.conn.run(call, timeout=timeout)
            except Exception:
                self._note(call, 0, 1)
                raise
            self._note(call, len(out), 0)
            return out

        def invoke(self, call: CmdletCall, *, timeout: float | None = None) -> CommandResult:
            result: CommandResult = self.conn.invoke(call, timeout=timeout)
            self._note(call, len(result.objects), len(result.errors))
            return result

    inv = load_inventory(inventory)
    credentials = inv.credentials()
    kinds: dict[str, Any] = {}
    orgs = OrgFactsCache()
    for target in inv.select(None):
        if kind_of(target.name, list(kinds)) is not None:
            continue  # a clone of a host already recorded
        log: list[dict[str, Any]] = []
        options = CollectOptions(
            public_name=target.probe_public_name or DEFAULT_PUBLIC_NAME,
            dns_address_map=target.dns_address_map,
        )
        with connect(target, credentials.resolve(target)) as conn:
            facts = collect_host(Recording(conn, log), target.name, options, orgs)
        kinds[target.name] = {"short": facts.exchange.name, "calls": log}
    out.write_text(json.dumps({"kinds": kinds}, indent=1), encoding="utf-8")
    return {"kinds": {k: len(v["calls"]) for k, v in kinds.items()}}


# -- the two baselines: plain pypsrp, nothing from exfix ----------------------------------

# The PSSession configurations: Exchange's remote PowerShell endpoint is the
# "Microsoft.Exchange" configuration under /PowerShell (IIS); the OS cmdlets run in WinRM's
# default "Microsoft.PowerShell" (about_Session_Configurations).
EXCHANGE_CONFIGURATION = "Microsoft.Exchange"
OS_CONFIGURATION = "Microsoft.PowerShell"


def inventory_hosts(inventory: Path) -> dict[str, dict[str, Any]]:
    """Every host of an Ansible YAML inventory with its variables (group vars from ``all``
    down, the host's own last), as Ansible merges them for a host in one group path."""
    document = yaml.safe_load(inventory.read_text(encoding="utf-8")) or {}
    hosts: dict[str, dict[str, Any]] = {}

    def walk(group: Mapping[str, Any], inherited: Mapping[str, Any]) -> None:
        variables = {**inherited, **(group.get("vars") or {})}
        for name, own in (group.get("hosts") or {}).items():
            hosts[name] = {**hosts.get(name, {}), **variables, **(own or {})}
        for child in (group.get("children") or {}).values():
            walk(child or {}, variables)

    for group in document.values():
        walk(group or {}, {})
    return hosts


def endpoints(name: str, hv: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The connection facts of both endpoints of one host, from its inventory variables."""
    address = hv.get("ansible_host") or hv.get("ansible_psrp_host") or name
    os_scheme = str(hv.get("ansible_psrp_protocol") or "https")
    common = {
        "username": hv.get("ansible_user") or hv.get("ansible_psrp_user"),
        "password": hv.get("ansible_password") or hv.get("ansible_psrp_password"),
        "cert_validation": str(hv.get("ansible_psrp_cert_validation", "validate")) != "ignore",
    }
    os_side = {
        "server": address,
        "scheme": os_scheme,
        "port": int(
            hv.get("ansible_port") or hv.get("ansible_psrp_port") or (5986 if os_scheme == "https" else 5985)
        ),
        "path": str(hv.get("ansible_psrp_path") or "wsman"),
        "auth": str(hv.get("ansible_psrp_auth") or "negotiate"),
        "configuration": str(hv.get("ansible_psrp_configuration_name") or OS_CONFIGURATION),
        **common,
    }
    ex_scheme = str(hv.get("exfix_exchange_protocol") or "http")
    exchange = {
        "server": hv.get("exfix_exchange_host") or address,
        "scheme": ex_scheme,
        "port": int(hv.get("exfix_exchange_port") or (443 if ex_scheme == "https" else 80)),
        "path": str(hv.get("exfix_exchange_path") or "PowerShell"),
        "auth": str(hv.get("exfix_exchange_auth") or "kerberos"),
        "configuration": EXCHANGE_CONFIGURATION,
        **common,
    }
    return {"exchange": exchange, "os": os_side}


def host_plan(inventory: Path, recorded: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Each host's endpoints and the cmdlets of its kind, the template's names replaced by
    the host's own (the clones differ from their template only in name)."""
    kinds: dict[str, Any] = json.loads(recorded.read_text(encoding="utf-8"))["kinds"]
    plan = []
    for name, hv in list(inventory_hosts(inventory).items())[:limit]:
        kind = kind_of(name, list(kinds))
        if kind is None:
            raise SystemExit(f"host {name}: of no recorded kind")
        short = name.split(".")[0].upper() if kind != name else kinds[kind]["short"]
        swap = {kind.lower(): name, str(kinds[kind]["short"]).lower(): short}
        calls = [
            {
                **call,
                "parameters": [
                    [k, swap.get(v.lower(), v) if isinstance(v, str) else v] for k, v in call["parameters"]
                ],
            }
            for call in kinds[kind]["calls"]
        ]
        plan.append({"host": name, "endpoints": endpoints(name, hv), "calls": calls})
    return plan


def run_task(endpoint: Mapping[str, Any], call: Mapping[str, Any]) -> tuple[int, int]:
    """One cmdlet the plain way: connect, open a RunspacePool, invoke, close it all.

    Returns how many output objects (a list counts its items) and error records came back.
    """
    from pypsrp.powershell import PowerShell, RunspacePool
    from pypsrp.wsman import WSMan

    https = endpoint["scheme"] == "https"
    wsman = WSMan(
        endpoint["server"],
        port=endpoint["port"],
        path=endpoint["path"],
        ssl=https,
        auth=endpoint["auth"],
        username=endpoint["username"],
        password=endpoint["password"],
        cert_validation=endpoint["cert_validation"],
        no_proxy=True,
        encryption="never" if endpoint["auth"] == "basic" and not https else "auto",
        connection_timeout=10,
        read_timeout=60,
    )
    with wsman, RunspacePool(wsman, configuration_name=endpoint["configuration"]) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet(call["cmdlet"])
        for name, value in call["parameters"]:
            ps.add_parameter(name, True if isinstance(value, dict) and value.get("switch") else value)
        output = ps.invoke()
    objects = sum(len(v) if isinstance(v, list) else 1 for v in output if v is not None)
    return objects, len(ps.streams.error)


def task_outcome(host: Mapping[str, Any], index: int) -> tuple[str, int, str | None]:
    """(host, index, problem): None when the task got what the recording got."""
    call = host["calls"][index]
    try:
        objects, errors = run_task(host["endpoints"][call["endpoint"]], call)
    except Exception as exc:  # a failed task is reported, like Ansible's "failed"
        return host["host"], index, f"{call['cmdlet']}: {type(exc).__name__}: {exc}"[:300]
    if (objects, errors) != (call["objects"], call["errors"]):
        return (
            host["host"],
            index,
            (
                f"{call['cmdlet']}: {objects} objects, {errors} errors;"
                f" recorded {call['objects']}, {call['errors']}"
            ),
        )
    return host["host"], index, None


def baseline_result(
    plan: Sequence[Mapping[str, Any]],
    started: float,
    cpu: float,
    rss_ready: float,
    problems: Sequence[tuple[str, int, str | None]],
    peak_rss_mb: float,
) -> dict[str, Any]:
    bad = [(h, i, p) for h, i, p in problems if p is not None]
    errors: dict[str, str] = {}
    for h, _i, p in bad:
        errors.setdefault(h, str(p))
    return {
        "hosts": len(plan),
        "wall_s": time.perf_counter() - started,
        "cpu_s": cpu,
        "rss_ready_mb": rss_ready,
        "peak_rss_mb": peak_rss_mb,
        "tasks": len(problems),
        "tasks_off": len(bad),
        "errors": errors,
    }


def naive_phase(inventory: Path, recorded: Path, sample: int) -> dict[str, Any]:
    """Child mode: the first ``sample`` hosts one after another, a new pool per cmdlet."""
    plan = host_plan(inventory, recorded, sample)
    rss_ready = current_rss_mb()
    cpu, started = time.process_time(), time.perf_counter()
    outcomes = [task_outcome(host, i) for host in plan for i in range(len(host["calls"]))]
    return baseline_result(
        plan,
        started,
        time.process_time() - cpu,
        rss_ready,
        outcomes,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    )


_PLAN: list[dict[str, Any]] = []  # the peer's workers inherit it (fork), as Ansible's do


def _peer_worker(tasks: Any, results: Any) -> None:
    """One fork: take (host, task) pairs until None, then report its own CPU and peak RSS."""
    while (item := tasks.get()) is not None:
        results.put((item[0], task_outcome(_PLAN[item[0]], item[1])))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.put((-1, (usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0)))


def peer_phase(inventory: Path, recorded: Path, forks: int, strategy: str) -> dict[str, Any]:
    """Child mode: the Ansible-like peer. ``linear``: task k runs on every host (``forks`` at a
    time) before task k+1 starts, Ansible's default strategy; ``free``: each host runs its
    tasks as fast as a worker frees up (``strategy: free``)."""
    _PLAN[:] = host_plan(inventory, recorded)
    import pypsrp.powershell  # noqa: F401  (imported once before the fork, as Ansible's workers inherit it)

    rss_ready = current_rss_mb()
    context = multiprocessing.get_context("fork")
    tasks: Any = context.Queue()
    results: Any = context.Queue()
    cpu, started = time.process_time(), time.perf_counter()
    workers = [context.Process(target=_peer_worker, args=(tasks, results), daemon=True) for _ in range(forks)]
    for worker in workers:
        worker.start()
    outcomes: list[tuple[str, int, str | None]] = []
    if strategy == "linear":
        for k in range(max(len(h["calls"]) for h in _PLAN)):
            batch = [(h, k) for h in range(len(_PLAN)) if k < len(_PLAN[h]["calls"])]
            for item in batch:
                tasks.put(item)
            outcomes.extend(results.get(timeout=600)[1] for _ in batch)
    else:
        pending = 0
        for h in range(len(_PLAN)):
            tasks.put((h, 0))
            pending += 1
        while pending:
            h, outcome = results.get(timeout=600)
            outcomes.append(outcome)
            pending -= 1
            if outcome[1] + 1 < len(_PLAN[h]["calls"]):
                tasks.put((h, outcome[1] + 1))
                pending += 1
    for _ in workers:
        tasks.put(None)
    worker_cpu, worker_rss = 0.0, 0.0
    for _ in workers:
        _h, (cpu_s, rss) = results.get(timeout=60)
        worker_cpu, worker_rss = worker_cpu + cpu_s, worker_rss + rss
    for worker in workers:
        worker.join(30)
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    result = baseline_result(
        _PLAN, started, time.process_time() - cpu + worker_cpu, rss_ready, outcomes, own_peak + worker_rss
    )
    return result | {"forks": forks, "strategy": strategy}


# -- exfix ----------------------------------------------------------------------------------


def scan_phase(inventory: Path, forks: int) -> dict[str, Any]:
    """Child mode: ``agent.scan.scan_fleet`` over every host of the inventory, the fleet opened
    as ``exfix scan`` opens it (agent/cli/_common.py: its collector settings included)."""
    from agent.cli._common import open_fleet
    from agent.scan import scan_fleet

    with open_fleet(str(inventory), None, None, False) as fleet:
        targets = fleet.targets
        rss_ready = current_rss_mb()
        cpu, started = time.process_time(), time.perf_counter()
        # As `exfix scan` runs it: a finished host keeps what the report shows, not its facts.
        report = scan_fleet(targets, fleet.credentials, source=str(inventory), forks=forks, keep_facts=False)
        wall, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    errors = {h.host: f"{h.status.value}: {h.error}" for h in report.hosts if h.error is not None}
    return {
        "hosts": len(targets),
        "wall_s": wall,
        "cpu_s": cpu_s,
        "rss_ready_mb": rss_ready,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "findings": sum(len(h.findings) for h in report.hosts),
        "errors": errors,
    }


def alone_phase(inventory: Path, recorded: Path) -> dict[str, Any]:
    """Child mode: T_host, each recorded kind's host scanned by exfix alone (forks 1)."""
    from agent.inventory import load_inventory
    from agent.scan import scan_fleet

    kinds = json.loads(recorded.read_text(encoding="utf-8"))["kinds"]
    inv = load_inventory(inventory)
    credentials = inv.credentials()
    walls: dict[str, float] = {}
    for target in inv.select(None):
        if target.name in kinds:
            started = time.perf_counter()
            scan_fleet([target], credentials, source=str(inventory), forks=1)
            walls[target.name] = time.perf_counter() - started
    return {"walls": walls}


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def run_child(args: Sequence[str], timeout: float, psrp_client: str | None = None) -> dict[str, Any]:
    """Run this script in a child mode; its last stdout line is the JSON result.

    ``psrp_client``: the child's EXFIX_PSRP_CLIENT (exfix's PSRP client), else the inherited one."""
    env = dict(os.environ)
    if psrp_client is not None:
        env["EXFIX_PSRP_CLIENT"] = psrp_client
    command = [sys.executable, __file__, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_exfix_cli(args: Sequence[str], timeout: float) -> dict[str, Any]:
    """``exfix ARGS`` as a subprocess: wall time, CPU and peak RSS of that process (wait4),
    exit code, stdout and the end of stderr. Also bench/fleet_apply.py's."""
    exfix = shutil.which("exfix")
    launcher = [exfix] if exfix else [sys.executable, "-c", "from agent.cli import main; main()"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([*launcher, *args], stdout=out, stderr=err)
        deadline = started + timeout
        while True:  # bounded wait: wait4 with WNOHANG, polled
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024.0,
        "exit_code": os.waitstatus_to_exitcode(status),
        "stdout": stdout,
        "stderr_tail": stderr[-1500:],
    }


def cli_phase(inventory: Path, forks: int, timeout: float) -> dict[str, Any]:
    """``exfix scan`` as a subprocess; CPU and peak RSS of that process from wait4."""
    run = run_exfix_cli(["scan", "-i", str(inventory), "--forks", str(forks), "--format", "json"], timeout)
    text, errtext = run["stdout"], run["stderr_tail"]
    findings: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    try:
        report = json.loads(text)
        for host in report.get("hosts", []):
            if host.get("error"):
                errors[host["host"]] = str(host["error"])
            else:
                findings[host["host"]] = sorted(f["rule"] for f in host.get("findings", []))
    except (ValueError, AttributeError, KeyError, TypeError):
        errors["<cli>"] = f"exit {run['exit_code']}: {errtext[-500:]}"
    return {
        "hosts": len(findings) + len(errors),
        "wall_s": run["wall_s"],
        "cpu_s": run["cpu_s"],
        "peak_rss_mb": run["peak_rss_mb"],
        "exit_code": run["exit_code"],
        "findings": findings,
        "errors": errors,
    }


# -- measuring and reporting ----------------------------------------------------------------

SIDES = {
    "exfix": "exfix scan, in-process",
    # --psrp-client A --psrp-client B: "exfix" runs with A, these with the others.
    "exfix-pypsrp": "  same, PSRP client pypsrp",
    "exfix-psrpcore": "  same, PSRP client psrpcore",
    "cli": "exfix scan, CLI subprocess",
    "peer": "Ansible-like peer",
    "naive": "naive script",
}
METRICS = ("wall_s", "hosts_per_s", "req_per_host", "cpu_ms_per_host", "peak_rss_mb", "lab_cpu_ms_per_host")


def per_host(counts: Mapping[CountKey, int], hosts: int) -> dict[str, float]:
    """Requests per host by "endpoint action" (and "total")."""
    by: collections.Counter[str] = collections.Counter()
    for (_host, endpoint, action), n in counts.items():
        by[f"{endpoint} {action}"] += n
        by["total"] += n
    return {key: n / max(hosts, 1) for key, n in sorted(by.items())}


def diff(after: collections.Counter[CountKey], before: collections.Counter[CountKey]) -> dict[CountKey, int]:
    return {key: n - before.get(key, 0) for key, n in after.items() if n - before.get(key, 0)}


def measure(lab: LabProcess, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One phase, with the lab's request counters and CPU before and after it."""
    before, lab_cpu = lab.counters(), lab.cpu_seconds()
    result = run()
    result["lab_cpu_s"] = lab.cpu_seconds() - lab_cpu
    hosts = max(int(result["hosts"]), 1)
    result["requests"] = per_host(diff(lab.counters(), before), hosts)
    result["hosts_per_s"] = hosts / float(result["wall_s"])
    result["req_per_host"] = result["requests"].get("total", 0.0)
    result["cpu_ms_per_host"] = 1000 * float(result["cpu_s"]) / hosts
    result["lab_cpu_ms_per_host"] = 1000 * float(result["lab_cpu_s"]) / hosts
    result["lab_share"] = float(result["lab_cpu_s"]) / float(result["wall_s"])
    if isinstance(result.get("findings"), dict):  # the CLI's per-host findings: a count is enough
        result["findings"] = sum(len(v) for v in result["findings"].values())
    return result


def summarize(rounds: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per side and metric: median, min and max over the rounds."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for side in SIDES:
        runs = [r[side] for r in rounds if side in r]
        if runs:
            out[side] = {
                m: {
                    "median": statistics.median(float(x[m]) for x in runs),
                    "min": min(float(x[m]) for x in runs),
                    "max": max(float(x[m]) for x in runs),
                }
                for m in (*METRICS, "lab_share")
            }
    return out


def ratios(rounds: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """exfix's hosts/s over each baseline's, within each round, and their median."""
    out: dict[str, Any] = {}
    for other in ("peer", "naive"):
        per_round = [
            float(r["exfix"]["hosts_per_s"]) / float(r[other]["hosts_per_s"])
            for r in rounds
            if "exfix" in r and other in r
        ]
        if per_round:
            out[f"exfix_vs_{other}"] = {"per_round": per_round, "median": statistics.median(per_round)}
    return out


def limit_model(
    n: int,
    forks: int,
    alone: Mapping[str, float],
    kinds: Sequence[str],
    names: Sequence[str],
    summary: Mapping[str, Any],
) -> dict[str, Any]:
    """T >= max(ceil(N/C) x T_host, N x CPU_client / cores), cores net of the lab's share.

    The lab's share is taken at the model's own speed, not at the run's: the lab spends
    CPU_lab per host whatever the wall time, so a scan that ran at the CPU bound would leave the
    client ``cores - N x CPU_lab / T`` cores. Solving ``T = N x CPU_client / (cores - N x
    CPU_lab / T)`` for T gives the bound below: both processes' CPU over the cores they share.
    (The share measured over the run's own wall time, lower the slower the run, made the bound
    too low, and it fell further below the truth the slower exfix was.)"""
    # The fleet's mix of kinds weighs each kind's time alone.
    counts: collections.Counter[str] = collections.Counter()
    for name in names:
        kind = kind_of(name, kinds)
        if kind is not None and kind in alone:
            counts[kind] += 1
    t_host = sum(alone[k] * c for k, c in counts.items()) / max(sum(counts.values()), 1)
    exfix = summary["exfix"]
    cpu_client = exfix["cpu_ms_per_host"]["median"] / 1000
    cpu_lab = exfix["lab_cpu_ms_per_host"]["median"] / 1000
    cpus = os.cpu_count() or 1
    latency_bound = math.ceil(n / forks) * t_host
    cpu_bound = n * (cpu_client + cpu_lab) / cpus
    lab_share = n * cpu_lab / cpu_bound if cpu_bound else 0.0  # cores the lab takes at that speed
    model = max(latency_bound, cpu_bound)
    return {
        "n": n,
        "forks": forks,
        "t_host_s": t_host,
        "cpu_client_s": cpu_client,
        "cpu_lab_s": cpu_lab,
        "cpus": cpus,
        "lab_share_cores": lab_share,
        "lab_share_measured_cores": exfix["lab_share"]["median"],
        "cores": cpus - lab_share,
        "latency_bound_s": latency_bound,
        "cpu_bound_s": cpu_bound,
        # Not in the model, which the issue defines: the lab is one Python process, so it runs on
        # about one CPU whatever the machine has; its CPU alone takes this long on one core.
        "lab_one_core_s": n * cpu_lab,
        "model_s": model,
        "bound": "latency" if latency_bound >= cpu_bound else "cpu",
        "exfix_wall_s": exfix["wall_s"]["median"],
        "ratio": exfix["wall_s"]["median"] / model,
    }


def spread_text(figure: Mapping[str, float], fmt: str) -> str:
    return f"{format(figure['median'], fmt)} ({format(figure['min'], fmt)}-{format(figure['max'], fmt)})"


def table(
    summary: Mapping[str, Any], rounds: Sequence[Mapping[str, Mapping[str, Any]]], n: int
) -> Iterator[str]:
    yield (
        f"{'':<28}{'hosts':>6}{'wall s':>24}{'hosts/s':>20}{'req/host':>9}{'CPU ms/host':>20}"
        f"{'peak RSS MB':>12}{'lab CPU ms/host':>20}"
    )
    for side, label in SIDES.items():
        if side not in summary:
            continue
        s = summary[side]
        hosts = int(rounds[0][side]["hosts"])
        yield (
            f"{label:<28}{hosts:>6}{spread_text(s['wall_s'], '.1f'):>24}"
            f"{spread_text(s['hosts_per_s'], '.2f'):>20}"
            f"{s['req_per_host']['median']:>9.1f}{spread_text(s['cpu_ms_per_host'], '.0f'):>20}"
            f"{s['peak_rss_mb']['median']:>12.0f}{spread_text(s['lab_cpu_ms_per_host'], '.0f'):>20}"
        )
        if side == "naive" and hosts < n:
            hps = s["hosts_per_s"]
            walls = f"{n / hps['median']:.1f} ({n / hps['max']:.1f}-{n / hps['min']:.1f})"
            yield f"{'  extrapolated to N':<28}{n:>6}{walls:>24}{hps['median']:>20.2f}"


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[str]:
    """The change of every summary figure against an earlier run's JSON (this script's, or the
    one-round format before it: ``results.scan``/``results.baseline``)."""
    old_args: Mapping[str, Any] = old.get("args", {})
    if old.get("schema") != SCHEMA:
        results = old.get("results", {})
        summary: dict[str, Any] = {}
        for old_name, side in (("scan", "exfix"), ("cli", "cli"), ("baseline", "naive")):
            r = results.get(old_name)
            if r:
                hosts = max(int(r["hosts"]), 1)
                figures = {
                    "wall_s": r["wall_s"],
                    "hosts_per_s": hosts / r["wall_s"],
                    "cpu_ms_per_host": 1000 * r.get("cpu_s", 0) / hosts,
                    "peak_rss_mb": r.get("peak_rss_mb", 0),
                    "lab_cpu_ms_per_host": 1000 * r.get("lab_cpu_s", 0) / hosts,
                    "req_per_host": old.get("requests_per_host", {}).get(old_name, {}).get("total", 0),
                }
                summary[side] = {m: {"median": v, "min": v, "max": v} for m, v in figures.items()}
        old = {"summary": summary, "ratios": {}, "model": {}}
    then, now = old_args, new.get("args", {})
    setup = ("scenario", "hosts", "rtt_ms", "forks")
    yield "change against the earlier run (median then -> now); setup then: " + ", ".join(
        f"{k} {then.get(k)}" for k in setup
    )
    if any(str(then.get(k)) != str(now.get(k)) for k in setup):
        yield "  (a different setup: compare hosts/s and per-host figures, not wall times)"
    for side, label in SIDES.items():
        if side in old["summary"] and side in new["summary"]:
            for metric in METRICS:
                a, b = old["summary"][side][metric]["median"], new["summary"][side][metric]["median"]
                change = f"{100 * (b - a) / a:+.0f}%" if a else "n/a"
                yield f"  {label:<28}{metric:<22}{a:>10.2f} -> {b:>10.2f}  {change}"
    for name in ("exfix_vs_peer", "exfix_vs_naive"):
        if name in old.get("ratios", {}) and name in new["ratios"]:
            a, b = old["ratios"][name]["median"], new["ratios"][name]["median"]
            yield f"  {name:<50}{a:>10.2f} -> {b:>10.2f}"
    if old.get("model") and new.get("model"):
        a, b = old["model"]["ratio"], new["model"]["ratio"]
        yield f"  {'exfix wall / limit model':<50}{a:>10.2f} -> {b:>10.2f}"


def orchestrate(args: argparse.Namespace) -> int:
    load_before = os.getloadavg()[0]  # other work on the machine slows every phase
    clients = list(dict.fromkeys(args.psrp_client or ()))
    sides = [
        s
        for s in ("exfix", *(f"exfix-{c}" for c in clients[1:]), "cli", "peer", "naive")
        if not (s == "cli" and not args.cli) and not (s in ("peer", "naive") and s in args.skip)
    ]
    with tempfile.TemporaryDirectory(prefix="exfix-bench-") as tmp:
        workdir = Path(tmp)
        calls = workdir / "cmdlets.json"
        print(
            f"starting the lab: {args.scenario}, {args.hosts} hosts, latency_ms={args.rtt_ms:g}",
            file=sys.stderr,
        )
        lab = LabProcess(args.scenario, args.hosts, args.rtt_ms, workdir, args.timeout)
        inv = str(lab.inventory)
        sample = min(args.baseline_sample, args.hosts)
        scan_args = ["--phase", "scan", "--inventory", inv, "--forks", str(args.forks)]
        runs: dict[str, Callable[[], dict[str, Any]]] = {
            "exfix": lambda: run_child(scan_args, args.timeout, clients[0] if clients else None),
            **{
                f"exfix-{client}": functools.partial(run_child, scan_args, args.timeout, client)
                for client in clients[1:]
            },
            "cli": lambda: cli_phase(lab.inventory, args.forks, args.timeout),
            "peer": lambda: run_child(
                [
                    "--phase",
                    "peer",
                    "--inventory",
                    inv,
                    "--calls",
                    str(calls),
                    "--peer-forks",
                    str(args.peer_forks),
                    "--peer-strategy",
                    args.peer_strategy,
                ],
                args.timeout,
            ),
            "naive": lambda: run_child(
                [
                    "--phase",
                    "naive",
                    "--inventory",
                    inv,
                    "--calls",
                    str(calls),
                    "--baseline-sample",
                    str(sample),
                ],
                args.timeout,
            ),
        }
        rounds: list[dict[str, dict[str, Any]]] = []
        try:
            print("recording exfix's cmdlets, one host of each kind ...", file=sys.stderr)
            recorded = run_child(
                ["--phase", "record", "--inventory", inv, "--calls", str(calls)], args.timeout
            )
            if args.save_cmdlets is not None:
                shutil.copyfile(calls, args.save_cmdlets)
            print("timing one host of each kind alone (T_host) ...", file=sys.stderr)
            alone = run_child(["--phase", "alone", "--inventory", inv, "--calls", str(calls)], args.timeout)
            names = list(inventory_hosts(lab.inventory))
            for r in range(args.rounds):
                results: dict[str, dict[str, Any]] = {}
                for side in sides if r % 2 == 0 else reversed(sides):
                    print(f"round {r + 1}/{args.rounds}: {side} ...", file=sys.stderr)
                    results[side] = measure(lab, runs[side])
                rounds.append(results)
        finally:
            lab.stop()

    n = args.hosts
    summary = summarize(rounds)
    ratio = ratios(rounds)
    model = limit_model(n, args.forks, alone["walls"], list(recorded["kinds"]), names, summary)
    lines = [
        f"fleet          {args.scenario}, {n} hosts (lab on 127.0.0.1, one process for every phase)",
        f"RTT            {args.rtt_ms:g} ms injected per WSMan request;"
        " auth round trips and TCP at loopback speed",
        f"sides          exfix forks={args.forks}"
        + (f" (PSRP clients: {', '.join(clients)}; the first is 'exfix')" if clients else "")
        + f"; peer: {args.peer_forks} worker processes, strategy"
        f" {args.peer_strategy}, one RunspacePool per task; naive: sequential, one pool per cmdlet,"
        f" first {sample} hosts",
        "cmdlets        recorded from exfix's collector: "
        + ", ".join(f"{k.split('.')[0]} {v}" for k, v in recorded["kinds"].items()),
        f"machine        {os.cpu_count()} CPUs, load average {load_before:.1f} before,"
        f" {os.getloadavg()[0]:.1f} after; {args.rounds} round(s), order ABC CBA ...;"
        " figures: median (min-max)",
        "",
        *table(summary, rounds, n),
        "",
    ]
    for i, results in enumerate(rounds, 1):
        parts = [f"{side} {results[side]['wall_s']:.1f} s" for side in results]
        rs = [f"{name.replace('_', ' ')} {v['per_round'][i - 1]:.1f}x" for name, v in ratio.items()]
        lines.append(f"round {i:<9}{'; '.join(x for x in (', '.join(parts), ', '.join(rs)) if x)}")
    for name, v in ratio.items():
        lines.append(
            f"{name.replace('_', ' '):<15}{v['median']:.1f}x median (hosts/s within each round;"
            f" {min(v['per_round']):.1f}-{max(v['per_round']):.1f})"
        )
    lines += [
        "",
        f"limit model    T >= max(ceil(N/C) x T_host, N x CPU_client / cores) = max(ceil({n}/{args.forks})"
        f" x {model['t_host_s']:.2f} s, {n} x {1000 * model['cpu_client_s']:.0f} ms / {model['cores']:.2f})",
        f"               = max({model['latency_bound_s']:.1f} s, {model['cpu_bound_s']:.1f} s) ="
        f" {model['model_s']:.1f} s ({model['bound']}-bound); cores = {model['cpus']} CPUs -"
        f" {model['lab_share_cores']:.2f} the lab takes at that speed ({n} x"
        f" {1000 * model['cpu_lab_s']:.0f} ms lab CPU / {model['cpu_bound_s']:.1f} s; over exfix's own"
        f" wall time it used {model['lab_share_measured_cores']:.2f})",
        "               T_host alone: "
        + ", ".join(f"{k.split('.')[0]} {v:.2f} s" for k, v in alone["walls"].items()),
        f"               exfix wall {model['exfix_wall_s']:.1f} s = {model['ratio']:.2f}x the model",
        f"               (not in the model: the lab is one process, on one CPU at most; its own CPU alone"
        f" takes {n} x {1000 * model['cpu_lab_s']:.0f} ms = {model['lab_one_core_s']:.1f} s there)",
        "",
        "requests per host (first round; endpoint http = authentication round trips)",
    ]
    for side in summary:
        table_ = rounds[0][side]["requests"]
        lines.append(
            f"  {SIDES[side]}: "
            + ", ".join(f"{k} {v:.1f}" for k, v in table_.items() if k != "total")
            + f"; total {table_.get('total', 0):.1f}"
        )
    failed = False
    for i, results in enumerate(rounds, 1):
        for side, result in results.items():
            if result.get("tasks_off"):
                lines.append(
                    f"different      round {i} {side}: {result['tasks_off']}/{result['tasks']} tasks did"
                    " not get the recorded output"
                )
            for host, error in list(result["errors"].items())[:3]:
                lines.append(f"error          round {i} {side}: {host}: {error}")
            failed = failed or bool(result["errors"])
    for side in ("peer", "naive"):
        if side in rounds[0]:
            tasks = rounds[0][side]["tasks"]
            lines.append(
                f"same work      {SIDES[side]}: {tasks} tasks per round, each checked against the"
                " recorded count of output objects and errors"
            )
    payload = {
        "schema": SCHEMA,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg()[0]},
        "recorded": recorded,
        "alone": alone,
        "rounds": rounds,
        "summary": summary,
        "ratios": ratio,
        "model": model,
    }
    if args.compare is not None:
        lines.append("")
        lines.extend(compare(json.loads(args.compare.read_text(encoding="utf-8")), payload))
    print("\n".join(lines))
    if args.json is not None:
        args.json.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scenario", default=DEFAULT_SCENARIO)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="round-trip time the lab injects")
    parser.add_argument(
        "--forks", type=int, default=EXFIX_DEFAULT_FORKS, help="exfix's --forks (its default)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every phase")
    parser.add_argument(
        "--psrp-client",
        action="append",
        choices=("pypsrp", "psrpcore"),
        help="exfix's PSRP client (EXFIX_PSRP_CLIENT); repeat to run exfix once per client, interleaved",
    )
    parser.add_argument("--peer-forks", type=int, default=5, help="the peer's worker processes (Ansible: 5)")
    parser.add_argument("--peer-strategy", choices=("linear", "free"), default="linear")
    parser.add_argument(
        "--baseline-sample",
        type=int,
        default=10,
        metavar="K",
        help="time the naive script on K hosts, extrapolate to --hosts",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=("peer", "naive"),
        help="leave a baseline out (repeatable)",
    )
    parser.add_argument("--cli", action="store_true", help="also run `exfix scan` as a subprocess each round")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds any one phase may take")
    parser.add_argument("--json", type=Path, default=None, help="write every figure as JSON here")
    parser.add_argument(
        "--compare", type=Path, default=None, help="print the change against this earlier JSON"
    )
    parser.add_argument("--save-cmdlets", type=Path, default=None, help="keep the recorded cmdlets (JSON)")
    # child modes (this script runs itself)
    parser.add_argument("--serve-lab", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--phase", choices=("scan", "record", "alone", "peer", "naive"), help=argparse.SUPPRESS
    )
    parser.add_argument("--inventory", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.hosts, args.forks, args.baseline_sample, args.rounds, args.peer_forks) < 1:
        parser.error("--hosts, --forks, --rounds, --peer-forks and --baseline-sample must be at least 1")
    if args.compare is not None and not args.compare.is_file():
        parser.error(f"--compare: no such file: {args.compare}")

    if args.serve_lab:
        return serve_lab(args.scenario, args.hosts, args.rtt_ms, args.inventory)
    phases: dict[str, Callable[[], dict[str, Any]]] = {
        "scan": lambda: scan_phase(args.inventory, args.forks),
        "record": lambda: record_phase(args.inventory, args.calls),
        "alone": lambda: alone_phase(args.inventory, args.calls),
        "peer": lambda: peer_phase(args.inventory, args.calls, args.peer_forks, args.peer_strategy),
        "naive": lambda: naive_phase(args.inventory, args.calls, args.baseline_sample),
    }
    if args.phase is not None:
        print(json.dumps(phases[args.phase]()))
        return 0
    try:
        return orchestrate(args)
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        # A phase or the lab failed: one line, not a traceback (the child's stderr tail is in it).
        print(f"fleet_scan: error: {' '.join(str(exc).split())[:2000]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
