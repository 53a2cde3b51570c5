"""Who is calling: what the authentication middleware puts on every connection."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from marketplace.accounts.models import JurisdictionLevel, Role


@dataclass(frozen=True, slots=True)
class AuthenticatedUser:
    """Resolved from the bearer token on every request, never cached: a revoked token or a
    deactivated account stops working on the very next request."""

    id: uuid.UUID
    role: Role
    display_name: str
    jurisdiction_level: JurisdictionLevel | None
    jurisdiction_code: str | None
    token_id: uuid.UUID
