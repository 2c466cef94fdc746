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

from agent.errors import UsageError


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
@click.option(
    "--keytab",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Accept Kerberos tickets for HTTP/<host fqdn> with the keys in this keytab "
    "(default with --auth kerberos/negotiate: KRB5_KTNAME).",
)
@click.option(
    "--realm",
    default=None,
    metavar="REALM",
    help="The Kerberos realm of the keytab's principals (default: the scenario's AD domain, in capitals).",
)
@click.option(
    "--auth",
    type=click.Choice(["ntlm", "basic", "credssp", "kerberos", "negotiate"]),
    default="ntlm",
    show_default=True,
    help="What the inventory asks for (the lab accepts them all; credssp needs --https; "
    "kerberos/negotiate need --keytab (or KRB5_KTNAME) and a ticket cache on the client side: kinit).",
)
@click.option(
    "--https",
    is_flag=True,
    help="Also listen with TLS, each host with a certificate for its name from a CA the lab makes, "
    "and point the inventory at it.",
)
@click.option(
    "--tls-ca-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --https: write the lab's CA certificate here; the inventory then trusts it "
    "(ansible_psrp_ca_cert) and validates every host by its name. Without it, validation is off.",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --https: serve this PEM certificate chain (leaf first) on every host instead; "
    "the inventory validates it against the system's CAs.",
)
@click.option(
    "--tls-key", type=click.Path(dir_okay=False, path_type=Path), default=None, help="The --tls-cert key."
)
@click.option(
    "--bind",
    type=click.Choice(["single", "per-host"]),
    default="single",
    show_default=True,
    help="single: every host on 127.0.0.1, free ports. per-host: each host on its own loopback "
    "address (--addresses) on the real ports, /PowerShell on 80/443 and /wsman on 5985/5986.",
)
@click.option(
    "--addresses",
    default="127.20.0.0/16",
    show_default=True,
    metavar="CIDR",
    help="With --bind per-host: the loopback network the hosts' addresses are taken from, in order.",
)
@click.option(
    "--ports",
    type=click.Choice(["auto", "real", "shared"]),
    default="auto",
    show_default=True,
    help="With --bind per-host: real = 80/443 and 5985/5986 (two sockets per host); shared = both "
    "endpoints on 5985/5986 (one socket per host); auto = real when ports below 1024 may be bound "
    "and the file descriptors suffice, else shared (the reason goes to stderr).",
)
@click.option(
    "--no-answer-cache",
    is_flag=True,
    help="Serialize every answer anew instead of reusing the CLIXML of unchanged ones (for "
    "benchmarks: bench/lab_throughput.py --no-cache).",
)
@click.option(
    "--account",
    type=click.Choice(["full", "scan", "remediate"]),
    default=None,
    help="The lab user's rights: an administrator (full), or only the least-privilege roles "
    "`exfix rbac` writes for scanning or remediating. Default: $EXFIX_LAB_ACCOUNT, else full.",
)
def serve(
    scenario: str,
    inventory_out: Path | None,
    hosts: int | None,
    auth: str,
    https: bool,
    tls_ca_out: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    bind: str,
    addresses: str,
    ports: str,
    no_answer_cache: bool,
    keytab: Path | None,
    realm: str | None,
    account: str | None,
) -> None:
    """Serve a scenario until interrupted (SIGINT/SIGTERM).

    Prints one line, ``ready <inventory path>``, on stdout once every host listens; prints the
    request counters on stderr at shutdown.
    """
    from mock_remoting.lab import Lab  # lazy: the lab (psrpcore, TLS, DNS) loads only when it runs

    if tls_ca_out is not None and not https:
        raise UsageError("--tls-ca-out needs --https")
    if tls_ca_out is not None and tls_cert is not None:
        raise UsageError(
            "--tls-ca-out writes the CA the lab signs with; with --tls-cert the lab signs nothing"
        )
    # ScenarioError, a bad --tls-cert or --addresses, a keytab without a host's key, no gssapi:
    # one line, exit 1
    instance = Lab(scenario, hosts=hosts, auth=auth, https=https, tls_cert=tls_cert, tls_key=tls_key,
                   keytab=keytab, realm=realm, account=account, bind=bind, addresses=addresses,
                   ports=ports, cache_answers=not no_answer_cache)  # fmt: skip
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    temporary: Path | None = None
    try:
        instance.start()
        for note in instance.notes:
            click.echo(f"exfix lab: {note}", err=True)
        if inventory_out is None:
            handle, name = tempfile.mkstemp(prefix="exfix-lab-", suffix=".yaml")
            os.close(handle)
            temporary = inventory_out = Path(name)
        ca = instance.write_ca(tls_ca_out) if tls_ca_out is not None else None
        path = instance.write_inventory(inventory_out, ca)
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
