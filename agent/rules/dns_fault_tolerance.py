"""dns-fault-tolerance: DnsFaultTolerance in EdgeTransport.exe.config is set, and not to
Lenient (the default).

With Normal, the first MX record that does not resolve makes transport discard every MX record
of the same or a higher preference, so a domain with mixed valid and invalid MX records at one
preference becomes undeliverable ("DNS query failure sensitivity", Exchange 2013 docs; seeds
003, 004). The file is per server and a CU install overwrites it.
"""

from __future__ import annotations

from agent.model.facts import CollectionArea, HostFacts
from agent.model.finding_data import SetDnsFaultTolerance, SymptomScope
from agent.model.findings import EvidenceItem, Finding, Severity
from agent.rules import _common as c
from agent.rules.metadata import Explains, RuleKind, RuleMetadata

METADATA = RuleMetadata(
    id="dns-fault-tolerance",
    title="DnsFaultTolerance is not Lenient",
    severity=Severity.MEDIUM,
    kind=RuleKind.CAUSE,
    explanation=(
        "EdgeTransport.exe.config sets DNS query failure sensitivity to a value other than the default, "
        "Lenient. With 'Normal', one mail server record that does not resolve makes Exchange throw away the "
        "good records of the same preference too, so some domains become undeliverable. The fix sets the "
        "value back to Lenient and restarts the Exchange transport service, which briefly interrupts mail "
        "flow. A cumulative update overwrites this file, so re-check after updates."
    ),
    references=(
        "https://technet.microsoft.com/en-us/library/Bb676467(v=EXCHG.150)",
        "https://learn.microsoft.com/exchange/plan-and-deploy/install-cumulative-updates",
    ),
    fix_id="set-dns-fault-tolerance",
    data=SetDnsFaultTolerance,
    reads=(CollectionArea.EDGE_CONFIG,),
    explains=(Explains("queue-dns-failure", (SymptomScope.ALL_EXTERNAL, SymptomScope.DOMAIN)),),
)


def evaluate(facts: HostFacts) -> tuple[Finding, ...]:
    config = facts.edge_config
    if config is None or not config.key_present or config.is_lenient:
        return ()
    return (
        c.finding(
            METADATA,
            facts,
            subject=config.config_path,
            summary=(
                f"{config.config_path} sets DnsFaultTolerance={config.dns_fault_tolerance!r} "
                "(the default is Lenient)"
            ),
            evidence=(
                EvidenceItem(
                    source="Get-Content",
                    subject=config.config_path,
                    values=(("appSettings key", "DnsFaultTolerance"), ("value", config.dns_fault_tolerance)),
                ),
            ),
            data=SetDnsFaultTolerance(
                config_path=config.config_path,
                current_value=config.dns_fault_tolerance,
                desired_value="Lenient",
            ),
        ),
    )
