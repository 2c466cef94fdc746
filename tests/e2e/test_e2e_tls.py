"""HTTPS as a user meets it: ``exfix lab serve --https --tls-ca-out``, a chain of the user's own
CA (``--tls-cert``), validation failures in ``exfix scan``, and the one warning a run with
validation off prints.

The CA in ``test_a_chain_from_the_users_own_ca`` is made here with ``cryptography``, not by the
lab, so the lab's serving of a given chain is tested against a PKI it had no part in.
"""

from __future__ import annotations

import datetime
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from e2e.conftest import run_exfix
from mock_remoting.lab import Lab

pytestmark = pytest.mark.lab

WARNING = "TLS certificate validation is off"


def _exfix(*args: str) -> list[str]:
    return [sys.executable, "-c", "from agent.cli import main; main()", *args]


def _hosts(inventory: dict[str, Any]) -> dict[str, Any]:
    hosts = inventory["all"]["children"]["exchange"]["hosts"]
    assert isinstance(hosts, dict)
    return hosts


def test_serve_https_with_the_ca_out_validates_every_host_by_name(tmp_path: Path) -> None:
    inventory_path = tmp_path / "inventory.yaml"
    ca_path = tmp_path / "ca.pem"
    process = subprocess.Popen(
        _exfix(
            "lab",
            "serve",
            "--scenario",
            "healthy",
            "--https",
            "--tls-ca-out",
            str(ca_path),
            "--inventory-out",
            str(inventory_path),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == f"ready {inventory_path}\n"
        inventory = yaml.safe_load(inventory_path.read_text(encoding="utf-8"))
        variables = inventory["all"]["vars"]
        assert variables["ansible_psrp_ca_cert"] == str(ca_path.resolve())
        assert "ansible_psrp_cert_validation" not in variables  # Ansible's default: validate
        assert (
            x509.load_pem_x509_certificate(ca_path.read_bytes())
            .extensions.get_extension_for_class(x509.BasicConstraints)
            .value.ca
        )
        for name, host in _hosts(inventory).items():
            assert host["ansible_host"] == "127.0.0.1" and host["exfix_tls_server_name"] == name
        scan = subprocess.run(
            _exfix("scan", "-i", str(inventory_path), "--format", "json"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert scan.returncode == 0, scan.stderr + scan.stdout[:2000]
        assert WARNING not in scan.stderr
    finally:
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err


def test_a_wrong_name_and_an_unknown_ca_are_exit_3_with_one_line(tmp_path: Path) -> None:
    with Lab("healthy", https=True) as running:
        ca = running.write_ca(tmp_path / "ca.pem")
        inventory = running.inventory(ca)
        first, second = list(_hosts(inventory))
        _hosts(inventory)[second]["exfix_tls_server_name"] = "ex09.contoso.local"
        path = tmp_path / "inventory.yaml"
        path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
        run = run_exfix("scan", "-i", str(path), "--format", "json")
        assert run.exit_code == 3, run.describe()
        errors = {h["host"]: h["error"] for h in run.doc["hosts"]}
        assert errors[first] is None
        assert "\n" not in errors[second]
        assert "certificate is not issued to 'ex09.contoso.local'" in errors[second]

        del inventory["all"]["vars"]["ansible_psrp_ca_cert"]  # the system's CAs only
        path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
        run = run_exfix("scan", "-i", str(path), "--limit", first, "--format", "json")
        assert run.exit_code == 3, run.describe()
        assert "not signed by a CA exfix trusts" in run.doc["hosts"][0]["error"]


def test_a_credssp_scan_over_validated_https(tmp_path: Path) -> None:
    with Lab("healthy", auth="credssp", https=True) as running:
        path = running.write_inventory(tmp_path / "inventory.yaml", running.write_ca(tmp_path / "ca.pem"))
        variables = yaml.safe_load(path.read_text(encoding="utf-8"))["all"]["vars"]
        assert variables["ansible_psrp_auth"] == variables["exfix_exchange_auth"] == "credssp"
        run = run_exfix("scan", "-i", str(path), "--format", "json")
        assert run.exit_code == 0, run.describe()
        assert [h["status"] for h in run.doc["hosts"]] == ["scanned", "scanned"]
        wrong = path.read_text(encoding="utf-8").replace(variables["ansible_password"], "not-the-password")
        path.write_text(wrong, encoding="utf-8")
        run = run_exfix("scan", "-i", str(path), "--format", "json")
        assert run.exit_code == 3, run.describe()
        for host in run.doc["hosts"]:
            assert (
                "refused user 'exfix-lab' (credssp)" in host["error"]
                and "SEC_E_LOGON_DENIED" in host["error"]
            )


def test_validation_off_warns_once_per_run_not_per_host(tmp_path: Path) -> None:
    # A process of its own: its stderr is the one a user sees (pytest captures log records).
    with Lab("healthy", hosts=20, https=True) as running:
        path = running.write_inventory(tmp_path / "inventory.yaml")
        run = subprocess.run(
            _exfix("scan", "-i", str(path), "--format", "json"), capture_output=True, text=True, timeout=300
        )
    assert run.returncode == 0, run.stderr + run.stdout[:2000]
    assert len(json.loads(run.stdout)["hosts"]) == 20  # the JSON document stays clean
    assert run.stderr.count(WARNING) == 1, run.stderr
    (line,) = [line for line in run.stderr.splitlines() if WARNING in line]
    assert line.startswith("warning: TLS certificate validation is off for 20 host(s)")


def _own_ca_chain(tmp_path: Path, names: list[str]) -> tuple[Path, Path, Path]:
    """A CA and one leaf certificate for ``names``, written as ca.pem, chain.pem, key.pem."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Contoso test issuing CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_path, chain_path, key_path = tmp_path / "ca.pem", tmp_path / "chain.pem", tmp_path / "key.pem"
    ca_path.write_bytes(ca.public_bytes(pem))
    chain_path.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    key_path.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_path, chain_path, key_path


def test_a_chain_from_the_users_own_ca(tmp_path: Path) -> None:
    """One wildcard-free certificate for both hosts' names, as a user might make for a test."""
    ca, chain, key = _own_ca_chain(tmp_path, ["ex01.contoso.local", "ex02.contoso.local"])
    with Lab("healthy", https=True, tls_cert=chain, tls_key=key) as running:
        inventory = running.inventory()
        assert "ansible_psrp_cert_validation" not in inventory["all"]["vars"]
        inventory["all"]["vars"]["ansible_psrp_ca_cert"] = str(ca)
        path = tmp_path / "inventory.yaml"
        path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
        run = run_exfix("scan", "-i", str(path), "--format", "json")
        assert run.exit_code == 0, run.describe()
        with pytest.raises(Exception, match="did not sign"):
            running.write_ca(tmp_path / "lab-ca.pem")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-ca-out", "ca.pem"], "--tls-ca-out needs --https"),
        (["--auth", "credssp"], "--auth credssp needs --https"),
        (["--https", "--tls-cert", "chain.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-cert", "chain.pem", "--tls-key", "key.pem"], "--tls-cert needs --https"),
        (["--https", "--tls-cert", "missing.pem", "--tls-key", "key.pem"], "cannot read"),
        (["--https", "--tls-cert", "key.pem", "--tls-key", "key.pem"], "no PEM certificate"),
        (["--https", "--tls-cert", "chain.pem", "--tls-key", "other-key.pem"], "is not the unencrypted key"),
    ],
)
def test_bad_tls_options_are_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    _own_ca_chain(tmp_path, ["ex01.contoso.local"])
    other = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "other-key.pem").write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    monkeypatch.chdir(tmp_path)
    run = run_exfix("lab", "serve", "--scenario", "healthy", *args)
    assert run.exit_code == 1, run.describe()
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("exfix: error: ") and message in lines[0], run.stderr
