"""mock_remoting/server/fastclixml.py writes the lab's answers byte for byte as psrpcore's
serializer and ElementTree would, and hands anything else back to psrpcore (None)."""

from __future__ import annotations

import datetime
import threading
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from psrpcore.types import (
    PSCryptoProvider,
    PSCustomObject,
    PSDict,
    PSInt,
    PSList,
    PSNoteProperty,
    PSObject,
    PSString,
    PSUInt16,
    serialize,
)

from lab.exchange._exchange_support import make_fleet
from mock_remoting import scenarios
from mock_remoting.exchange import command
from mock_remoting.exchange.cmdlets import CMDLETS
from mock_remoting.exchange.objects.dotnet import dotnet, note, string_array, typed_list
from mock_remoting.exchange.objects.firewall import Action, Direction, Profile
from mock_remoting.exchange.objects.windows import ServiceControllerStatus
from mock_remoting.server.fastclixml import to_clixml
from mock_remoting.server.psrp import lab_error

SCENARIOS = sorted(p.stem for p in (Path(scenarios.__file__).parent).glob("*.yaml"))


def _psrpcore(value: Any) -> bytes:
    return ET.tostring(serialize(value, PSCryptoProvider()), encoding="utf-8", method="xml")


def _answers(scenario: str) -> list[Any]:
    """What every host of the scenario answers to every Get-* cmdlet without parameters and
    to a Resolve-DnsName, on each endpoint that has the cmdlet."""
    fleet = make_fleet(scenario)
    found: list[Any] = []
    for host in fleet.hosts:
        for definition in CMDLETS.values():
            name = definition.name
            if not name.lower().startswith("get-") and name != "Resolve-DnsName":
                continue
            params = (("Name", "fabrikam.com"),) if name == "Resolve-DnsName" else ()
            for endpoint in definition.endpoints:
                result = host.invoke(endpoint, [command(name, *params)], threading.Event())
                found.extend(result.output)
    return found


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_answer_of_every_scenario_is_what_psrpcore_writes(scenario: str) -> None:
    answers = _answers(scenario)
    assert answers
    for value in answers:
        fast = to_clixml(value)
        assert fast is not None, f"{scenario}: {type(value).__name__} fell back to psrpcore"
        assert fast == _psrpcore(value)


def _hostile(text: str) -> PSObject:
    return dotnet(
        ["Hostile.Type<&>", "System.Object"],
        [
            ("Plain", text),
            (f"Name {text}", PSString(text)),
            ("Empty", ""),
            ("Nothing", None),
            ("List", string_array([text, "", "_x0041_"])),
            ("Empty list", typed_list(["System.Object[]"], [])),
            ("When", datetime.datetime(2025, 1, 15, 10, 0, 0, 123456, tzinfo=datetime.timezone.utc)),
            ("Naive when", datetime.datetime(2025, 1, 15, 10, 0, 0)),
            ("Took", datetime.timedelta(days=1, seconds=3.5)),
            ("Big", 2**40),
            ("Negative", -5),
            ("Ratio", 0.25),
            ("Guid", uuid.UUID(int=7)),
            ("Int", PSInt(3)),
            ("Port", PSUInt16(53)),
            ("Yes", True),
        ],
        extended=[("Status", ServiceControllerStatus.Running), ("Profile", Profile.Public)],
        to_string=text,
    )


@pytest.mark.parametrize(
    "text",
    [
        "a & b < c > d \"quoted\" 'single'",
        "tab\there\r\nnew line",
        "_x000A_ and _X0041_ stay literal",
        "esc \x1b[31m red \x00 nul \x7f del \x85 nel",
        "astral \U0001f600 and a lone surrogate \ud800",
        "ünïcödé ✓",
        "",
    ],
)
def test_hostile_strings_are_escaped_as_psrpcore_escapes_them(text: str) -> None:
    value = _hostile(text)
    fast = to_clixml(value)
    assert fast is not None and fast == _psrpcore(value)


def test_custom_objects_are_written_as_psrpcore_writes_them() -> None:
    # Get-ItemProperty's answer (exchange/cmdlets/items.py) is a PSCustomObject.
    value = PSCustomObject(PSPath="HKLM:\\SOFTWARE\\x", Count=PSInt(2), Name="_x0041_ & <y>")
    nested = dotnet(["Outer"], [("Inner", value), ("Again", value)])
    for item in (value, nested, PSCustomObject()):
        fast = to_clixml(item)
        assert fast is not None and fast == _psrpcore(item)


def test_objects_and_type_names_seen_again_are_references_as_in_psrpcore() -> None:
    shared = dotnet(["Shared.Thing", "System.Object"], [("A", 1)])
    outer = dotnet(
        ["Outer", "System.Object"],
        [("First", shared), ("Again", shared), ("Other", dotnet(["Shared.Thing", "System.Object"], []))],
        # equal enum values of other types: a weak-referenceable member (PSInt-based) is found
        # again by value, a PSUInt16-based one by identity only
        extended=[
            ("S1", ServiceControllerStatus.Running),
            ("S2", ServiceControllerStatus.Running),
            ("D", Direction.Outbound),
            ("A", Action.Allow),
            ("D2", Direction.Outbound),
        ],
    )
    fast = to_clixml(outer)
    assert fast is not None and fast == _psrpcore(outer)
    assert b"<Ref " in fast and b"<TNRef " in fast
    assert to_clixml(PSList([shared, shared])) == _psrpcore(PSList([shared, shared]))


def test_the_emulations_cheap_note_property_is_psrpcores() -> None:
    for value in ("x", None, 3, string_array(["a"])):
        cheap, reference = note("Name", value), PSNoteProperty("Name", value)
        assert vars(cheap) == vars(reference) and type(cheap) is type(reference)
        assert cheap.get_value(PSObject()) is reference.get_value(PSObject())


def test_what_it_does_not_write_goes_back_to_psrpcore() -> None:
    record = lab_error("boom")
    extended_string = PSString("s")
    extended_string.PSObject.extended_properties.append(dotnet([], [("N", 1)]).PSObject.adapted_properties[0])
    for value in (record, PSDict({"a": 1}), {"a": 1}, [1, 2], b"bytes", extended_string):
        assert to_clixml(value) is None, type(value).__name__
    assert to_clixml(dotnet(["T"], [("Record", record)])) is None  # nested, too
    # A lone surrogate outside an <S> value (ElementTree writes a character reference).
    assert to_clixml(dotnet(["Bad\ud800"], [])) is None
    assert _psrpcore(dotnet(["Bad\ud800"], [])).count(b"&#55296;") == 1
