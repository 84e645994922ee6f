"""Video ids and column-sized values at the parser (issue 16 §5 and §14).

§14: rows recorded from the real API carry an `aid` and an empty `bvid` (archive/related); the BV id
is derived from the av id (bilibili's public av<->BV scheme) in every list parser that carries aids.
§5: values the parsers accepted but PostgreSQL refuses (an integer >= 2**31 in an int column, a bvid
longer than its column) failed a user's every sync or every candidate refresh: counts are clamped
into their column, a row with an invalid id is dropped with a warning; the rest is stored.
"""

from __future__ import annotations

import logging
import random

import pytest
from sqlalchemy import BigInteger, Integer

from bilibili import models
from bilibili.models import av_to_bv, bv_to_av, is_bvid
from jobs.sync import RELATED_KEPT, refresh_candidates, sync_user
from storage import behaviour, catalogue
from storage.models import Behaviour, User, Video
from tests.dbfixtures import postgres_url  # noqa: F401
from tests.doubles.bilibili_catalogue import Video as DoubleVideo
from tests.harness import link_user, make_services

KNOWN_PAIRS = [
    (170001, "BV17x411w7KC"),
    (2, "BV1xx411c7mD"),
    (455017605, "BV1Q541167Qg"),
    (114586338463891, "BV1FYjBzAE8h"),
]


# -- §14: av <-> BV --------------------------------------------------------------------------------
@pytest.mark.parametrize(("aid", "bvid"), KNOWN_PAIRS)
def test_av_and_bv_ids_convert_both_ways_on_known_pairs(aid, bvid):
    assert av_to_bv(aid) == bvid and bv_to_av(bvid) == aid


def test_every_av_id_round_trips_through_its_bv_id():
    rng = random.Random(16)
    for aid in [1, models.MAX_AID - 1, *(rng.randrange(1, models.MAX_AID) for _ in range(2000))]:
        bvid = av_to_bv(aid)
        assert is_bvid(bvid) and bv_to_av(bvid) == aid


ARCHIVE_AID_ONLY = {
    "aid": 170001,
    "bvid": "",
    "title": "t",
    "pic": "http://i0.hdslb.com/a.jpg",
    "tid": 17,
    "duration": 60,
    "owner": {"mid": 1, "name": "up"},
    "stat": {"view": 5, "like": 1},
}
HISTORY_AID_ONLY = {
    "title": "t",
    "cover": "//i0.hdslb.com/a.jpg",
    "author_mid": 1,
    "view_at": 1_700_000_000,
    "progress": -1,
    "duration": 60,
    "kid": 170001,
    "history": {"oid": 170001, "bvid": "", "business": "archive"},
}
FAV_AID_ONLY = {
    "id": 170001,
    "type": 2,
    "title": "t",
    "attr": 0,
    "bvid": "",
    "bv_id": "",
    "fav_time": 1_700_000_001,
    "upper": {"mid": 1, "name": "u"},
    "cnt_info": {"play": 2},
}

LIST_PARSERS = {
    "related": lambda: models.parse_archives([ARCHIVE_AID_ONLY], "related"),
    "popular": lambda: models.parse_popular({"list": [ARCHIVE_AID_ONLY], "no_more": True})[0],
    "ranking": lambda: models.parse_archive_page({"list": [ARCHIVE_AID_ONLY]}, "ranking"),
    "weekly issue": lambda: models.parse_archive_page({"list": [ARCHIVE_AID_ONLY]}, "weekly issue"),
    "likes": lambda: models.parse_likes({"list": [ARCHIVE_AID_ONLY]}),
    "coins": lambda: [c.video for c in models.parse_coins([{**ARCHIVE_AID_ONLY, "coins": 1, "time": 1}])],
    "history": lambda: [i.video for i in models.parse_history_page({"list": [HISTORY_AID_ONLY]}).items],
    "favourites": lambda: [i.video for i in models.parse_fav_items({"medias": [FAV_AID_ONLY]})[0]],
    "view/detail related": lambda: (
        models.parse_view_detail({"View": {**ARCHIVE_AID_ONLY, "aid": 2}, "Related": [ARCHIVE_AID_ONLY]}).related
    ),
    "view": lambda: [models.parse_view(ARCHIVE_AID_ONLY)[0]],
    "video feed": lambda: [
        i.video
        for i in models.parse_video_feed(
            {
                "items": [
                    {
                        "id_str": "9",
                        "type": "DYNAMIC_TYPE_AV",
                        "modules": {
                            "module_author": {"mid": 1, "name": "up"},
                            "module_dynamic": {
                                "major": {"type": "MAJOR_TYPE_ARCHIVE", "archive": {"aid": "170001", "bvid": ""}}
                            },
                        },
                    }
                ]
            }
        ).items
    ],
    "home feed": lambda: models.parse_home_feed(
        {"item": [{"id": 170001, "bvid": "", "goto": "av", "title": "t", "owner": {"mid": 1, "name": "up"}}]}
    )[0],
}


@pytest.mark.parametrize("name", sorted(LIST_PARSERS))
def test_a_row_with_only_its_aid_keeps_its_video_under_the_derived_bv_id(name):
    (video,) = LIST_PARSERS[name]()
    assert (video.aid, video.bvid) == (170001, "BV17x411w7KC")


def test_a_row_with_only_its_bvid_gets_its_aid():
    (video,) = models.parse_archives([{**ARCHIVE_AID_ONLY, "aid": 0, "bvid": "BV1xx411c7mD"}])
    assert video.aid == 2


def test_a_row_naming_no_video_is_still_skipped():
    assert models.parse_archives([{**ARCHIVE_AID_ONLY, "aid": 0}, {**ARCHIVE_AID_ONLY, "aid": -5}]) == []


async def test_related_lists_answered_with_aids_only_still_become_candidates(tmp_path, bilibili_double):
    """The whole list vanished without a word before: every row was dropped for its empty bvid."""
    svc = make_services(tmp_path, bilibili_double)
    try:
        seed = bilibili_double.popular_order[10]
        bilibili_double.add_user(5501, "liker", history=[(seed, 1_700_000_000)], likes=[seed])
        bilibili_double.related_without_bvid = True
        user_id = link_user(svc, bilibili_double, 1, 5501)

        assert (await sync_user(svc, user_id)).ok

        # The seed's metadata came from view/detail, whose related list (aids only too) is kept, its
        # first RELATED_KEPT videos: the sync reuses it instead of asking archive/related.
        expected = bilibili_double.related_bvids(seed)[:RELATED_KEPT]
        assert expected and set(catalogue.related_graph(svc.db, [seed]).get(seed, [])) == set(expected)
        assert set(expected) <= {v.bvid for v in catalogue.candidate_videos(svc.db, since=0)}, "candidates"
    finally:
        await svc.close()


# -- §5: values that fit their columns -------------------------------------------------------------
def test_the_parser_limits_are_the_columns_limits():
    """bilibili/ cannot import storage/: its copies of the column sizes are checked here."""
    assert Video.__table__.c.bvid.type.length == models.BVID_MAX_LEN
    assert Behaviour.__table__.c.bvid.type.length == models.BVID_MAX_LEN
    assert Video.__table__.c.owner_name.type.length == models.OWNER_NAME_MAX_LEN
    assert Video.__table__.c.tname.type.length == models.TNAME_MAX_LEN
    assert User.__table__.c.bili_uname.type.length == models.UNAME_MAX_LEN
    for column in (
        Video.__table__.c.duration,
        Video.__table__.c.tid,
        Behaviour.__table__.c.progress,
        Behaviour.__table__.c.duration,
        Behaviour.__table__.c.coins,
    ):
        assert isinstance(column.type, Integer) and not isinstance(column.type, BigInteger), column
    for name in ("view", "danmaku", "reply", "favorite", "coin", "share", "like", "aid", "owner_mid", "pubdate"):
        assert isinstance(Video.__table__.c[name].type, BigInteger), name
    from storage.models import SyncCursor

    assert len(f"favorite:{models.FAV_FOLDER_ID_MAX}") <= SyncCursor.__table__.c.source.type.length


def test_counts_are_clamped_and_bad_ids_dropped_with_a_warning(caplog):
    big = {
        **ARCHIVE_AID_ONLY,
        "bvid": "BV17x411w7KC",
        "duration": 2**31 + 7,
        "tid": 2**40,
        "owner": {"mid": 1, "name": "名" * 300},
        "tname": "t" * 100,
        "stat": {"view": 2**63 + 5, "like": "9" * 30, "coin": 1e30, "danmaku": -(2**70)},
    }
    too_long = {**ARCHIVE_AID_ONLY, "bvid": "BV17x411w7KC" + "x" * 20}
    not_bv = {**ARCHIVE_AID_ONLY, "bvid": "av170001"}
    with caplog.at_level(logging.WARNING, logger="bilibili.models"):
        (video,) = models.parse_archives([too_long, big, not_bv], "popular")
    assert (video.duration, video.tid) == (2**31 - 1, 2**31 - 1)
    assert video.view == video.like == video.coin == 2**63 - 1 and video.danmaku == -(2**63 - 1)
    assert len(video.owner_name) == models.OWNER_NAME_MAX_LEN and len(video.tname) == models.TNAME_MAX_LEN
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2 and all("bvid is not a BV id" in m for m in warned)
    (item,) = models.parse_history_page({"list": [{**HISTORY_AID_ONLY, "progress": 2**31, "duration": 2**33}]}).items
    assert (item.progress, item.duration, item.video.duration) == (2**31 - 1, 2**31 - 1, 2**31 - 1)
    (coin,) = models.parse_coins([{**ARCHIVE_AID_ONLY, "coins": 2**31 + 1, "time": 1}])
    assert coin.coins == 2**31 - 1
    assert (
        models.parse_fav_folders(
            {"list": [{"id": 10**15, "title": "x", "media_count": 1}, {"id": 7, "title": "y", "media_count": 1}]}
        )[0].id
        == 7
    )


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_url")


def odd_values(double) -> tuple[str, str, list[str]]:
    """A popular video with counts past every column, a popular video whose bvid is longer than its
    column, and a user who watched both (progress past an int) and coined one (coins past an int)."""
    huge = double.videos[double.popular_order[0]]
    huge.view, huge.like, huge.duration, huge.tid = 2**63 + 5, 10**30, 2**31 + 7, 2**40
    long_bvid = "BV1" + "x" * 30
    double.add_video(
        DoubleVideo(
            aid=99_000_001,
            bvid=long_bvid,
            title="long id",
            pic="http://i0.hdslb.com/x.jpg",
            tid=17,
            tname="单机游戏",
            pubdate=1_700_000_000,
            duration=60,
            owner_mid=5,
            owner_name="up",
            view=10,
        )
    )
    double.popular_order.remove(long_bvid)
    double.popular_order.insert(1, long_bvid)  # on the first popular page
    watched = double.popular_order[2:12]
    history = [(huge.bvid, 1_700_000_100, 2**31 + 3), (long_bvid, 1_700_000_050)]
    history += [(b, 1_700_000_000 - i) for i, b in enumerate(watched)]
    double.add_user(5502, "odd", history=history, coins=[(huge.bvid, 2**31 + 1, 1_700_000_200)])
    return huge.bvid, long_bvid, watched


async def test_a_sync_and_a_candidate_refresh_store_the_rest_of_odd_values(tmp_path, bilibili_double, database_url):
    svc = make_services(tmp_path, bilibili_double, database_url=database_url)
    try:
        huge, long_bvid, watched = odd_values(bilibili_double)
        user_id = link_user(svc, bilibili_double, 1, 5502)

        report = await sync_user(svc, user_id)

        assert report.ok, report.error
        rows = {(b.bvid, b.kind): b for b in behaviour.user_behaviours(svc.db, user_id)}
        assert {b for b, kind in rows if kind == "watch"} == {huge, *watched}  # all but the bad id
        assert rows[(huge, "watch")].progress == 2**31 - 1 and rows[(huge, "coin")].coins == 2**31 - 1
        stored = catalogue.get_videos(svc.db, [huge, long_bvid])
        assert long_bvid not in stored
        assert (stored[huge].view, stored[huge].duration) == (2**63 - 1, 2**31 - 1)

        assert await refresh_candidates(svc, force=True) > 0  # raises on a row the database refuses
        candidates = {v.bvid for v in catalogue.candidate_videos(svc.db, since=svc.now() - 60)}
        assert huge in candidates and long_bvid not in candidates
        assert set(bilibili_double.popular_order[2:100]) <= candidates
    finally:
        await svc.close()
