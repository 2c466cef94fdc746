"""Lab throughput: how many WSMan requests per second one lab process serves, and at what CPU cost.

Run:  python bench/lab_throughput.py [--scenario NAME] [--hosts 200] [--clients 16] [--auth basic|ntlm]
                                     [--rounds 1] [--no-cache] [--bind single|per-host]

What it does: starts ``exfix lab serve --scenario NAME --hosts N`` as a subprocess, reads its
``ready <inventory>`` line and the inventory, then drives every host with unmodified pypsrp
from a bounded pool of client threads: open a runspace pool on the Exchange endpoint, run a
few cmdlets, close it. Everything stays on 127.0.0.1.

How it measures (and why this way):

* Server CPU is the lab process's own ``utime + stime`` from ``/proc/<pid>/stat`` (all of its
  threads: the event loop and the invocation pool), read just before and just after the drive
  phase. The clients run in this process, so their CPU is not counted; on a small machine they
  do compete with the server for cores, which lowers requests/s but not CPU per request.
* Requests are counted by the server (the ``total requests`` line of the counters it prints at
  shutdown). That count includes authentication round trips (NTLM costs two per connection),
  so CPU per request is per HTTP request the server answered. Only the drive phase produces
  traffic, so the total is the drive phase's.
* requests/s is that count divided by the wall time of the drive phase.
* ``--rounds R`` drives every host R times (a scan, then plan and apply re-collecting the same
  answers); ``--no-cache`` starts the lab with ``--no-answer-cache``, so the two runs are an
  A/B of the lab's cache of serialized answers (mock_remoting/server/clixml_cache.py).

Linux only (/proc). Not a test: it prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

# What a per-host scan asks the Exchange endpoint (one host's server object, its queues, the
# organisation's send connectors), so the output size stays per host and not fleet-wide.
CMDLETS = ("Get-ExchangeServer -Identity", "Get-Queue", "Get-SendConnector")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the ")" of the command name: state is field 3, utime 14 and stime 15 (1-based).
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def drive_host(name: str, host_vars: dict[str, Any], all_vars: dict[str, Any]) -> int:
    auth = all_vars["ansible_psrp_auth"]
    https = host_vars["exfix_exchange_protocol"] == "https"
    wsman = WSMan(
        host_vars["ansible_host"],
        port=int(host_vars["exfix_exchange_port"]),
        path=host_vars["exfix_exchange_path"],
        ssl=https,
        auth=auth,
        encryption="never" if auth == "basic" and not https else "auto",
        username=all_vars["ansible_user"],
        password=all_vars["ansible_password"],
        cert_validation=False,
        read_timeout=60,
        connection_timeout=10,
    )
    objects = 0
    with wsman, RunspacePool(wsman, configuration_name="Microsoft.Exchange") as pool:
        for cmdlet in CMDLETS:
            ps = PowerShell(pool)
            if cmdlet.endswith(" -Identity"):
                ps.add_cmdlet(cmdlet.split()[0]).add_parameter("Identity", name.split(".")[0])
            else:
                ps.add_cmdlet(cmdlet)
            objects += len(ps.invoke())
    return objects


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="mixed-fleet")
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16, help="client threads (bounded)")
    parser.add_argument("--auth", choices=("basic", "ntlm"), default="ntlm")
    parser.add_argument("--rounds", type=int, default=1, help="drive every host this many times")
    parser.add_argument("--no-cache", action="store_true", help="lab without its answer cache")
    parser.add_argument("--bind", choices=("single", "per-host"), default="single")
    args = parser.parse_args()

    exfix = shutil.which("exfix")
    launcher = [exfix] if exfix else [sys.executable, "-c", "from agent.cli import main; main()"]
    command = [
        *launcher,
        "lab",
        "serve",
        "--scenario",
        args.scenario,
        "--hosts",
        str(args.hosts),
        "--auth",
        args.auth,
        # Only what differs from the defaults, so that the script also drives an older lab.
        *(["--bind", args.bind] if args.bind != "single" else []),
        *(["--no-answer-cache"] if args.no_cache else []),
    ]
    lab = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr_lines: list[str] = []
    reader = threading.Thread(target=lambda: stderr_lines.extend(lab.stderr or []), daemon=True)
    reader.start()
    try:
        assert lab.stdout is not None
        line = lab.stdout.readline().strip()
        if not line.startswith("ready "):
            lab.wait(10)
            reader.join(5)
            print(f"lab did not start: {line!r} {''.join(stderr_lines).strip()}", file=sys.stderr)
            return 1
        inventory = yaml.safe_load(Path(line.split(" ", 1)[1]).read_text())
        all_vars = inventory["all"]["vars"]
        hosts = inventory["all"]["children"]["exchange"]["hosts"]

        cpu_before = cpu_seconds(lab.pid)
        started = time.perf_counter()
        errors: list[str] = []
        objects = 0
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            futures = [
                (pool.submit(drive_host, name, {**all_vars, **hv}, all_vars), name)
                for _ in range(args.rounds)
                for name, hv in hosts.items()
            ]
            for future, name in futures:
                try:
                    objects += future.result(timeout=300)
                except Exception as exc:
                    errors.append(f"{name}: {type(exc).__name__}: {exc}")
        wall = time.perf_counter() - started
        cpu = cpu_seconds(lab.pid) - cpu_before
    finally:
        lab.send_signal(signal.SIGINT)
        lab.wait(30)
        reader.join(10)

    total = next((int(x.split()[-1]) for x in stderr_lines if x.startswith("total requests")), 0)
    print(f"hosts                 {len(hosts)}")
    print(f"client threads        {args.clients}")
    print(f"auth                  {args.auth}")
    print(f"answer cache          {'off' if args.no_cache else 'on'}")
    print(f"sessions              {len(hosts) * args.rounds} ({args.rounds} x {len(hosts)} hosts: open, "
          f"{len(CMDLETS)} cmdlets, close)")
    print(f"objects returned      {objects}")
    print(f"errors                {len(errors)}")
    for error in errors[:5]:
        print(f"  {error}")
    print(f"requests (server)     {total}")
    print(f"wall time             {wall:.2f} s")
    print(f"requests/s            {total / wall:.0f}")
    print(f"server CPU            {cpu:.2f} s")
    print(f"server CPU / request  {1000 * cpu / max(total, 1):.2f} ms")
    sessions = max(len(hosts) * args.rounds, 1)
    print(f"server CPU / session  {1000 * cpu / sessions:.1f} ms (one host's open, cmdlets and close)")
    print(f"lab exit code         {lab.returncode}")
    return 0 if not errors and lab.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
