"""The inventory as a document: how it is read, and the variables exfix reads from it.

The file is read by the one strict reader (:mod:`agent.model.document`): lines kept, duplicate
keys, non-string keys, alias bombs and YAML tags refused. Its top level is Ansible's, not
exfix's: groups and hosts are names the admin picks, and the variables of a host are gathered
from every group it is in, so the tree is walked by :mod:`agent.inventory.groups` and only the
variables exfix reads are declared here, as :class:`HostVariables`. Everything else is left
alone: an inventory carries many variables for other tools, and a value the reader would
refuse (``mode: 0644``, a date) is refused only if it is one of exfix's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from agent.errors import InventoryError
from agent.inventory.coerce import (
    as_address,
    as_address_map,
    as_bool,
    as_cert_validation,
    as_dns_name,
    as_env_name,
    as_ip_list,
    as_path,
    as_port,
    as_printable,
    as_seconds,
    as_str,
    one_of,
)
from agent.model.credential import Secret
from agent.model.document import Document, key
from agent.model.target import Auth, OsTransport, Scheme, Timeouts


def _loose(check: Callable[[Any], Any]) -> dict[str, Any]:
    # raw: Ansible's values are loosely typed ("5986" for a port), so the check alone reads them.
    return key(check=check, raw=True)


def _password(value: Any) -> Secret:
    return Secret(as_str(value, allow_empty=True))


_DEFAULT_TIMEOUTS = Timeouts()


@dataclass(frozen=True, slots=True)
class HostVariables:
    """The variables exfix reads of one host, after Ansible's precedence (the table and the
    defaults that depend on other variables: :mod:`agent.inventory.variables`). None: unset."""

    ansible_host: str | None = field(default=None, metadata=_loose(as_address))
    ansible_port: int | None = field(default=None, metadata=_loose(as_port))
    ansible_psrp_protocol: Scheme | None = field(default=None, metadata=_loose(one_of(Scheme)))
    ansible_psrp_path: str = field(default="wsman", metadata=_loose(as_path))
    ansible_psrp_auth: Auth = field(default=Auth.NEGOTIATE, metadata=_loose(one_of(Auth)))
    ansible_psrp_cert_validation: bool = field(default=True, metadata=_loose(as_cert_validation))
    ansible_psrp_ca_cert: str | None = field(default=None, metadata=_loose(as_printable))
    ansible_user: str | None = field(default=None, metadata=_loose(as_printable))
    ansible_password: Secret | None = field(default=None, repr=False, metadata=_loose(_password))
    exfix_password_env: str | None = field(default=None, metadata=_loose(as_env_name))
    exfix_exchange_host: str | None = field(default=None, metadata=_loose(as_address))
    exfix_exchange_port: int | None = field(default=None, metadata=_loose(as_port))
    exfix_exchange_protocol: Scheme | None = field(default=None, metadata=_loose(one_of(Scheme)))
    exfix_exchange_path: str = field(default="PowerShell", metadata=_loose(as_path))
    exfix_exchange_auth: Auth = field(default=Auth.KERBEROS, metadata=_loose(one_of(Auth)))
    exfix_os_transport: OsTransport = field(default=OsTransport.PSRP, metadata=_loose(one_of(OsTransport)))
    exfix_allow_insecure_basic: bool = field(default=False, metadata=_loose(as_bool))
    exfix_cert_pem: str | None = field(default=None, metadata=_loose(as_printable))
    exfix_cert_key_pem: str | None = field(default=None, metadata=_loose(as_printable))
    exfix_dns_address_map: tuple[tuple[str, str], ...] = field(default=(), metadata=_loose(as_address_map))
    exfix_external_dns_servers: tuple[str, ...] = field(default=(), metadata=_loose(as_ip_list))
    exfix_connection_timeout: float = field(default=_DEFAULT_TIMEOUTS.connection, metadata=_loose(as_seconds))
    exfix_read_timeout: float = field(default=_DEFAULT_TIMEOUTS.read, metadata=_loose(as_seconds))
    exfix_operation_timeout: float = field(
        default=float(_DEFAULT_TIMEOUTS.operation), metadata=_loose(as_seconds)
    )
    exfix_command_timeout: float = field(default=_DEFAULT_TIMEOUTS.command, metadata=_loose(as_seconds))
    exfix_host_timeout: float = field(default=_DEFAULT_TIMEOUTS.host, metadata=_loose(as_seconds))
    exfix_lab_scenario: str | None = field(default=None, metadata=_loose(as_printable))
    exfix_probe_public_name: str | None = field(default=None, metadata=_loose(as_dns_name))


READ = frozenset(f.name for f in fields(HostVariables))
"""The variables exfix reads. Any other ``ansible_*`` is ignored (admins reuse inventories);
any other ``exfix_*`` is a typo, and an error."""

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
)
