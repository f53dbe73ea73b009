"""What differs between Steem and Hive: chain ids, symbols, the vops a node emits, and the
share of a payout that goes to curators in each era (spec §2, §3).

One home for these constants: the commitment hashes the chain's own id, so a copy that drifts
(Hive once kept Steem's all-zero id here) turns every honest reveal into ``hash_mismatch``.

Sources (read in the nodes' code, cited again in docs/node.md):

- ids: steemd ``libraries/protocol/include/steem/protocol/config.hpp`` (``STEEM_CHAIN_ID
  fc::sha256()``, 64 zeros); hived ``libraries/protocol/include/hive/protocol/config.hpp``
  (``HIVE_CHAIN_ID fc::sha256("beeab0de00…")``); both reported by ``get_config`` and, as the
  id the node actually signs with, by ``get_version.chain_id``.
- HF21: ``STEEM_HARDFORK_0_21_TIME 1566918000`` (steemit/steem
  ``libraries/protocol/hardfork.d/0_21.hf``, "Tue, 27 August 2019 15:00:00 UTC"; the same
  ``HIVE_HARDFORK_0_21_TIME`` in hived), applied at block 35,921,786 (hived
  ``doc/hf_blocks.txt``, ``hardfork_block.hpp``). Its ``apply_hardfork`` sets the reward
  fund's ``percent_curation_rewards = 50 * STEEM_1_PERCENT`` (steemd ``database.cpp``; hived
  ``database_hardfork.cpp``); before it the fund held 25 % (``reward_fund_object.hpp``).
- ``_apply_block`` runs ``process_comment_cashout()`` before ``process_hardforks()``: the
  first block at or after 15:00:00 still pays its cashouts at 25 %, and HF21 is in force from
  the next block. hived's block converter says the same (``has_hardfork``: ``block_num >
  HIVE_HARDFORK_0_21_BLOCK``).
- vops: hived pushes ``effective_comment_vote`` (``hive_evaluator_social.cpp``) and
  ``transfer_to_vesting_completed`` (``hive_evaluator_transfer.cpp``); steemd 0.23 has
  neither operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from curation.chaintime import HF21_TIME

STEEM_CHAIN_ID = "0" * 64
HIVE_CHAIN_ID = "beeab0de" + "0" * 56
CHAIN_IDS = {"steem": STEEM_CHAIN_ID, "hive": HIVE_CHAIN_ID}

HF21_BLOCK = 35_921_786  # the block at whose end HF21 was applied (its cashouts paid 25 %)
PRE_HF21_FRACTION = Fraction(1, 4)
HF21_FRACTION = Fraction(1, 2)


@dataclass(frozen=True, slots=True)
class ChainProfile:
    """A chain as the market needs to know it."""

    name: str  # "steem" | "hive"
    chain_id: str  # 64 lowercase hex, hashed into every commitment
    core: str  # STEEM / HIVE
    dollar: str  # SBD / HBD: the unit of F and of predictions
    hardfork_version: str  # e.g. "0.23.0", "1.27.0"
    effective_votes: bool  # the node emits effective_comment_vote (rshares of each vote)
    vesting_completed: bool  # the node emits transfer_to_vesting_completed
    producer_reward_from: int  # from this block on, every block has a producer_reward vop


# database::process_funds (every block since HF16) and database::get_producer_reward (before):
# steemd pushes the vop only from STEEM_START_MINER_VOTING_BLOCK (30 days of blocks) or when
# the witness held no vests; hived pushes it in both branches, for every block.
STEEM_START_MINER_VOTING_BLOCK = 28_800 * 30

STEEM = ChainProfile("steem", STEEM_CHAIN_ID, "STEEM", "SBD", "0.23.0", False, False,
                     STEEM_START_MINER_VOTING_BLOCK)
HIVE = ChainProfile("hive", HIVE_CHAIN_ID, "HIVE", "HBD", "1.27.0", True, True, 1)
PROFILES = {p.name: p for p in (STEEM, HIVE)}


def curation_fraction(time: int) -> Fraction:
    """The share of F that went to curators in the block at chain ``time`` (epoch seconds).

    By block time on both chains: Hive's blocks before its fork are Steem's history, and
    both chains paid 50 % from HF21 on. A block stamped exactly 15:00:00 is the activation
    block (its cashouts ran before the hardfork), so it still pays 25 %. Exact when that
    block's slot was produced on time; a block stamped later that was nevertheless the
    activation block would be counted as 50 % here (see docs/node.md).
    """
    return PRE_HF21_FRACTION if time <= HF21_TIME else HF21_FRACTION
