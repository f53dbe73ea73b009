"""Initial tables: everything indexer/schema.py held when migrations began.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 09:15:00.033473
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('vesting_shares', sa.BigInteger(), nullable=False),
    sa.Column('delegated', sa.BigInteger(), nullable=False),
    sa.Column('received', sa.BigInteger(), nullable=False),
    sa.Column('to_withdraw', sa.BigInteger(), nullable=False),
    sa.Column('withdrawn', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('author_history',
    sa.Column('post_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('author', sa.Text(), nullable=False),
    sa.Column('is_reply', sa.Boolean(), nullable=False),
    sa.Column('time', sa.BigInteger(), nullable=False),
    sa.Column('r', sa.Float(), nullable=False),
    sa.Column('w', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('post_id')
    )
    with op.batch_alter_table('author_history', schema=None) as batch_op:
        batch_op.create_index('ix_author_history_author', ['author', 'is_reply', 'time'],
                              unique=False)

    op.create_table('commits',
    sa.Column('post_id', sa.BigInteger(), nullable=False),
    sa.Column('predictor', sa.Text(), nullable=False),
    sa.Column('commitment', sa.String(length=64), nullable=False),
    sa.Column('block', sa.BigInteger(), nullable=False),
    sa.Column('trx', sa.Integer(), nullable=False),
    sa.Column('op', sa.Integer(), nullable=False),
    sa.Column('sub', sa.Integer(), nullable=False),
    sa.Column('time', sa.BigInteger(), nullable=False),
    sa.Column('sp', sa.BigInteger(), nullable=False),
    sa.Column('sp_known', sa.Boolean(), nullable=False),
    sa.Column('abs_at_commit', sa.BigInteger(), nullable=False),
    sa.Column('prediction', sa.BigInteger(), nullable=True),
    sa.Column('stake', sa.BigInteger(), nullable=True),
    sa.Column('bid', sa.Float(), nullable=True),
    sa.Column('reveal_block', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('voted', sa.Boolean(), nullable=False),
    sa.Column('qualified', sa.Boolean(), nullable=False),
    sa.Column('ep', sa.BigInteger(), nullable=True),
    sa.Column('d', sa.Float(), nullable=True),
    sa.Column('cp', sa.Float(), nullable=True),
    sa.Column('n', sa.Integer(), nullable=True),
    sa.Column('r', sa.Integer(), nullable=True),
    sa.Column('rp', sa.Float(), nullable=True),
    sa.Column('ia', sa.Float(), nullable=True),
    sa.Column('weight', sa.Float(), nullable=True),
    sa.Column('reward', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('post_id', 'predictor')
    )
    with op.batch_alter_table('commits', schema=None) as batch_op:
        batch_op.create_index('ix_commits_predictor', ['predictor'], unique=False)

    op.create_table('curators',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('open_commits', sa.Integer(), nullable=False),
    sa.Column('earned', sa.BigInteger(), nullable=False),
    sa.Column('rewarded', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('delegations',
    sa.Column('delegator', sa.Text(), nullable=False),
    sa.Column('delegatee', sa.Text(), nullable=False),
    sa.Column('vests', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('delegator', 'delegatee')
    )
    op.create_table('meta',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_block', sa.BigInteger(), nullable=False),
    sa.Column('last_block_id', sa.String(length=40), nullable=False),
    sa.Column('last_time', sa.BigInteger(), nullable=False),
    sa.Column('next_post_id', sa.BigInteger(), nullable=False),
    sa.Column('total_vesting_fund', sa.BigInteger(), nullable=False),
    sa.Column('total_vesting_shares', sa.BigInteger(), nullable=False),
    sa.Column('chain_id', sa.String(length=64), nullable=False),
    sa.Column('rules', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('posts',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('author', sa.Text(), nullable=False),
    sa.Column('permlink', sa.Text(), nullable=False),
    sa.Column('created', sa.BigInteger(), nullable=False),
    sa.Column('block', sa.BigInteger(), nullable=False),
    sa.Column('parent_author', sa.Text(), nullable=False),
    sa.Column('parent_permlink', sa.Text(), nullable=False),
    sa.Column('is_market', sa.Boolean(), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('declined', sa.Boolean(), nullable=False),
    sa.Column('beneficiaries', sa.Text(), nullable=False),
    sa.Column('net_rshares', sa.BigInteger(), nullable=False),
    sa.Column('abs_rshares', sa.BigInteger(), nullable=False),
    sa.Column('payout', sa.BigInteger(), nullable=True),
    sa.Column('paid_block', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('author', 'permlink', name='uq_posts_key')
    )
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.create_index('ix_posts_paid_block', ['paid_block'], unique=False)

    op.create_table('rejections',
    sa.Column('block', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('trx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('op', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('sub', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('account', sa.Text(), nullable=False),
    sa.Column('author', sa.Text(), nullable=False),
    sa.Column('permlink', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('block', 'trx', 'op', 'sub')
    )
    with op.batch_alter_table('rejections', schema=None) as batch_op:
        batch_op.create_index('ix_rejections_account', ['account'], unique=False)
        batch_op.create_index('ix_rejections_reason', ['reason'], unique=False)

    op.create_table('settlements',
    sa.Column('post_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('block', sa.BigInteger(), nullable=False),
    sa.Column('time', sa.BigInteger(), nullable=False),
    sa.Column('final_payout', sa.BigInteger(), nullable=False),
    sa.Column('pool', sa.BigInteger(), nullable=False),
    sa.Column('returned', sa.BigInteger(), nullable=False),
    sa.Column('underdog_returned', sa.BigInteger(), nullable=False),
    sa.Column('rules', sa.Text(), nullable=False),
    sa.Column('r', sa.Float(), nullable=False),
    sa.Column('x', sa.Float(), nullable=False),
    sa.Column('f', sa.Float(), nullable=True),
    sa.Column('author_average', sa.Float(), nullable=True),
    sa.Column('n_commits', sa.Integer(), nullable=False),
    sa.Column('n_revealed', sa.Integer(), nullable=False),
    sa.Column('n_qualified', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('post_id')
    )
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.create_index('ix_settlements_block', ['block'], unique=False)

    op.create_table('votes',
    sa.Column('post_id', sa.BigInteger(), nullable=False),
    sa.Column('voter', sa.Text(), nullable=False),
    sa.Column('rshares', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('post_id', 'voter')
    )


def downgrade() -> None:
    op.drop_table('votes')
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.drop_index('ix_settlements_block')

    op.drop_table('settlements')
    with op.batch_alter_table('rejections', schema=None) as batch_op:
        batch_op.drop_index('ix_rejections_reason')
        batch_op.drop_index('ix_rejections_account')

    op.drop_table('rejections')
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_index('ix_posts_paid_block')

    op.drop_table('posts')
    op.drop_table('meta')
    op.drop_table('delegations')
    op.drop_table('curators')
    with op.batch_alter_table('commits', schema=None) as batch_op:
        batch_op.drop_index('ix_commits_predictor')

    op.drop_table('commits')
    with op.batch_alter_table('author_history', schema=None) as batch_op:
        batch_op.drop_index('ix_author_history_author')

    op.drop_table('author_history')
    op.drop_table('accounts')
