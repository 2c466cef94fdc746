"""Credentials by reference: which source a host's variables name, and resolving it at connect time.

:func:`credential_ref` reads a host's credential variables into a
:class:`~agent.model.credential.CredentialRef`, which holds no secret; a password given in the
inventory goes to the inventory's private store instead. :class:`CredentialResolver` turns a
reference into a :class:`~agent.model.credential.Credential` when a session needs one.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping

from agent.errors import CredentialError
from agent.inventory.coerce import BadValue, HostVars, as_printable, as_str
from agent.model.credential import Credential, CredentialRef, CredentialSource, Secret
from agent.model.target import Auth, EndpointConfig, HostTarget

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

PasswordPrompt = Callable[[str | None, str], str]
"""``prompt(username, host) -> password``: what ``--ask-pass`` gives the resolver."""


def credential_ref(
    v: HostVars, os_endpoint: EndpointConfig, exchange_endpoint: EndpointConfig, passwords: dict[str, Secret]
) -> CredentialRef:
    """The credential source a host's variables name. Raises InventoryError.

    A password given as ansible_password goes to ``passwords`` (the inventory's private store),
    never into the reference.
    """
    username = v.get("ansible_user", as_printable)
    cert_pem = v.get("exfix_cert_pem", as_printable)
    cert_key_pem = v.get("exfix_cert_key_pem", as_printable)
    auths = {os_endpoint.auth, exchange_endpoint.auth}
    if Auth.CERTIFICATE in auths and not (cert_pem and cert_key_pem):
        key = "ansible_psrp_auth" if os_endpoint.auth is Auth.CERTIFICATE else "exfix_exchange_auth"
        raise v.error(key, "certificate authentication needs exfix_cert_pem and exfix_cert_key_pem")
    if v.has("exfix_password_env"):
        env_var = v.get("exfix_password_env", as_str).strip()
        if not _ENV_NAME.match(env_var):
            raise v.error("exfix_password_env", f"{env_var!r} is not an environment variable name")
        return CredentialRef(
            CredentialSource.ENV, username, env_var=env_var, cert_pem=cert_pem, cert_key_pem=cert_key_pem
        )
    if v.has("ansible_password"):
        try:
            # Ansible allows a plain password here (the lab's inventory uses one). It goes
            # to the inventory's private store, never into the target.
            passwords[v.host] = Secret(as_str(v.merged["ansible_password"].value, allow_empty=True))
        except BadValue:
            raise v.error("ansible_password", "must be a string") from None
        return CredentialRef(
            CredentialSource.INVENTORY, username, cert_pem=cert_pem, cert_key_pem=cert_key_pem
        )
    if auths <= {Auth.CERTIFICATE}:
        return CredentialRef(
            CredentialSource.CERTIFICATE, username, cert_pem=cert_pem, cert_key_pem=cert_key_pem
        )
    if auths <= {Auth.KERBEROS, Auth.NEGOTIATE, Auth.CERTIFICATE}:
        return CredentialRef(
            CredentialSource.KERBEROS_CACHE, username, cert_pem=cert_pem, cert_key_pem=cert_key_pem
        )
    return CredentialRef(CredentialSource.PROMPT, username, cert_pem=cert_pem, cert_key_pem=cert_key_pem)


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
