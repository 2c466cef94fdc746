from __future__ import annotations

import json

from click.testing import CliRunner

from agent.cli.rules_cmd import rules
from agent.rules.registry import RULES


def test_table_lists_every_rule_with_fix_and_restart() -> None:
    result = CliRunner().invoke(rules, [])
    assert result.exit_code == 0, result.output
    table, references = result.output.split("\n\nreferences\n")
    lines = table.splitlines()
    assert lines[0].split()[:5] == ["id", "severity", "kind", "fix", "restart"]
    assert len(lines) == 1 + len(RULES)
    # Under the table, every rule's references, one line per rule.
    cited = dict(line.split(None, 1) for line in references.splitlines())
    assert list(cited) == [rule.id for rule in RULES]
    assert cited["server-a-record-wrong-nic"] == ", ".join(
        next(r for r in RULES if r.id == "server-a-record-wrong-nic").metadata.references
    )
    assert "KB816592" in cited["server-a-record-wrong-nic"]
    row = next(line for line in lines if line.startswith("dns-fault-tolerance "))
    assert "set-dns-fault-tolerance" in row and " yes " in row
    assert "\x1b[" not in result.output


def test_json_is_the_full_catalogue() -> None:
    result = CliRunner().invoke(rules, ["--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [r["id"] for r in data["rules"]] == [r.id for r in RULES]
    first = data["rules"][0]
    assert set(first) == {
        "id",
        "title",
        "severity",
        "kind",
        "explanation",
        "references",
        "fix_id",
        "other_fix_ids",
        "fix_disrupts_mail_flow",
        "reads",
        "reads_if_collected",
    }
    assert first["reads"] == ["queues"]  # the fact areas it reads: not judged where one failed
    firewall = next(r for r in data["rules"] if r["id"] == "host-firewall-blocks-dns")
    # The rule's findings name the fix their facts need: the block rule off, or an allow rule.
    assert (firewall["fix_id"], firewall["other_fix_ids"]) == (
        "disable-dns-firewall-block",
        ["allow-dns-through-firewall"],
    )


def test_unknown_format_is_a_usage_error() -> None:
    result = CliRunner().invoke(rules, ["--format", "xml"])
    assert result.exit_code == 2
