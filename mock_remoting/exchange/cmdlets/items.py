"""Provider items: Get-ItemProperty of Exchange's Setup registry key, Get-Content of
EdgeTransport.exe.config, and the files of ``<install path>Logging\\`` (exfix's change marker:
New-Item, Get-Content, Remove-Item), the only items the lab's hosts have.

New-Item of a file without ``-Force`` fails when the file exists, as PowerShell's FileSystem
provider does (it opens the file ``FileMode.CreateNew``; the IOException is written as
``NewItemIOError``, category WriteError): the lab runs cmdlets under the fleet's lock, so
creating is atomic here as CREATE_NEW is on Windows."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from psrpcore.types import ErrorCategory, PSCustomObject, PSInt64, PSNoteProperty, PSString, add_note_property

from mock_remoting.backend import Endpoint
from mock_remoting.exchange import edgeconfig, records
from mock_remoting.exchange.binding import Kind, P
from mock_remoting.exchange.cmdlets.base import Context, Registry, identity_matches
from mock_remoting.exchange.objects.exchange import install_path
from mock_remoting.exchange.objects.windows import registry_setup
from mock_remoting.exchange.state import HostState

REGISTRY = Registry()

_PATH = P("Path", Kind.STRINGS, position=0)
_LITERAL_PATH = P("LiteralPath", Kind.STRINGS, aliases=("PSPath", "LP"))


def _registry_key(host: HostState) -> str:
    return f"HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v{host.spec.major}\\Setup"


def config_path(host: HostState) -> str:
    return install_path(host) + "Bin\\EdgeTransport.exe.config"


def _normalize_path(path: str) -> str:
    text = path.strip().replace("/", "\\")
    text = re.sub(
        r"^(Microsoft\.PowerShell\.Core\\)?Registry::HKEY_LOCAL_MACHINE\\",
        "HKLM:\\\\",
        text,
        flags=re.IGNORECASE,
    )
    text = re.sub(r"^(Microsoft\.PowerShell\.Core\\)?FileSystem::", "", text, flags=re.IGNORECASE)
    text = re.sub(r"\\{2,}", r"\\", text)
    return text.rstrip("\\").lower()


def logging_dir(host: HostState) -> str:
    return install_path(host) + "Logging\\"


def _in_logging(host: HostState, path: str) -> bool:
    """A file right inside <install path>Logging\\ (the only place files can be made)."""
    directory = _normalize_path(logging_dir(host))
    normalized = _normalize_path(path)
    return normalized.startswith(directory + "\\") and "\\" not in normalized[len(directory) + 1 :]


def _not_found(ctx: Context, path: str) -> Any:
    return ctx.cmdlet_error(
        f"Cannot find path '{path}' because it does not exist.",
        "PathNotFound",
        ErrorCategory.ObjectNotFound,
        "System.Management.Automation.ItemNotFoundException",
        path,
    )


def _paths_naming(ctx: Context, args: dict[str, Any], item: str) -> Iterator[str]:
    """Each -Path / -LiteralPath that names ``item``; any other is a PathNotFound error."""
    paths = args.get("Path") or args.get("LiteralPath")
    if not paths:
        ctx.fail(records.missing_mandatory(ctx.cmdlet, ["Path"]))
    for path in paths:
        if _normalize_path(path) == _normalize_path(item):
            yield path
            continue
        ctx.error(_not_found(ctx, path))


@REGISTRY.cmdlet("Get-ItemProperty", Endpoint.OS, _PATH, P("Name", Kind.STRINGS, position=1), _LITERAL_PATH)
def get_item_property(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    key = _registry_key(ctx.host)
    for _path in _paths_naming(ctx, args, key):
        full = registry_setup(ctx.host, key, install_path(ctx.host))
        wanted = args.get("Name")
        if not wanted:
            ctx.emit(full)
            continue
        keep = []
        for name in wanted:
            hits = [
                p.name
                for p in full.PSObject.extended_properties
                if not p.name.startswith("PS") and identity_matches(name, p.name)
            ]
            if not hits:
                native = key.replace("HKLM:\\", "HKEY_LOCAL_MACHINE\\", 1)
                ctx.error(
                    ctx.cmdlet_error(
                        f"Property {name} does not exist at path {native}.",
                        "System.Management.Automation.PSArgumentException",
                        ErrorCategory.InvalidArgument,
                        "System.Management.Automation.PSArgumentException",
                        name,
                    )
                )
            keep += hits
        if keep:
            selected = PSCustomObject()
            for prop in full.PSObject.extended_properties:
                if prop.name in keep or prop.name.startswith("PS"):
                    selected.PSObject.extended_properties.append(
                        PSNoteProperty(prop.name, prop.get_value(full))
                    )
            ctx.emit(selected)


@REGISTRY.cmdlet(
    "Get-Content",
    Endpoint.OS,
    _PATH,
    _LITERAL_PATH,
    P("Raw", Kind.SWITCH),
    P("Encoding", Kind.STRING),
    P("ReadCount", Kind.INT),
)
def get_content(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    files = ctx.host.files
    wanted = args.get("Path") or args.get("LiteralPath") or []
    if wanted and all(_normalize_path(p) in files for p in wanted):
        for wanted_path in wanted:
            _emit_content(ctx, files[_normalize_path(wanted_path)], wanted_path, bool(args.get("Raw")))
        return
    path = config_path(ctx.host)
    host = ctx.host
    for _path in _paths_naming(ctx, args, path):
        config = host.edge_config_text
        if config is None:
            config = edgeconfig.render(host.spec.major, install_path(host), host.dns_fault_tolerance)
        _emit_content(ctx, config, path, bool(args.get("Raw")))


def _emit_content(ctx: Context, text: str, path: str, raw: bool) -> None:
    """Get-Content's output: the whole text with -Raw, else one item per line."""
    if raw:
        ctx.emit(_content_item(text, path, 1))
        return
    for number, line in enumerate(_LINES.split(text.removesuffix("\r\n").removesuffix("\n")), 1):
        ctx.emit(_content_item(line, path, number))


# Get-Content without -Raw splits at CR LF, LF or CR and drops the last line break.
_LINES = re.compile(r"\r\n|\n|\r")


def _content_item(text: str, path: str, read_count: int) -> PSString:
    """What Get-Content writes: the text, as a string carrying the provider's note properties
    (ContentCommandBase.WriteContentObject: PSPath, PSParentPath, PSChildName, PSDrive,
    PSProvider, then ReadCount). A real server sends PSDrive and PSProvider as the deserialized
    PSDriveInfo and ProviderInfo; the lab sends their names, as its registry items do."""
    provider = "Microsoft.PowerShell.Core\\FileSystem"
    parent, _, child = path.rpartition("\\")
    item = PSString(text)
    add_note_property(item, "PSPath", f"{provider}::{path}")
    add_note_property(item, "PSParentPath", f"{provider}::{parent}")
    add_note_property(item, "PSChildName", child)
    add_note_property(item, "PSDrive", path.split(":", 1)[0])
    add_note_property(item, "PSProvider", provider)
    add_note_property(item, "ReadCount", PSInt64(read_count))
    return item


@REGISTRY.cmdlet(
    "New-Item",
    Endpoint.OS,
    _PATH,
    P("ItemType", Kind.STRING, aliases=("Type",)),
    P("Value", Kind.STRING),
    P("Force", Kind.SWITCH),
)
def new_item(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    paths = args.get("Path")
    if not paths:
        ctx.fail(records.missing_mandatory(ctx.cmdlet, ["Path"]))
    if str(args.get("ItemType") or "File").lower() != "file":
        ctx.fail(
            ctx.cmdlet_error(
                "The lab makes files only.", "NotSupported", ErrorCategory.InvalidArgument,
                "System.NotSupportedException", args.get("ItemType"),
            )
        )  # fmt: skip
    for path in paths:
        key = _normalize_path(path)
        if not _in_logging(ctx.host, path):
            ctx.error(
                ctx.cmdlet_error(
                    f"Could not find a part of the path '{path}'.", "NewItemIOError",
                    ErrorCategory.WriteError, "System.IO.DirectoryNotFoundException", path,
                )
            )  # fmt: skip
            continue
        if key in ctx.host.files and not args.get("Force"):
            # FileMode.CreateNew on an existing file (no -Force): the .NET IOException's text.
            ctx.error(
                ctx.cmdlet_error(
                    f"The file '{path}' already exists.", "NewItemIOError", ErrorCategory.WriteError,
                    "System.IO.IOException", path,
                )
            )  # fmt: skip
            continue
        ctx.host.files[key] = str(args.get("Value") or "")
        ctx.emit(path)


@REGISTRY.cmdlet("Remove-Item", Endpoint.OS, _PATH, _LITERAL_PATH, P("Force", Kind.SWITCH))
def remove_item(ctx: Context, args: dict[str, Any], _: Sequence[Any]) -> None:
    paths = args.get("Path") or args.get("LiteralPath")
    if not paths:
        ctx.fail(records.missing_mandatory(ctx.cmdlet, ["Path"]))
    for path in paths:
        if ctx.host.files.pop(_normalize_path(path), None) is None:
            ctx.error(_not_found(ctx, path))
