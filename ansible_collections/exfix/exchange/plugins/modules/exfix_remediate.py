#!/usr/bin/python
# Copyright: exfix developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The documentation and options of exfix_remediate; the work is its action plugin's."""

DOCUMENTATION = r"""
---
module: exfix_remediate
short_description: Plan, approve and apply exfix's fixes for "451 4.4.0 DNS query failed"
description:
  - In check mode, scans the Exchange server named by C(inventory_hostname), plans the fixes and
    returns the structured actions, the PowerShell scripts a change board reviews, a C(diff)
    (before and after of every setting a step changes) and the plan's C(digest). Nothing on the
    server changes; C(changed) says whether applying would change it.
  - Without check mode, plans again and applies the plan only when its digest is the C(digest)
    option (the one check mode returned, approved in between, for example by an AWX workflow
    approval node); a different plan (the server changed since) is refused with a message and
    nothing is done. Each step's setting is read before and after, the symptom is verified
    (queues drain, the failing lookups resolve on the host), and a failed host is rolled back.
    C(changed) is true only when a change is in effect afterwards.
  - Without check mode and with a C(digest), the hosts are held before they are scanned (the
    controller's lock beside the journal and each server's change marker, which every exfix
    run honours), so apply takes the facts of that scan for its check that the plan is not
    stale instead of scanning every host again; each step still reads its setting before
    changing it. The markers are let go of however the task ends, a refusal included.
    Check mode, and a task without a C(digest), hold nothing and write no journal.
  - When the server needs no automatic step, the task is ok and unchanged whatever digest is
    given, so the run is idempotent.
  - The journal (every step, append-only JSON lines) is written on the controller.
  - Organisation-wide steps (a send connector for a remote domain the organisation shares) are
    applied once per organisation with O(scope=organization) and C(run_once); with the default
    O(scope=host) they are left out, with a warning.
  - Runs on the controller or execution node (an action plugin), with the connection variables
    Ansible resolved for the host, as M(exfix.exchange.exfix_scan) does.
version_added: 0.1.0
author:
  - exfix developers (@exfix)
options:
  digest:
    description:
      - The approved plan's digest (sha256), as check mode returned it. Needed to apply.
    type: str
  allow_restart:
    description:
      - Allow the steps that restart MSExchangeTransport (interrupting mail flow on the server).
        A plan with such a step is refused without it.
    type: bool
    default: false
  journal:
    description:
      - The append-only journal on the controller.
      - Default C($XDG_STATE_HOME/exfix/ansible/<host>.jsonl) (C(~/.local/state) without
        C(XDG_STATE_HOME)), one file per host. The run's records are also returned.
    type: path
  operator:
    description:
      - Who runs the change, for the journal. Default AWX's C(awx_user_name), else the local user.
    type: str
  ticket:
    description:
      - A change or incident id recorded in every journal record and returned in the result.
    type: str
  verify_timeout:
    description:
      - Seconds to wait for the failing queues to drain after the changes.
    type: float
    default: 120.0
  host_timeout:
    description:
      - Seconds everything done to one host may take, for each scan.
    type: float
    default: 300.0
  probe_repeat:
    description:
      - How often each DNS server's questions are asked (the plan records it; apply asks as often).
    type: int
    default: 1
  scope:
    description:
      - V(host) remediates the host's own settings.
      - V(organization) remediates what the servers of an organisation share, once; use it with
        C(run_once) and the organisation's servers in O(hosts).
    type: str
    choices: [host, organization]
    default: host
  hosts:
    description:
      - With O(scope=organization), the inventory names of the servers the organisation's plan is
        made from (default C(ansible_play_hosts)).
    type: list
    elements: str
attributes:
  action:
    support: full
    description: Runs on the controller as an action plugin.
  check_mode:
    support: full
    description: Check mode plans and changes nothing.
  diff_mode:
    support: full
    description: The before and after of every setting a step changes.
  platform:
    support: full
    platforms: windows
    description: The server is reached over PowerShell remoting (WSMan) from the controller.
notes:
  - "Use it in a play with C(connection: local) and C(gather_facts: false)."
seealso:
  - module: exfix.exchange.exfix_scan
"""

EXAMPLES = r"""
- name: Plan (check mode), then apply what was approved
  hosts: exchange
  connection: local
  gather_facts: false
  tasks:
    - name: Plan
      exfix.exchange.exfix_remediate:
      check_mode: true
      register: plan

    - name: Apply the approved plan
      exfix.exchange.exfix_remediate:
        digest: "{{ plan.digest }}"
        ticket: CHG0042

- name: The organisation's shared steps, once
  hosts: exchange
  connection: local
  gather_facts: false
  tasks:
    - name: Send connectors
      exfix.exchange.exfix_remediate:
        scope: organization
        digest: "{{ exfix_org_digest }}"
      run_once: true
"""

RETURN = r"""
digest:
  description: The plan's digest; what the O(digest) option approves.
  returned: when the hosts were scanned
  type: str
actions:
  description: The planned steps (the cmdlet call, the settings before and after, the rollback).
  returned: when the hosts were scanned
  type: list
  elements: dict
scripts:
  description: Per host, C(remediate.ps1) and C(rollback.ps1) as a person would run them.
  returned: when the hosts were scanned
  type: dict
plan:
  description: The plan as C(exfix plan) writes plan.json (exfix.plan/4), for this scope.
  returned: when the hosts were scanned
  type: dict
diff:
  description: One before/after per setting a step changes.
  returned: when the hosts were scanned
  type: list
  elements: dict
outstanding:
  description: The findings no automatic step addresses, and what stands in the way of each.
  returned: when the hosts were scanned
  type: list
  elements: dict
apply:
  description: The apply report (exfix.apply/4) for this scope, steps, verification and queues.
  returned: when the plan was applied
  type: dict
verified:
  description: Whether every host the run changed was verified by its symptom.
  returned: when the plan was applied
  type: bool
journal:
  description: The journal's path on the controller.
  returned: when the plan was applied
  type: str
journal_records:
  description: The journal records this run wrote, the hold of the hosts (C(hold) and C(lock),
    with an empty C(plan_digest)) first.
  returned: when the plan was applied
  type: list
  elements: dict
run:
  description: The apply run's id (in every journal record).
  returned: when the plan was applied
  type: str
exit_code:
  description: What C(exfix apply) would exit with.
  returned: when the plan was applied
  type: int
ticket:
  description: The ticket option, when given.
  returned: when given
  type: str
scope:
  description: The scope option.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402  (Ansible: the docs come first)

from ansible_collections.exfix.exchange.plugins.module_utils.exfix_specs import REMEDIATE_SPEC  # noqa: E402


def main():
    module = AnsibleModule(argument_spec=REMEDIATE_SPEC, supports_check_mode=True)
    module.fail_json(msg="exfix.exchange.exfix_remediate runs on the controller through its action plugin, "
                     "not on the host: call it as exfix.exchange.exfix_remediate")


if __name__ == "__main__":
    main()
