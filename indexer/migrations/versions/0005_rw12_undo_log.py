"""The undo log of reversible blocks: prior row images and the blocks they belong to.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('undo_log',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('block', sa.BigInteger(), nullable=False),
    sa.Column('tbl', sa.String(length=64), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('image', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_index('ix_undo_log_block', 'undo_log', ['block'], unique=False)
    op.create_table('undo_blocks',
    sa.Column('num', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('block_id', sa.String(length=40), nullable=False),
    sa.Column('base', sa.BigInteger(), nullable=False),
    sa.Column('base_id', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('num')
    )


def downgrade() -> None:
    op.drop_table('undo_blocks')
    op.drop_index('ix_undo_log_block', table_name='undo_log')
    op.drop_table('undo_log')
