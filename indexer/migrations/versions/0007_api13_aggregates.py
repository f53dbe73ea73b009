"""API aggregates (per-market counts, per-curator totals and days) and the read model's indexes.

The tables are filled here from the rows already indexed (the same GROUP BY the read model ran
per request before), and from then on by the store in each batch's transaction.

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-30 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

NAME = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
SUMS = ("SUM(COALESCE(c.reward, 0)), COUNT(*), "
        "SUM(CASE WHEN 10 * c.prediction >= 9 * s.final_payout "
        "AND c.prediction <= s.final_payout THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN c.reward > 0 THEN 1 ELSE 0 END) "
        "FROM commits c JOIN settlements s ON s.post_id = c.post_id "
        "WHERE c.status = 'settled'")


def upgrade() -> None:
    op.create_table('api_market_counts',
    sa.Column('post_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('n_commits', sa.Integer(), nullable=False),
    sa.Column('n_revealed', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('post_id')
    )
    op.create_table('api_curator_totals',
    sa.Column('name', NAME, nullable=False),
    sa.Column('earned', sa.BigInteger(), nullable=False),
    sa.Column('predictions', sa.Integer(), nullable=False),
    sa.Column('in_band', sa.Integer(), nullable=False),
    sa.Column('rewarded', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_index('ix_api_curator_totals_rank', 'api_curator_totals',
                    [sa.text('earned DESC'), 'name'])
    op.create_table('api_curator_days',
    sa.Column('day', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('name', NAME, nullable=False),
    sa.Column('earned', sa.BigInteger(), nullable=False),
    sa.Column('predictions', sa.Integer(), nullable=False),
    sa.Column('in_band', sa.Integer(), nullable=False),
    sa.Column('rewarded', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'name')
    )
    op.create_index('ix_settlements_time', 'settlements', ['time'])
    op.create_index('ix_commits_predictor_position', 'commits',
                    ['predictor', 'block', 'trx', 'op', 'sub'])
    op.create_index('ix_posts_category', 'posts', ['parent_author', 'parent_permlink', 'id'])
    op.create_index('ix_rejections_account_position', 'rejections',
                    ['account', 'block', 'trx', 'op', 'sub'])
    # the backfill: what the read model computed per request until now
    op.execute("INSERT INTO api_market_counts (post_id, n_commits, n_revealed) "
               "SELECT post_id, COUNT(*), COUNT(reveal_block) FROM commits GROUP BY post_id")
    op.execute("INSERT INTO api_curator_totals (name, earned, predictions, in_band, rewarded) "
               f"SELECT c.predictor, {SUMS} GROUP BY c.predictor")
    op.execute("INSERT INTO api_curator_days (day, name, earned, predictions, in_band, "
               f"rewarded) SELECT s.time / 86400, c.predictor, {SUMS} "
               "GROUP BY s.time / 86400, c.predictor")


def downgrade() -> None:
    op.drop_index('ix_rejections_account_position', table_name='rejections')
    op.drop_index('ix_posts_category', table_name='posts')
    op.drop_index('ix_commits_predictor_position', table_name='commits')
    op.drop_index('ix_settlements_time', table_name='settlements')
    op.drop_table('api_curator_days')
    op.drop_index('ix_api_curator_totals_rank', table_name='api_curator_totals')
    op.drop_table('api_curator_totals')
    op.drop_table('api_market_counts')
