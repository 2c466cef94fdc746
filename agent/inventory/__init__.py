"""Ansible-style YAML inventory -> typed, validated host targets.

exfix reads what Ansible reads, as Ansible reads it (proved against ansible-core by
``tests/inventory/test_against_ansible.py``): YAML and INI inventories, directories of them,
``group_vars/`` and ``host_vars/`` beside them, the JSON of ``ansible-inventory --list`` and of
inventory scripts (which it runs with ``--list``), host lists, and with Ansible installed,
``ansible:PATH`` and ``plugin:`` inventories through ``ansible-inventory`` itself. Variables
merge with Ansible's precedence, ``ansible_group_priority`` included; the OS endpoint is what
Ansible's psrp or winrm plugin would connect to, with their defaults; ``--limit`` has
Ansible's grammar. What cannot be read exactly (a vaulted or templated value exfix needs, a
host reached over ssh) is refused with one line that says what to do; a connection variable
exfix does not use is reported once, never silently ignored.

Secrets never live in a :class:`~agent.model.target.HostTarget`: it carries a
:class:`~agent.model.credential.CredentialRef` saying where the password comes from.
:meth:`Inventory.credentials` turns that into a :class:`~agent.model.credential.Credential`
whose password is a :class:`~agent.model.credential.Secret` that refuses to be printed, logged
or pickled.

The modules, each importing only those before it:

- ``coerce``, ``values``, ``addresses``: checks for exfix's values; a value and where it was
  written, vault and template markers; host patterns and ranges;
- ``document``: exfix's own variables, read by the one strict reader (``agent.model.document``);
- ``tree``: groups and hosts with Ansible's rules (depth, priority, ``ungrouped``);
- ``yaml_source``, ``ini_source``, ``json_source``, ``sources``: each kind of source, and what
  ``-i`` names; ``varsfiles``: group_vars/host_vars;
- ``connection``: Ansible's psrp and winrm options; ``credentials``; ``variables``: one host's
  merged variables -> a HostTarget, and the table of variables;
- ``limit``: Ansible's ``--limit``;
- ``loader``: the precedence, :class:`Inventory` and the functions that read one, also from
  the variables Ansible resolved for one host (:func:`inventory_from_variables`, the Ansible collection's).
"""

from __future__ import annotations

from agent.inventory.credentials import CredentialResolver, PasswordPrompt
from agent.inventory.limit import select_hosts
from agent.inventory.loader import (
    Inventory,
    inventory_from_mapping,
    inventory_from_variables,
    load_inventory,
    parse_inventory,
    reads_variable,
)

__all__ = [
    "CredentialResolver",
    "Inventory",
    "PasswordPrompt",
    "inventory_from_mapping",
    "inventory_from_variables",
    "load_inventory",
    "parse_inventory",
    "reads_variable",
    "select_hosts",
]
