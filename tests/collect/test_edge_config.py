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


# --- the file as read: well-formed, or where it stops being -----------------------------------


def test_a_well_formed_file_has_no_xml_error() -> None:
    read = edge_config.read_file(config('<add key="DnsIpv6Enabled" value="true" />'), host="h", path=PATH)
    assert read.config_path == PATH and read.well_formed and read.xml_error is None


def crlf(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


def test_line_and_column_are_the_files_own_1_based_in_characters() -> None:
    # Typographic quotes pasted into a hand edit: three bytes each in UTF-8, one character each.
    text = crlf(
        "\ufeff<?xml version=\"1.0\" encoding=\"utf-8\"?>",
        "<configuration>",
        "  <appSettings>",
        "    <add key=\u201dDnsFaultTolerance\u201d value=\u201dLenient\u201d />",
        "  </appSettings>",
        "</configuration>",
    )
    error = edge_config.read_file(text, host="h", path=PATH).xml_error
    assert error is not None
    assert (error.line, error.column) == (4, 14)  # the first \u201d: after '    <add key='
    assert error.message == "not well-formed (invalid token)"
    assert error.text == "    <add key=\u201dDnsFaultTolerance\u201d value=\u201dLenient\u201d />"


def test_an_error_on_the_declarations_line_keeps_its_column() -> None:
    # The declaration is blanked, not cut: what follows it on line 1 keeps its column.
    text = '<?xml version="1.0" encoding="utf-8"?><configuration><appSettings></configuration>'
    error = edge_config.read_file(text, host="h", path=PATH).xml_error
    assert error is not None and error.message == "mismatched tag"
    assert (error.line, error.column) == (1, text.index("</configuration>") + 3)


def test_a_declaration_that_is_not_first_is_malformed_as_net_says() -> None:
    # .NET's XmlReader: "Unexpected XML declaration. The XML declaration must be the first node".
    text = '\r\n<?xml version="1.0" encoding="utf-8"?>\r\n<configuration />\r\n'
    error = edge_config.read_file(text, host="h", path=PATH).xml_error
    assert error is not None and error.line == 2


def test_a_truncated_file_is_malformed_at_its_end() -> None:
    # A copy or an update that stopped half-way.
    text = crlf("<configuration>", "  <appSettings>", '    <add key="A" value="1" />')
    error = edge_config.read_file(text, host="h", path=PATH).xml_error
    assert error is not None and error.line == 4 and error.message == "no element found"


def test_a_long_line_is_shown_around_the_column() -> None:
    text = "<configuration " + "a" * 400 + " & " + "b" * 400 + "/>"
    error = edge_config.read_file(text, host="h", path=PATH).xml_error
    assert error is not None and error.line == 1 and len(error.text) == 160
    assert "&" in error.text


HUGE = "<a>" + "x" * (4 * 1024 * 1024) + "</a>"


@pytest.mark.parametrize(("text", "problem"), [(BILLION_LAUGHS, "DTD"), (HUGE, "larger")])
def test_a_file_exfix_will_not_parse_is_unusable_not_malformed(text: str, problem: str) -> None:
    with pytest.raises(UnusableOutputError, match=problem):
        edge_config.read_file(text, host="ex01", path=PATH)


def test_the_settings_of_a_malformed_file_name_the_line_and_column() -> None:
    text = crlf("<configuration>", "  <appSettings>", '    <add key="DnsFaultTolerance" value="Normal" >',
                "  </appSettings>", "</configuration>")  # fmt: skip
    with pytest.raises(UnusableOutputError) as caught:
        edge_config.settings(text, host="ex01", path=PATH)
    where = "not well-formed XML: line 4, column 5: mismatched tag"
    assert caught.value.reason == f"Get-Content: {PATH}: {where}"
