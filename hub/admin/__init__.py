"""Administration of the hub: organizations, OAuth clients and staff users (issue 3 §8).

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
from hub.admin.staff import (
    CreatedStaffUser,
    StaffUserFields,
    StaffUserView,
    add_staff_user,
    disable_staff_user,
    list_staff_users,
)

__all__ = [
    "ClientView",
    "CreatedStaffUser",
    "OrganizationFields",
    "OrganizationView",
    "RegisterFields",
    "RegisteredClient",
    "StaffUserFields",
    "StaffUserView",
    "add_staff_user",
    "create_organization",
    "disable_client",
    "disable_organization",
    "disable_staff_user",
    "list_clients",
    "list_organizations",
    "list_staff_users",
    "register_client",
    "rotate_client_secret",
    "update_organization",
]
