#!/usr/bin/env python3
"""A dynamic inventory script, as a CMDB export would be."""
import json
import sys

if sys.argv[1:] == ["--list"]:
    print(json.dumps({
        "exchange": {"hosts": ["ex01.contoso.local", "ex02.contoso.local"],
                     "vars": {"ansible_psrp_auth": "ntlm", "ansible_user": "svc"},
                     "children": ["edge"]},
        "edge": {"hosts": ["edge01.contoso.local"]},
        "_meta": {"hostvars": {
            "ex01.contoso.local": {"ansible_host": "192.0.2.121", "ansible_port": 5985},
            "edge01.contoso.local": {"ansible_connection": "winrm", "ansible_winrm_transport": "ntlm"}
        }}
    }))
else:
    print("{}")
