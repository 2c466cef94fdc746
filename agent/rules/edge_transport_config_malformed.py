"""edge-transport-config-malformed: EdgeTransport.exe.config is not well-formed XML.

EdgeTransport.exe.config is the .NET application configuration file of EdgeTransport.exe, the
worker process of the Microsoft Exchange Transport service, and it is read when the service
starts ("Understanding the EdgeTransport.exe.Config File", Exchange 2010 docs). The .NET
configuration system refuses a file with malformed XML (ConfigurationException /
ConfigurationErrorsException, ".NET API docs"), and Exchange logs MSExchangeTransport event
14004, AppConfigLoadFailed, "The worker process has failed to load application configuration
file": the transport service does not come up. A service that is running now started from an
earlier, valid file; the next restart (a fix's, a reboot's, a CU's) is the one that fails.

Advisory: the file must be repaired by a person (fix the line, or restore a copy of it), and no
transport restart should happen before. The line and column are where the XML parser gave up,
as .NET reports them (1-based); the fault is there or just before it.
"""

from __future__ import annotations

from agent.model.facts import CollectionArea, HostFacts
from agent.model.finding_data import MalformedEdgeConfig
from agent.model.findings import EvidenceItem, Finding, Severity
from agent.rules import _common as c
from agent.rules.metadata import RuleKind, RuleMetadata

METADATA = RuleMetadata(
    id="edge-transport-config-malformed",
    title="EdgeTransport.exe.config is not well-formed XML",
    severity=Severity.HIGH,
    kind=RuleKind.ADVISORY,
    explanation=(
        "The Exchange transport service reads EdgeTransport.exe.config when it starts, and it cannot "
        "load a file that is not valid XML (event 14004, 'The worker process has failed to load "
        "application configuration file'): after the next restart, reboot or update, transport does "
        "not start and no mail flows through this server. Repair the line named (or restore a good "
        "copy of the file) before anything restarts the Microsoft Exchange Transport service. Until "
        "then exfix cannot read the DnsFaultTolerance setting from it either."
    ),
    references=(
        "https://learn.microsoft.com/en-us/previous-versions/exchange-server/exchange-141/ff985893(v=exchg.141)",
        "https://learn.microsoft.com/en-us/previous-versions/office/exchange-server-2010/ee681659(v=exchg.141)",
        "https://learn.microsoft.com/en-us/dotnet/api/system.configuration.configurationexception",
    ),
    fix_id=None,
    data=MalformedEdgeConfig,
    reads=(CollectionArea.EDGE_CONFIG_FILE,),
)


def evaluate(facts: HostFacts) -> tuple[Finding, ...]:
    read = facts.edge_config_file
    if read is None or read.xml_error is None:
        return ()
    error = read.xml_error
    values: tuple[tuple[str, str | int], ...] = (
        ("line", error.line),
        ("column", error.column),
        ("XML error", error.message),
        ("text of the line", error.text),
    )
    return (
        c.finding(
            METADATA,
            facts,
            subject=read.config_path,
            summary=(
                f"{read.config_path} is not well-formed XML at line {error.line}, column "
                f"{error.column} ({error.message}): the Microsoft Exchange Transport service cannot "
                "load it and will not start after its next restart"
            ),
            evidence=(EvidenceItem(source="Get-Content", subject=read.config_path, values=values),),
            data=MalformedEdgeConfig(
                config_path=read.config_path, line=error.line, column=error.column, xml_error=error.message
            ),
        ),
    )
