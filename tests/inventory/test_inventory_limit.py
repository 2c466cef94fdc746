"""``--limit`` as Ansible understands it."""

from __future__ import annotations

import pytest

from agent.errors import UsageError
from agent.inventory import Inventory, parse_inventory

INVENTORY = """\
all:
  children:
    exchange:
      children:
        dag1:
          hosts:
            ex01.contoso.local:
            ex02.contoso.local:
        dag2:
          hosts:
            ex03.contoso.local:
            ex04.contoso.local:
    edge:
      hosts:
        edge01.contoso.local:
    legacy:
      hosts:
        ex02.contoso.local:
  hosts:
    lonely.contoso.local:
"""


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return parse_inventory(INVENTORY, "inv.yaml")


def names(inventory: Inventory, limit: str | None) -> list[str]:
    return [t.name.split(".")[0] for t in inventory.select(limit)]


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (None, ["ex01", "ex02", "ex03", "ex04", "edge01", "lonely"]),
        ("", ["ex01", "ex02", "ex03", "ex04", "edge01", "lonely"]),
        ("all", ["ex01", "ex02", "ex03", "ex04", "edge01", "lonely"]),
        ("*", ["ex01", "ex02", "ex03", "ex04", "edge01", "lonely"]),
        ("ex01.contoso.local", ["ex01"]),
        ("dag1", ["ex01", "ex02"]),
        ("exchange", ["ex01", "ex02", "ex03", "ex04"]),
        ("dag2,edge", ["ex03", "ex04", "edge01"]),
        ("dag2:edge", ["ex03", "ex04", "edge01"]),
        ("ex0*", ["ex01", "ex02", "ex03", "ex04"]),
        ("ex0[13]*", ["ex01", "ex03"]),
        ("exchange:!legacy", ["ex01", "ex03", "ex04"]),
        ("exchange,!dag2", ["ex01", "ex02"]),
        ("exchange:&legacy", ["ex02"]),
        ("!exchange", ["edge01", "lonely"]),
        ("&dag1", ["ex01", "ex02"]),
        ("ungrouped", ["lonely"]),
        ("~ex0[24]", ["ex02", "ex04"]),
        ("nomatch,edge", ["edge01"]),
        (" dag1 , ex04.contoso.local ", ["ex01", "ex02", "ex04"]),
    ],
)  # fmt: skip
def test_limit_patterns(inventory: Inventory, limit: str | None, expected: list[str]) -> None:
    assert names(inventory, limit) == expected


@pytest.mark.parametrize(
    "limit", ["nomatch", "exchange:!exchange", "dag1:&dag2", "!all", "~zzz", "x'$(calc)",
              "EX01.CONTOSO.LOCAL", "EX0*", "~lonely.contoso.local.x"]
)
def test_matching_nothing_is_a_usage_error(inventory: Inventory, limit: str) -> None:
    with pytest.raises(UsageError) as caught:
        inventory.select(limit)
    assert str(caught.value) == f"no hosts match --limit {limit!r}"


def test_bad_regex_is_a_usage_error(inventory: Inventory) -> None:
    with pytest.raises(UsageError, match="regular expression"):
        inventory.select("~ex(")


def test_ipv6_addresses_are_not_split_on_colons() -> None:
    inventory = parse_inventory("all:\n  hosts:\n    '2001:db8::21':\n    '2001:db8::22':\n", "v6.yaml")
    assert [t.name for t in inventory.select("2001:db8::21")] == ["2001:db8::21"]
