"""Recall in the running bot, against both doubles: the two-tower model is built by the ticks from
every user's behaviour and a /forget drops the leaver's part; bilibili's related lists are candidates
for the user whose likes brought them, not for everyone (issue 17 items 1 and 4)."""

from __future__ import annotations

import time

import pytest

from jobs.picks import candidate_rec_videos, choose_picks
from jobs.sync import sync_user
from storage import behaviour, candidates, catalogue, users
from tests.botenv import eventually, forget_in_chat, pick_bvid, pick_messages, running_bot
from tests.dbfixtures import postgres_url  # noqa: F401
from tests.doubles.bilibili import RELATED
from tests.harness import link_user, make_services

ALICE, BOB, CAROL = 4901, 4902, 4903  # bilibili mids
ALICE_CHAT, BOB_CHAT = 9901, 9902
STRANGER = 778_001  # an uploader nobody follows: their upload is in no list


def _members(svc) -> set[int]:
    tower = svc.models.load_twotower()
    return {int(m) for m in tower.members} if tower is not None else set()


async def test_the_two_tower_model_learns_from_every_user_and_forget_drops_the_leavers_part(
    tmp_path, tg, bilibili_double
):
    bili = bilibili_double
    bili.add_generated_user(ALICE, seed=31, n_history=100, uname="alice")
    bili.add_generated_user(BOB, seed=32, n_history=100, uname="bob")
    async with running_bot(tmp_path, tg, bili, tick_seconds=0.2, retrain_debounce_s=30) as (_app, svc):
        stays = link_user(svc, bili, ALICE_CHAT, ALICE, linked_ago_s=3600)
        leaves = link_user(svc, bili, BOB_CHAT, BOB, linked_ago_s=3600)
        await eventually(lambda: _members(svc) == {stays, leaves}, 120, "a two-tower model from both users")
        tower = svc.models.load_twotower()
        assert tower.recallable.sum() > 100 and tower.seconds > 0
        recalled = tower.recall(list(reversed([b.bvid for b in behaviour.user_behaviours(svc.db, stays)])), 50)
        assert len(recalled) == 50

        await forget_in_chat(tg, tg.user(BOB_CHAT, language_code="en"))
        assert users.get_user_by_id(svc.db, leaves) is None
        # Dropped, and built again from the one who stays.
        await eventually(lambda: _members(svc) == {stays}, 120, "a two-tower model without the leaver")

        batch = choose_picks(svc, users.get_user_by_id(svc.db, stays), 5)
        assert batch.mode == "personal" and len(batch.items) == 5


async def test_a_related_list_is_a_candidate_of_the_user_whose_like_brought_it_and_of_no_one_else(
    tmp_path, tg, bilibili_double
):
    bili = bilibili_double
    seed = bili.popular_order[0]
    bili.add_user(ALICE, "alice", likes=[seed], history=[(seed, int(time.time()) - 3600)])
    bili.add_user(BOB, "bob")
    related = bili.upload(STRANGER, at=int(time.time()) - 600)  # in no popular, weekly or ranking list
    related.view = 10_000_000  # stats no list video matches: a cold ranking would put it first
    related.like = related.coin = related.favorite = related.share = related.view
    listed = bili.related_bvids
    bili.related_bvids = lambda bvid: [related.bvid, *listed(bvid)] if bvid == seed else listed(bvid)
    async with running_bot(tmp_path, tg, bili, tick_seconds=0.2) as (_app, svc):
        alice = link_user(svc, bili, ALICE_CHAT, ALICE)
        bob = link_user(svc, bili, BOB_CHAT, BOB)
        await eventually(
            lambda: (related.bvid, "related") in candidates.user_candidates(svc.db, alice),
            60,
            "Alice's related candidates",
        )
        await eventually(lambda: behaviour.get_cursor(svc.db, bob, "home:at") is not None, 60, "Bob's sync")

        await tg.send_text(tg.user(ALICE_CHAT, language_code="en"), "/recommend")
        await eventually(lambda: len(pick_messages(tg, ALICE_CHAT)) >= 5, 60, "Alice's picks")
        await tg.send_text(tg.user(BOB_CHAT, language_code="en"), "/recommend")
        await eventually(lambda: len(pick_messages(tg, BOB_CHAT)) >= 5, 60, "Bob's picks")
        shared_pool = {v.bvid for v in candidate_rec_videos(svc.db, since=1)}  # what every user ranks

    assert related.bvid in {pick_bvid(m) for m in pick_messages(tg, ALICE_CHAT)}
    assert related.bvid not in shared_pool, "a related list joins no shared list (nor anyone's negatives)"
    assert related.bvid not in {pick_bvid(m) for m in pick_messages(tg, BOB_CHAT)}
    assert related.bvid not in {b for b, _ in candidates.user_candidates(svc.db, bob)}


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_a_related_list_stored_for_one_user_reaches_the_next_user_who_likes_the_same_video(
    tmp_path, bilibili_double, request, database
):
    """Stored once: a second user's like of the same video makes the stored list theirs too, with no
    second related call; a third user who never liked it gets none of it."""
    bili = bilibili_double
    seed = bili.popular_order[3]
    now = int(time.time())
    bili.add_user(ALICE, "alice", likes=[seed], history=[(seed, now - 3600)])
    bili.add_user(BOB, "bob", likes=[seed], history=[(seed, now - 1800)])
    bili.add_user(CAROL, "carol")
    url = request.getfixturevalue("postgres_url") if database == "postgres" else None
    svc = make_services(tmp_path, bili, database_url=url)
    try:
        alice, bob, carol = (
            link_user(svc, bili, chat, mid) for chat, mid in ((ALICE_CHAT, ALICE), (BOB_CHAT, BOB), (9903, CAROL))
        )
        listed = set(bili.related_bvids(seed))
        assert (await sync_user(svc, alice)).ok
        calls = bili.calls[RELATED]
        assert (await sync_user(svc, bob)).ok and (await sync_user(svc, carol)).ok
        assert bili.calls[RELATED] == calls, "the list is fetched once"
        # what was stored of it (view/detail brings the list; the first RELATED_KEPT are kept)
        stored = set(catalogue.related_graph(svc.db, [seed])[seed])
        assert stored and stored <= listed
        for uid in (alice, bob):
            assert stored <= {b for b, src in candidates.user_candidates(svc.db, uid) if src == "related"}
        assert not {b for b, src in candidates.user_candidates(svc.db, carol) if src == "related"}
    finally:
        await svc.close()
