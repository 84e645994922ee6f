"""One member-only or refused video (-403 / -400 on view, view/detail, tags, related) never fails a
sync (issue 16 §4): it is skipped and remembered, kept out of the picks, and looked at again later.

Everything goes over HTTP to the bilibili double, which refuses the video as bilibili does.
"""

from __future__ import annotations

import pytest

from jobs.picks import choose_picks
from jobs.schedule import after_sync
from jobs.sync import sync_user
from storage import catalogue, users
from tests.doubles.bilibili import RELATED, TAGS, VIEW, VIEW_DETAIL
from tests.doubles.bilibili_catalogue import Video as DoubleVideo
from tests.doubles.bilibili_catalogue import av2bv
from tests.harness import link_user, make_services

MID = 4401
VIDEO_PATHS = (VIEW, VIEW_DETAIL, TAGS, RELATED)


@pytest.fixture
async def svc(tmp_path, bilibili_double):
    services = make_services(tmp_path, bilibili_double)
    yield services
    await services.close()


def user_who_liked(svc, double, refused: str) -> int:
    """A user who watched and liked the refused video (so its related list is asked for too)."""
    videos = [refused, *double.popular_order[200:215]]
    double.add_user(
        MID, "member", history=[(b, 1_700_000_000 - i) for i, b in enumerate(videos)], likes=[refused, videos[1]]
    )
    return link_user(svc, double, 1, MID)


def refused_popular_video(double, code: int) -> str:
    """A video of the first popular page (a candidate for everyone) that bilibili refuses."""
    bvid = double.popular_order[3]
    double.set_restricted(bvid, code)
    return bvid


def asked_about(double, bvid: str) -> int:
    return sum(1 for r in double.requests if r.path in VIDEO_PATHS and r.query.get("bvid") == bvid)


@pytest.mark.parametrize("code", [-403, -400])
async def test_a_member_only_video_does_not_fail_the_sync_of_everyone_who_watched_it(svc, bilibili_double, code):
    refused = refused_popular_video(bilibili_double, code)
    user_id = user_who_liked(svc, bilibili_double, refused)

    report = await sync_user(svc, user_id)

    assert report.ok, report.error
    watched = catalogue.get_videos(svc.db, [refused, *bilibili_double.popular_order[200:215]])
    assert all(v.fetched_at > 0 for b, v in watched.items() if b != refused)  # the rest got their metadata
    assert watched[refused].unavailable
    candidates = {v.bvid for v in catalogue.candidate_videos(svc.db, since=0)}
    assert candidates and refused not in candidates  # never offered meanwhile...
    newcomer = users.get_user_by_id(svc.db, link_user(svc, bilibili_double, 2, MID + 1))
    picks = choose_picks(svc, newcomer, 100)  # ...by the popular ranking either
    assert picks.items and refused not in {p.bvid for p in picks.items}

    bilibili_double.reset_calls()  # remembered: the next sync does not ask again
    assert (await sync_user(svc, user_id)).ok
    assert asked_about(bilibili_double, refused) == 0


async def test_a_refused_video_is_looked_at_again_later_and_comes_back(svc, bilibili_double):
    refused = refused_popular_video(bilibili_double, -403)
    user_id = user_who_liked(svc, bilibili_double, refused)
    assert (await sync_user(svc, user_id)).ok

    bilibili_double.set_restricted(refused, None)  # the member-only period ended
    later = svc.now() + int(svc.settings.jobs.video_ttl_s) + 60
    svc.clock = lambda: later
    assert (await sync_user(svc, user_id)).ok

    video = catalogue.get_videos(svc.db, [refused])[refused]
    assert not video.unavailable and video.fetched_at >= later
    assert refused in {v.bvid for v in catalogue.candidate_videos(svc.db, since=later - 3600)}


async def test_a_refused_video_only_its_watchers_have_is_looked_at_again_by_their_sync(svc, bilibili_double):
    """No candidate list brings it back: the user's own sync asks again once its time has come."""
    template = bilibili_double.videos[bilibili_double.popular_order[0]]
    aid = 123_456_789_012
    private = bilibili_double.add_video(
        DoubleVideo(
            aid=aid,
            bvid=av2bv(aid),
            title="members only",
            pic=template.pic,
            tid=template.tid,
            tname=template.tname,
            pubdate=template.pubdate,
            duration=300,
            owner_mid=template.owner_mid,
            owner_name=template.owner_name,
            tags=["充电专属"],
            in_popular=False,
        )
    )
    bilibili_double.set_restricted(private.bvid, -403)
    bilibili_double.add_user(MID, "member", history=[(private.bvid, 1_700_000_000)])
    user_id = link_user(svc, bilibili_double, 1, MID)
    assert (await sync_user(svc, user_id)).ok
    assert catalogue.get_videos(svc.db, [private.bvid])[private.bvid].unavailable

    bilibili_double.reset_calls()
    assert (await sync_user(svc, user_id)).ok  # remembered: not asked again yet
    assert asked_about(bilibili_double, private.bvid) == 0

    bilibili_double.set_restricted(private.bvid, None)
    later = svc.now() + int(svc.settings.jobs.video_ttl_s) + 60
    svc.clock = lambda: later
    assert (await sync_user(svc, user_id)).ok

    video = catalogue.get_videos(svc.db, [private.bvid])[private.bvid]
    assert not video.unavailable and video.fetched_at == later and "充电专属" in video.tags


async def test_a_sync_that_stored_rows_asks_for_a_retrain_even_when_a_later_step_failed(svc, bilibili_double):
    user_id = user_who_liked(svc, bilibili_double, bilibili_double.popular_order[3])
    bilibili_double.inject(VIEW_DETAIL, "500", times=3)  # the metadata step fails after its retries

    report = await sync_user(svc, user_id)
    after_sync(svc, user_id, report)

    assert not report.ok and report.new_items > 0
    assert users.get_user_by_id(svc.db, user_id).train_due_at is not None
