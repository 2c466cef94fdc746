"""Least privilege: the Exchange RBAC roles and the JEA endpoint exfix needs, written from the
command catalogue (agent/model/catalogue.py), and what an account holding them may run."""

from agent.permissions.roles import (
    CONFIGURATION_NAME,
    ExchangeRole,
    Grant,
    Permissions,
    RoleCapability,
    RoleEntry,
    VisibleCmdlet,
    build,
    grant,
)

__all__ = [
    "CONFIGURATION_NAME",
    "ExchangeRole",
    "Grant",
    "Permissions",
    "RoleCapability",
    "RoleEntry",
    "VisibleCmdlet",
    "build",
    "grant",
]
