"""The least-privilege roles as the files an administrator runs or installs (``exfix rbac``).

Every name and value reaches the text through agent.pwsh (the one audited quoting filter):
cmdlet and parameter names are checked against its strict patterns, values are single-quoted
literals. The files:

- ``exchange-rbac.ps1``: run once in the Exchange Management Shell by a member of Organization
  Management. For each custom role: ``New-ManagementRole -Parent`` copies the parent's
  entries; ``Remove-ManagementRoleEntry`` drops every entry exfix does not use (the pipeline
  form of the cmdlet's own example 2); ``Set-ManagementRoleEntry -Parameters`` without
  -AddParameter/-RemoveParameter keeps exactly the parameters listed (Set-ManagementRoleEntry,
  example 3). Then two role groups (New-RoleGroup -Roles) hold them.
- ``jea/ExfixJEA/RoleCapabilities/<name>.psrc``: a role capability per account; copy the
  ``ExfixJEA`` folder into ``$env:ProgramFiles\\WindowsPowerShell\\Modules`` (JEA finds role
  capabilities in a module's RoleCapabilities folder).
- ``jea/exfix.pssc``: the session configuration; ``Register-PSSessionConfiguration -Name
  exfix -Path exfix.pssc`` on every Exchange server.
- ``inventory-vars.yml``: the connection variable exfix then needs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from agent import pwsh
from agent.model.catalogue import Access, Param
from agent.permissions.roles import (
    CAPABILITIES,
    JEA_MODULE,
    ROLE_GROUPS,
    ExchangeRole,
    Permissions,
    RoleCapability,
    VisibleCmdlet,
)

EXCHANGE_SCRIPT = "exchange-rbac.ps1"
SESSION_FILE = "jea/exfix.pssc"
INVENTORY_VARS = "inventory-vars.yml"
_NAMESPACE = uuid.UUID("5d0f1f5e-0a55-4e0e-9d3c-6578666978a1")  # stable GUIDs for the JEA files


@dataclass(frozen=True, slots=True)
class Groups:
    """The AD groups whose members get each account's rights (RoleDefinitions of the .pssc)."""

    scan: str
    remediate: str


def _q(value: str) -> str:
    return pwsh.literal(value)


def _list(values: tuple[str, ...]) -> str:
    return pwsh.literal(values)


def exchange_script(perms: Permissions, version: str) -> str:
    lines = [
        f"# exfix {version}: least-privilege Exchange RBAC roles, written by `exfix rbac` from",
        "# exfix's command catalogue. Run once in the Exchange Management Shell as a member of",
        "# Organization Management; then add the accounts to the role groups at the end.",
        "$ErrorActionPreference = 'Stop'",
        "",
    ]
    for role in perms.exchange:
        lines.extend(_role(role))
    for access in (Access.READ, Access.CHANGE):
        names = tuple(r.name for r in perms.roles_for(access))
        lines.append(f"New-RoleGroup -Name {_q(ROLE_GROUPS[access])} -Roles {_list(names)}")
    lines.append("# Add-RoleGroupMember -Identity 'exfix Scan' -Member <the scanning account>")
    lines.append("# Add-RoleGroupMember -Identity 'exfix Remediate' -Member <the remediating account>")
    return "\n".join(lines) + "\n"


def _role(role: ExchangeRole) -> list[str]:
    keep = tuple(e.cmdlet for e in role.entries)
    for cmdlet in keep:
        pwsh.check_cmdlet(cmdlet)
    out = [
        f"# {role.name}: {', '.join(keep)} from the built-in role {role.parent!r}",
        f"New-ManagementRole -Name {_q(role.name)} -Parent {_q(role.parent)}",
        f"$keep = {_list(keep)}",
        f"Get-ManagementRoleEntry -Identity {_q(role.name + chr(92) + '*')} |",
        "    Where-Object { $keep -notcontains $_.Name } |",
        "    ForEach-Object {",
        "        Remove-ManagementRoleEntry -Identity ('{0}\\{1}' -f $_.Id, $_.Name) -Confirm:$false",
        "    }",
    ]
    for entry in role.entries:
        for name in entry.parameters:
            pwsh.check_parameter(name)
        identity = _q(f"{role.name}\\{entry.cmdlet}")
        # Exchange 2010 has Get-/Set-TransportServer only: an entry the parent lacks is named,
        # not fatal, so one script serves every version.
        out.append(f"if (Get-ManagementRoleEntry -Identity {identity} -ErrorAction SilentlyContinue) {{")
        out.append(f"    Set-ManagementRoleEntry -Identity {identity} -Parameters {_list(entry.parameters)}")
        out.append(f"}} else {{ Write-Warning ({identity} + ': not in this version of the parent role') }}")
    out.append("")
    return out


def _parameter(param: Param) -> str:
    pwsh.check_parameter(param.name)
    parts = [f"Name = {_q(param.name)}"]
    if param.values:
        parts.append(f"ValidateSet = {', '.join(_q(v) for v in param.values)}")
    if param.pattern is not None:
        parts.append(f"ValidatePattern = {_q(param.pattern)}")
    return "@{ " + "; ".join(parts) + " }"


def _visible(visible: VisibleCmdlet) -> str:
    pwsh.check_cmdlet(visible.cmdlet)
    if not visible.parameters:
        return f"    {_q(visible.cmdlet)}"
    params = ",\n            ".join(_parameter(p) for p in visible.parameters)
    return f"    @{{ Name = {_q(visible.cmdlet)}\n        Parameters = {params} }}"


def capability_path(capability: RoleCapability) -> str:
    return f"jea/{JEA_MODULE}/RoleCapabilities/{capability.name}.psrc"


def capability_file(capability: RoleCapability, version: str) -> str:
    guid = uuid.uuid5(_NAMESPACE, capability.name)
    lines = [
        f"# exfix {version}: JEA role capability {capability.name}, written by `exfix rbac`.",
        "@{",
        f"GUID = {_q(str(guid))}",
        "Author = 'exfix'",
        f"Description = {_q(_describe(capability.access))}",
    ]
    if capability.providers:
        lines.append(f"VisibleProviders = {', '.join(_q(p) for p in capability.providers)}")
    lines.append("VisibleCmdlets = @(")
    lines.append(",\n".join(_visible(v) for v in capability.cmdlets))
    lines.append(")")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _describe(access: Access) -> str:
    if access is Access.READ:
        return "What exfix reads on an Exchange server: scan, plan, and apply's checks"
    return "What exfix changes on an Exchange server: apply's steps and rollbacks"


def session_file(perms: Permissions, groups: Groups, version: str) -> str:
    guid = uuid.uuid5(_NAMESPACE, perms.configuration_name)
    scan = CAPABILITIES[Access.READ]
    remediate = CAPABILITIES[Access.CHANGE]
    return "\n".join(
        [
            f"# exfix {version}: JEA session configuration {perms.configuration_name!r} (exfix rbac).",
            f"# Register-PSSessionConfiguration -Name {perms.configuration_name} -Path .\\exfix.pssc",
            "@{",
            "SchemaVersion = '2.0.0.0'",
            f"GUID = {_q(str(guid))}",
            "Author = 'exfix'",
            # RestrictedRemoteServer: NoLanguage mode and only a few core cmdlets besides the
            # role's (about_Session_Configuration_Files); the virtual account runs the
            # visible cmdlets with the rights they need, the user gets nothing else.
            "SessionType = 'RestrictedRemoteServer'",
            "RunAsVirtualAccount = $true",
            "TranscriptDirectory = 'C:\\ProgramData\\exfix\\JEA\\Transcripts'",
            "RoleDefinitions = @{",
            f"    {_q(groups.scan)} = @{{ RoleCapabilities = {_q(scan)} }}",
            f"    {_q(groups.remediate)} = @{{ RoleCapabilities = {_q(scan)}, {_q(remediate)} }}",
            "}",
            "}",
            "",
        ]
    )


def inventory_vars(perms: Permissions) -> str:
    return (
        "# The OS endpoint is the JEA session configuration written by `exfix rbac`.\n"
        f"ansible_psrp_configuration_name: {perms.configuration_name}\n"
    )


def files(perms: Permissions, groups: Groups, version: str) -> dict[str, str]:
    """Relative path -> text, in the order they are listed."""
    out = {EXCHANGE_SCRIPT: exchange_script(perms, version)}
    for capability in perms.capabilities:
        out[capability_path(capability)] = capability_file(capability, version)
    out[SESSION_FILE] = session_file(perms, groups, version)
    out[INVENTORY_VARS] = inventory_vars(perms)
    return out


def markdown(perms: Permissions) -> str:
    """The README's "Permissions" tables (tests/test_readme.py keeps the README equal)."""
    rows = ["| account | endpoint | cmdlet | parameters | granted by |", "|---|---|---|---|---|"]
    for access in (Access.READ, Access.CHANGE):
        who = "scan" if access is Access.READ else "remediate"
        for role in perms.exchange:
            if role.access is not access:
                continue
            for entry in role.entries:
                params = ", ".join(entry.parameters)
                where = f"`{role.name}` (parent `{role.parent}`)"
                rows.append(f"| {who} | Exchange | {entry.cmdlet} | {params} | {where} |")
        for capability in perms.capabilities:
            if capability.access is not access:
                continue
            for visible in capability.cmdlets:
                params = ", ".join(_md_param(p) for p in visible.parameters) or _ALL_VISIBLE
                rows.append(f"| {who} | OS (JEA) | {visible.cmdlet} | {params} | `{capability.name}.psrc` |")
    manual = ", ".join(c.cmdlet for c in perms.manual)
    rows.append("")
    rows.append(f"Manual steps, run by a person from remediate.ps1 with their own rights: {manual}.")
    return "\n".join(rows) + "\n"


_ALL_VISIBLE = "none given (plain name: JEA shows all)"


def _md_param(param: Param) -> str:
    if param.values:
        return f"{param.name} ({'/'.join(param.values)})"
    if param.pattern is not None:
        return f"{param.name} (pattern)"
    return param.name
