"""A partial GiST index of the available teams at their bases, so that the nearest-team search never walks
past the busy teams around an incident (bench section 3, the surge: 1,000 teams on scene near the fire).

Revision ID: 0006_team_available_index
Revises: 0005_team_position_live
Create Date: 2026-12-03 20:20:00.000000+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006_team_available_index'
down_revision: str | None = '0005_team_position_live'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Only teams at their bases: a team reporting live positions is not in it, so position fixes never update it.
WHERE = "NOT position_live AND status = 'available'"


def upgrade() -> None:
    op.create_index(
        'ix_team_base_available', 'team', ['base'], unique=False, postgresql_using='gist', postgresql_where=sa.text(WHERE)
    )


def downgrade() -> None:
    op.drop_index('ix_team_base_available', table_name='team', postgresql_using='gist', postgresql_where=sa.text(WHERE))
