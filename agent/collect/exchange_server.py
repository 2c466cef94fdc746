"""Get-ExchangeServer: version, FQDN, AD site, domain and roles, and the cmdlet nouns to use.

Exchange 2010 (14.x) has Get-/Set-TransportServer; 2013 and later (15.x) have
Get-/Set-TransportService. Exchange 2007 (8.x) has no remote PowerShell at all (only the local
Microsoft.Exchange.Management.PowerShell.Admin snap-in), so exfix cannot manage it.
"""

from __future__ import annotations

import re

from agent.collect import _values as v
from agent.errors import UnsupportedHostError, UnusableOutputError
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import ExchangeServerFacts, TransportNoun
from agent.model.remote import RemoteObject

_ADMIN_VERSION = re.compile(r"version\s+(\d+)\.(\d+)\s*\(\s*build\s+(\d+)\.(\d+)\s*\)", re.IGNORECASE)
_DOTTED_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)\.(\d+)")

_ROLE_FLAGS = (
    ("IsMailboxServer", "Mailbox"),
    ("IsClientAccessServer", "ClientAccess"),
    ("IsHubTransportServer", "HubTransport"),
    ("IsEdgeServer", "Edge"),
    ("IsUnifiedMessagingServer", "UnifiedMessaging"),
)


def calls(identity: str) -> tuple[CmdletCall, ...]:
    """The host's own server object. ``identity`` is the server's name or FQDN."""
    return (CmdletCall(Endpoint.EXCHANGE, "Get-ExchangeServer", (("Identity", identity),)),)


def dag_calls(identity: str) -> tuple[CmdletCall, ...]:
    """The server's Mailbox role settings, for its DAG membership (a Mailbox server only)."""
    return (CmdletCall(Endpoint.EXCHANGE, "Get-MailboxServer", (("Identity", identity),)),)


def parse_dag(results: tuple[RemoteObject, ...], *, identity: str) -> str | None:
    """The DatabaseAvailabilityGroup of the server's Get-MailboxServer object ("" for none; an
    ADObjectId, sent as its name over remoting), or None when no object for it came back."""
    obj = _pick(v.objects(results), identity)
    if obj is None:
        return None
    value = obj.get("DatabaseAvailabilityGroup")
    if isinstance(value, RemoteObject):
        name = value.get("Name")
        return name if isinstance(name, str) else v.text(value)
    return v.text(value)


def transport_noun(major: int, *, host: str) -> TransportNoun:
    """The transport cmdlet noun for an Exchange major version.

    Raises UnsupportedHostError for Exchange 2007 and older (8.x), which has no remote
    PowerShell endpoint to talk to.
    """
    if major <= 8:
        raise UnsupportedHostError(
            host,
            f"Exchange major version {major} (Exchange 2007 or older) has no remote PowerShell; "
            "exfix manages Exchange 2010 (14.x) and later",
        )
    if major < 14:
        raise UnsupportedHostError(host, f"unknown Exchange major version {major}")
    if major == 14:
        return TransportNoun.TRANSPORT_SERVER
    return TransportNoun.TRANSPORT_SERVICE


def parse_version(value: object) -> tuple[int, int, int, int] | None:
    """AdminDisplayVersion in any of its forms: a ServerVersion object (Major, Minor, Build,
    Revision), its text "Version 15.1 (Build 2375.7)", or a dotted "15.1.2375.7"."""
    if isinstance(value, RemoteObject):
        parts = [v.integer(value.get(name)) for name in ("Major", "Minor", "Build", "Revision")]
        if all(p is not None for p in parts):
            major, minor, build, revision = (p if p is not None else 0 for p in parts)
            return major, minor, build, revision
    words = v.text(value)
    match = _ADMIN_VERSION.search(words) or _DOTTED_VERSION.search(words)
    if match is None:
        return None
    a, b, c, d = (int(g) for g in match.groups())
    return a, b, c, d


def _site_name(value: object) -> str:
    # Site is an ADObjectId: its Name is the site, its ToString the canonical path
    # ("contoso.local/Configuration/Sites/Default-First-Site-Name").
    if isinstance(value, RemoteObject):
        name = value.get("Name")
        if isinstance(name, str) and name:
            return name
    return v.text(value).rstrip("/").rsplit("/", 1)[-1]


def _roles(obj: RemoteObject) -> tuple[str, ...]:
    declared = [part.strip() for part in v.text(obj.get("ServerRole")).split(",") if part.strip()]
    if declared and declared != ["None"]:
        return v.unique(declared)
    return tuple(role for flag, role in _ROLE_FLAGS if v.boolean(obj.get(flag)) is True)


def _pick(objects: tuple[RemoteObject, ...], identity: str | None) -> RemoteObject | None:
    if not objects:
        return None
    if identity:
        wanted = identity.strip().lower()
        for obj in objects:
            names = {v.text(obj.get("Name")).lower(), v.text(obj.get("Fqdn")).lower()}
            if wanted in names or wanted.split(".", 1)[0] in names:
                return obj
    return objects[0]


def organization(distinguished_name: str) -> str:
    """The organisation a server belongs to, from its DistinguishedName: the RDN just above
    ``CN=Microsoft Exchange,CN=Services,CN=Configuration``, with the forest's DC parts, as
    ``"<organisation>@<dc.dc>"``. Every server of one organisation has the same; "" when the DN
    has no such part (the object did not come from the configuration partition)."""
    # A comma inside an RDN value is escaped as "\\," (RFC 4514 2.4): split on the others only.
    parts = [p.strip() for p in re.split(r"(?<!\\),", distinguished_name)]
    lowered = [p.lower() for p in parts]
    for i in range(1, len(parts) - 2):
        if lowered[i : i + 3] == ["cn=microsoft exchange", "cn=services", "cn=configuration"]:
            rdn = parts[i - 1]
            if not rdn.lower().startswith("cn="):
                return ""
            forest = ".".join(p[3:] for p in parts[i + 3 :] if p.lower().startswith("dc="))
            return f"{rdn[3:]}@{forest.lower()}"
    return ""


def parse(
    results: tuple[RemoteObject, ...], *, host: str, identity: str | None = None
) -> ExchangeServerFacts:
    """The server object as facts.

    Raises UnsupportedHostError for Exchange 2007 and older, and UnusableOutputError when no
    server object came back or its version cannot be read.
    """
    obj = _pick(v.objects(results), identity)
    if obj is None:
        raise UnusableOutputError(host, "Get-ExchangeServer", "no server object came back")
    version = parse_version(obj.get("AdminDisplayVersion"))
    if version is None:
        raise UnusableOutputError(
            host, "Get-ExchangeServer",
            f"cannot read the Exchange version from {v.text(obj.get('AdminDisplayVersion'))!r}",
        )
    major, minor, build, revision = version
    noun = transport_noun(major, host=host)
    name = v.text(obj.get("Name")) or v.text(obj.to_string)
    fqdn = v.text(obj.get("Fqdn")) or name
    domain = v.text(obj.get("Domain"))
    if not domain and "." in fqdn:
        domain = fqdn.split(".", 1)[1]
    return ExchangeServerFacts(
        name=name,
        fqdn=fqdn,
        domain=domain,
        ad_site=_site_name(obj.get("Site")),
        version=f"{major}.{minor}.{build}.{revision}",
        major=major,
        minor=minor,
        build=build,
        revision=revision,
        admin_display_version=v.text(obj.get("AdminDisplayVersion")),
        roles=_roles(obj),
        transport_noun=noun,
        edition=v.text(obj.get("Edition")),
        organization=organization(v.text(obj.get("DistinguishedName"))),
    )
