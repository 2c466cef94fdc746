"""``exfix lab``: run the lab (emulated Exchange hosts on 127.0.0.1)."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

import click


@click.group()
def lab() -> None:
    """Run the lab: emulated Exchange hosts on 127.0.0.1."""


@lab.command("serve")
@click.option(
    "--scenario",
    "scenario",
    required=True,
    metavar="NAME_OR_PATH",
    help="A shipped scenario name (mock_remoting/scenarios) or a scenario file.",
)
@click.option(
    "--inventory-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the inventory (default: a temporary file, removed at shutdown).",
)
@click.option(
    "--hosts",
    type=click.IntRange(min=1),
    default=None,
    help="Serve an N-host fleet cloned from the scenario's hosts.",
)
@click.option("--auth", type=click.Choice(["ntlm", "basic"]), default="ntlm", show_default=True)
@click.option(
    "--https", is_flag=True, help="Also listen with TLS (self-signed) and point the inventory at it."
)
@click.option(
    "--account",
    type=click.Choice(["full", "scan", "remediate"]),
    default=None,
    help="The lab user's rights: an administrator (full), or only the least-privilege roles "
    "`exfix rbac` writes for scanning or remediating. Default: $EXFIX_LAB_ACCOUNT, else full.",
)
def serve(
    scenario: str, inventory_out: Path | None, hosts: int | None, auth: str, https: bool, account: str | None
) -> None:
    """Serve a scenario until interrupted (SIGINT/SIGTERM).

    Prints one line, ``ready <inventory path>``, on stdout once every host listens; prints the
    request counters on stderr at shutdown.
    """
    from mock_remoting.lab import Lab  # lazy: the lab (psrpcore, TLS, DNS) loads only when it runs

    # ScenarioError / UsageError -> one line, exit 1
    instance = Lab(scenario, hosts=hosts, auth=auth, https=https, account=account)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    temporary: Path | None = None
    try:
        instance.start()
        if inventory_out is None:
            handle, name = tempfile.mkstemp(prefix="exfix-lab-", suffix=".yaml")
            os.close(handle)
            temporary = inventory_out = Path(name)
        path = instance.write_inventory(inventory_out)
        click.echo(f"ready {path}")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        server = instance.server
        instance.stop()
        if server is not None:
            click.echo(server.counters.render(), err=True)
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
