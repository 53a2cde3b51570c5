"""merge the domain branches into one head

Domains were migrated on parallel branches off the foundation; from here on there is one
line of history again.

Revision ID: 0009_merge_domains
Revises: 0006_orders_payments, 0007_livestreams, 0008_impact
Create Date: 2026-11-23 19:30:00
"""

from collections.abc import Sequence

revision: str = "0009_merge_domains"
down_revision: str | Sequence[str] | None = (
    "0006_orders_payments",
    "0007_livestreams",
    "0008_impact",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
