"""How a value from the facts reads in one short line: the before/after of a change and the
evidence of a finding, as the scripts' comments, REVIEW.md and review.html all show them.

These return plain text; each caller still makes it safe for where it goes (agent.report.safe,
or the review page's escaping).
"""

from __future__ import annotations

from agent.model.findings import DataValue, EvidenceItem
from agent.model.plan import Action, Change


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 server``, ``2 servers`` (``many`` for an irregular plural)."""
    return f"{n} {word}" if n == 1 else f"{n} {many or word + 's'}"


def format_value(value: DataValue) -> str:
    """A before/after or evidence value in one short line (for comments and REVIEW.md)."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def evidence_line(item: EvidenceItem) -> str:
    where = f"{item.source} ({item.vantage})" if item.vantage else item.source
    values = "; ".join(f"{k}={format_value(v)}" for k, v in item.values)
    return f"{where}, {item.subject}: {values}"


def cause_label(finding_id: str) -> str:
    """A finding named by its id (``rule|host|subject``) as a reader knows it: the rule and
    what it is about, not the internal key ("nic-dns-registration-disabled (NIC 'Ethernet')")."""
    rule, _, rest = finding_id.partition("|")
    _, _, subject = rest.partition("|")
    return f"{rule} ({subject})" if subject else rule


def change_before(action: Action, change: Change) -> str:
    """A change's before value as a reader should take it. A step that interrupts mail flow
    (the transport restart) plans no before: it stops and starts the service whatever its
    state, and apply records the state it finds ("Running -> Running" in the journal), so
    "(none)" would read as if the service were not there."""
    if change.before is None and action.disruptive:
        return "(as found; stopped and started)"
    return format_value(change.before)
