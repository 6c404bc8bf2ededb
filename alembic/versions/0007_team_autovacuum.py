"""Team: vacuumed and analysed after about a fixed number of changes, not a fifth of the table.

Every position fix updates its team's row and, since `position` and `position_at` are indexed, never as a HOT
update: each fix leaves a dead row version and index entries behind. With the defaults (20% of the table dead
before a vacuum, 10% changed before an analyze) 2,000 teams reporting for a minute left 68,000 dead versions,
and statistics that still said no team was live: the recommendation's generic plan then sorted every live
team instead of walking ix_team_position_live, 8.3 ms a call instead of 0.5 (bench section 2, after the ingest;
ANALYZE brought it to 2.8 ms, VACUUM to 1.4 ms). The thresholds below are mostly a fixed count (plus 1-2%
of the table), so the table is cleaned at the next autovacuum round (autovacuum_naptime, a minute by
default) whatever its size, and the cost delay is off because the table is small and hot.

Revision ID: 0007_team_autovacuum
Revises: 0006_team_available_index
Create Date: 2026-12-04 06:40:00.000000+00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0007_team_autovacuum'
down_revision: str | None = '0006_team_available_index'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPTIONS = {
    'autovacuum_vacuum_threshold': '1000',
    'autovacuum_vacuum_scale_factor': '0.02',
    'autovacuum_analyze_threshold': '200',
    'autovacuum_analyze_scale_factor': '0.01',
    'autovacuum_vacuum_cost_delay': '0',
}


def upgrade() -> None:
    op.execute('ALTER TABLE team SET (' + ', '.join(f'{k} = {v}' for k, v in OPTIONS.items()) + ')')


def downgrade() -> None:
    op.execute('ALTER TABLE team RESET (' + ', '.join(OPTIONS) + ')')
