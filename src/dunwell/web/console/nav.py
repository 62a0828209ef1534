"""The dashboard's sections, each with the permission it needs to be listed."""

from __future__ import annotations

from dataclasses import dataclass

from dunwell.domain.roles import Permission


@dataclass(frozen=True)
class Section:
    label: str
    path: str
    permission: Permission
    sandbox_only: bool = False


SECTIONS = (
    Section("Overview", "/dashboard", Permission.VIEW_OVERVIEW),
    Section("Policies", "/dashboard/policies", Permission.VIEW_CONFIGURATION),
    Section("Templates", "/dashboard/templates", Permission.VIEW_CONFIGURATION),
    Section("Inbox", "/dashboard/inbox", Permission.VIEW_INBOX),
    Section("Customers", "/dashboard/customers", Permission.VIEW_CUSTOMERS),
    Section("Messages", "/dashboard/messages", Permission.VIEW_CUSTOMERS),
    Section("Analytics", "/dashboard/analytics", Permission.VIEW_ANALYTICS),
    Section("Settings", "/dashboard/settings", Permission.VIEW_CONFIGURATION),
    Section("Users", "/dashboard/users", Permission.MANAGE_USERS),
    Section("Sandbox", "/dashboard/sandbox", Permission.USE_SANDBOX, sandbox_only=True),
)
