"""mock_remoting/server/pipelines.py: a CreatePipeline text's commands from the recipe of its
shape are exactly what psrpcore's deserializer makes of the text, and one text's strings
never reach another's commands."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from psrpcore import PowerShell as CorePowerShell
from psrpcore.types import PSCryptoProvider, deserialize
from pypsrp.complex_objects import (
    ApartmentState,
    Command,
    CommandParameter,
    HostInfo,
    Pipeline,
    RemoteStreamOptions,
)
from pypsrp.messages import CreatePipeline
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import Serializer

from mock_remoting.server.pipelines import Recipes, shape_of, to_commands

pytestmark = pytest.mark.lab


def _text(*statements: list[tuple[str, list[tuple[str | None, Any]]]], script: bool = False) -> bytes:
    """The CreatePipeline CLIXML pypsrp sends for these statements (commands and parameters)."""
    commands: list[Any] = []
    for statement in statements:
        for name, params in statement:
            command = Command(cmd=name, is_script=script, use_local_scope=None)
            for key, value in params:
                command.args.append(CommandParameter(name=key, value=value))
            commands.append(command)
        commands[-1].end_of_statement = True
    pipeline = Pipeline(is_nested=False, cmds=commands, history=None, redirect_err_to_out=False)
    options = (ApartmentState(value=2), RemoteStreamOptions(value=15))
    message = CreatePipeline(True, *options, False, HostInfo(host=None), pipeline, False)
    return ET.tostring(Serializer().serialize(message))


def _psrpcore(text: bytes) -> Any:
    return deserialize(ET.fromstring(text), PSCryptoProvider())


def _reference(text: bytes) -> Any:
    return to_commands(CorePowerShell.FromPSObjectForRemoting(_psrpcore(text)))


def _typed(statements: Any) -> Any:
    """Statements with every value's type, so that PSString and str are told apart."""

    def params(command: Any) -> list[tuple[Any, ...]]:
        return [(type(p.name), p.name, type(p.value), p.value) for p in command.parameters]

    return [[(type(c.name), c.name, c.is_script, params(c)) for c in statement] for statement in statements]


HOSTILE = [
    "EX01",
    "EX01-0042",
    "a & b <c> \"d\" 'e'",
    "_x000A_ literal and _X0041_",
    "line\r\nbreak\ttab",
    "esc \x1b[31m nul-free controls \x07",
    "ünïcödé ✓ \U0001f600",
    "",
    "ExfixLabSlot3",  # the marker's own spelling, as a value
]


@pytest.mark.parametrize("value", HOSTILE)
def test_filled_recipes_are_what_psrpcore_deserializes(value: str) -> None:
    recipes = Recipes()
    # The first text of the shape makes the recipe; the second is filled from it.
    shapes = [
        lambda v: _text([("Get-ExchangeServer", [("Identity", v)])]),
        lambda v: _text(
            [("Get-Queue", [("Server", v), ("ResultSize", 500)]), ("Select-Object", [("First", 1)])]
        ),
        lambda v: _text(
            [("Resolve-DnsName", [("Name", v), ("Type", "SRV"), ("DnsOnly", True), ("Tcp", None)])]
        ),
        lambda v: _text([("Get-TransportService", [("Identity", v)])], [("Get-Service", [(None, v)])]),
        lambda v: _text([(f"Write-Output '{v}'", [])], script=True),
    ]
    for make in shapes:
        # "" is written <S N="V" />: a shape of its own, with its own first text
        first, text = make("seed-value" if value else ""), make(value)
        assert shape_of(first) == shape_of(text)
        assert _typed(recipes.statements(first, _psrpcore)) == _typed(_reference(first))
        filled = recipes.statements(text, _psrpcore)
        assert filled is not None
        assert _typed(filled) == _typed(_reference(text))
    assert recipes.hits == 2 * len(shapes) and recipes.misses == 0


def test_strings_inside_lists_or_objects_are_not_recipes() -> None:
    recipes = Recipes()
    servers = ["10.0.0.1", "10.0.0.2"]
    text = _text([("Set-TransportService", [("Identity", "EX01"), ("ExternalDNSServers", servers)])])
    assert recipes.statements(text, _psrpcore) is None  # a marker inside a list
    assert recipes.statements(text, _psrpcore) is None and recipes.misses == 2
    assert len(recipes._entries) == 1  # the shape is remembered as not a recipe


def test_hosts_get_their_own_arguments_over_the_wire(lab: Any, pypsrp_wsman: Any) -> None:
    """Through the server: texts of one shape from many threads at once, each host's pipeline
    sees its own -Identity (the answer names the server asked for, or the error names it)."""
    fleet = lab("mixed-fleet", hosts=10)
    endpoints = fleet.endpoints
    failures: list[str] = []

    def ask(endpoint: Any) -> None:
        short = endpoint.name.split(".")[0].upper()
        try:
            wsman = pypsrp_wsman(endpoint.exchange_port, auth="ntlm")
            with RunspacePool(wsman, configuration_name="Microsoft.Exchange") as pool:
                for identity in (short, f"{short}-missing & <odd>"):
                    ps = PowerShell(pool).add_cmdlet("Get-ExchangeServer").add_parameter("Identity", identity)
                    output = ps.invoke()
                    if identity == short:
                        names = [str(o.adapted_properties.get("Name")) for o in output]
                        if names != [short]:
                            failures.append(f"{short}: {names}")
                    elif not ps.streams.error or identity not in str(ps.streams.error[0]):
                        failures.append(f"{short}: error {[str(e) for e in ps.streams.error]}")
        except Exception as error:  # a thread's exception would otherwise only be printed
            failures.append(f"{short}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=ask, args=(e,)) for e in endpoints]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert not failures
    assert fleet.server.parsed.recipes.hits >= len(endpoints)
