"""Federation with the partner districts: inbox (exactly once), outbox (delivered until acknowledged),
mutual-aid requests, and the incidents and warnings partners share.

Revision ID: 0003_federation
Revises: 0002_dispatch
Create Date: 2026-12-03 13:37:19.055322+00:00
"""
from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geography
from sqlalchemy.dialects import postgresql

revision: str = '0003_federation'
down_revision: str | None = "0002_dispatch"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_geospatial_table('federation_aid_request',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('direction', sa.Enum('inbound', 'outbound', name='federation_aid_direction', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('partner_id', sa.String(length=32), nullable=False),
    sa.Column('request_id', sa.String(length=128), nullable=False),
    sa.Column('state', sa.Enum('requested', 'accepted', 'declined', 'committed', 'released', 'cancelled', name='federation_aid_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('exercise', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('resources', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('incident', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('location', Geography(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeogFromText', name='geography'), nullable=True),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.Column('team_ids', postgresql.ARRAY(sa.BigInteger()), server_default='{}', nullable=False),
    sa.Column('offered', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('committed_seq', sa.BigInteger(), nullable=True),
    sa.Column('decided_by', sa.String(length=120), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partner.id'], name=op.f('fk_federation_aid_request_partner_id_partner')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_federation_aid_request')),
    sa.UniqueConstraint('direction', 'partner_id', 'request_id', name='uq_federation_aid_request_direction_partner_request')
    )
    op.create_geospatial_index('idx_federation_aid_request_location', 'federation_aid_request', ['location'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_federation_aid_request_partner_id'), 'federation_aid_request', ['partner_id'], unique=False)
    op.create_index(op.f('ix_federation_aid_request_state'), 'federation_aid_request', ['state'], unique=False)
    op.create_table('federation_inbound',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('sender_id', sa.String(length=32), nullable=False),
    sa.Column('distribution_id', sa.String(length=128), nullable=False),
    sa.Column('distribution_kind', sa.String(length=16), nullable=False),
    sa.Column('distribution_status', sa.String(length=16), nullable=False),
    sa.Column('content_types', postgresql.ARRAY(sa.String(length=48)), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.String(length=128), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.Column('envelope', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('response_status', sa.SmallInteger(), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['sender_id'], ['partner.id'], name=op.f('fk_federation_inbound_sender_id_partner')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_federation_inbound')),
    sa.UniqueConstraint('sender_id', 'distribution_id', name='uq_federation_inbound_sender_distribution')
    )
    op.create_geospatial_table('federation_incident',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('partner_id', sa.String(length=32), nullable=False),
    sa.Column('incident_id', sa.String(length=128), nullable=False),
    sa.Column('type_code', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.SmallInteger(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('cancelled', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('location', Geography(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeogFromText', name='geography', nullable=False), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('exercise', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('revision', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('severity BETWEEN 1 AND 4', name=op.f('ck_federation_incident_severity_range')),
    sa.ForeignKeyConstraint(['partner_id'], ['partner.id'], name=op.f('fk_federation_incident_partner_id_partner')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_federation_incident')),
    sa.UniqueConstraint('partner_id', 'incident_id', name='uq_federation_incident_partner_incident')
    )
    op.create_geospatial_index('idx_federation_incident_location', 'federation_incident', ['location'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_federation_incident_partner_id'), 'federation_incident', ['partner_id'], unique=False)
    op.create_table('federation_outbox',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('partner_id', sa.String(length=32), nullable=False),
    sa.Column('distribution_id', sa.String(length=128), nullable=False),
    sa.Column('distribution_kind', sa.String(length=16), nullable=False),
    sa.Column('distribution_status', sa.String(length=16), nullable=False),
    sa.Column('content_types', postgresql.ARRAY(sa.String(length=48)), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.Enum('pending', 'delivered', 'rejected', 'expired', name='federation_outbox_state', native_enum=False, create_constraint=True, length=32), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('response_status', sa.SmallInteger(), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('subject_type', sa.String(length=32), nullable=True),
    sa.Column('subject_id', sa.String(length=64), nullable=True),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_federation_outbox_attempts_not_negative')),
    sa.ForeignKeyConstraint(['partner_id'], ['partner.id'], name=op.f('fk_federation_outbox_partner_id_partner')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_federation_outbox')),
    sa.UniqueConstraint('distribution_id', name=op.f('uq_federation_outbox_distribution_id'))
    )
    op.create_index(op.f('ix_federation_outbox_partner_id'), 'federation_outbox', ['partner_id'], unique=False)
    op.create_index('ix_federation_outbox_pending', 'federation_outbox', ['partner_id', 'id'], unique=False, postgresql_where="state = 'pending'")
    op.create_geospatial_table('federation_warning',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('partner_id', sa.String(length=32), nullable=False),
    sa.Column('identifier', sa.String(length=256), nullable=False),
    sa.Column('sender', sa.String(length=256), nullable=False),
    sa.Column('sent', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('msg_type', sa.String(length=16), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('alert', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('area', Geography(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeogFromText', name='geography'), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partner.id'], name=op.f('fk_federation_warning_partner_id_partner')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_federation_warning')),
    sa.UniqueConstraint('partner_id', 'identifier', name='uq_federation_warning_partner_identifier')
    )
    op.create_geospatial_index('idx_federation_warning_area', 'federation_warning', ['area'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_federation_warning_partner_id'), 'federation_warning', ['partner_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_federation_warning_partner_id'), table_name='federation_warning')
    op.drop_geospatial_index('idx_federation_warning_area', table_name='federation_warning', postgresql_using='gist', column_name='area')
    op.drop_geospatial_table('federation_warning')
    op.drop_index('ix_federation_outbox_pending', table_name='federation_outbox', postgresql_where="state = 'pending'")
    op.drop_index(op.f('ix_federation_outbox_partner_id'), table_name='federation_outbox')
    op.drop_table('federation_outbox')
    op.drop_index(op.f('ix_federation_incident_partner_id'), table_name='federation_incident')
    op.drop_geospatial_index('idx_federation_incident_location', table_name='federation_incident', postgresql_using='gist', column_name='location')
    op.drop_geospatial_table('federation_incident')
    op.drop_table('federation_inbound')
    op.drop_index(op.f('ix_federation_aid_request_state'), table_name='federation_aid_request')
    op.drop_index(op.f('ix_federation_aid_request_partner_id'), table_name='federation_aid_request')
    op.drop_geospatial_index('idx_federation_aid_request_location', table_name='federation_aid_request', postgresql_using='gist', column_name='location')
    op.drop_geospatial_table('federation_aid_request')
