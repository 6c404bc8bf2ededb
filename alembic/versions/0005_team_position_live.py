"""Team believed-position indexes: a position_live flag (trigger-maintained, swept when stale) and
partial GiST indexes, so the nearest-team search stays index-driven however many teams are live.

Revision ID: 0005_team_position_live
Revises: 0004_team_track
Create Date: 2026-12-03 16:40:00.000000+00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005_team_position_live'
down_revision: str | None = '0004_team_track'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every write of a fix (any path: the API, a gateway batch, an import, SQL by hand) marks the team
# live; the periodic sweep (app/teams/sweep.py) clears the flag once the fix is stale.
TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION team_position_live() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.position_live := NEW.position IS NOT NULL AND NEW.position_at IS NOT NULL;
    RETURN NEW;
END
$$
"""


def upgrade() -> None:
    op.add_column('team', sa.Column('position_live', sa.Boolean(), server_default='false', nullable=False))
    op.execute(TRIGGER_FUNCTION)
    op.execute(
        "CREATE TRIGGER team_position_live BEFORE INSERT OR UPDATE OF position, position_at ON team "
        "FOR EACH ROW EXECUTE FUNCTION team_position_live()"
    )
    # Stale fixes are cleared by the first sweep; fresh ones must be live from the start.
    op.execute(
        "UPDATE team SET position_live = true WHERE position IS NOT NULL AND position_at IS NOT NULL"
    )
    op.create_check_constraint(
        op.f('ck_team_position_live'),
        'team',
        'NOT position_live OR (position IS NOT NULL AND position_at IS NOT NULL)',
    )
    op.create_index('ix_team_base_not_live', 'team', ['base'], unique=False, postgresql_using='gist', postgresql_where=sa.text('NOT position_live'))
    op.create_index('ix_team_position_live', 'team', ['position'], unique=False, postgresql_using='gist', postgresql_where=sa.text('position_live'))
    op.create_index('ix_team_position_live_at', 'team', ['position_live', 'position_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_team_position_live_at', table_name='team')
    op.drop_index('ix_team_position_live', table_name='team', postgresql_using='gist', postgresql_where=sa.text('position_live'))
    op.drop_index('ix_team_base_not_live', table_name='team', postgresql_using='gist', postgresql_where=sa.text('NOT position_live'))
    op.drop_constraint(op.f('ck_team_position_live'), 'team', type_='check')
    op.execute("DROP TRIGGER IF EXISTS team_position_live ON team")
    op.execute("DROP FUNCTION IF EXISTS team_position_live()")
    op.drop_column('team', 'position_live')
