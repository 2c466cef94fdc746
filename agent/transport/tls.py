"""TLS server identity: which name a certificate is checked against, and who is not checked.

pypsrp 0.9 (``WSMan._build_session``) and pywinrm 0.5 (``Transport.build_session``) hand the
URL to requests, and requests/urllib3 check the server's certificate against the URL's host.
Ansible's psrp and winrm plugins build that URL from ``ansible_host``, and neither has an
option to check another name: ``negotiate_hostname_override`` and
``kerberos_hostname_override`` change the Kerberos service principal only. So with Ansible a
host reached by address (a load balancer's VIP, a port forward, the lab's 127.0.0.1) needs an
IP address in its certificate's SANs.

``exfix_tls_server_name`` closes that gap the way ``curl --connect-to`` does: the TCP
connection still goes to ``ansible_host``, and the name is what the client sends as SNI (RFC
6066 section 3) and checks the certificate against (RFC 6125), through urllib3's
``server_hostname`` connection-pool keyword (``HTTPSConnection.connect`` uses it for both).
The chain is checked as before, against ``ansible_psrp_ca_cert`` or the system's CAs. A name
resolved through /etc/hosts would do the same for any client, but changes the machine.

Through an HTTP proxy (``ansible_psrp_proxy``) requests opens its tunnel with its own pool
manager, which does not take the name: the certificate is then checked against the URL's
host, and a mismatch fails, as it would without the variable (never silently unchecked).
"""

from __future__ import annotations

from collections.abc import Iterable

import requests

from agent.model.target import HostTarget, Scheme


def check_server_name(session: requests.Session, name: str) -> None:
    """Make ``session``'s https connections send and check ``name`` (see the module docstring).

    Raises TypeError when the https adapter is not requests' HTTPAdapter (nothing else would
    apply the name, and silently checking another name would be worse than failing)."""
    adapter = session.get_adapter("https://")
    poolmanager = getattr(adapter, "poolmanager", None)
    if not isinstance(adapter, requests.adapters.HTTPAdapter) or poolmanager is None:
        raise TypeError(f"cannot check the TLS server name with the https adapter {type(adapter).__name__}")
    poolmanager.connection_pool_kw["server_hostname"] = name


def unvalidated(targets: Iterable[HostTarget]) -> tuple[str, ...]:
    """The hosts reached over https without checking their certificate
    (``ansible_psrp_cert_validation: ignore``), in order."""
    return tuple(
        t.name
        for t in targets
        if not t.cert_validation.verify and Scheme.HTTPS in (t.os.scheme, t.exchange.scheme)
    )


def unvalidated_warning(targets: Iterable[HostTarget]) -> str | None:
    """The one warning a run prints when some hosts' certificates are not checked, or None."""
    names = unvalidated(targets)
    if not names:
        return None
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (
        f"TLS certificate validation is off for {len(names)} host(s) ({shown}): "
        "ansible_psrp_cert_validation (or ansible_winrm_server_cert_validation) is 'ignore', so "
        "nothing checks that they are the servers they claim to be; give their CA with "
        "ansible_psrp_ca_cert instead"
    )
