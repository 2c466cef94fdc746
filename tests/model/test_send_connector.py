"""SendConnectorFacts.sources: which servers a connector is for, by name or FQDN."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from agent.model.facts import SendConnectorFacts
from agent.model.snapshot import from_json, to_json
from support.facts_builders import host


def connector(*sources: str) -> SendConnectorFacts:
    return SendConnectorFacts("Internet", ("SMTP:*;1",), (), True, False, sources, True, 1)


def test_a_server_is_known_by_its_name_or_fqdn_whatever_the_case_and_trailing_dot() -> None:
    c = connector("EX01", "ex02.Contoso.local.")
    assert c.sources("ex01.contoso.local")  # a listed name matches the server's FQDN's
    assert c.sources("EX02", "ex02.contoso.local")  # a listed FQDN, the server's FQDN
    assert not c.sources("EX02")  # a listed FQDN says nothing of a bare name's domain
    assert not c.sources("ex03.contoso.local", "EX03")


def test_a_connector_that_lists_no_server_is_for_every_server() -> None:
    assert connector().sources("anything")


NAMES = st.text(alphabet="abcEX0.- ", max_size=12)


@given(st.lists(NAMES, max_size=6), st.lists(NAMES, max_size=3))
def test_sources_answers_as_comparing_each_listed_server_would(listed: list[str], names: list[str]) -> None:
    # The rule, stated the slow way: each listed server normalized at each call.
    wanted = {n.strip().lower().rstrip(".") for n in names if n.strip()}
    wanted |= {n.split(".", 1)[0] for n in wanted}
    slow = not listed or any(s.strip().lower().rstrip(".") in wanted for s in listed)
    assert connector(*listed).sources(*names) == slow


def test_the_precomputed_names_are_not_facts() -> None:
    c = connector("EX01")
    other = dataclasses.replace(c, source_transport_servers=("EX02",))
    assert other.sources("ex02") and not other.sources("ex01")  # made again for the copy
    assert c == connector("EX01") and "_source_names" not in repr(c)
    facts = host(connectors=[c])
    text = to_json([facts])
    assert "_source_names" not in text
    (read,) = from_json(text)
    assert read.send_connectors == (c,) and read.send_connectors[0].sources("EX01")
