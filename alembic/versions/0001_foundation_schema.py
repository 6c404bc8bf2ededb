"""Foundation schema: townships, incidents, resources, partners, users and the event log.

Revision ID: 0001_foundation
Revises: 
Create Date: 2026-12-03 13:10:57.536627+00:00
"""
from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geography
from sqlalchemy.dialects import postgresql

revision: str = "0001_foundation"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


APPEND_ONLY_FUNCTION = '''
CREATE OR REPLACE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'restrict_violation';
END;
$$
'''


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table('event',
    sa.Column('seq', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('township_code', sa.String(length=9), nullable=True),
    sa.Column('subject_type', sa.String(length=32), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('exercise', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_event'))
    )
    op.create_index('ix_event_subject', 'event', ['subject_type', 'subject_id', 'seq'], unique=False)
    op.create_index(op.f('ix_event_ts'), 'event', ['ts'], unique=False)
    op.create_table('incident_code_counter',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_incident_code_counter'))
    )
    op.create_table('item',
    sa.Column('code', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('name_en', sa.String(length=96), server_default='', nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('category', sa.Enum('basic_living', 'equipment', 'engineering', name='item_category', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('persons_per_unit', sa.Numeric(precision=10, scale=3), nullable=True),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_item'))
    )
    op.create_geospatial_table('partner',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('adcode', sa.String(length=6), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('name_en', sa.String(length=64), server_default='', nullable=False),
    sa.Column('parent', sa.String(length=64), server_default='', nullable=False),
    sa.Column('roles', postgresql.ARRAY(sa.String(length=32)), nullable=False),
    sa.Column('boundary', Geography(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeogFromText', name='geography'), nullable=True),
    sa.Column('endpoint', sa.Text(), nullable=True),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner')),
    sa.UniqueConstraint('adcode', name=op.f('uq_partner_adcode'))
    )
    op.create_geospatial_index('idx_partner_boundary', 'partner', ['boundary'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_geospatial_table('township',
    sa.Column('code', sa.String(length=9), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.Enum('subdistrict', 'town', 'township', 'development-zone', name='township_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('seat', Geography(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeogFromText', name='geography', nullable=False), nullable=False),
    sa.Column('boundary', Geography(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeogFromText', name='geography', nullable=False), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_township'))
    )
    op.create_geospatial_index('idx_township_boundary', 'township', ['boundary'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_geospatial_index('idx_township_seat', 'township', ['seat'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_geospatial_table('depot',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=160), nullable=False),
    sa.Column('name_en', sa.String(length=200), server_default='', nullable=False),
    sa.Column('level', sa.Enum('district', 'township', 'social', name='depot_level', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('location', Geography(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeogFromText', name='geography', nullable=False), nullable=False),
    sa.Column('township_code', sa.String(length=9), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['township_code'], ['township.code'], name=op.f('fk_depot_township_code_township')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_depot')),
    sa.UniqueConstraint('code', name=op.f('uq_depot_code'))
    )
    op.create_geospatial_index('idx_depot_location', 'depot', ['location'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_depot_township_code'), 'depot', ['township_code'], unique=False)
    op.create_geospatial_table('helipad',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=160), nullable=False),
    sa.Column('name_en', sa.String(length=200), server_default='', nullable=False),
    sa.Column('kind', sa.Enum('base', 'temporary', 'hospital', 'other', name='helipad_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('status', sa.Enum('usable', 'unusable', name='helipad_status', native_enum=False, create_constraint=True, length=32), server_default='usable', nullable=False),
    sa.Column('location', Geography(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeogFromText', name='geography', nullable=False), nullable=False),
    sa.Column('township_code', sa.String(length=9), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['township_code'], ['township.code'], name=op.f('fk_helipad_township_code_township')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_helipad')),
    sa.UniqueConstraint('code', name=op.f('uq_helipad_code'))
    )
    op.create_geospatial_index('idx_helipad_location', 'helipad', ['location'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_helipad_township_code'), 'helipad', ['township_code'], unique=False)
    op.create_geospatial_table('incident',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('category', sa.Enum('natural_disaster', 'accident', 'public_health', 'social_security', name='incident_category', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('type', sa.String(length=48), nullable=False),
    sa.Column('type_code', sa.String(length=16), nullable=False),
    sa.Column('severity', sa.SmallInteger(), nullable=True),
    sa.Column('status', sa.Enum('reported', 'verified', 'dispatched', 'in_progress', 'controlled', 'closed', 'dismissed', name='incident_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('address', sa.String(length=300), server_default='', nullable=False),
    sa.Column('location', Geography(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeogFromText', name='geography', nullable=False), nullable=False),
    sa.Column('township_code', sa.String(length=9), nullable=True),
    sa.Column('cross_border', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('dead', sa.Integer(), server_default='0', nullable=False),
    sa.Column('injured', sa.Integer(), server_default='0', nullable=False),
    sa.Column('missing', sa.Integer(), server_default='0', nullable=False),
    sa.Column('trapped', sa.Integer(), server_default='0', nullable=False),
    sa.Column('people_affected', sa.Integer(), server_default='0', nullable=False),
    sa.Column('exercise', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('reported_by', sa.String(length=120), nullable=False),
    sa.Column('reported_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('dead >= 0 AND injured >= 0 AND missing >= 0 AND trapped >= 0 AND people_affected >= 0', name=op.f('ck_incident_counts_not_negative')),
    sa.CheckConstraint('severity BETWEEN 1 AND 4', name=op.f('ck_incident_severity_range')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_incident_version_positive')),
    sa.ForeignKeyConstraint(['township_code'], ['township.code'], name=op.f('fk_incident_township_code_township')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident')),
    sa.UniqueConstraint('code', name=op.f('uq_incident_code'))
    )
    op.create_geospatial_index('idx_incident_location', 'incident', ['location'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_incident_exercise'), 'incident', ['exercise'], unique=False)
    op.create_index(op.f('ix_incident_reported_at'), 'incident', ['reported_at'], unique=False)
    op.create_index(op.f('ix_incident_status'), 'incident', ['status'], unique=False)
    op.create_index(op.f('ix_incident_township_code'), 'incident', ['township_code'], unique=False)
    op.create_index(op.f('ix_incident_type'), 'incident', ['type'], unique=False)
    op.create_geospatial_table('shelter',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=160), nullable=False),
    sa.Column('level', sa.Enum('emergency', 'fixed', name='shelter_level', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('site_type', sa.String(length=32), server_default='', nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('occupancy', sa.Integer(), server_default='0', nullable=False),
    sa.Column('area_m2', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('standby', 'open', 'full', 'closed', name='shelter_status', native_enum=False, create_constraint=True, length=32), server_default='standby', nullable=False),
    sa.Column('address', sa.String(length=300), server_default='', nullable=False),
    sa.Column('location', Geography(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeogFromText', name='geography', nullable=False), nullable=False),
    sa.Column('township_code', sa.String(length=9), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('capacity >= 0', name=op.f('ck_shelter_capacity_not_negative')),
    sa.CheckConstraint('occupancy >= 0 AND occupancy <= capacity', name=op.f('ck_shelter_occupancy_within_capacity')),
    sa.ForeignKeyConstraint(['township_code'], ['township.code'], name=op.f('fk_shelter_township_code_township')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shelter')),
    sa.UniqueConstraint('code', name=op.f('uq_shelter_code'))
    )
    op.create_geospatial_index('idx_shelter_location', 'shelter', ['location'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_shelter_township_code'), 'shelter', ['township_code'], unique=False)
    op.create_geospatial_table('team',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('name_en', sa.String(length=160), server_default='', nullable=False),
    sa.Column('kind', sa.Enum('fire_rescue', 'township_fire', 'forest_fire', 'hazmat', 'flood', 'geological', 'medical', 'social', 'militia', 'enterprise', 'aviation', name='team_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('capabilities', postgresql.ARRAY(sa.String(length=32)), nullable=False),
    sa.Column('headcount', sa.Integer(), nullable=False),
    sa.Column('township_code', sa.String(length=9), nullable=True),
    sa.Column('base', Geography(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeogFromText', name='geography', nullable=False), nullable=False),
    sa.Column('position', Geography(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeogFromText', name='geography'), nullable=True),
    sa.Column('position_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.Enum('available', 'dispatched', 'en_route', 'on_scene', 'returning', 'out_of_service', name='team_status', native_enum=False, create_constraint=True, length=32), server_default='available', nullable=False),
    sa.Column('shareable', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('phone', sa.String(length=40), server_default='', nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('headcount >= 0', name=op.f('ck_team_headcount_not_negative')),
    sa.ForeignKeyConstraint(['township_code'], ['township.code'], name=op.f('fk_team_township_code_township')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team')),
    sa.UniqueConstraint('code', name=op.f('uq_team_code'))
    )
    op.create_geospatial_index('idx_team_base', 'team', ['base'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_geospatial_index('idx_team_position', 'team', ['position'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index('ix_team_capabilities', 'team', ['capabilities'], unique=False, postgresql_using='gin')
    op.create_index(op.f('ix_team_status'), 'team', ['status'], unique=False)
    op.create_index(op.f('ix_team_township_code'), 'team', ['township_code'], unique=False)
    op.create_table('app_user',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('display_name', sa.String(length=120), server_default='', nullable=False),
    sa.Column('role', sa.Enum('command', 'township', 'responder', 'viewer', 'partner', name='user_role', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('township_code', sa.String(length=9), nullable=True),
    sa.Column('team_id', sa.BigInteger(), nullable=True),
    sa.Column('partner_id', sa.String(length=32), nullable=True),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partner.id'], name=op.f('fk_app_user_partner_id_partner')),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], name=op.f('fk_app_user_team_id_team')),
    sa.ForeignKeyConstraint(['township_code'], ['township.code'], name=op.f('fk_app_user_township_code_township')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_user')),
    sa.UniqueConstraint('username', name=op.f('uq_app_user_username'))
    )
    op.create_table('depot_stock',
    sa.Column('depot_id', sa.BigInteger(), nullable=False),
    sa.Column('item_code', sa.String(length=8), nullable=False),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('quantity >= 0', name=op.f('ck_depot_stock_quantity_not_negative')),
    sa.ForeignKeyConstraint(['depot_id'], ['depot.id'], name=op.f('fk_depot_stock_depot_id_depot'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['item_code'], ['item.code'], name=op.f('fk_depot_stock_item_code_item')),
    sa.PrimaryKeyConstraint('depot_id', 'item_code', name=op.f('pk_depot_stock'))
    )
    op.create_index(op.f('ix_depot_stock_item_code'), 'depot_stock', ['item_code'], unique=False)
    op.create_table('stock_ledger',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('depot_id', sa.BigInteger(), nullable=False),
    sa.Column('item_code', sa.String(length=8), nullable=False),
    sa.Column('delta', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.Enum('receipt', 'issue', 'adjustment', 'transfer', name='ledger_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('transfer_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('delta <> 0', name=op.f('ck_stock_ledger_delta_not_zero')),
    sa.ForeignKeyConstraint(['depot_id'], ['depot.id'], name=op.f('fk_stock_ledger_depot_id_depot')),
    sa.ForeignKeyConstraint(['item_code'], ['item.code'], name=op.f('fk_stock_ledger_item_code_item')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_ledger'))
    )
    op.create_index(op.f('ix_stock_ledger_depot_id'), 'stock_ledger', ['depot_id'], unique=False)
    # ### end Alembic commands ###
    # The audit trail and the stock ledger are never rewritten; the event table may only be trimmed
    # by the retention job (DELETE), never edited.
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute("CREATE TRIGGER event_append_only BEFORE UPDATE ON event FOR EACH ROW EXECUTE FUNCTION refuse_change()")
    op.execute(
        "CREATE TRIGGER stock_ledger_append_only BEFORE UPDATE OR DELETE ON stock_ledger "
        "FOR EACH ROW EXECUTE FUNCTION refuse_change()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS stock_ledger_append_only ON stock_ledger")
    op.execute("DROP TRIGGER IF EXISTS event_append_only ON event")
    op.execute("DROP FUNCTION IF EXISTS refuse_change()")
    op.drop_index(op.f('ix_stock_ledger_depot_id'), table_name='stock_ledger')
    op.drop_table('stock_ledger')
    op.drop_index(op.f('ix_depot_stock_item_code'), table_name='depot_stock')
    op.drop_table('depot_stock')
    op.drop_table('app_user')
    op.drop_index(op.f('ix_team_township_code'), table_name='team')
    op.drop_index(op.f('ix_team_status'), table_name='team')
    op.drop_index('ix_team_capabilities', table_name='team', postgresql_using='gin')
    op.drop_geospatial_index('idx_team_position', table_name='team', postgresql_using='gist', column_name='position')
    op.drop_geospatial_index('idx_team_base', table_name='team', postgresql_using='gist', column_name='base')
    op.drop_geospatial_table('team')
    op.drop_index(op.f('ix_shelter_township_code'), table_name='shelter')
    op.drop_geospatial_index('idx_shelter_location', table_name='shelter', postgresql_using='gist', column_name='location')
    op.drop_geospatial_table('shelter')
    op.drop_index(op.f('ix_incident_type'), table_name='incident')
    op.drop_index(op.f('ix_incident_township_code'), table_name='incident')
    op.drop_index(op.f('ix_incident_status'), table_name='incident')
    op.drop_index(op.f('ix_incident_reported_at'), table_name='incident')
    op.drop_index(op.f('ix_incident_exercise'), table_name='incident')
    op.drop_geospatial_index('idx_incident_location', table_name='incident', postgresql_using='gist', column_name='location')
    op.drop_geospatial_table('incident')
    op.drop_index(op.f('ix_helipad_township_code'), table_name='helipad')
    op.drop_geospatial_index('idx_helipad_location', table_name='helipad', postgresql_using='gist', column_name='location')
    op.drop_geospatial_table('helipad')
    op.drop_index(op.f('ix_depot_township_code'), table_name='depot')
    op.drop_geospatial_index('idx_depot_location', table_name='depot', postgresql_using='gist', column_name='location')
    op.drop_geospatial_table('depot')
    op.drop_geospatial_index('idx_township_seat', table_name='township', postgresql_using='gist', column_name='seat')
    op.drop_geospatial_index('idx_township_boundary', table_name='township', postgresql_using='gist', column_name='boundary')
    op.drop_geospatial_table('township')
    op.drop_geospatial_index('idx_partner_boundary', table_name='partner', postgresql_using='gist', column_name='boundary')
    op.drop_geospatial_table('partner')
    op.drop_table('item')
    op.drop_table('incident_code_counter')
    op.drop_index(op.f('ix_event_ts'), table_name='event')
    op.drop_index('ix_event_subject', table_name='event')
    op.drop_table('event')
    # ### end Alembic commands ###
