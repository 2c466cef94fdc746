"""The inventory as a document: how it is read, and the variables exfix reads from it.

The file is read by the one strict reader (:mod:`agent.model.document`): lines kept, duplicate
keys, non-string keys, alias bombs and YAML tags refused (but Ansible's ``!vault`` and
``!unsafe``). Its top level is Ansible's, not exfix's: groups and hosts are names the admin
picks, and the variables of a host are gathered from every group it is in, so the tree is
walked by :mod:`agent.inventory.yaml_source` and only exfix's own variables are declared here,
as :class:`HostVariables` (Ansible's are read as its plugins read them:
:mod:`agent.inventory.connection`). Everything else is left
alone: an inventory carries many variables for other tools, and a value the reader would
refuse (``mode: 0644``, a date) is refused only if it is one of exfix's.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from agent.errors import InventoryError
from agent.inventory.coerce import (
    as_address,
    as_address_map,
    as_bool,
    as_dns_name,
    as_env_name,
    as_ip_list,
    as_path,
    as_port,
    as_printable,
    as_seconds,
    one_of,
)
from agent.inventory.values import Unsafe, Vaulted
from agent.model.document import Document, key
from agent.model.target import Auth, OsTransport, PsrpClient, Scheme, Timeouts


def _loose(check: Callable[[Any], Any]) -> dict[str, Any]:
    # raw: Ansible's values are loosely typed ("5986" for a port), so the check alone reads them.
    return key(check=check, raw=True)


_DEFAULT_TIMEOUTS = Timeouts()


@dataclass(frozen=True, slots=True)
class HostVariables:
    """exfix's own variables of one host, after Ansible's precedence (the table of every
    variable, Ansible's included: :mod:`agent.inventory.variables`). None: unset. Ansible's
    connection variables are read by :mod:`agent.inventory.connection`, as its plugins do."""

    exfix_password_env: str | None = field(default=None, metadata=_loose(as_env_name))
    exfix_exchange_host: str | None = field(default=None, metadata=_loose(as_address))
    exfix_exchange_port: int | None = field(default=None, metadata=_loose(as_port))
    exfix_exchange_protocol: Scheme | None = field(default=None, metadata=_loose(one_of(Scheme)))
    exfix_exchange_path: str = field(default="PowerShell", metadata=_loose(as_path))
    exfix_exchange_auth: Auth = field(default=Auth.KERBEROS, metadata=_loose(one_of(Auth)))
    exfix_os_transport: OsTransport | None = field(default=None, metadata=_loose(one_of(OsTransport)))
    exfix_psrp_client: PsrpClient | None = field(default=None, metadata=_loose(one_of(PsrpClient)))
    exfix_allow_insecure_basic: bool = field(default=False, metadata=_loose(as_bool))
    exfix_cert_pem: str | None = field(default=None, metadata=_loose(as_printable))
    exfix_cert_key_pem: str | None = field(default=None, metadata=_loose(as_printable))
    exfix_dns_address_map: tuple[tuple[str, str], ...] = field(default=(), metadata=_loose(as_address_map))
    exfix_external_dns_servers: tuple[str, ...] = field(default=(), metadata=_loose(as_ip_list))
    exfix_connection_timeout: float | None = field(default=None, metadata=_loose(as_seconds))
    exfix_read_timeout: float | None = field(default=None, metadata=_loose(as_seconds))
    exfix_operation_timeout: float | None = field(default=None, metadata=_loose(as_seconds))
    exfix_command_timeout: float = field(default=_DEFAULT_TIMEOUTS.command, metadata=_loose(as_seconds))
    exfix_host_timeout: float = field(default=_DEFAULT_TIMEOUTS.host, metadata=_loose(as_seconds))
    exfix_lab_scenario: str | None = field(default=None, metadata=_loose(as_printable))
    exfix_probe_public_name: str | None = field(default=None, metadata=_loose(as_dns_name))
    exfix_tls_server_name: str | None = field(default=None, metadata=_loose(as_dns_name))


READ = frozenset(f.name for f in fields(HostVariables))
"""exfix's own variables. Any other ``exfix_*`` is a typo, and an error."""


def check_variable_name(name: str, source: str, line: int | None, host: str | None) -> None:
    """Refuse an ``exfix_*`` variable exfix does not know (almost certainly a typo)."""
    if name.startswith("exfix_") and name not in READ:
        close = difflib.get_close_matches(name, sorted(READ), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InventoryError(source, f"unknown exfix variable{hint}", line=line, host=host, key=name)


# null_is_absent: a variable written with no value (``exfix_exchange_port:``) takes its default,
# even over a group's value, as exfix has always read it. defer_scalars: see the docstring.
# merge_keys: ``<<: *defaults`` is how some inventories share host variables; Ansible reads it.
INVENTORY = Document(
    HostVariables,
    InventoryError,
    what="an inventory",
    null_is_absent=True,
    defer_scalars=True,
    merge_keys=True,
    # Ansible's own YAML tags: a vaulted value is kept (refused only if exfix reads it), and
    # !unsafe marks a string Ansible never templates.
    scalar_tags={"!vault": Vaulted, "!unsafe": Unsafe},
)
