"""Who is acting, through which door, from where; and what each role may do."""

from typing import Literal

from pydantic import BaseModel

Role = Literal["viewer", "approver", "operator"]
Door = Literal["cli", "console"]

# What a role may do beyond reading: approvers work the drafts and the suppression list,
# operators everything. Viewers read everything and change nothing.
Permission = Literal["read", "drafts", "suppression", "operate"]
GRANTS: dict[Role, frozenset[Permission]] = {
    "viewer": frozenset({"read"}),
    "approver": frozenset({"read", "drafts", "suppression"}),
    "operator": frozenset({"read", "drafts", "suppression", "operate"}),
}


class Actor(BaseModel, frozen=True):
    """The person behind an action, as the audit log records it."""

    name: str
    role: Role
    door: Door
    source: str  # the console's client address, or the CLI's host

    def may(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]
