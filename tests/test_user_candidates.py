"""Per-user candidate sources (issue 17 item 1), in the running bot and at sync against both doubles:
a followed creator's new upload and bilibili's own home feed become candidates of that user alone;
the followed creators' feed is polled with one cheap call and paged only when it has something new."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from delivery.render import reason_text
from jobs.picks import choose_picks
from jobs.sync import sync_user
from recommender import Reason
from storage import behaviour, candidates, catalogue, users
from tests.botenv import eventually, forget_in_chat, pick_bvid, pick_messages, running_bot
from tests.dbfixtures import postgres_url  # noqa: F401
from tests.doubles.bilibili import FEED, FEED_UPDATE, FOLLOWINGS, HOME_FEED
from tests.harness import link_user, make_services

ALICE, BOB = 4801, 4802  # bilibili mids
ALICE_CHAT, BOB_CHAT = 9801, 9802
CREATOR = 777_001  # an uploader Alice follows and nobody else does


def excellent(video) -> None:
    """Stats no list video matches: the cold ranking (by quality) puts it first."""
    video.view = 10_000_000
    video.like = video.coin = video.favorite = video.share = video.view


def metadata_fetched(svc, bvid: str) -> bool:
    row = catalogue.get_videos(svc.db, [bvid]).get(bvid)
    return row is not None and row.fetched_at > 0


async def recommend(tg, chat: int) -> list:
    await tg.send_text(tg.user(chat, language_code="en"), "/recommend")
    await eventually(lambda: len(pick_messages(tg, chat)) >= 5, 60, f"picks in chat {chat}")
    return pick_messages(tg, chat)


async def test_a_followed_creators_new_upload_reaches_that_users_recommend_with_the_followed_reason_not_anothers(
    tmp_path, tg, bilibili_double
):
    bili = bilibili_double
    bili.add_user(ALICE, "alice")
    bili.add_user(BOB, "bob")
    bili.follow(ALICE, CREATOR)
    upload = bili.upload(CREATOR, at=int(time.time()) - 600, name="某UP主")
    excellent(upload)
    async with running_bot(tmp_path, tg, bili, tick_seconds=0.2) as (_app, svc):
        alice = link_user(svc, bili, ALICE_CHAT, ALICE)
        bob = link_user(svc, bili, BOB_CHAT, BOB)
        await eventually(lambda: metadata_fetched(svc, upload.bvid), 60, "the upload's metadata")
        await eventually(lambda: behaviour.get_cursor(svc.db, bob, "home:at") is not None, 60, "bob's sync")
        assert (upload.bvid, "followed") in candidates.user_candidates(svc.db, alice)
        assert candidates.followed_uploaders(svc.db, alice) == {CREATOR}

        alice_picks = await recommend(tg, ALICE_CHAT)
        bob_picks = await recommend(tg, BOB_CHAT)

    mine = [m for m in alice_picks if pick_bvid(m) == upload.bvid]
    assert mine, "the followed creator's upload is among Alice's picks"
    assert "New from 某UP主, whom you follow" in mine[0].content
    assert upload.bvid not in {pick_bvid(m) for m in bob_picks}
    assert not {b for b, _ in candidates.user_candidates(svc.db, bob)} & {upload.bvid}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_followed_creators_new_upload_reaches_that_users_next_digest_and_not_anothers(
    tmp_path, tg, bilibili_double
):
    bili = bilibili_double
    bili.add_user(ALICE, "alice")
    bili.add_user(BOB, "bob")
    bili.follow(ALICE, CREATOR)
    upload = bili.upload(CREATOR, at=int(time.time()) - 600, name="某UP主")
    excellent(upload)
    async with running_bot(tmp_path, tg, bili, tick_seconds=0.2) as (_app, svc):
        clock = Clock()
        svc.clock = clock
        tz = "Asia/Shanghai"
        soon = (datetime.fromtimestamp(clock.now, ZoneInfo(tz)) + timedelta(minutes=1)).strftime("%H:%M")
        link_user(svc, bili, ALICE_CHAT, ALICE, timezone=tz, digest_time=soon)
        bob = link_user(svc, bili, BOB_CHAT, BOB, timezone=tz, digest_time=soon)
        await eventually(lambda: metadata_fetched(svc, upload.bvid), 60, "the upload's metadata")
        await eventually(lambda: behaviour.get_cursor(svc.db, bob, "home:at") is not None, 60, "bob's sync")
        assert pick_messages(tg, ALICE_CHAT) == []

        clock.now += 61
        await eventually(
            lambda: len(pick_messages(tg, ALICE_CHAT)) >= 5 and len(pick_messages(tg, BOB_CHAT)) >= 5,
            60,
            "both digests",
        )
        alice_digest, bob_digest = pick_messages(tg, ALICE_CHAT), pick_messages(tg, BOB_CHAT)

    mine = [m for m in alice_digest if pick_bvid(m) == upload.bvid]
    assert mine and "New from 某UP主, whom you follow" in mine[0].content
    assert mine[0].is_photo and [b["text"][:1] for b in mine[0].reply_markup["inline_keyboard"][0]] == ["👍", "👎"]
    assert upload.bvid not in {pick_bvid(m) for m in bob_digest}


async def test_the_home_feeds_picks_are_that_users_alone(tmp_path, tg, bilibili_double):
    bili = bilibili_double
    bili.add_user(ALICE, "alice")
    bili.add_user(BOB, "bob")
    stranger = bili.upload(CREATOR, at=int(time.time()) - 600)  # nobody follows them: no one's feed
    excellent(stranger)
    bili.set_home_feed(ALICE, [stranger.bvid])
    async with running_bot(tmp_path, tg, bili, tick_seconds=0.2) as (_app, svc):
        alice = link_user(svc, bili, ALICE_CHAT, ALICE)
        bob = link_user(svc, bili, BOB_CHAT, BOB)
        for uid in (alice, bob):
            await eventually(lambda: behaviour.get_cursor(svc.db, uid, "home:at") is not None, 60, "the home feed read")
        assert (stranger.bvid, "home") in candidates.user_candidates(svc.db, alice)

        alice_picks = await recommend(tg, ALICE_CHAT)
        bob_picks = await recommend(tg, BOB_CHAT)

    assert pick_bvid(alice_picks[0]) == stranger.bvid
    assert stranger.bvid not in {pick_bvid(m) for m in bob_picks}
    assert stranger.bvid not in {b for b, _ in candidates.user_candidates(svc.db, bob)}


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_the_followed_feed_is_polled_once_per_sync_and_paged_only_when_it_counts_new_uploads(
    tmp_path, bilibili_double, request, database
):
    bili = bilibili_double
    bili.add_user(ALICE, "alice")
    bili.follow(ALICE, CREATOR)
    first = bili.upload(CREATOR, at=int(time.time()) - 3600)
    url = request.getfixturevalue("postgres_url") if database == "postgres" else None
    svc = make_services(tmp_path, bili, database_url=url)
    try:
        uid = link_user(svc, bili, ALICE_CHAT, ALICE)
        assert (await sync_user(svc, uid)).ok
        assert (bili.calls[FEED_UPDATE], bili.calls[FEED], bili.calls[FOLLOWINGS]) == (1, 1, 1)
        assert (first.bvid, "followed") in candidates.user_candidates(svc.db, uid)

        assert (await sync_user(svc, uid)).ok  # nothing new: the poll only
        assert (bili.calls[FEED_UPDATE], bili.calls[FEED], bili.calls[FOLLOWINGS]) == (2, 1, 1)

        second = bili.upload(CREATOR, at=int(time.time()))
        assert (await sync_user(svc, uid)).ok
        assert (bili.calls[FEED_UPDATE], bili.calls[FEED], bili.calls[FOLLOWINGS]) == (3, 2, 1)
        assert (second.bvid, "followed") in candidates.user_candidates(svc.db, uid)
        assert bili.last_request(FEED).query.get("offset") is None  # from the top, down to the baseline
        reasons = {c.bvid: c.reason for c in choose_picks(svc, users.get_user_by_id(svc.db, uid), 10_000).items}
        assert reasons[second.bvid] == Reason("followed", second.owner_name)

        svc.clock = lambda: time.time() + 15 * 86400  # two weeks on, nothing new: the old rows go
        assert (await sync_user(svc, uid)).ok
        assert not {b for b, _ in candidates.user_candidates(svc.db, uid)} & {first.bvid, second.bvid}
    finally:
        await svc.close()


async def test_a_failing_home_feed_fails_no_sync_and_the_followed_uploads_still_arrive(tmp_path, bilibili_double):
    bili = bilibili_double
    bili.add_user(ALICE, "alice")
    bili.follow(ALICE, CREATOR)
    upload = bili.upload(CREATOR, at=int(time.time()) - 3600)
    bili.inject(HOME_FEED, "12345")
    svc = make_services(tmp_path, bili)
    try:
        uid = link_user(svc, bili, ALICE_CHAT, ALICE)
        report = await sync_user(svc, uid)
        assert report.ok, report.error
        assert (upload.bvid, "followed") in candidates.user_candidates(svc.db, uid)
        assert not {s for _, s in candidates.user_candidates(svc.db, uid)} & {"home"}
    finally:
        await svc.close()


async def test_logout_keeps_the_users_own_candidates_and_forget_deletes_them_only(tmp_path, tg, bilibili_double):
    bili = bilibili_double
    for mid in (ALICE, BOB):
        bili.add_user(mid, f"u{mid}")
        bili.follow(mid, CREATOR)
    bili.upload(CREATOR, at=int(time.time()) - 600)
    async with running_bot(tmp_path, tg, bili, tick_seconds=0.2) as (_app, svc):
        alice = link_user(svc, bili, ALICE_CHAT, ALICE)
        bob = link_user(svc, bili, BOB_CHAT, BOB)
        for uid in (alice, bob):
            await eventually(lambda: behaviour.get_cursor(svc.db, uid, "home:at") is not None, 60, "a first sync")
        theirs = candidates.user_candidates(svc.db, alice)
        assert {s for _, s in theirs} == {"followed", "home"}

        user = tg.user(ALICE_CHAT, language_code="en")
        mark = tg.mark()
        await tg.send_text(user, "/logout")
        await tg.wait_for(lambda m: "login is forgotten" in m.content, chat=user, since=mark)
        assert candidates.user_candidates(svc.db, alice) == theirs

        await forget_in_chat(tg, user)
        assert candidates.user_candidates(svc.db, alice) == set()
        assert {s for _, s in candidates.user_candidates(svc.db, bob)} == {"followed", "home"}


def test_the_followed_reason_reads_in_both_languages():
    reason = Reason("followed", "某UP主")
    assert reason_text(reason, "en") == "New from 某UP主, whom you follow"
    assert reason_text(reason, "zh") == "你关注的 某UP主 发布了新视频"
