"""Steem Power as the chain computes it: power-down rate and snapshot block of accounts,
delegations on their way back, and the vesting price over time.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts') as batch:
        batch.add_column(sa.Column('vesting_withdraw_rate', sa.BigInteger(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('as_of_block', sa.BigInteger(), nullable=False,
                                   server_default='0'))
    op.create_table('delegation_returns',
    sa.Column('delegator', sa.Text(), nullable=False),
    sa.Column('block', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('trx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('op', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('vests', sa.BigInteger(), nullable=False),
    sa.Column('expires', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('delegator', 'block', 'trx', 'op')
    )
    op.create_table('vesting_prices',
    sa.Column('block', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('total_vesting_fund', sa.BigInteger(), nullable=False),
    sa.Column('total_vesting_shares', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('block')
    )


def downgrade() -> None:
    op.drop_table('vesting_prices')
    op.drop_table('delegation_returns')
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('as_of_block')
        batch.drop_column('vesting_withdraw_rate')
