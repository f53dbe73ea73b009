"""The [market] settings a database was built with (market_settings).

Before, a database remembered its rules and chain id but not its windows or limits: a replay
resumed with another window_seconds was accepted silently, and `serve` judged the phase with
its own config's windows. The table starts empty; the first writer records its [market]
settings (an older database adopts the config of the first writer after this migration, and
says so in its log).

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
    op.create_table('market_settings',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('market_settings')
