"""The commit–reveal market on in-memory state (spec §2): windows, binding, rejections."""

from __future__ import annotations

import pytest

from curation.commitment import commitment
from curation.market import MarketConfig, apply_block
from curation.records import (
    VOP_TRX,
    Block,
    Comment,
    CommentOptions,
    CommitMsg,
    DeleteComment,
    EffectiveVote,
    MarketOp,
    Payout,
    RevealMsg,
    VestingDelta,
    Vote,
)
from curation.state import Account, Globals, State
from rewards.rules import named

T0 = 1_500_000_000
SALT = bytes(range(32))
CFG = MarketConfig()


class Chain:
    """A tiny chain: one block per call, 3 s apart, every record at its own position."""

    def __init__(self, cfg: MarketConfig = CFG) -> None:
        self.cfg = cfg
        self.state = State(globals=Globals(1000, 1000))  # 1 VESTS = 1 milli-SP
        self.num = 100

    def at(self, seconds: int, *records_fns) -> None:
        self.num = max(self.num + 1, 100 + seconds // 3)
        block = Block(self.num, T0 + seconds)
        for i, make in enumerate(records_fns):
            block.records.append(make((self.num, i, 0)))
        apply_block(self.state, block, self.cfg)

    def rejections(self) -> list[str]:
        return [r.reason for r in self.state.rejections]


def post(author="bob", permlink="p", parent=""):
    return lambda pos: Comment(pos, author, permlink, parent, "tag")


def commit(who, prediction, author="bob", permlink="p", salt=SALT, chain_id="0" * 64):
    c = commitment(chain_id, author, permlink, who, prediction, salt)
    return lambda pos: MarketOp(pos, who, (CommitMsg(author, permlink, c),))


def reveal(who, prediction, author="bob", permlink="p", salt=SALT):
    return lambda pos: MarketOp(pos, who, (RevealMsg(author, permlink, prediction, salt),))


def vote(who, rshares, author="bob", permlink="p"):
    return lambda pos: EffectiveVote((pos[0], VOP_TRX, pos[1]), who, author, permlink, rshares)


def payout(amount, author="bob", permlink="p"):
    return lambda pos: Payout((pos[0], VOP_TRX, pos[1]), author, permlink, amount)


def with_sp(chain: Chain, **sp: int) -> None:
    for name, milli in sp.items():
        chain.state.accounts[name] = Account(name, vesting_shares=milli)


def test_happy_path_settles_and_pays_the_pool() -> None:
    c = Chain()
    with_sp(c, alice=1000, carol=3000)
    c.at(0, post())
    c.at(60, commit("alice", 95000), commit("carol", 99000))
    c.at(2000, reveal("alice", 95000), reveal("carol", 99000))
    c.at(7 * 86400, payout(100000))
    a, b = c.state.commits[(1, "alice")], c.state.commits[(1, "carol")]
    assert a.result.reward + b.result.reward == 25000
    assert a.result.ep is None and b.result.ep == 95000  # same block: carol's position is later
    assert c.state.settled[0].pool == 25000 and c.state.settled[0].returned == 0
    assert c.rejections() == []


def test_commit_window_is_inclusive_and_closes() -> None:
    c = Chain()
    c.at(0, post())
    c.at(1800, commit("alice", 1))
    c.at(1803, commit("carol", 1))
    assert c.rejections() == ["commit_window_closed"]
    assert (1, "alice") in c.state.commits


def test_later_commit_replaces_and_moves_the_commit_time() -> None:
    c = Chain()
    c.at(0, post())
    c.at(60, commit("alice", 1000))
    c.at(900, commit("alice", 2000))
    live = c.state.commits[(1, "alice")]
    assert live.time == T0 + 900
    assert c.state.curator("alice").open_commits == 1
    c.at(1900, reveal("alice", 1000))
    assert c.rejections() == ["hash_mismatch"]  # the first commitment is gone
    c.at(1950, reveal("alice", 2000))
    assert live.prediction == 2000


@pytest.mark.parametrize(("at", "reason"), [(1800, "reveal_too_early"),
                                            (1800 + 21601, "reveal_too_late")])
def test_reveal_window(at: int, reason: str) -> None:
    c = Chain()
    c.at(0, post())
    c.at(10, commit("alice", 5))
    c.at(at, reveal("alice", 5))
    assert c.rejections() == [reason]


def test_reveal_at_the_last_second_counts() -> None:
    c = Chain()
    c.at(0, post())
    c.at(10, commit("alice", 5))
    c.at(1800 + 21600, reveal("alice", 5))
    assert c.rejections() == []


def test_duplicate_mismatched_and_uncommitted_reveals() -> None:
    c = Chain()
    c.at(0, post())
    c.at(10, commit("alice", 5))
    c.at(1900, reveal("alice", 6))
    c.at(1903, reveal("alice", 5))
    c.at(1906, reveal("alice", 5))
    c.at(1909, reveal("carol", 5))
    assert c.rejections() == ["hash_mismatch", "already_revealed", "no_commitment"]


def test_a_copied_commitment_cannot_be_opened_by_the_copier() -> None:
    c = Chain()
    c.at(0, post())
    honest = commitment("0" * 64, "bob", "p", "alice", 5000, SALT)
    c.at(10, lambda pos: MarketOp(pos, "alice", (CommitMsg("bob", "p", honest),)))
    c.at(20, lambda pos: MarketOp(pos, "mallory", (CommitMsg("bob", "p", honest),)))
    c.at(1900, reveal("alice", 5000), reveal("mallory", 5000))
    assert c.rejections() == ["hash_mismatch"]
    assert c.state.commits[(1, "alice")].prediction == 5000


def test_chain_id_is_bound() -> None:
    c = Chain(MarketConfig(chain_id="beeab0de" + "0" * 56))
    c.at(0, post())
    c.at(10, commit("alice", 5))  # hashed with the Steem id
    c.at(1900, reveal("alice", 5))
    assert c.rejections() == ["hash_mismatch"]


def test_rejected_commits() -> None:
    c = Chain()
    c.at(0, post(), lambda pos: CommentOptions(pos, "bob", "p", ("ben",), None))
    c.at(3, post("bob", "reply", parent="bob"))
    c.at(10, commit("bob", 5), commit("ben", 5), commit("alice", 5, permlink="nope"),
         commit("alice", 5, permlink="reply"),
         lambda pos: MarketOp(pos, None, (CommitMsg("bob", "p", "0" * 64),), "2 signers"))
    assert c.rejections() == ["own_post", "beneficiary", "unknown_post", "not_a_market",
                              "signers"]


def test_a_beneficiary_named_after_the_commit_is_not_paid() -> None:
    """Was: the beneficiary test ran only at commit time, and the chain lets an author add
    beneficiaries until the post has votes, so a curator named afterwards was paid. Now the
    test is made again at settlement: that commit is void, recorded, counts nothing."""
    c = Chain()
    with_sp(c, alice=1000, carol=3000)
    c.at(0, post())
    c.at(60, commit("alice", 95000), commit("carol", 99000))
    c.at(90, lambda pos: CommentOptions(pos, "bob", "p", ("carol",), None))
    c.at(2000, reveal("alice", 95000), reveal("carol", 99000))
    c.at(7 * 86400, payout(100000))
    alice, carol = c.state.commits[(1, "alice")], c.state.commits[(1, "carol")]
    assert carol.status == "void" and carol.result is None
    assert alice.result.reward == 25000 and c.state.settled[0].n_commits == 1
    assert c.rejections() == ["beneficiary"]
    assert (c.state.curator("carol").n, c.state.curator("carol").open_commits) == (0, 0)
    assert c.state.curator("alice").open_commits == 0


def test_replies_are_markets_when_configured() -> None:
    c = Chain(MarketConfig(include_replies=True))
    c.at(0, post("bob", "reply", parent="carol"))
    c.at(10, commit("alice", 5, permlink="reply"))
    assert c.rejections() == []


def test_max_open_commits() -> None:
    c = Chain(MarketConfig(max_open_commits=2))
    c.at(0, post(permlink="a"), post(permlink="b"), post(permlink="c"))
    c.at(10, *(commit("alice", 5, permlink=p) for p in "abc"))
    assert c.rejections() == ["too_many_open_commits"]


def test_deleted_post_voids_the_market() -> None:
    c = Chain()
    c.at(0, post())
    c.at(10, commit("alice", 5))
    c.at(20, lambda pos: DeleteComment(pos, "bob", "p"))
    c.at(30, commit("carol", 5))
    c.at(1900, reveal("alice", 5))
    assert c.rejections() == ["deleted_post", "deleted_post"]
    assert c.state.commits[(1, "alice")].status == "void"
    assert c.state.curator("alice").open_commits == 0
    c.at(7 * 86400, payout(1000))
    assert c.state.settled == [] and c.state.curator("alice").n == 0


def test_first_comment_creates_later_ones_are_edits() -> None:
    c = Chain()
    c.at(0, post())
    c.at(600, post())
    assert c.state.posts[("bob", "p")].created == T0
    assert c.state.meta.next_post_id == 2


def test_votes_and_vote_changes_keep_net_and_abs_rshares() -> None:
    c = Chain()
    c.at(0, post())
    c.at(3, vote("v1", 100), vote("v2", -30))
    c.at(6, vote("v1", 40))  # a changed vote replaces the old one
    p = c.state.posts[("bob", "p")]
    assert (p.net_rshares, p.abs_rshares) == (10, 70)


def test_information_added_uses_abs_rshares_at_commit_time() -> None:
    c = Chain(MarketConfig(rules=named("commit-reveal")))
    with_sp(c, alice=1000, carol=1000)
    c.at(0, post())
    c.at(10, commit("alice", 95000))
    c.at(20, vote("v1", 300))
    c.at(30, commit("carol", 96000))
    c.at(40, vote("v1", 400))  # changed: A_final = 400
    c.at(1900, reveal("alice", 95000), reveal("carol", 96000))
    c.at(7 * 86400, payout(100000))
    a, b = c.state.commits[(1, "alice")], c.state.commits[(1, "carol")]
    assert (a.result.ia, b.result.ia) == (1.0, 0.25)
    assert (a.result.reward, b.result.reward) == (20000, 5000)


def test_reputation_counts_only_strictly_earlier_blocks_and_misses() -> None:
    c = Chain()
    with_sp(c, alice=1000)
    c.at(0, post(permlink="a"), post(permlink="b"), post(permlink="c"))
    c.at(10, commit("alice", 95000, permlink="a"), commit("alice", 95000, permlink="b"),
         commit("alice", 1, permlink="c"))
    c.at(1900, reveal("alice", 95000, permlink="a"), reveal("alice", 95000, permlink="b"))
    # a and b pay out in the same block: neither sees the other
    c.at(7 * 86400, payout(100000, permlink="a"), payout(100000, permlink="b"))
    a, b = c.state.commits[(1, "alice")], c.state.commits[(2, "alice")]
    assert (a.result.n, a.result.r, b.result.n, b.result.r) == (1, 1, 1, 1)
    c.at(7 * 86400 + 3, payout(100000, permlink="c"))  # alice never revealed c: a miss
    cur = c.state.curator("alice")
    assert (cur.n, cur.hits, cur.open_commits) == (3, 2, 0)


def test_small_payouts_do_not_count_toward_reputation() -> None:
    c = Chain()
    c.at(0, post())
    c.at(10, commit("alice", 500))
    c.at(1900, reveal("alice", 500))
    c.at(7 * 86400, payout(999))
    assert c.state.curator("alice").n == 0


def test_declined_payout_settles_with_zero() -> None:
    c = Chain()
    c.at(0, post(), lambda pos: CommentOptions(pos, "bob", "p", (), 0))
    c.at(7 * 86400, payout(5000))
    assert c.state.posts[("bob", "p")].payout == 0


def test_payout_update_without_reward_is_zero_and_settles_once() -> None:
    c = Chain()
    c.at(0, post())
    c.at(7 * 86400, payout(None))
    c.at(7 * 86400 + 3, payout(5000))
    assert c.state.posts[("bob", "p")].payout == 0
    assert len(c.state.settled) == 1


def test_steem_power_at_commit_time_follows_vesting_ops() -> None:
    c = Chain()
    with_sp(c, alice=1000)
    c.at(0, post())
    c.at(3, lambda pos: VestingDelta(pos, "alice", "delegation", 400, "carol"),
         lambda pos: VestingDelta((pos[0], 1, 1), "alice", "powerdown", 100))
    c.at(10, commit("alice", 5), commit("carol", 5), commit("dave", 5))
    sp = {k[1]: (v.sp, v.sp_known) for k, v in c.state.commits.items()}
    # the power-down takes only its next weekly payment: 100 // 13 intervals (HF16–HF21) = 7
    assert sp == {"alice": (1000 - 400 - 7, True), "carol": (400, True), "dave": (0, False)}


def test_voter_is_flagged_and_can_be_disqualified() -> None:

    for disqualify, expected in ((False, 25000), (True, 0)):
        c = Chain(MarketConfig(rules=named("seed", disqualify_voters=disqualify)))
        with_sp(c, alice=1000)
        c.at(0, post())
        c.at(10, commit("alice", 95000), lambda pos: Vote(pos, "alice", "bob", "p"))
        c.at(1900, reveal("alice", 95000))
        c.at(7 * 86400, payout(100000))
        got = c.state.commits[(1, "alice")]
        assert got.result.voted and got.result.reward == expected
        assert got.result.hit  # in the band: counts toward R either way


def test_phase_and_its_query_bounds_agree_to_the_second() -> None:
    """One definition of the windows: the phase of every age around both boundaries equals
    the phase the database filter (created bounds) puts it in, and the engine's commit and
    reveal tests open and close on the same seconds."""
    from curation.phase import Phase, Windows

    w = Windows(window=1800, reveal_period=21600)
    now = 10**6
    for age in [-1, 0, 1, 1799, 1800, 1801, 23399, 23400, 23401, 10**5]:
        created = now - age
        ph = w.phase(created, now, paid=False, deleted=False)
        for candidate in (Phase.open, Phase.revealing, Phase.closed):
            lo, hi = w.created_bounds(candidate, now)
            inside = (lo is None or created >= lo) and (hi is None or created <= hi)
            assert inside == (candidate is ph), (age, candidate, ph)
        assert w.commit_open(age) == (ph is Phase.open and age >= 0)
        assert w.reveal_open(age) == (ph is Phase.revealing)
        assert w.sealed(age) == (ph in (Phase.open, Phase.revealing))
    assert w.phase(now, now, paid=True, deleted=True) is Phase.settled
    assert w.phase(now, now, paid=False, deleted=True) is Phase.deleted
