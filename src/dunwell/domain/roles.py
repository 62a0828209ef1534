"""Who may do what on the merchant dashboard.

Four roles, as the consoles merchants already know them: the owner does
everything; configuration edits policies, templates and settings;
analytics reads the figures and exports them; support works the inbox and
the customers' invoices. Every dashboard route names the permission it
needs and the server refuses without it; hiding a button is only a courtesy.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    CONFIGURATION = "configuration"
    ANALYTICS = "analytics"
    SUPPORT = "support"


class Permission(StrEnum):
    VIEW_OVERVIEW = "view_overview"
    VIEW_ANALYTICS = "view_analytics"
    EXPORT = "export"
    #: Read policies, templates and settings without changing them.
    VIEW_CONFIGURATION = "view_configuration"
    EDIT_POLICIES = "edit_policies"
    EDIT_TEMPLATES = "edit_templates"
    EDIT_SETTINGS = "edit_settings"
    #: Buying SMS credits spends the merchant's money.
    BUY_CREDITS = "buy_credits"
    VIEW_INBOX = "view_inbox"
    REPLY_INBOX = "reply_inbox"
    VIEW_CUSTOMERS = "view_customers"
    ACT_ON_INVOICES = "act_on_invoices"
    USE_SANDBOX = "use_sandbox"
    MANAGE_USERS = "manage_users"


_CONFIGURATION = frozenset(
    {
        Permission.VIEW_OVERVIEW,
        Permission.VIEW_ANALYTICS,
        Permission.VIEW_CONFIGURATION,
        Permission.EDIT_POLICIES,
        Permission.EDIT_TEMPLATES,
        Permission.EDIT_SETTINGS,
        Permission.USE_SANDBOX,
    }
)
_ANALYTICS = frozenset(
    {
        Permission.VIEW_OVERVIEW,
        Permission.VIEW_ANALYTICS,
        Permission.EXPORT,
        Permission.VIEW_CONFIGURATION,
    }
)
_SUPPORT = frozenset(
    {
        Permission.VIEW_OVERVIEW,
        Permission.VIEW_INBOX,
        Permission.REPLY_INBOX,
        Permission.VIEW_CUSTOMERS,
        Permission.ACT_ON_INVOICES,
        Permission.USE_SANDBOX,
    }
)

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.CONFIGURATION: _CONFIGURATION,
    Role.ANALYTICS: _ANALYTICS,
    Role.SUPPORT: _SUPPORT,
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in PERMISSIONS[role]
