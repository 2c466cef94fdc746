"""Fleet apply benchmark: ``exfix apply`` of a whole fleet's plan against a scan of the same fleet.

Run:  python bench/fleet_apply.py [--hosts 200] [--rtt-ms 20] [--rounds 2] [--forks 16] [--serial 1]
                                  [--via apply|playbook] [--json FILE]

Each round starts a fresh lab (apply changes the hosts, and the next round must meet the same
faults), then runs, as subprocesses of the installed CLI, one after the other on that lab:

1. ``exfix scan -i INVENTORY --forks F --format json``;
2. ``exfix plan -i INVENTORY --out DIR --forks F --format json`` (its digest is read from
   plan.json);
3. ``exfix apply DIR/plan.json --approve DIGEST --allow-restart --forks F --serial S
   --format json``: locks, the stale check (every planned host collected again), the steps
   with the restarts rolling (``--serial``, DAG members and the last server of a site never
   together), each host verified by its queues, unlocks.

It prints per phase the wall time, client CPU per host (``os.wait4``'s rusage) and the lab's
CPU per host, then ``apply / scan``: the apply's wall time over the scan's, within each round,
median and spread. The apply's own time is split by its journal: locking, the stale check,
the hosts (steps and verification), unlocking.

With ``--via playbook`` the plan and the apply are those of a playbook that applies (the
shipped ``dns-451-remediate``, approval required, ``serial: 1``), as a ticket workflow runs it:

2. ``exfix playbook run dns-451-remediate -i INVENTORY --out DIR --forks F --format json``:
   scan, plan, stop for approval (its digest is read from the run's JSON);
3. the same with ``--approve DIGEST``: the hosts held (their change markers taken), scanned,
   planned and applied under the hold, so that apply's stale check takes the facts of that scan
   instead of collecting every planned host again (agent/apply/hold.py); then the playbook's
   scan after the apply. The journal's parts are then the hold, the scan and plan under it,
   the stale check, the hosts and the unlock; what is left of the wall time is start-up and the
   scan after the apply.

The scan necessarily runs before the apply in a round (the apply fixes what the scan finds),
so a load change inside a round can favour one side; several rounds and the spread show how
much. The lab is the one of bench/fleet_scan.py (``latency_ms`` per WSMan request). Not a test:
it prints numbers and asserts nothing. Linux only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fleet_scan import DEFAULT_SCENARIO, LabProcess, run_exfix_cli

SCHEMA = "exfix-bench-fleet-apply/1"
PLAYBOOK = "dns-451-remediate"
PHASES = ("scan", "plan", "apply")
# The journal's phases, in the order an apply runs them; each part lasts from the end of the one
# before it (the run's start for the first) to its own last record.
JOURNAL_PARTS = {
    "lock": ("lock",),
    "stale check": ("stale-check",),
    "hosts": ("before", "execute", "verify", "queues", "host", "organization", "manual"),
    "unlock": ("unlock",),
}


# A playbook's apply under its hold: the markers first, then the scan and plan (until apply's
# start), then as above.
PLAYBOOK_PARTS = {
    "hold": ("hold", "lock"),
    "scan, plan": ("start",),
    "stale check": ("stale-check",),
    "hosts": JOURNAL_PARTS["hosts"],
    "unlock": ("unlock",),
}


def journal_parts(journal: Path, parts_of: Mapping[str, tuple[str, ...]] = JOURNAL_PARTS) -> dict[str, float]:
    """Seconds each part of the apply took (``parts_of``), read from the journal's times."""
    rows = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        return {}
    t0 = datetime.datetime.fromisoformat(rows[0]["time"])
    last: dict[str, float] = {}
    for row in rows:
        at = (datetime.datetime.fromisoformat(row["time"]) - t0).total_seconds()
        for part, phases in parts_of.items():
            if row["phase"] in phases:
                last[part] = at
    parts: dict[str, float] = {}
    previous = 0.0
    for part in parts_of:
        if part in last:
            parts[part] = max(0.0, last[part] - previous)
            previous = last[part]
    return parts


def one_round(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    lab = LabProcess(args.scenario, args.hosts, args.rtt_ms, workdir, args.timeout)
    inv = str(lab.inventory)
    forks = ["--forks", str(args.forks)]
    out: dict[str, Any] = {}
    try:
        plan_dir = workdir / "plan"
        commands = {
            "scan": ["scan", "-i", inv, *forks, "--format", "json"],
            "plan": ["plan", "-i", inv, "--out", str(plan_dir), *forks, "--format", "json"],
        }
        playbook = ["playbook", "run", PLAYBOOK, "-i", inv, "--out", str(plan_dir), *forks]
        playbook += ["--format", "json"]
        if args.via == "playbook":
            commands["plan"] = playbook
        for phase in PHASES:
            if phase == "apply" and args.via == "playbook":
                digest = json.loads(out["plan"]["stdout"])["digest"]
                commands["apply"] = [*playbook, "--approve", digest]
            elif phase == "apply":
                digest = json.loads((plan_dir / "plan.json").read_text(encoding="utf-8"))["digest"]
                commands["apply"] = [
                    "apply", str(plan_dir / "plan.json"), "--approve", digest, "--allow-restart",
                    *forks, "--serial", str(args.serial), "--verify-timeout", str(args.verify_timeout),
                    "--format", "json",
                ]  # fmt: skip
            print(f"  {phase} ...", file=sys.stderr)
            lab_cpu = lab.cpu_seconds()
            result = run_exfix_cli(commands[phase], args.timeout)
            result["lab_cpu_s"] = lab.cpu_seconds() - lab_cpu
            out[phase] = result
        report = json.loads(out["apply"]["stdout"] or "{}")
        hosts = report.get("hosts", [])
        out["apply"]["outcomes"] = sorted({str(h.get("outcome")) for h in hosts})
        if args.via == "playbook":
            out["apply"]["parts"] = journal_parts(plan_dir / "journal.jsonl", PLAYBOOK_PARTS)
            out["apply"]["verified"] = sum(1 for h in hosts if h.get("outcome") == "remediated")
            out["apply"]["restarts"] = sum(
                1 for h in hosts for a in h.get("actions", [])
                if a.get("kind") == "restart-transport" and a.get("status") == "applied"
            )  # fmt: skip
        else:
            out["apply"]["parts"] = journal_parts(plan_dir / "journal.jsonl")
            out["apply"]["verified"] = sum(1 for h in hosts if h.get("verified") is True)
            out["apply"]["restarts"] = sum(
                1 for h in hosts for s in h.get("steps", []) if s.get("kind") == "restart-transport"
            )
        scanned = json.loads(out["scan"]["stdout"])["hosts"]
        out["scan"]["findings"] = sum(len(h.get("findings", [])) for h in scanned)
    finally:
        lab.stop()
    for result in out.values():
        result.pop("stdout", None)
    return out


def median_spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(rounds: Sequence[Mapping[str, Any]], hosts: int) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for phase in PHASES:
        runs = [r[phase] for r in rounds]
        summary[phase] = {
            "wall_s": median_spread([r["wall_s"] for r in runs]),
            "cpu_ms_per_host": median_spread([1000 * r["cpu_s"] / hosts for r in runs]),
            "lab_cpu_ms_per_host": median_spread([1000 * r["lab_cpu_s"] / hosts for r in runs]),
            "peak_rss_mb": median_spread([r["peak_rss_mb"] for r in runs]),
        }
    summary["apply_vs_scan"] = median_spread([r["apply"]["wall_s"] / r["scan"]["wall_s"] for r in rounds])
    parts = {p for r in rounds for p in r["apply"]["parts"]}
    summary["apply_parts_s"] = {
        p: median_spread([r["apply"]["parts"].get(p, 0.0) for r in rounds])
        for p in (PLAYBOOK_PARTS if "hold" in parts else JOURNAL_PARTS)
        if p in parts
    }
    return summary


def text(args: argparse.Namespace, rounds: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    def fig(value: Mapping[str, float], fmt: str) -> str:
        return f"{value['median']:{fmt}} ({value['min']:{fmt}}-{value['max']:{fmt}})"

    lines = [
        f"fleet          {args.scenario}, {args.hosts} hosts, RTT {args.rtt_ms:g} ms per WSMan request;"
        f" forks {args.forks}, serial {args.serial}; {args.rounds} round(s), a fresh lab each",
        "plan, apply    "
        + ("exfix plan, exfix apply" if args.via == "apply" else f"exfix playbook run {PLAYBOOK}"),
        f"machine        {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end;"
        " figures: median (min-max)",
        "",
        f"{'phase':<8}{'wall s':>22}{'client CPU ms/host':>24}{'lab CPU ms/host':>22}{'peak RSS MB':>20}",
    ]
    for phase in PHASES:
        s = summary[phase]
        lines.append(
            f"{phase:<8}{fig(s['wall_s'], '.1f'):>22}{fig(s['cpu_ms_per_host'], '.0f'):>24}"
            f"{fig(s['lab_cpu_ms_per_host'], '.0f'):>22}{fig(s['peak_rss_mb'], '.0f'):>20}"
        )
    lines += [
        "",
        f"apply / scan   {fig(summary['apply_vs_scan'], '.2f')} (wall time, within each round)",
        "apply's time   "
        + ", ".join(f"{part} {fig(v, '.1f')} s" for part, v in summary["apply_parts_s"].items())
        + " (from the journal's times, one after the other)",
    ]
    if args.via == "playbook":
        rest = median_spread([r["apply"]["wall_s"] - sum(r["apply"]["parts"].values()) for r in rounds])
        lines.append(f"               the rest (start-up, the scan after the apply) {fig(rest, '.1f')} s")
    for i, r in enumerate(rounds, 1):
        a = r["apply"]
        lines.append(
            f"round {i:<9}scan {r['scan']['wall_s']:.1f} s ({r['scan']['findings']} findings, exit"
            f" {r['scan']['exit_code']}), plan {r['plan']['wall_s']:.1f} s, apply {a['wall_s']:.1f} s"
            f" (exit {a['exit_code']}, outcomes {', '.join(a['outcomes'])}, {a['verified']} verified,"
            f" {a['restarts']} restarts)"
        )
        if a["exit_code"] != 0:
            lines.append(f"               apply stderr: {' '.join(a['stderr_tail'].split())[-400:]}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scenario", default=DEFAULT_SCENARIO)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="round-trip time the lab injects")
    parser.add_argument("--forks", type=int, default=16, help="exfix's --forks, for every phase")
    parser.add_argument("--serial", type=int, default=1, help="exfix apply --serial")
    parser.add_argument("--verify-timeout", type=float, default=120.0, help="exfix apply --verify-timeout")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds any one phase may take")
    parser.add_argument("--via", choices=("apply", "playbook"), default="apply",
                        help=f"plan and apply with exfix plan and apply, or with the playbook {PLAYBOOK}")
    parser.add_argument("--json", type=Path, default=None, help="write every figure as JSON here")
    args = parser.parse_args(argv)
    if min(args.hosts, args.forks, args.serial, args.rounds) < 1:
        parser.error("--hosts, --forks, --serial and --rounds must be at least 1")
    if args.via == "playbook" and args.serial != 1:
        parser.error(f"--serial is the playbook's own with --via playbook ({PLAYBOOK}: serial 1)")
    rounds = []
    try:
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}: a fresh lab, {args.hosts} hosts ...", file=sys.stderr)
            with tempfile.TemporaryDirectory(prefix="exfix-bench-apply-") as tmp:
                rounds.append(one_round(args, Path(tmp)))
    except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as exc:
        print(f"fleet_apply: error: {' '.join(str(exc).split())[:2000]}", file=sys.stderr)
        return 2
    summary = summarize(rounds, args.hosts)
    print(text(args, rounds, summary))
    if args.json is not None:
        payload = {"schema": SCHEMA, "args": {k: str(v) for k, v in vars(args).items()},
                   "rounds": rounds, "summary": summary}  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0 if all(r["apply"]["exit_code"] == 0 for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
