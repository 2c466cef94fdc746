"""set-dns-fault-tolerance: DnsFaultTolerance=Lenient in EdgeTransport.exe.config, as a
reviewed script for a person to run (``manual``): apply reports it and does not run it.

The file lives on the server's disk (<ExchangeInstallPath>Bin\\EdgeTransport.exe.config);
there is no cmdlet for it, and a CU install overwrites it ("DNS query failure sensitivity",
Exchange 2013 Help, technet Bb676467). The step is expressed as three commands with literal
parameters, so the round-trip test covers it like every other fix:

1. ``Copy-Item -LiteralPath <config> -Destination <config>.exfix-<fingerprint>.bak`` keeps
   the file as it was (the name ties the backup to the before-state the plan saw);
2. ``Set-ExfixAppSetting -LiteralPath <config> -Key DnsFaultTolerance -Value Lenient``: a
   small function the script itself defines (ps_templates/set-dns-fault-tolerance.ps1.j2),
   fixed text with no value rendered into it, that sets one <appSettings> key with the .NET
   XML DOM and honours -WhatIf;
3. the MSExchangeTransport restart build_plan adds after the manual steps.
"""

from __future__ import annotations

from agent.fixes._draft import Draft, Planned, advise
from agent.fixes._setting import PropertyChange, Setting, SettingChange, setting_draft
from agent.fixes.fingerprint import fingerprint_for
from agent.fixes.spec import FixSpec, Step
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import HostFacts
from agent.model.findings import Finding
from agent.model.plan import AdvisoryKind, FactArea, FactRef, HostVars

FIX_ID = "set-dns-fault-tolerance"

# The kinds of step this fix plans (plan.json "kind").
BACKUP_EDGE_CONFIG = "backup-edge-config"
SET_DNS_FAULT_TOLERANCE = "set-dns-fault-tolerance"
KEY = "DnsFaultTolerance"
DESIRED = "Lenient"
SET_APP_SETTING = "Set-ExfixAppSetting"

_DEPS = (FactRef(FactArea.EDGE_CONFIG),)


def backup_path(config_path: str, fingerprint: str) -> str:
    return f"{config_path}.exfix-{fingerprint[:12]}.bak"


def app_setting(config_path: str) -> Setting:
    """The DnsFaultTolerance key of ``config_path``: written by the script's own
    Set-ExfixAppSetting (-Key names the key, -Value carries it), read back from the file itself
    with Get-Content (apply's verification re-collects edge_config)."""
    return Setting(
        Endpoint.OS, SET_APP_SETTING, "Get-Content", (("LiteralPath", config_path),), selector=(("Key", KEY),)
    )


def drafts(config_path: str, before: str, backup: str, finding_ids: tuple[str, ...]) -> tuple[Draft, ...]:
    return (
        Draft(
            kind=BACKUP_EDGE_CONFIG,
            fix_id=FIX_ID,
            call=CmdletCall(
                Endpoint.OS, "Copy-Item", (("LiteralPath", config_path), ("Destination", backup))
            ),
            description=f"Back up {config_path} to {backup}",
            changes=(),
            read_back=None,
            rollback=(),
            restart_required=False,
            finding_ids=finding_ids,
            depends_on=_DEPS,
            manual=True,
        ),
        setting_draft(
            SettingChange(app_setting(config_path), (PropertyChange(KEY, before, DESIRED, "Value"),)),
            kind=SET_DNS_FAULT_TOLERANCE,
            fix_id=FIX_ID,
            description=(
                f"Set {KEY} to {DESIRED} in {config_path} (was {before!r}); a cumulative update overwrites "
                "this file, so check it again after every CU"
            ),
            restart_required=True,
            finding_ids=finding_ids,
            depends_on=_DEPS,
            manual=True,
        ),
    )


def plan(finding: Finding, facts: HostFacts, host_vars: HostVars) -> Planned:
    config = facts.edge_config
    if config is None:
        return advise(AdvisoryKind.CANNOT_PLAN, finding, "EdgeTransport.exe.config was not read.")
    if config.is_lenient:
        return Planned()
    backup = backup_path(config.config_path, fingerprint_for(_DEPS, facts))
    return Planned(drafts(config.config_path, config.dns_fault_tolerance, backup, (finding.id,)))


SPEC = FixSpec(
    id=FIX_ID,
    summary="DnsFaultTolerance=Lenient in EdgeTransport.exe.config, restart MSExchangeTransport",
    disrupts_mail_flow=True,
    planner=plan,
    template=FIX_ID,
    steps=(
        Step(BACKUP_EDGE_CONFIG),
        Step(
            SET_DNS_FAULT_TOLERANCE,
            risk="EdgeTransport.exe.config is edited by hand (manual step); a CU install overwrites it.",
        ),
    ),
    reads=(FactArea.EDGE_CONFIG,),
)
