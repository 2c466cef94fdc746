"""The least-privilege roles as values, built from the command catalogue.

Two accounts are meant: one that scans (``Access.READ``: scan, plan, and nothing else) and one
that remediates (``Access.CHANGE``: apply, which also reads: the stale check, read-backs and
verification). Each gets:

- on the Exchange endpoint, custom management roles: one per built-in parent role, keeping
  only the entries exfix uses and, on each entry, only the parameters it gives
  (New-ManagementRole -Parent, Remove-ManagementRoleEntry, Set-ManagementRoleEntry
  -Parameters; a child role can hold only entries and parameters its parent has);
- on the OS endpoint, a JEA role capability (VisibleCmdlets with their parameters and, where
  exfix gives fixed values or paths, ValidateSet / ValidatePattern), served by one session
  configuration that exfix reaches with ``ansible_psrp_configuration_name``.

:func:`grant` is what an account holding the roles may run; the lab enforces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from agent.model.catalogue import CATALOGUE as _CATALOGUE
from agent.model.catalogue import Access, Command, Param, Runner, granted
from agent.model.command import Endpoint

CONFIGURATION_NAME = "exfix"  # the JEA session configuration (Register-PSSessionConfiguration -Name)
JEA_MODULE = "ExfixJEA"  # role capabilities are found in <module>\RoleCapabilities\<name>.psrc
ROLE_GROUPS = {Access.READ: "exfix Scan", Access.CHANGE: "exfix Remediate"}
CAPABILITIES = {Access.READ: "ExfixScan", Access.CHANGE: "ExfixRemediate"}
_LABEL = {Access.READ: "Scan", Access.CHANGE: "Remediate"}
_FILE_CMDLETS = frozenset({"get-content", "new-item", "remove-item"})
_REGISTRY_CMDLETS = frozenset({"get-itemproperty"})


@dataclass(frozen=True, slots=True)
class RoleEntry:
    cmdlet: str
    parameters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ExchangeRole:
    name: str
    parent: str
    access: Access
    entries: tuple[RoleEntry, ...]


@dataclass(frozen=True, slots=True)
class VisibleCmdlet:
    """A VisibleCmdlets entry. No parameters: the plain-name form, which makes all of the
    cmdlet's parameters visible (JEA has no form for "none"); exfix gives it none."""

    cmdlet: str
    parameters: tuple[Param, ...]


@dataclass(frozen=True, slots=True)
class RoleCapability:
    name: str
    access: Access
    cmdlets: tuple[VisibleCmdlet, ...]
    providers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Permissions:
    exchange: tuple[ExchangeRole, ...]
    capabilities: tuple[RoleCapability, ...]
    manual: tuple[Command, ...]  # run by a person from remediate.ps1: listed, never granted
    configuration_name: str = CONFIGURATION_NAME

    def roles_for(self, access: Access) -> tuple[ExchangeRole, ...]:
        wanted = _held(access)
        return tuple(r for r in self.exchange if r.access in wanted)

    def capabilities_for(self, access: Access) -> tuple[RoleCapability, ...]:
        wanted = _held(access)
        return tuple(c for c in self.capabilities if c.access in wanted)


def _held(access: Access) -> tuple[Access, ...]:
    # The remediating account also scans: apply reads before and after it changes.
    return (Access.READ,) if access is Access.READ else (Access.READ, Access.CHANGE)


def _own(access: Access) -> tuple[Command, ...]:
    return tuple(c for c in granted(access) if c.access is access)


def _exchange_roles(access: Access) -> tuple[ExchangeRole, ...]:
    by_parent: dict[str, list[RoleEntry]] = {}
    for command in _own(access):
        if command.endpoint is not Endpoint.EXCHANGE:
            continue
        if command.role is None:
            raise ValueError(f"{command.cmdlet}: an Exchange command needs its parent role")
        by_parent.setdefault(command.role, []).append(
            RoleEntry(command.cmdlet, tuple(p.name for p in command.parameters))
        )
    return tuple(
        ExchangeRole(f"exfix {_LABEL[access]} - {parent}", parent, access, tuple(entries))
        for parent, entries in by_parent.items()
    )


def _capability(access: Access) -> RoleCapability:
    cmdlets = tuple(
        VisibleCmdlet(c.cmdlet, c.parameters) for c in _own(access) if c.endpoint is Endpoint.OS
    )
    names = {c.cmdlet.lower() for c in cmdlets}
    # A JEA session shows no provider unless the role makes it visible: the recording
    # test_psrp_with_jea_configuration.yml shows Get-Item failing with "Cannot find a provider
    # with the name 'FileSystem'" (ProviderNotFound). exfix reads files and one registry key.
    uses = (("FileSystem", names & _FILE_CMDLETS), ("Registry", names & _REGISTRY_CMDLETS))
    providers = tuple(provider for provider, used in uses if used)
    return RoleCapability(CAPABILITIES[access], access, cmdlets, providers)


def build() -> Permissions:
    """The roles for both accounts, in catalogue order."""
    return Permissions(
        exchange=_exchange_roles(Access.READ) + _exchange_roles(Access.CHANGE),
        capabilities=(_capability(Access.READ), _capability(Access.CHANGE)),
        manual=tuple(c for c in _CATALOGUE if c.runner is Runner.PERSON),
    )


@dataclass(frozen=True, slots=True)
class Grant:
    """What an account holding the roles for ``access`` may run.

    ``exchange``: lower-cased cmdlet -> lower-cased parameter names (its role entries).
    ``os``: lower-cased cmdlet -> its VisibleCmdlets entry (no parameters: all of them).
    ``providers``: the providers the JEA session shows.
    """

    access: Access
    exchange: Mapping[str, frozenset[str]]
    os: Mapping[str, VisibleCmdlet]
    providers: frozenset[str]
    configuration_name: str


def grant(access: Access, permissions: Permissions | None = None) -> Grant:
    perms = permissions or build()
    exchange: dict[str, set[str]] = {}
    for role in perms.roles_for(access):
        for entry in role.entries:
            exchange.setdefault(entry.cmdlet.lower(), set()).update(p.lower() for p in entry.parameters)
    os: dict[str, VisibleCmdlet] = {}
    providers: set[str] = set()
    for capability in perms.capabilities_for(access):
        providers.update(capability.providers)
        for visible in capability.cmdlets:
            os[visible.cmdlet.lower()] = visible
    return Grant(
        access,
        {k: frozenset(v) for k, v in exchange.items()},
        os,
        frozenset(providers),
        perms.configuration_name,
    )
