"""The differential tests' side of Ansible: the oracle process, and the connection settings
ansible-core's answers mean, in the same shape as exfix's :class:`HostTarget` gives them.

Nothing here knows what a given inventory should resolve to: the expected values are computed
from what ansible-core answered (``tests/support/ansible_oracle.py``), with only the mapping
from pywinrm's transport names and argument names to exfix's words written here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from agent.model.target import HostTarget

ORACLE = Path(__file__).with_name("ansible_oracle.py")


def ansible_python() -> str | None:
    """A Python with ansible-core importable (this one, in exfix's test extras), else None."""
    try:
        import ansible  # noqa: F401  (only to see whether it is there; used by the oracle process)
    except ImportError:
        return None
    return sys.executable


def ansible_inventory_cli() -> str | None:
    beside = Path(sys.executable).parent / "ansible-inventory"
    return str(beside) if beside.exists() else shutil.which("ansible-inventory")


class Oracle:
    """One long-lived oracle process: a request costs milliseconds, not Ansible's start-up."""

    def __init__(self, python: str) -> None:
        self._process = subprocess.Popen(
            [python, str(ORACLE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._lock = threading.Lock()

    def ask(self, source: Path | str, cwd: Path, limits: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        request = {"source": str(source), "cwd": str(cwd), "limits": list(limits)}
        with self._lock:
            assert self._process.stdin is not None and self._process.stdout is not None
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the ansible oracle process ended")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=30)


# pywinrm's transport names -> the authentication they are (pywinrm 0.5 winrm/transport.py).
_PYWINRM_AUTH = {
    "basic": "basic", "plaintext": "basic", "ssl": "basic", "ntlm": "ntlm", "kerberos": "kerberos",
    "credssp": "credssp", "certificate": "certificate",
}  # fmt: skip


def _proxy(value: Any) -> tuple[Any, bool]:
    # pywinrm: "legacy_requests" = the environment's proxy; None = none at all.
    if value == "legacy_requests":
        return None, False
    if value is None:
        return None, True
    return value, False


def expected_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """What ansible-core's plugin would connect with, in :func:`exfix_settings`' shape."""
    if settings["connection"] == "psrp":
        k = settings["kwargs"]
        scheme = "https" if k["ssl"] else "http"
        host = f"[{k['server']}]" if ":" in k["server"] else k["server"]
        return {
            "url": f"{scheme}://{host}:{k['port']}/{k['path'].strip('/')}",
            "auth": k["auth"],
            "user": k["username"],
            "password": k["password"],
            "verify": k["cert_validation"],
            "timeouts": (
                float(k["connection_timeout"]),
                float(k["read_timeout"]),
                int(k["operation_timeout"]),
            ),
            "configuration_name": k["configuration_name"],
            "message_encryption": k["encryption"],
            "proxy": (k["proxy"], bool(k["no_proxy"])),
            "negotiate_service": k["negotiate_service"],
            "negotiate_hostname_override": k["negotiate_hostname_override"],
            "negotiate_delegate": bool(k["negotiate_delegate"]),
            "send_cbt": k["negotiate_send_cbt"],
            "max_envelope_size": k["max_envelope_size"],
            "credssp": (
                k["credssp_auth_mechanism"],
                k["credssp_disable_tlsv1_2"],
                k["credssp_minimum_version"],
            ),
            "certificates": (k["certificate_pem"], k["certificate_key_pem"]),
        }
    k = settings["kwargs"]
    host = f"[{settings['host']}]" if ":" in settings["host"] else settings["host"]
    transports = settings["transport"]
    auth = _PYWINRM_AUTH[transports[0]]
    if transports[0] == "ssl" and (k["cert_pem"] or k["cert_key_pem"]):
        auth = "certificate"
    if k["server_cert_validation"] == "ignore":
        verify: Any = False
    elif k["ca_trust_path"] not in (None, "legacy_requests"):
        verify = k["ca_trust_path"]
    else:
        verify = True
    read, operation = int(k["read_timeout_sec"]), int(k["operation_timeout_sec"])
    return {
        "url": f"{settings['scheme']}://{host}:{settings['port']}/{settings['path'].strip('/')}",
        "auth": auth,
        "user": k["username"],
        "password": k["password"],
        "verify": verify,
        "timeouts": (float(read), float(read), operation),
        "message_encryption": k["message_encryption"],
        "proxy": _proxy(k["proxy"]),
        "negotiate_service": k["service"],
        "negotiate_hostname_override": k["kerberos_hostname_override"],
        "negotiate_delegate": bool(k["kerberos_delegation"]),
        "send_cbt": k["send_cbt"],
        "certificates": (k["cert_pem"], k["cert_key_pem"]),
    }


def exfix_settings(target: HostTarget, password: str | None) -> dict[str, Any]:
    """exfix's resolved OS endpoint, in :func:`expected_settings`' shape."""
    os = target.os
    verify: Any = target.cert_validation.requests_verify
    out = {
        "url": os.url,
        "auth": os.auth.value,
        "user": target.credential.username,
        "password": password,
        "verify": verify,
        "timeouts": (target.timeouts.connection, target.timeouts.read, target.timeouts.operation),
        "configuration_name": os.configuration_name,
        "message_encryption": os.message_encryption.value,
        "proxy": (os.proxy, os.ignore_proxy),
        "negotiate_service": os.negotiate_service,
        "negotiate_hostname_override": os.negotiate_hostname_override,
        "negotiate_delegate": os.negotiate_delegate,
        "send_cbt": os.send_cbt,
        "max_envelope_size": os.max_envelope_size,
        "credssp": (os.credssp.auth_mechanism, os.credssp.disable_tlsv1_2, os.credssp.minimum_version),
        "certificates": (target.credential.cert_pem, target.credential.cert_key_pem),
    }
    if target.connection == "winrm":
        for psrp_only in ("configuration_name", "max_envelope_size", "credssp"):
            del out[psrp_only]
    return out
