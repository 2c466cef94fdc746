"""`exfix rbac`: the least-privilege roles, written from exfix's command catalogue.

The directory gets the Exchange RBAC script, the JEA role capabilities and session
configuration, and the inventory variable for the JEA endpoint (agent/permissions/render.py
says what each file is). Writes go through agent.review.files.OwnedDir: no link followed.
"""

from __future__ import annotations

from importlib import metadata

import click

from agent.errors import UsageError
from agent.permissions import build
from agent.permissions.render import Groups, files
from agent.review.files import OwnedDir

# Windows PowerShell 5.1 reads a .ps1/.psrc/.pssc without a byte order mark in the ANSI code
# page; the files are ASCII, the mark keeps them UTF-8 if an administrator edits them.
_BOM = b"\xef\xbb\xbf"


def _version() -> str:
    try:
        return metadata.version("exfix")
    except metadata.PackageNotFoundError:  # running from a source tree without metadata
        return "dev"


@click.command("rbac")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Directory to write the role files into (created when absent).")
@click.option("--scan-group", default="CONTOSO\\exfix-scan", show_default=True,
              help="AD group whose members get the scanning role on the JEA endpoint.")
@click.option("--remediate-group", default="CONTOSO\\exfix-remediate", show_default=True,
              help="AD group whose members get the remediating role on the JEA endpoint.")
@click.option("--overwrite", is_flag=True, help="Replace the files of an earlier run.")
def rbac(out: str, scan_group: str, remediate_group: str, overwrite: bool) -> None:
    """Write the Exchange RBAC roles and the JEA endpoint exfix needs, and nothing more."""
    for label, group in (("--scan-group", scan_group), ("--remediate-group", remediate_group)):
        if not group.strip() or any(not ch.isprintable() for ch in group):
            raise UsageError(f"{label} must be a group name such as DOMAIN\\group, not {group!r}")
    perms = build()
    texts = files(perms, Groups(scan_group, remediate_group), _version())
    with OwnedDir.open(out, create=True) as root:
        for relative, text in texts.items():
            *folders, name = relative.split("/")
            data = text.encode("utf-8")
            if not name.endswith(".yml"):
                data = _BOM + data
            directory = root
            opened: list[OwnedDir] = []
            try:
                for folder in folders:
                    directory = directory.subdir(folder, create=True)
                    opened.append(directory)
                if directory.exists(name) and not overwrite:
                    raise UsageError(f"{out}/{relative} exists: give --overwrite to replace it")
                directory.write(name, data)
            finally:
                for d in reversed(opened):
                    d.close()
            click.echo(f"wrote {out}/{relative}")
    click.echo(f"inventory: ansible_psrp_configuration_name: {perms.configuration_name}")
