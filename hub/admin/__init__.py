"""Administration of the hub: organizations and OAuth clients (issue 3 §8).

Every function starts with :meth:`hub.access.Access.require_admin`, before reading
anything, so a non-admin learns nothing (not even whether a slug or client id exists).
"""

from hub.admin.clients import (
    ClientView,
    RegisteredClient,
    RegisterFields,
    disable_client,
    list_clients,
    register_client,
    rotate_client_secret,
)
from hub.admin.organizations import (
    OrganizationFields,
    OrganizationView,
    create_organization,
    disable_organization,
    list_organizations,
    update_organization,
)

__all__ = [
    "ClientView",
    "OrganizationFields",
    "OrganizationView",
    "RegisterFields",
    "RegisteredClient",
    "create_organization",
    "disable_client",
    "disable_organization",
    "list_clients",
    "list_organizations",
    "register_client",
    "rotate_client_secret",
    "update_organization",
]
