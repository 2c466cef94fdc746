"""Kerberos end to end: a real MIT KDC on 127.0.0.1 (tests/support/kdc.py), the lab accepting
tickets with its keytab, and exfix authenticating with the user's ticket cache.

exfix connects to 127.0.0.1 while the ticket is for the inventory name (``HTTP/ex01.contoso.local``),
through ``ansible_psrp_negotiate_hostname_override``, as it would through a load balancer or an
alias. Every failure is one line, exit 3, and never a retry storm: the lab's request counters
say how many requests each host saw.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.conftest import run_exfix
from mock_remoting.lab import Lab

HOSTS = ("ex01.contoso.local", "ex02.contoso.local")
# An authentication failure costs a host its first request (the 401 challenge) and at most one
# handshake request; the OS endpoint is not tried after the Exchange endpoint refused.
MAX_REQUESTS_ON_AUTH_FAILURE = 3


def _inventory(lab: Lab, path: Path, host_vars: dict[str, dict[str, Any]] | None = None) -> Path:
    """The lab's inventory on disk, with some hosts' variables changed."""
    data = lab.inventory()
    for host, changes in (host_vars or {}).items():
        data["all"]["children"]["exchange"]["hosts"][host].update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def kerberos_lab(kerberos_realm: Any) -> Iterator[Lab]:
    with Lab("healthy", auth="kerberos", keytab=kerberos_realm.service_keytab) as lab:
        yield lab


def _auth(lab: Lab) -> dict[tuple[str, str, str], int]:
    assert lab.server is not None
    return {(k.host, k.endpoint, k.action): n for k, n in lab.server.authentications}


def _exfix_subprocess(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "exfix"
    command = (
        [str(script)] if script.is_file() else [sys.executable, "-c", "from agent.cli import main; main()"]
    )
    return subprocess.run(
        command + args, env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_kdc_listens_on_loopback_only(kerberos_realm: Any) -> None:
    bound = kerberos_realm.kdc_listening()
    assert bound, "the KDC has no socket on its port"
    assert all(address.startswith("127.0.0.1:") for address in bound), bound
    conf = kerberos_realm.krb5_conf.read_text(encoding="utf-8")
    assert f"kdc = 127.0.0.1:{kerberos_realm.port}" in conf
    assert "dns_canonicalize_hostname = false" in conf


@pytest.mark.parametrize("auth", ["kerberos", "negotiate"])
def test_scan_with_the_kinit_ticket_over_http_sealed(kerberos_realm: Any, tmp_path: Path, auth: str) -> None:
    """The user's ticket cache (kinit with a password) is the credential: the inventory has no
    password. Over http every message is sealed with the Kerberos session keys."""
    with Lab("healthy", auth=auth, keytab=kerberos_realm.service_keytab) as lab:
        inventory = _inventory(lab, tmp_path / "inventory.yaml")
        written = yaml.safe_load(inventory.read_text(encoding="utf-8"))
        assert "ansible_password" not in written["all"]["vars"]
        run = run_exfix("scan", "-i", str(inventory), "--format", "json", env=kerberos_realm.client_env())
        assert run.exit_code == 0, run.describe()
        assert {h["host"]: h["status"] for h in run.doc["hosts"]} == dict.fromkeys(HOSTS, "scanned")
        seen = _auth(lab)
        for host in HOSTS:
            assert seen.get((host, "auth", "kerberos"), 0) >= 1, seen
            assert seen.get((host, "client", "user@CONTOSO.LOCAL"), 0) >= 1, seen
            assert seen.get((host, "sealed", "kerberos"), 0) > 0, seen
            assert (host, "auth", "ntlm") not in seen, seen
            # The inventory name, not 127.0.0.1; HTTP for /PowerShell (IIS), WSMAN for /wsman
            # (Ansible's psrp default), never pypsrp's unset "host".
            spns = {(k[1], k[2]) for k in seen if k[0] == host and k[1].startswith("spn-")}
            assert spns == {
                ("spn-exchange", f"HTTP/{host}@CONTOSO.LOCAL"),
                ("spn-wsman", f"WSMAN/{host}@CONTOSO.LOCAL"),
            }, spns


def test_scan_with_kerberos_over_https(kerberos_realm: Any, tmp_path: Path) -> None:
    """Over TLS the ticket carries the channel binding and messages are not sealed again."""
    with Lab("healthy", auth="kerberos", https=True, keytab=kerberos_realm.service_keytab) as lab:
        inventory = _inventory(lab, tmp_path / "inventory.yaml")
        run = run_exfix("scan", "-i", str(inventory), "--format", "json", env=kerberos_realm.client_env())
        assert run.exit_code == 0, run.describe()
        seen = _auth(lab)
        for host in HOSTS:
            assert seen.get((host, "auth", "kerberos"), 0) >= 1, seen
            assert (host, "sealed", "kerberos") not in seen, seen


def test_scan_as_a_service_account_from_its_keytab(
    kerberos_realm: Any, kerberos_lab: Lab, tmp_path: Path
) -> None:
    """No kinit at all: MIT's GSSAPI gets the initial ticket from the client keytab
    (KRB5_CLIENT_KTNAME), as a scheduled job running as a service account does."""
    from support.kdc import KEYTAB_USER

    inventory = _inventory(kerberos_lab, tmp_path / "inventory.yaml")
    env = kerberos_realm.client_env(
        tmp_path / "empty-ccache", KRB5_CLIENT_KTNAME=str(kerberos_realm.client_keytab)
    )
    run = run_exfix("scan", "-i", str(inventory), "--format", "json", env=env)
    assert run.exit_code == 0, run.describe()
    seen = _auth(kerberos_lab)
    for host in HOSTS:
        assert seen.get((host, "client", KEYTAB_USER), 0) >= 1, seen
        assert (host, "client", "user@CONTOSO.LOCAL") not in seen, seen


def test_an_expired_ticket_is_one_line_exit_3_and_no_retry_storm(
    kerberos_realm: Any, kerberos_lab: Lab, tmp_path: Path
) -> None:
    ccache = tmp_path / "expired"
    kerberos_realm.kinit(ccache, lifetime="1s")
    inventory = _inventory(kerberos_lab, tmp_path / "inventory.yaml")
    time.sleep(2.1)  # the ticket's end time passes (kinit -l 1s)
    before = {host: kerberos_lab.counters.get(host) for host in HOSTS}
    run = run_exfix("scan", "-i", str(inventory), "--format", "json", env=kerberos_realm.client_env(ccache))
    assert run.exit_code == 3, run.describe()
    for host in run.doc["hosts"]:
        assert host["status"] == "auth-failed", host
        assert "\n" not in host["error"]
        assert "Ticket expired" in host["error"] and "run kinit again" in host["error"], host["error"]
    for host in HOSTS:
        assert kerberos_lab.counters.get(host) - before[host] <= MAX_REQUESTS_ON_AUTH_FAILURE
    assert not any(key[2] == "kerberos" for key in _auth(kerberos_lab))

    text = run_exfix("scan", "-i", str(inventory), env=kerberos_realm.client_env(ccache))
    assert text.exit_code == 3
    assert "Traceback" not in text.stdout + text.stderr
    lines = [line for line in (text.stdout + text.stderr).splitlines() if "Ticket expired" in line]
    assert len(lines) == len(HOSTS), text.describe()


def test_no_ticket_at_all_says_run_kinit(kerberos_realm: Any, kerberos_lab: Lab, tmp_path: Path) -> None:
    inventory = _inventory(kerberos_lab, tmp_path / "inventory.yaml")
    missing = tmp_path / "no-such-ccache"
    run = run_exfix("scan", "-i", str(inventory), "--format", "json", env=kerberos_realm.client_env(missing))
    assert run.exit_code == 3, run.describe()
    for host in run.doc["hosts"]:
        assert host["status"] == "auth-failed"
        assert "run kinit" in host["error"], host["error"]
        assert str(missing) not in host["error"]  # where the cache is stays out of reports


def test_a_ticket_for_another_hosts_spn_is_refused_by_the_host(
    kerberos_realm: Any, kerberos_lab: Lab, tmp_path: Path
) -> None:
    """ex01 is asked with a ticket for HTTP/ex02 (a real principal, in the lab's keytab): the
    lab refuses it as ex01 would, and exfix names the SPN it asked for."""
    inventory = _inventory(
        kerberos_lab,
        tmp_path / "inventory.yaml",
        {"ex01.contoso.local": {"ansible_psrp_negotiate_hostname_override": "ex02.contoso.local"}},
    )
    before = kerberos_lab.counters.get("ex01.contoso.local")
    run = run_exfix("scan", "-i", str(inventory), "--format", "json", env=kerberos_realm.client_env())
    assert run.exit_code == 3, run.describe()
    hosts = {h["host"]: h for h in run.doc["hosts"]}
    assert hosts["ex02.contoso.local"]["status"] == "scanned"
    ex01 = hosts["ex01.contoso.local"]
    assert ex01["status"] == "auth-failed", ex01
    assert "HTTP 401" in ex01["error"] and "HTTP/ex02.contoso.local" in ex01["error"], ex01["error"]
    assert "setspn -L" in ex01["error"]
    assert _auth(kerberos_lab).get(("ex01.contoso.local", "auth", "refused-wrong-principal"), 0) >= 1
    assert kerberos_lab.counters.get("ex01.contoso.local") - before <= MAX_REQUESTS_ON_AUTH_FAILURE


def test_an_spn_the_kdc_does_not_know(kerberos_realm: Any, kerberos_lab: Lab, tmp_path: Path) -> None:
    inventory = _inventory(
        kerberos_lab,
        tmp_path / "inventory.yaml",
        {"ex01.contoso.local": {"ansible_psrp_negotiate_hostname_override": "mail.contoso.local"}},
    )
    run = run_exfix("scan", "-i", str(inventory), "--format", "json", env=kerberos_realm.client_env())
    assert run.exit_code == 3, run.describe()
    ex01 = next(h for h in run.doc["hosts"] if h["host"] == "ex01.contoso.local")
    assert ex01["status"] == "auth-failed"
    assert "HTTP/mail.contoso.local@CONTOSO.LOCAL not found in Kerberos database" in ex01["error"]
    assert "ansible_psrp_negotiate_hostname_override" in ex01["error"]


def _faketime(kerberos_realm: Any, offset: str) -> dict[str, str]:
    from support.kdc import faketime_library

    library = faketime_library()
    if library is None:
        if os.environ.get("EXFIX_REQUIRE_KERBEROS"):
            pytest.fail("libfaketime is not installed (Debian: libfaketime); .ci/run installs it")
        pytest.skip(
            "libfaketime is not installed (Debian: libfaketime): no way to run a client with a wrong clock"
        )
    return {"LD_PRELOAD": library, "FAKETIME": offset, "FAKETIME_DONT_RESET": "1"}


def test_clock_skew_beyond_the_realms_limit_at_the_kdc(
    kerberos_realm: Any, kerberos_lab: Lab, tmp_path: Path
) -> None:
    """exfix runs with its clock an hour ahead (libfaketime), beyond the realm's clockskew of 300s:
    the KDC refuses the ticket request for HTTP/ex01 and exfix says to synchronize the clock."""
    from support.kdc import CLOCKSKEW_SECONDS

    assert f"clockskew = {CLOCKSKEW_SECONDS}" in kerberos_realm.krb5_conf.read_text(encoding="utf-8")
    ccache = tmp_path / "fresh"
    kerberos_realm.kinit(ccache)  # a TGT only: the service ticket is asked for under the wrong clock
    inventory = _inventory(kerberos_lab, tmp_path / "inventory.yaml")
    before = kerberos_lab.counters.total()
    env = {**kerberos_realm.client_env(ccache), **_faketime(kerberos_realm, "+1h")}
    result = _exfix_subprocess(["scan", "-i", str(inventory), "--format", "json"], env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for host in json.loads(result.stdout)["hosts"]:
        assert host["status"] == "auth-failed", host
        assert "Clock skew too great" in host["error"] and "synchronize the clock" in host["error"]
    assert kerberos_lab.counters.total() - before <= MAX_REQUESTS_ON_AUTH_FAILURE * len(HOSTS)


def test_clock_skew_beyond_the_limit_at_the_server(
    kerberos_realm: Any, kerberos_lab: Lab, tmp_path: Path
) -> None:
    """With the service tickets already in the cache, the skewed authenticator reaches the
    lab, whose acceptor refuses it (KRB_AP_ERR_SKEW): exit 3, and the message names the clock."""
    ccache = tmp_path / "warm"
    kerberos_realm.kinit(ccache)
    inventory = _inventory(kerberos_lab, tmp_path / "inventory.yaml")
    warm = run_exfix("scan", "-i", str(inventory), "--format", "json", env=kerberos_realm.client_env(ccache))
    assert warm.exit_code == 0, warm.describe()
    env = {**kerberos_realm.client_env(ccache), **_faketime(kerberos_realm, "+1h")}
    result = _exfix_subprocess(["scan", "-i", str(inventory), "--format", "json"], env)
    assert result.returncode == 3, result.stdout + result.stderr
    for host in json.loads(result.stdout)["hosts"]:
        assert host["status"] == "auth-failed", host
        assert "clocks agree" in host["error"], host["error"]
    refused = {k: n for k, n in _auth(kerberos_lab).items() if k[2] == "refused-handshake"}
    assert set(refused) == {(host, "auth", "refused-handshake") for host in HOSTS}


def _ticket_secrets(ccache: Path) -> list[bytes]:
    """Every ticket and session key in a cache (pykrb5), as the byte strings to look for."""
    import krb5  # optional: installed with pyspnego[kerberos]

    context = krb5.init_context()
    cache = krb5.cc_resolve(context, f"FILE:{ccache}".encode())
    secrets: list[bytes] = []
    for cred in cache:
        for value in (bytes(cred.ticket), bytes(cred.keyblock.data)):
            if len(value) >= 16:
                secrets.append(value)
    assert secrets, "the cache holds no ticket"
    return secrets


def _forms(secret: bytes) -> list[bytes]:
    """A secret as it could appear in text: raw, base64 (of a middle slice, so alignment does
    not matter), hex."""
    middle = secret[len(secret) // 4 : len(secret) // 4 + 12]
    return [middle, base64.b64encode(middle)[:12], middle.hex().encode(), middle.hex().upper().encode()]


def test_the_ticket_cache_is_never_copied_or_logged(kerberos_realm: Any, tmp_path: Path) -> None:
    """Scan, plan and apply as a user would (subprocesses, Kerberos only): no output, report,
    saved facts, plan bundle, journal or temporary file holds a ticket, a session key, a copy of
    the cache or its location."""
    ccache = tmp_path / "user-ccache"
    kerberos_realm.kinit(ccache)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    env = {**kerberos_realm.client_env(ccache), "TMPDIR": str(scratch)}
    outputs: list[str] = []
    with Lab("edge-config-malformed", auth="kerberos", keytab=kerberos_realm.service_keytab) as lab:
        inventory = _inventory(lab, work / "inventory.yaml")
        scanned = _exfix_subprocess(
            ["scan", "-i", str(inventory), "--format", "json", "--save-facts", str(work / "facts.json")], env
        )
        assert scanned.returncode == 2, scanned.stdout + scanned.stderr
        planned = _exfix_subprocess(
            ["plan", "-i", str(inventory), "--out", str(work / "plan"), "--format", "json"], env
        )
        assert planned.returncode == 2, planned.stdout + planned.stderr
        digest = json.loads(planned.stdout)["digest"]
        applied = _exfix_subprocess(
            ["apply", str(work / "plan" / "plan.json"), "--approve", digest, "--verify-timeout", "5"], env
        )
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert _auth(lab).get(("ex02.contoso.local", "auth", "kerberos"), 0) >= 1
        outputs += [r.stdout + r.stderr for r in (scanned, planned, applied)]
    secrets = _ticket_secrets(ccache)  # the service tickets exfix got are in it now
    files = [path for root in (work, scratch) for path in root.rglob("*") if path.is_file()]
    assert any(path.name == "journal.jsonl" for path in files), files
    blobs = [text.encode() for text in outputs] + [path.read_bytes() for path in files if path != inventory]
    cache_bytes = ccache.read_bytes()
    for blob in blobs:
        assert str(ccache).encode() not in blob
        # FILE ccache format 4 starts 05 04 (MIT "ccache file format")
        assert not blob.startswith(b"\x05\x04"), "a copy of a ticket cache"
        assert cache_bytes[-64:] not in blob
        for secret in secrets:
            for form in _forms(secret):
                assert form not in blob
    assert not [path for path in scratch.rglob("*") if re.match(r"krb5cc", path.name)]


def test_lab_serve_with_kerberos_then_exfix_scan(kerberos_realm: Any, tmp_path: Path) -> None:
    """The two commands a user runs, as subprocesses: `exfix lab serve --auth kerberos
    --keytab K` (its acceptor finds no keytab in the environment: only the option), then
    `exfix scan` with the user's kinit'd cache."""
    inventory = tmp_path / "inventory.yaml"
    serve_env = {**os.environ, **kerberos_realm.client_env()}
    serve_env.pop("KRB5_KTNAME", None)
    script = Path(sys.executable).parent / "exfix"
    command = (
        [str(script)] if script.is_file() else [sys.executable, "-c", "from agent.cli import main; main()"]
    )
    server = subprocess.Popen(
        [*command, "lab", "serve", "--scenario", "healthy", "--auth", "kerberos",
         "--keytab", str(kerberos_realm.service_keytab), "--inventory-out", str(inventory)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=serve_env,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        ready = server.stdout.readline()
        assert ready.startswith("ready "), ready + (server.stderr.read() if server.poll() is not None else "")
        written = yaml.safe_load(inventory.read_text(encoding="utf-8"))
        hosts = written["all"]["children"]["exchange"]["hosts"]
        assert written["all"]["vars"]["ansible_psrp_auth"] == "kerberos"
        assert all(v["ansible_psrp_negotiate_hostname_override"] == name for name, v in hosts.items())
        scanned = _exfix_subprocess(
            ["scan", "-i", str(inventory), "--format", "json"], kerberos_realm.client_env()
        )
        assert scanned.returncode == 0, scanned.stdout + scanned.stderr
        assert {h["status"] for h in json.loads(scanned.stdout)["hosts"]} == {"scanned"}
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, counters = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()
            raise
    assert "ex01.contoso.local exchange Create" in counters


def test_lab_serve_refuses_a_keytab_without_a_hosts_key(kerberos_realm: Any, tmp_path: Path) -> None:
    """mixed-fleet has hosts the realm's keytab holds no key for: one line, exit 1, before
    anything listens. And a Kerberos lab without any keytab is refused the same way."""
    env = {k: v for k, v in kerberos_realm.client_env().items()}
    lacking = _exfix_subprocess(
        [
            "lab",
            "serve",
            "--scenario",
            "mixed-fleet",
            "--auth",
            "kerberos",
            "--keytab",
            str(kerberos_realm.service_keytab),
        ],
        env,
    )
    assert lacking.returncode == 1, lacking.stdout + lacking.stderr
    assert "holds no key for HTTP/" in lacking.stderr and "Traceback" not in lacking.stderr
    assert len(lacking.stderr.strip().splitlines()) == 1, lacking.stderr
    none = _exfix_subprocess(
        ["lab", "serve", "--scenario", "healthy", "--auth", "kerberos"], {**env, "KRB5_KTNAME": ""}
    )
    assert none.returncode == 1
    assert "needs a keytab" in none.stderr and "Traceback" not in none.stderr


def test_ntlm_still_works_on_a_lab_that_accepts_kerberos(kerberos_realm: Any, tmp_path: Path) -> None:
    """The keytab adds Kerberos; NTLM clients (the lab's password inventory) are served as before,
    sealed with the NTLM session keys."""
    with Lab("healthy", auth="ntlm", keytab=kerberos_realm.service_keytab) as lab:
        inventory = _inventory(lab, tmp_path / "inventory.yaml")
        run = run_exfix("scan", "-i", str(inventory), "--format", "json", env=kerberos_realm.client_env())
        assert run.exit_code == 0, run.describe()
        seen = _auth(lab)
        for host in HOSTS:
            assert seen.get((host, "auth", "ntlm"), 0) >= 1, seen
            assert seen.get((host, "sealed", "ntlm"), 0) > 0, seen
            assert (host, "auth", "kerberos") not in seen, seen
