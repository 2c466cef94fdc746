#!/usr/bin/python
# Copyright: exfix developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The documentation and options of exfix_scan; the work is its action plugin's."""

DOCUMENTATION = r"""
---
module: exfix_scan
short_description: Find the causes of Exchange "451 4.4.0 DNS query failed" on one server
description:
  - Scans the Exchange server named by C(inventory_hostname) with exfix over PowerShell remoting
    and returns its findings, with the exact values as evidence, and the summary of its facts.
  - Runs on the controller or execution node (an action plugin); exfix connects to the server
    itself with the connection variables Ansible resolved for the host (C(ansible_host),
    C(ansible_port), C(ansible_user), C(ansible_password), C(ansible_psrp_*), C(ansible_winrm_*)
    and C(exfix_*), from vault, group_vars and inventory plugins alike).
  - Never changes anything. Fails only when the host cannot be scanned; a host exfix cannot
    open a session to is unreachable, as Ansible reports it.
  - The Python running Ansible needs the exfix package (the collection's requirements.txt).
version_added: 0.1.0
author:
  - exfix developers (@exfix)
options:
  ticket:
    description:
      - A change or incident id, returned in the result so that every record of the run names it.
    type: str
  host_timeout:
    description:
      - Seconds everything done to the host may take.
    type: float
    default: 300.0
  probe_repeat:
    description:
      - How often each DNS server's standard questions are asked, from both vantages (2 or more
        finds intermittent servers).
    type: int
    default: 1
attributes:
  action:
    support: full
    description: Runs on the controller as an action plugin.
  check_mode:
    support: full
    description: Nothing is ever changed; check mode scans as usual.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
  platform:
    support: full
    platforms: windows
    description: The server is reached over PowerShell remoting (WSMan) from the controller.
notes:
  - "Use it in a play with C(connection: local) and C(gather_facts: false); the task is not run
    on the host but reaches it from the controller."
seealso:
  - module: exfix.exchange.exfix_remediate
"""

EXAMPLES = r"""
- name: Diagnose the Exchange servers
  hosts: exchange
  connection: local
  gather_facts: false
  tasks:
    - name: Scan
      exfix.exchange.exfix_scan:
        ticket: INC0012345
      register: scan

    - name: Show what was found
      ansible.builtin.debug:
        msg: "{{ scan.rules }}"
"""

RETURN = r"""
schema:
  description: The scan document's version the C(host) and C(organizations) parts follow.
  returned: when the host was scanned
  type: str
  sample: exfix.scan/4
host:
  description:
    - The host's entry of C(exfix scan --format json)'s C(hosts), same schema (status, Exchange
      version, findings with evidence, failed fact areas, rules not judged, DNS servers' probe
      statistics).
  returned: always
  type: dict
organizations:
  description:
    - The findings about what the host's organisation shares (send connectors), as the scan
      document's C(organizations) holds them, for the organisation this host belongs to.
  returned: when the host was scanned
  type: list
  elements: dict
rules:
  description: The rule ids that fired for the host, its organisation's included, sorted.
  returned: when the host was scanned
  type: list
  elements: str
  sample: [nic-dns-registration-disabled, queue-dns-failure]
exit_code:
  description: What C(exfix scan) would exit with for this host (0 clean, 2 findings, 8 partial).
  returned: when the host was scanned
  type: int
ticket:
  description: The ticket option, when given.
  returned: when given
  type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402  (Ansible: the docs come first)

from ansible_collections.exfix.exchange.plugins.module_utils.exfix_specs import SCAN_SPEC  # noqa: E402


def main():
    module = AnsibleModule(argument_spec=SCAN_SPEC, supports_check_mode=True)
    module.fail_json(msg="exfix.exchange.exfix_scan runs on the controller through its action plugin, "
                     "not on the host: call it as exfix.exchange.exfix_scan")


if __name__ == "__main__":
    main()
