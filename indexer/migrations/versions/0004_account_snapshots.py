"""Account snapshots tagged with the block they describe (replaces node_accounts).

node_accounts only said that an account had been read from the node; its accounts row held
the vesting at the node's head, and every vesting op indexed after the read moved it again
(a delegation ended up counted twice, for good). The rows move to account_snapshots with
``as_of_block`` NULL, which makes the daemon read those accounts afresh at its next start.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('account_snapshots',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('read_block', sa.BigInteger(), nullable=False),
    sa.Column('as_of_block', sa.BigInteger(), nullable=True),
    sa.Column('head_block', sa.BigInteger(), nullable=True),
    sa.Column('exact', sa.Boolean(), nullable=True),
    sa.Column('approx_vests', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('note', sa.Text(), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.execute("INSERT INTO account_snapshots (name, read_block, note) "
               "SELECT name, block, 'read at the node head before 0004: to be read again' "
               "FROM node_accounts")
    op.drop_table('node_accounts')


def downgrade() -> None:
    op.create_table('node_accounts',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('block', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.execute("INSERT INTO node_accounts (name, block) "
               "SELECT name, read_block FROM account_snapshots")
    op.drop_table('account_snapshots')
