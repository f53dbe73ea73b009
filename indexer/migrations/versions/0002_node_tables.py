"""Tables of the daemon that follows a node: its rolling status and the accounts read from it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('node_status',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('head', sa.BigInteger(), nullable=False),
    sa.Column('irreversible', sa.BigInteger(), nullable=False),
    sa.Column('head_time', sa.BigInteger(), nullable=False),
    sa.Column('ops_per_second', sa.Float(), nullable=False),
    sa.Column('blocks_per_second', sa.Float(), nullable=False),
    sa.Column('checked_at', sa.BigInteger(), nullable=False),
    sa.Column('metrics_port', sa.Integer(), nullable=False),
    sa.Column('provisional', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('node_accounts',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('block', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('node_accounts')
    op.drop_table('node_status')
