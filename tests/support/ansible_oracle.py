"""What ansible-core itself makes of an inventory: run as a separate process, never imported.

The differential tests (tests/inventory/test_against_ansible.py) start this script once per
test process with the Python that has ansible-core installed, and send it one JSON request per
line: ``{"source": PATH, "cwd": DIR, "limits": [...]}``. For each request it answers one JSON
line computed by ansible-core's own code, the code ``ansible-inventory --list`` and
``ansible all --limit L --list-hosts`` run:

- ``hosts``: for every host of the inventory, its variables after Ansible's precedence
  (``VariableManager.get_vars``, as ``ansible-inventory --list`` prints them), and the
  settings its connection plugin would connect with: the psrp plugin's
  ``Connection._build_kwargs()`` or the winrm plugin's ``_build_winrm_kwargs()`` with pywinrm's
  ``Protocol`` defaults, given the options exactly as Ansible's task executor hands them over
  (the plugin's declared variables, and ``ansible_winrm_*`` extras);
- ``limits``: for every limit, the hosts ``InventoryManager.subset(limit)`` leaves of ``all``,
  in Ansible's order, or the error Ansible raises.

A host with no ``ansible_connection`` is resolved with the psrp plugin: exfix's documented
rule (Ansible's own default, ssh, cannot reach an Exchange server). Another connection is
reported as such. This is the only place test code touches Ansible (GPL): as a program.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import traceback
from typing import Any


def _setup() -> Any:
    os.environ.setdefault("ANSIBLE_HOST_PATTERN_MISMATCH", "ignore")
    os.environ.setdefault("ANSIBLE_INVENTORY_UNPARSED_WARNING", "False")
    os.environ.setdefault("ANSIBLE_DEPRECATION_WARNINGS", "False")
    os.environ.setdefault("ANSIBLE_LOCALHOST_WARNING", "False")
    os.environ["ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED"] = "True"
    from ansible.plugins.loader import init_plugin_loader

    init_plugin_loader()


def _plain(value: Any) -> Any:
    """Ansible's tagged values as plain JSON (vaulted values as their marker)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return {"__unplain__": type(value).__name__}


def _connection_settings(hostvars: dict[str, Any]) -> dict[str, Any]:
    from ansible import constants as C
    from ansible.playbook.play_context import PlayContext
    from ansible.plugins.loader import connection_loader

    name = hostvars.get("ansible_connection") or "psrp"
    short = str(name).rsplit(".", 1)[-1]
    if short not in ("psrp", "winrm"):
        return {"connection": str(name)}
    conn = connection_loader.get(short, PlayContext())
    # TaskExecutor._set_connection_options: the plugin's variables, then its extras.
    option_vars = C.config.get_plugin_vars("connection", conn._load_name)
    options: dict[str, Any] = {k: hostvars[k] for k in option_vars if k in hostvars}
    if getattr(conn, "allow_extras", False):
        prefix = f"ansible_{conn.extras_prefix}_"
        options["_extras"] = {k: v for k, v in hostvars.items() if k.startswith(prefix) and k not in options}
    try:
        conn.set_options(var_options=options)
        if short == "psrp":
            conn._build_kwargs()
            kwargs = dict(conn._psrp_conn_kwargs)
            kwargs["configuration_name"] = conn._psrp_configuration_name
            return {"connection": "psrp", "kwargs": _plain(kwargs)}
        conn._build_winrm_kwargs()
        from winrm.protocol import Protocol

        defaults = {
            k: p.default
            for k, p in inspect.signature(Protocol.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        effective = {**defaults, **conn._winrm_kwargs}
        timeout = conn._winrm_connection_timeout
        if timeout:
            effective["operation_timeout_sec"] = timeout
            effective["read_timeout_sec"] = timeout + 10
        return {
            "connection": "winrm",
            "scheme": conn._winrm_scheme,
            "host": conn._winrm_host,
            "port": conn._winrm_port,
            "path": conn._winrm_path,
            "transport": _plain(conn._winrm_transport),
            "kwargs": _plain(effective),
        }
    except Exception as exc:  # an option Ansible refuses
        return {"connection": short, "error": f"{type(exc).__name__}: {exc}"}


def answer(request: dict[str, Any]) -> dict[str, Any]:
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.vars import host_group_vars
    from ansible.vars.manager import VariableManager

    os.chdir(request["cwd"])
    for cache in (host_group_vars.FOUND, host_group_vars.NAK, host_group_vars.CANONICAL_PATHS):
        cache.clear()
    loader = DataLoader()
    try:
        inventory = InventoryManager(loader=loader, sources=[request["source"]])
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    manager = VariableManager(loader=loader, inventory=inventory)
    hosts: dict[str, Any] = {}
    for host in inventory.get_hosts("all"):
        hostvars = manager.get_vars(host=host, include_hostvars=False, stage="all")
        hosts[host.name] = {
            "vars": _plain({k: v for k, v in hostvars.items() if k.startswith(("ansible_", "exfix_"))}),
            "groups": sorted(g.name for g in host.get_groups() if g.name != "all"),
            "settings": _connection_settings(hostvars),
        }
    limits: dict[str, Any] = {}
    for limit in request.get("limits", []):
        inventory.clear_pattern_cache()
        try:
            inventory.subset(limit)
            limits[limit] = [h.name for h in inventory.get_hosts("all")]
        except AnsibleError as exc:
            limits[limit] = {"error": str(exc).splitlines()[0]}
        finally:
            inventory.subset(None)
    return {"hosts": hosts, "order": [h.name for h in inventory.get_hosts("all")], "limits": limits}


def main() -> None:
    _setup()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = answer(json.loads(line))
        except Exception:
            reply = {"error": traceback.format_exc(limit=3)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
