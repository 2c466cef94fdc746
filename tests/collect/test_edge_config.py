from __future__ import annotations

import pytest

from agent.collect import edge_config
from agent.errors import UnusableOutputError
from agent.model.command import SWITCH
from agent.model.remote import RemoteObject

PATH = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Bin\\EdgeTransport.exe.config"


def content(text: str) -> tuple[RemoteObject, ...]:
    # Get-Content output: a string carrying PSPath and friends, so it travels as an object.
    return (RemoteObject(("System.String", "System.Object"), {"PSPath": "x", "ReadCount": 1}, text),)


def config(settings: str) -> str:
    return (
        '\ufeff<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n  <runtime><gcServer enabled="true"/>'
        f"</runtime>\n  <appSettings>\n{settings}\n  </appSettings>\n</configuration>\n"
    )


def test_calls_for_2013_and_later_and_for_2010() -> None:
    (call,) = edge_config.install_path_calls(15)
    assert call.cmdlet == "Get-ItemProperty"
    assert call.param("Path") == "HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v15\\Setup"
    assert call.param("Name") == "MsiInstallPath"
    assert (
        edge_config.install_path_calls(14)[0].param("Path")
        == "HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v14\\Setup"
    )
    (read,) = edge_config.config_calls("C:\\Program Files\\Microsoft\\Exchange Server\\V15\\")
    assert read.cmdlet == "Get-Content" and read.param("LiteralPath") == PATH and read.param("Raw") is SWITCH


def test_install_path_from_the_registry_object() -> None:
    obj = RemoteObject(
        ("System.Management.Automation.PSCustomObject",),
        {"MsiInstallPath": "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\", "PSPath": "x"},
    )
    assert edge_config.parse_install_path((obj,), host="h").endswith("V15\\")
    with pytest.raises(UnusableOutputError, match="MsiInstallPath"):
        edge_config.parse_install_path((RemoteObject(("x",), {}),), host="h")


def test_missing_key_means_lenient() -> None:
    facts = edge_config.parse(
        content(config('<add key="DnsIpv6Enabled" value="true" />')), host="h", path=PATH
    )
    assert (facts.dns_fault_tolerance, facts.key_present, facts.is_lenient) == ("Lenient", False, True)
    assert facts.config_path == PATH


def test_normal_is_read_and_the_last_entry_wins() -> None:
    text = config(
        '<add key="DnsFaultTolerance" value="Lenient" />\n<add key="dnsfaulttolerance" value="Normal" />'
    )
    facts = edge_config.parse(content(text), host="h", path=PATH)
    assert (facts.dns_fault_tolerance, facts.key_present, facts.is_lenient) == ("Normal", True, False)


def test_lines_without_raw_are_joined() -> None:
    lines = config('<add key="DnsFaultTolerance" value="Normal" />').splitlines()
    results = tuple(RemoteObject(("System.String",), {}, line) for line in lines)
    assert edge_config.parse(results, host="h", path=PATH).dns_fault_tolerance == "Normal"


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<configuration><appSettings><add key="DnsFaultTolerance" value="&lol2;" /></appSettings></configuration>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<configuration><appSettings><add key="DnsFaultTolerance" value="&x;" /></appSettings></configuration>"""


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (BILLION_LAUGHS, "DTD"),
        (EXTERNAL_ENTITY, "DTD"),
        ("<configuration><appSettings>", "not well-formed"),
        ("   ", "empty"),
    ],
)
def test_hostile_or_broken_files_are_refused_with_the_path(text: str, problem: str) -> None:
    with pytest.raises(UnusableOutputError, match=problem) as caught:
        edge_config.parse(content(text), host="ex01", path=PATH)
    assert caught.value.host == "ex01" and caught.value.cmdlet == "Get-Content"
    if problem != "empty":
        assert PATH in caught.value.reason


def test_values_with_odd_characters_are_kept_as_data() -> None:
    facts = edge_config.parse(
        content(config('<add key="DnsFaultTolerance" value="$(evil) `n &quot;x&quot;" />')),
        host="h",
        path=PATH,
    )
    assert facts.dns_fault_tolerance == '$(evil) `n "x"'
