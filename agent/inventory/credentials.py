"""Credentials by reference: which source a host's variables name, and resolving it at connect time.

:func:`credential_ref` reads a host's credential variables into a
:class:`~agent.model.credential.CredentialRef`, which holds no secret; a password given in the
inventory goes to the inventory's private store instead. :class:`CredentialResolver` turns a
reference into a :class:`~agent.model.credential.Credential` when a session needs one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping

from agent.errors import CredentialError, InventoryError
from agent.model.credential import Credential, CredentialRef, CredentialSource, Secret
from agent.model.target import Auth, EndpointConfig, HostTarget

PasswordPrompt = Callable[[str | None, str], str]
"""``prompt(username, host) -> password``: what ``--ask-pass`` gives the resolver."""


def credential_ref(
    host: str,
    *,
    user: str | None,
    password: Secret | None,
    env_var: str | None,
    cert_pem: str | None,
    cert_key_pem: str | None,
    endpoints: tuple[EndpointConfig, EndpointConfig],
    error: Callable[[str, str], InventoryError],
    passwords: dict[str, Secret],
) -> CredentialRef:
    """The credential source a host's variables name (``endpoints``: OS, Exchange).

    A password given in the inventory (ansible_password and its winrm spellings) goes to
    ``passwords`` (the inventory's private store), never into the reference. Raises
    ``error(endpoint, problem)`` with endpoint "os" or "exchange".
    """
    os_endpoint, exchange_endpoint = endpoints
    certs = {"cert_pem": cert_pem, "cert_key_pem": cert_key_pem}
    auths = {os_endpoint.auth, exchange_endpoint.auth}
    if Auth.CERTIFICATE in auths and not (cert_pem and cert_key_pem):
        where = "os" if os_endpoint.auth is Auth.CERTIFICATE else "exchange"
        raise error(
            where,
            "certificate authentication needs a certificate and its key: ansible_psrp_certificate_pem "
            "and ansible_psrp_certificate_key_pem (or exfix_cert_pem and exfix_cert_key_pem)",
        )
    if env_var is not None:
        return CredentialRef(CredentialSource.ENV, user, env_var=env_var, **certs)
    if password is not None:
        # Ansible allows a plain password here (the lab's inventory uses one). It goes
        # to the inventory's private store, never into the target.
        passwords[host] = password
        return CredentialRef(CredentialSource.INVENTORY, user, **certs)
    if auths <= {Auth.CERTIFICATE}:
        return CredentialRef(CredentialSource.CERTIFICATE, user, **certs)
    if auths <= {Auth.KERBEROS, Auth.NEGOTIATE, Auth.CERTIFICATE}:
        return CredentialRef(CredentialSource.KERBEROS_CACHE, user, **certs)
    return CredentialRef(CredentialSource.PROMPT, user, **certs)


class CredentialResolver:
    """Resolves credentials, asking the ``--ask-pass`` prompt at most once per user. Thread-safe.

    Precedence follows Ansible (inventory variables beat the command line): the variable
    exfix_password_env names, then ansible_password, then the prompt, then the Kerberos cache
    (kerberos/negotiate with no password) or the client certificate.
    """

    def __init__(
        self,
        passwords: Mapping[str, Secret],
        *,
        prompt: PasswordPrompt | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._passwords = passwords
        self._prompt = prompt
        self._environ = environ if environ is not None else os.environ
        self._prompted: dict[str | None, Secret] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CredentialResolver(prompt={'yes' if self._prompt else 'no'})"

    def resolve(self, target: HostTarget) -> Credential:
        """Raises CredentialError (naming the variable or what to do, never a value)."""
        ref = target.credential
        certs = {"cert_pem": ref.cert_pem, "cert_key_pem": ref.cert_key_pem}
        if ref.source is CredentialSource.ENV:
            assert ref.env_var is not None
            value = self._environ.get(ref.env_var)
            if not value:
                raise CredentialError(
                    f"{target.name}: the environment variable {ref.env_var} (exfix_password_env) is not set"
                )
            return Credential(CredentialSource.ENV, ref.username, Secret(value), **certs)
        if ref.source is CredentialSource.INVENTORY:
            return Credential(
                CredentialSource.INVENTORY, ref.username, self._passwords.get(target.name), **certs
            )
        if self._prompt is not None and ref.source in (
            CredentialSource.PROMPT,
            CredentialSource.KERBEROS_CACHE,
        ):
            return Credential(
                CredentialSource.PROMPT, ref.username, self._ask(ref.username, target.name), **certs
            )
        if ref.source is CredentialSource.PROMPT:
            raise CredentialError(
                f"{target.name}: no password for {ref.username or 'the connection'}: set exfix_password_env "
                "or ansible_password in the inventory, or pass --ask-pass"
            )
        return Credential(ref.source, ref.username, None, **certs)

    def _ask(self, username: str | None, host: str) -> Secret:
        assert self._prompt is not None
        with self._lock:
            if username not in self._prompted:
                self._prompted[username] = Secret(self._prompt(username, host))
            return self._prompted[username]
