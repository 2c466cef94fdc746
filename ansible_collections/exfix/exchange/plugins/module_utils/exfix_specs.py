# Copyright: exfix developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of exfix.exchange's modules: one table, read by the module stubs (which
ansible-doc and ansible-test document and check) and by the action plugins that run them."""

COMMON = dict(
    ticket=dict(type="str"),
    host_timeout=dict(type="float", default=300.0),
    probe_repeat=dict(type="int", default=1),
)

SCAN_SPEC = dict(COMMON)

REMEDIATE_SPEC = dict(
    COMMON,
    digest=dict(type="str"),
    allow_restart=dict(type="bool", default=False),
    journal=dict(type="path"),
    operator=dict(type="str"),
    verify_timeout=dict(type="float", default=120.0),
    scope=dict(type="str", default="host", choices=["host", "organization"]),
    hosts=dict(type="list", elements="str"),
)
