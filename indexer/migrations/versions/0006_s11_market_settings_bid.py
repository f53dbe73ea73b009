"""The settings a database was built with (market_settings: all of [market], and the
[rules] keys its rules label leaves out); bids as integers; commits.hit.

Before, a database remembered its rules and chain id but not its windows or limits: a replay
resumed with another window_seconds was accepted silently, and `serve` judged the phase with
its own config's windows. The table starts empty; the first writer records its [market]
settings (an older database adopts the config of the first writer after this migration, and
says so in its log).

``commits.bid`` becomes integer thousandths (0.6 → 600), as the payload, the commitment and the
engine hold it: before, a bid went "0.600" → 600 → 0.6 → round(0.6 × 1000) on its way to the
commitment, and was stored as a float.

``commits.hit`` stores the last field of settlement's per-commit record
(rewards.settle.CommitResult: revealed inside the band, counted toward R), so the record is
stored and read back whole; settled rows of an older database get it from the band test
``10·P ≥ 9·F and P ≤ F`` (rewards/band.py) against their post's payout.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('market_settings',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('commits', 'bid', type_=sa.BigInteger(), existing_type=sa.Float(),
                        postgresql_using='round(bid * 1000)::bigint')
        op.add_column('commits', sa.Column('hit', sa.Boolean(), nullable=True))
    else:  # SQLite: the batch copy stores the whole REAL values as integers
        op.execute('UPDATE commits SET bid = ROUND(bid * 1000) WHERE bid IS NOT NULL')
        with op.batch_alter_table('commits') as batch:
            batch.alter_column('bid', type_=sa.BigInteger(), existing_type=sa.Float())
            batch.add_column(sa.Column('hit', sa.Boolean(), nullable=True))
    op.execute("UPDATE commits SET hit = (prediction IS NOT NULL "
               "AND 10 * prediction >= 9 * (SELECT payout FROM posts WHERE posts.id = post_id) "
               "AND prediction <= (SELECT payout FROM posts WHERE posts.id = post_id)) "
               "WHERE status = 'settled'")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_column('commits', 'hit')
        op.alter_column('commits', 'bid', type_=sa.Float(), existing_type=sa.BigInteger(),
                        postgresql_using='bid / 1000.0')
    else:
        with op.batch_alter_table('commits') as batch:
            batch.drop_column('hit')
            batch.alter_column('bid', type_=sa.Float(), existing_type=sa.BigInteger())
        op.execute('UPDATE commits SET bid = bid / 1000.0 WHERE bid IS NOT NULL')
    op.drop_table('market_settings')
