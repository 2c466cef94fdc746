"""Fleet scan benchmark: ``exfix scan`` against a naive one-pool-per-cmdlet script, over the lab.

Run:  python bench/fleet_scan.py [--hosts 200] [--rtt-ms 20] [--forks 16] [--baseline-sample 10]
      python bench/fleet_scan.py --hosts 1000 --skip-baseline          # memory at scale

Everything runs on 127.0.0.1, in separate processes so that each number belongs to one side:

* the lab: a child process running ``mock_remoting.lab.Lab(scenario, hosts=N, latency_ms=RTT)``
  (``exfix lab serve`` has no latency option, so this script starts the Lab itself). It answers
  ``counters`` on its stdin with the request counters as one JSON line; EOF stops it.
* ``exfix scan`` in-process: a child process that loads the inventory and calls
  ``agent.scan.scan_fleet(forks=F)``; its CPU (``time.process_time``, all threads) and peak RSS
  (``ru_maxrss``) are the client's alone.
* ``exfix scan`` through the CLI: ``exfix scan -i INVENTORY --forks F --format json`` as a
  subprocess; CPU and peak RSS come from ``os.wait4`` (that process only).
* the naive baseline: a child process that scans the first K hosts one after another, running
  exactly the cmdlets exfix's collector runs (``agent.collect.runner.collect_host`` drives it,
  so the data-dependent probes are the same), but each cmdlet the way a first script would:
  new WSMan connection, open a RunspacePool, ``PowerShell.invoke()``, close the pool. The
  baseline is sequential, so its time for N hosts is K hosts' time times N/K (printed as
  "extrapolated", next to the measured figure).

Round-trip time: the lab's ``latency_ms`` is slept once per WS-Management request (Create,
Command, Receive, Signal, Delete), before the server handles it, so every WSMan request/response
pair takes at least ``latency_ms``: ``--rtt-ms R`` sets ``latency_ms = R``. Authentication round
trips (the 401 challenges and the empty encryption set-up POST), TCP connects and the client's
own DNS probes get no added latency. That favours the baseline (3 NTLM round trips per cmdlet
against 3 per connection for exfix), so the measured ratio is a lower bound; the "auth at RTT"
line estimates what those round trips would add at the same RTT.

Requests are counted by the lab per host, endpoint (exchange, os; "http" for authentication
round trips) and WSMan action; each phase's figure is the difference of the counters before and
after it. Not a test: it prints numbers and asserts nothing. Linux only (ru_maxrss in KiB).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import queue
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

DEFAULT_SCENARIO = "mixed-fleet"
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
            [sys.executable, __file__, "--serve-lab", "--scenario", scenario, "--hosts", str(hosts),
             "--rtt-ms", str(latency_ms), "--inventory", str(self.inventory)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errlog, text=True,
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


# -- the naive baseline ---------------------------------------------------------------------


class NaiveRunner:
    """What a first script does: for every cmdlet, connect, open a pool, invoke, close.

    It implements the collector's Runner protocol, so ``collect_host`` decides which cmdlets
    run (and in which order), exactly as for exfix.
    """

    def __init__(self, target: Any, credential: Any) -> None:
        self.target = target
        self.credential = credential

    def invoke(self, call: Any, *, timeout: float | None = None) -> Any:
        from pypsrp.powershell import PowerShell, RunspacePool
        from pypsrp.wsman import WSMan

        from agent.model.command import Endpoint, Switch
        from agent.transport.base import CommandResult
        from agent.transport.clixml import from_pypsrp
        from agent.transport.psrp import CONFIGURATIONS, _error

        config = self.target.exchange if call.endpoint is Endpoint.EXCHANGE else self.target.os
        https = config.scheme.value == "https"
        wsman = WSMan(
            config.host, port=config.port, path=config.path, ssl=https, auth=config.auth.value,
            username=self.credential.username,
            password=self.credential.password.reveal() if self.credential.password else None,
            cert_validation=self.target.cert_validation.requests_verify,
            encryption="never" if config.auth.value == "basic" and not https else "auto",
            no_proxy=True, read_timeout=60, connection_timeout=10,
        )
        with wsman, RunspacePool(wsman, configuration_name=CONFIGURATIONS[call.endpoint]) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet(call.cmdlet)
            for name, value in call.parameters:
                wire = list(value) if isinstance(value, tuple) else value
                ps.add_parameter(name, True if isinstance(value, Switch) else wire)
            output = ps.invoke()
        objects = tuple(obj for value in output for obj in from_pypsrp(value))
        return CommandResult(objects, tuple(_error(record) for record in ps.streams.error))

    def run(self, call: Any, *, timeout: float | None = None) -> Any:
        from agent.errors import CmdletError

        result = self.invoke(call, timeout=timeout)
        if result.errors:
            first = result.errors[0]
            raise CmdletError(self.target.name, call.cmdlet, first.message,
                              first.fully_qualified_error_id, first.category)
        return result.objects


def baseline_phase(inventory: Path, sample: int) -> dict[str, Any]:
    """Child mode: the naive script over the first ``sample`` hosts, one after another."""
    from agent.collect.runner import DEFAULT_PUBLIC_NAME, CollectOptions, collect_host
    from agent.evaluate import evaluate
    from agent.inventory import load_inventory

    inv = load_inventory(inventory)
    targets = inv.select(None)[:sample]
    credentials = inv.credentials()
    rss_ready = current_rss_mb()
    findings: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    cpu, started = time.process_time(), time.perf_counter()
    for target in targets:
        # A plain script asks one thing after another: no endpoint beside the other.
        options = CollectOptions(public_name=target.probe_public_name or DEFAULT_PUBLIC_NAME,
                                 dns_address_map=target.dns_address_map, parallel_endpoints=False)
        try:
            facts = collect_host(NaiveRunner(target, credentials.resolve(target)), target.name, options)
            findings[target.name] = sorted(f.rule_id for f in evaluate(facts))
        except Exception as exc:  # one host's failure is recorded, like exfix does
            errors[target.name] = f"{type(exc).__name__}: {exc}"
    return phase_result(len(targets), started, cpu, rss_ready, findings, errors)


# -- exfix scan -----------------------------------------------------------------------------


def scan_phase(inventory: Path, forks: int) -> dict[str, Any]:
    """Child mode: ``agent.scan.scan_fleet`` over every host of the inventory."""
    from agent.inventory import load_inventory
    from agent.scan import scan_fleet

    inv = load_inventory(inventory)
    targets = inv.select(None)
    credentials = inv.credentials()
    rss_ready = current_rss_mb()
    cpu, started = time.process_time(), time.perf_counter()
    report = scan_fleet(targets, credentials, source=str(inventory), forks=forks)
    findings = {h.host: sorted(f.rule_id for f in h.findings) for h in report.hosts if h.error is None}
    errors = {h.host: f"{h.status.value}: {h.error}" for h in report.hosts if h.error is not None}
    return phase_result(len(targets), started, cpu, rss_ready, findings, errors)


def phase_result(hosts: int, started: float, cpu: float, rss_ready: float,
                 findings: dict[str, list[str]], errors: dict[str, str]) -> dict[str, Any]:
    return {
        "hosts": hosts,
        "wall_s": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu,
        "rss_ready_mb": rss_ready,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "findings": findings,
        "errors": errors,
    }


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def run_child(args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run this script in a child mode; its last stdout line is the JSON result."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def cli_phase(inventory: Path, forks: int, timeout: float) -> dict[str, Any]:
    """``exfix scan`` as a subprocess; CPU and peak RSS of that process from wait4."""
    exfix = shutil.which("exfix")
    launcher = [exfix] if exfix else [sys.executable, "-c", "from agent.cli import main; main()"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([*launcher, "scan", "-i", str(inventory), "--forks", str(forks),
                                 "--format", "json"], stdout=out, stderr=err)
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
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errtext = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
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
        errors["<cli>"] = f"exit {proc.returncode}: {errtext[-500:]}"
    return {
        "hosts": len(findings) + len(errors),
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024.0,
        "exit_code": proc.returncode,
        "findings": findings,
        "errors": errors,
    }


# -- reporting ------------------------------------------------------------------------------


def per_host(counts: Mapping[CountKey, int], hosts: int) -> dict[str, float]:
    """Requests per host by "endpoint action" (and "total")."""
    by: collections.Counter[str] = collections.Counter()
    for (_host, endpoint, action), n in counts.items():
        by[f"{endpoint} {action}"] += n
        by["total"] += n
    return {key: n / max(hosts, 1) for key, n in sorted(by.items())}


def diff(after: collections.Counter[CountKey], before: collections.Counter[CountKey]) -> dict[CountKey, int]:
    return {key: n - before.get(key, 0) for key, n in after.items() if n - before.get(key, 0)}


def auth_requests(counts: Mapping[CountKey, int]) -> int:
    return sum(n for (_h, endpoint, _a), n in counts.items() if endpoint == "http")


def spread(counts: Mapping[CountKey, int]) -> tuple[int, int]:
    """The fewest and most requests any one host took."""
    totals: collections.Counter[str] = collections.Counter()
    for (host, _e, _a), n in counts.items():
        totals[host] += n
    return (min(totals.values()), max(totals.values())) if totals else (0, 0)


def row(label: str, result: Mapping[str, Any], requests: Mapping[CountKey, int] | None) -> str:
    hosts = max(int(result["hosts"]), 1)
    wall = float(result["wall_s"])
    req = f"{sum(requests.values()) / hosts:9.1f}" if requests is not None else f"{'-':>9}"
    cpu = f"{1000 * float(result['cpu_s']) / hosts:10.1f}" if "cpu_s" in result else f"{'-':>10}"
    rss = f"{float(result['peak_rss_mb']):8.0f}" if "peak_rss_mb" in result else f"{'-':>8}"
    lab = f"{1000 * float(result['lab_cpu_s']) / hosts:10.1f}" if "lab_cpu_s" in result else f"{'-':>10}"
    return f"{label:<44}{hosts:>6}{wall:>10.2f}{hosts / wall:>9.2f}{req}{cpu}{rss}{lab}"


def breakdown(title: str, table: Mapping[str, float]) -> Iterator[str]:
    yield f"  {title}"
    for key, value in table.items():
        if key != "total":
            yield f"    {key:<22}{value:8.2f}"
    yield f"    {'total':<22}{table.get('total', 0.0):8.2f}"


def orchestrate(args: argparse.Namespace) -> int:
    load_before = os.getloadavg()[0]  # other work on the machine slows every phase
    with tempfile.TemporaryDirectory(prefix="exfix-bench-") as tmp:
        workdir = Path(tmp)
        print(f"starting the lab: {args.scenario}, {args.hosts} hosts, latency_ms={args.rtt_ms:g}",
              file=sys.stderr)
        lab = LabProcess(args.scenario, args.hosts, args.rtt_ms, workdir, args.timeout)
        results: dict[str, dict[str, Any]] = {}
        requests: dict[str, dict[CountKey, int]] = {}
        try:
            inventory = lab.inventory
            phases: list[tuple[str, Any]] = [
                ("scan", lambda: run_child(["--phase", "scan", "--inventory", str(inventory),
                                            "--forks", str(args.forks)], args.timeout)),
            ]
            if not args.skip_cli:
                phases.append(("cli", lambda: cli_phase(inventory, args.forks, args.timeout)))
            if not args.skip_baseline:
                sample = min(args.baseline_sample, args.hosts)
                phases.append(("baseline", lambda: run_child(
                    ["--phase", "baseline", "--inventory", str(inventory), "--baseline-sample", str(sample)],
                    args.timeout)))
            for name, run in phases:
                print(f"running {name} ...", file=sys.stderr)
                before, lab_cpu = lab.counters(), lab.cpu_seconds()
                results[name] = run()
                results[name]["lab_cpu_s"] = lab.cpu_seconds() - lab_cpu
                requests[name] = diff(lab.counters(), before)
        finally:
            lab.stop()

    scan = results["scan"]
    n = args.hosts
    lines = [
        f"fleet          {args.scenario}, {n} hosts (lab on 127.0.0.1, separate process)",
        f"RTT            {args.rtt_ms:g} ms injected per WSMan request (lab latency_ms={args.rtt_ms:g});"
        " auth round trips and TCP connects at loopback speed",
        f"exfix          forks={args.forks}; machine: {os.cpu_count()} CPUs, load average"
        f" {load_before:.1f} before the run, {os.getloadavg()[0]:.1f} after",
        "columns        req/host: HTTP requests the lab answered per host; CPU ms/h and RSS MB: the"
        " client process's CPU per host and peak RSS; lab CPU: the lab process's CPU ms per host",
        "",
        f"{'':<44}{'hosts':>6}{'wall s':>10}{'hosts/s':>9}{'req/host':>9}{'CPU ms/h':>10}{'RSS MB':>8}"
        f"{'lab CPU':>10}",
        row("exfix scan, in-process (scan_fleet)", scan, requests["scan"]),
    ]
    if "cli" in results:
        lines.append(row("exfix scan, CLI subprocess", results["cli"], requests["cli"]))
    if "baseline" in results:
        base = results["baseline"]
        k = int(base["hosts"])
        lines.append(row(f"naive baseline, MEASURED on {k} hosts", base, requests["baseline"]))
        projected = float(base["wall_s"]) * n / max(k, 1)
        lines.append(f"{f'naive baseline, EXTRAPOLATED to {n} hosts':<44}{n:>6}{projected:>10.2f}"
                     f"{n / projected:>9.2f}")
        lines.append("")
        lines.append(f"speed-up       {projected / float(scan['wall_s']):.1f}x  (baseline extrapolated to {n}"
                     f" hosts / exfix scan in-process)")
        if "cli" in results:
            lines.append(f"               {projected / float(results['cli']['wall_s']):.1f}x  (against the"
                         " CLI run)")
        if args.rtt_ms > 0:
            # What the loopback-speed auth round trips would add at the same RTT (sequential for
            # the baseline; per host on the critical path, hosts/forks in a row, for exfix).
            base_auth = auth_requests(requests["baseline"]) / max(k, 1) * n * args.rtt_ms / 1000
            scan_auth = auth_requests(requests["scan"]) / n * (n / args.forks) * args.rtt_ms / 1000
            lines.append(f"auth at RTT    estimate if each auth round trip also cost {args.rtt_ms:g} ms:"
                         f" baseline +{base_auth:.1f} s, exfix +{scan_auth:.1f} s ->"
                         f" {(projected + base_auth) / (float(scan['wall_s']) + scan_auth):.1f}x")
        same = [h for h in base["findings"] if base["findings"][h] == scan["findings"].get(h)]
        lines.append(f"same work      findings identical on {len(same)}/{len(base['findings'])}"
                     " sampled hosts")
    lines.append("")
    lines.append("requests per host (lab counters; endpoint http = authentication round trips)")
    lo, hi = spread(requests["scan"])
    lines.extend(breakdown(f"exfix scan (per host: min {lo}, max {hi})", per_host(requests["scan"], n)))
    if "baseline" in results:
        lo, hi = spread(requests["baseline"])
        lines.extend(breakdown(f"naive baseline (per host: min {lo}, max {hi})",
                               per_host(requests["baseline"], int(results["baseline"]["hosts"]))))
    lines.append("")
    lines.append(f"client memory  exfix scan peak RSS {scan['peak_rss_mb']:.0f} MB"
                 f" (after imports, before the scan: {scan['rss_ready_mb']:.0f} MB)")
    for name, result in results.items():
        for host, error in list(result["errors"].items())[:5]:
            lines.append(f"error          {name}: {host}: {error}")
        if result["errors"]:
            lines.append(f"errors         {name}: {len(result['errors'])} host(s) not scanned")
    print("\n".join(lines))
    if args.json is not None:
        payload = {
            "args": vars(args) | {"json": str(args.json)},
            "results": {k: {x: y for x, y in v.items() if x != "findings"} for k, v in results.items()},
            "requests_per_host": {k: per_host(v, int(results[k]["hosts"])) for k, v in requests.items()},
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return 1 if any(r["errors"] for r in results.values()) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scenario", default=DEFAULT_SCENARIO)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="round-trip time the lab injects")
    parser.add_argument("--forks", type=int, default=16)
    parser.add_argument("--baseline-sample", type=int, default=10, metavar="K",
                        help="time the naive baseline on K hosts, extrapolate to --hosts")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-cli", action="store_true", help="only the in-process exfix scan")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds any one phase may take")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    # child modes (this script runs itself)
    parser.add_argument("--serve-lab", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=("scan", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--inventory", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hosts < 1 or args.forks < 1 or args.baseline_sample < 1:
        parser.error("--hosts, --forks and --baseline-sample must be at least 1")

    if args.serve_lab:
        return serve_lab(args.scenario, args.hosts, args.rtt_ms, args.inventory)
    if args.phase == "scan":
        print(json.dumps(scan_phase(args.inventory, args.forks)))
        return 0
    if args.phase == "baseline":
        print(json.dumps(baseline_phase(args.inventory, args.baseline_sample)))
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
