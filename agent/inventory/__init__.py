"""Ansible-style YAML inventory -> typed, validated host targets.

The format is Ansible's YAML inventory (``all`` / ``children`` / ``hosts`` / ``vars``), so
admins can point exfix at the inventories they already have:

- variables take precedence host over group over ``all``; among groups a deeper child beats
  its parent, and groups at the same depth apply in name order (Ansible's rule);
- a host may be listed in several groups and defined (with variables) in any of them;
- ``ex[01:03].contoso.local`` host ranges expand as Ansible's do.

Unknown ``ansible_*`` variables are ignored (inventories carry more than exfix needs); an
unknown ``exfix_*`` variable is an error, because it is almost certainly a typo. Every problem
is one :class:`~agent.errors.InventoryError` naming the file, the line, the host and the key.
Every variable exfix reads is listed, with its default, in :mod:`agent.inventory.variables`.

Secrets never live in a :class:`~agent.model.target.HostTarget`: it carries a
:class:`~agent.model.credential.CredentialRef` saying where the password comes from.
:meth:`Inventory.credentials` turns that into a :class:`~agent.model.credential.Credential`
whose password is a :class:`~agent.model.credential.Secret` that refuses to be printed, logged
or pickled.

The modules, each importing only those before it:

- ``coerce``: checks turning a loosely typed Ansible value into a typed one;
- ``document``: the inventory as a document of the one strict reader (``agent.model.document``),
  and :class:`~agent.inventory.document.HostVariables`, the variables exfix reads;
- ``credentials``: a host's credential variables -> a reference; the resolver;
- ``variables``: their table and defaults, and one host's merged variables -> a HostTarget;
- ``groups``: the ``all`` / ``children`` / ``hosts`` / ``vars`` tree;
- ``limit``: Ansible's ``--limit``;
- ``loader``: :class:`Inventory` and the functions that read one.
"""

from __future__ import annotations

from agent.inventory.credentials import CredentialResolver, PasswordPrompt
from agent.inventory.limit import select_hosts
from agent.inventory.loader import Inventory, inventory_from_mapping, load_inventory, parse_inventory

__all__ = [
    "CredentialResolver",
    "Inventory",
    "PasswordPrompt",
    "inventory_from_mapping",
    "load_inventory",
    "parse_inventory",
    "select_hosts",
]
