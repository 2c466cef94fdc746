"""A property change declared once: the call, read-back, rollback and changes of a Draft all
come from one Setting and its PropertyChanges."""

from __future__ import annotations

import pytest

from agent.fixes._setting import PropertyChange, Setting, SettingChange, setting_draft
from agent.model.command import CmdletCall, Endpoint
from agent.model.plan import Change, FactArea, FactRef

TRANSPORT = Setting.of(Endpoint.EXCHANGE, "TransportService", ("Identity", "EX01"))


def test_one_declaration_gives_the_call_the_read_back_the_rollback_and_the_changes() -> None:
    change = SettingChange(
        TRANSPORT,
        (
            PropertyChange("ExternalDNSServers", ("10.0.0.11",), ("203.0.113.53",)),
            PropertyChange("ExternalDNSAdapterEnabled", True, False),
        ),
    )
    identity = ("Identity", "EX01")
    assert change.call == CmdletCall(
        Endpoint.EXCHANGE,
        "Set-TransportService",
        (identity, ("ExternalDNSServers", ("203.0.113.53",)), ("ExternalDNSAdapterEnabled", False)),
    )
    assert change.read_back == CmdletCall(Endpoint.EXCHANGE, "Get-TransportService", (identity,))
    assert change.rollback == (
        CmdletCall(
            Endpoint.EXCHANGE,
            "Set-TransportService",
            (identity, ("ExternalDNSServers", ("10.0.0.11",)), ("ExternalDNSAdapterEnabled", True)),
        ),
    )
    assert change.changes == (
        Change("ExternalDNSServers", ("10.0.0.11",), ("203.0.113.53",)),
        Change("ExternalDNSAdapterEnabled", True, False),
    )


def test_an_empty_list_is_restored_with_null() -> None:
    # Set-TransportService clears a multi-valued property with $null.
    change = SettingChange(TRANSPORT, (PropertyChange("InternalDNSServers", (), ("10.0.0.10",)),))
    assert change.rollback[0].param("InternalDNSServers") is None
    assert change.changes == (Change("InternalDNSServers", (), ("10.0.0.10",)),)


def test_an_unknown_before_value_is_not_restored() -> None:
    dns_client = Setting.of(Endpoint.OS, "DnsClient", ("InterfaceIndex", 12))
    unknown = SettingChange(dns_client, (PropertyChange("RegisterThisConnectionsAddress", None, True),))
    assert unknown.rollback == ()
    assert unknown.changes == (Change("RegisterThisConnectionsAddress", None, True),)
    partly = SettingChange(dns_client, (PropertyChange("A", None, True), PropertyChange("B", False, True)))
    (restore,) = partly.rollback
    assert restore == CmdletCall(Endpoint.OS, "Set-DnsClient", (("InterfaceIndex", 12), ("B", False)))


def test_a_selector_and_a_parameter_name_other_than_the_property() -> None:
    # Set-ExfixAppSetting -LiteralPath <file> -Key DnsFaultTolerance -Value <value>; read back
    # with Get-Content -LiteralPath <file>.
    config = Setting(
        Endpoint.OS, "Set-ExfixAppSetting", "Get-Content", (("LiteralPath", "C:\\x.config"),),
        selector=(("Key", "DnsFaultTolerance"),),
    )  # fmt: skip
    change = SettingChange(config, (PropertyChange("DnsFaultTolerance", "Normal", "Lenient", "Value"),))
    path, key = ("LiteralPath", "C:\\x.config"), ("Key", "DnsFaultTolerance")
    assert change.call == CmdletCall(Endpoint.OS, "Set-ExfixAppSetting", (path, key, ("Value", "Lenient")))
    assert change.read_back == CmdletCall(Endpoint.OS, "Get-Content", (path,))
    (restore,) = change.rollback
    assert restore == CmdletCall(Endpoint.OS, "Set-ExfixAppSetting", (path, key, ("Value", "Normal")))
    assert change.changes == (Change("DnsFaultTolerance", "Normal", "Lenient"),)


def test_a_change_changes_something() -> None:
    with pytest.raises(ValueError, match="at least one property"):
        SettingChange(TRANSPORT, ())


def test_setting_draft_takes_the_four_parts_from_the_declaration() -> None:
    change = SettingChange(TRANSPORT, (PropertyChange("InternalDNSAdapterEnabled", False, True),))
    deps = (FactRef(FactArea.TRANSPORT_INTERNAL_DNS),)
    draft = setting_draft(
        change, kind="enable-transport-internal-dns-adapter", fix_id="set-transport-internal-dns",
        description="d", restart_required=True, finding_ids=("f",), depends_on=deps,
    )  # fmt: skip
    assert (draft.call, draft.read_back, draft.rollback, draft.changes) == (
        change.call,
        change.read_back,
        change.rollback,
        change.changes,
    )
    assert draft.restart_required and not draft.manual and not draft.disruptive
    assert draft.depends_on == deps and draft.finding_ids == ("f",)
