"""The fields real answers carry beyond the basics (issue 17, "fields the parsers drop"): the 2025
partition, paywall flags, honours, co-creators, bilibili's own title segmentation, list reasons,
copyright, portrait, and the history rows' `is_fav`.

Parsed from answers shaped as recorded (bilibili-API-collect docs/video/info.md, popular.md,
historytoview/history.md), read leniently (a field of an odd type is "not said", never a crash),
stored only where an answer says them, and used: a paid or members-only video is never picked, a
history row's `is_fav` becomes a favourite label.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bilibili import models
from jobs.convert import user_events
from jobs.picks import choose_picks
from jobs.sync import quick_sync, sync_user
from recommender.labels import make_samples
from recommender.types import TrainConfig
from storage import behaviour, catalogue, users
from tests.botenv import eventually, pick_bvid, pick_messages, running_bot
from tests.dbfixtures import any_db, postgres_url  # noqa: F401
from tests.doubles.bilibili import VIEW_DETAIL
from tests.harness import link_user, make_services

# -- answers shaped as the real ones (values from bilibili-API-collect's recorded examples) -----------
VIEW = {
    "bvid": "BV117411r7R1",
    "aid": 85440373,
    "videos": 1,
    "tid": 28,
    "tid_v2": 2061,
    "tname": "原创音乐",
    "tname_v2": "人力VOCALOID",
    "copyright": 1,
    "pic": "http://i1.hdslb.com/bfs/archive/ea0d.jpg",
    "title": "当我给拜年祭的快板加了电音配乐…",
    "pubdate": 1580377255,
    "state": 0,
    "duration": 486,
    "rights": {
        "bp": 0,
        "elec": 0,
        "download": 1,
        "movie": 0,
        "pay": 0,
        "hd5": 1,
        "no_reprint": 1,
        "autoplay": 1,
        "ugc_pay": 0,
        "is_cooperation": 1,
        "ugc_pay_preview": 0,
        "no_background": 0,
        "clean_mode": 0,
        "is_stein_gate": 0,
        "is_360": 0,
        "no_share": 0,
        "arc_pay": 0,
        "free_watch": 0,
    },
    "owner": {"mid": 66606350, "name": "陈楒潼桶桶桶", "face": "https://i2.hdslb.com/bfs/face/c9af.jpg"},
    "stat": {
        "aid": 85440373,
        "view": 2404179,
        "danmaku": 12348,
        "reply": 2676,
        "favorite": 58329,
        "coin": 72793,
        "share": 9620,
        "now_rank": 0,
        "his_rank": 55,
        "like": 161270,
        "dislike": 0,
        "evaluation": "",
        "vt": 0,
    },
    "cid": 146044693,
    "dimension": {"width": 1920, "height": 1080, "rotate": 0},
    "is_upower_exclusive": False,
    "is_upower_play": False,
    "is_upower_preview": False,
    "staff": [
        {"mid": 66606350, "title": "UP主", "name": "陈楒潼桶桶桶", "follower": 616428},
        {"mid": 53456, "title": "曲绘", "name": "Warma", "follower": 4818052},
    ],
    "honor_reply": {
        "honor": [
            {"aid": 85440373, "type": 2, "desc": "第45期每周必看", "weekly_recommend_num": 45},
            {"aid": 85440373, "type": 3, "desc": "全站排行榜最高第55名", "weekly_recommend_num": 0},
            {"aid": 85440373, "type": 4, "desc": "热门", "weekly_recommend_num": 0},
        ]
    },
}
POPULAR_ROW = {
    "aid": 1356452135,
    "videos": 1,
    "tid": 250,
    "tname": "出行",
    "copyright": 1,
    "title": "《抬您上泰山》",
    "pic": "http://i2.hdslb.com/bfs/archive/5c3a.jpg",
    "pubdate": 1722060600,
    "state": 0,
    "duration": 138,
    "rights": {
        "bp": 0,
        "elec": 0,
        "download": 0,
        "movie": 0,
        "pay": 0,
        "hd5": 0,
        "no_reprint": 1,
        "autoplay": 1,
        "ugc_pay": 0,
        "is_cooperation": 0,
        "ugc_pay_preview": 0,
        "no_background": 0,
        "arc_pay": 0,
        "pay_free_watch": 0,
    },
    "owner": {"mid": 1339110285, "name": "赵峰山西四人行"},
    "stat": {
        "aid": 1356452135,
        "view": 2465053,
        "danmaku": 8467,
        "reply": 4426,
        "favorite": 46567,
        "coin": 168267,
        "share": 23180,
        "now_rank": 0,
        "his_rank": 2,
        "like": 403250,
    },
    "cid": 1628605145,
    "dimension": {"width": 1080, "height": 1920, "rotate": 0},
    "bvid": "BV1tz421i7zb",
    "rcmd_reason": {"content": "百万播放", "corner_mark": 0},
}
WEEKLY_ROW = {
    **POPULAR_ROW,
    "copyright": 2,
    "dimension": {"width": 1280, "height": 720, "rotate": 0},
    "rcmd_reason": "和B站小伙伴一起见证历史！黑洞到底长啥样？",
}
RELATED_ROW = {
    **POPULAR_ROW,
    "tidv2": 2036,
    "tnamev2": "舞蹈综合",
    "pid_v2": 1004,
    "rcmd_reason": "",
    "dimension": {"width": 2592, "height": 1456, "rotate": 1},
}
HISTORY_ROW = {
    "title": "许巍 《蓝莲花》吉他Cover",
    "long_title": "",
    "cover": "http://i2.hdslb.com/bfs/archive/0225.jpg",
    "history": {
        "oid": 883617049,
        "epid": 0,
        "bvid": "BV1sK4y147ob",
        "page": 1,
        "cid": 205017957,
        "business": "archive",
        "dt": 2,
    },
    "videos": 1,
    "author_name": "硬核拆解",
    "author_mid": 427494870,
    "view_at": 1592999572,
    "progress": 13,
    "duration": 91,
    "is_finish": 0,
    "is_fav": 1,
    "kid": 883617049,
    "tag_name": "演奏",
    "live_status": 0,
}


def test_view_carries_the_2025_partition_honours_co_creators_and_no_paywall():
    video, state = models.parse_view(VIEW)
    assert state == 0
    assert (video.tid, video.tname, video.tid_v2, video.tname_v2) == (28, "原创音乐", 2061, "人力VOCALOID")
    assert video.honors == 0b1110 and video.top_rank == 55  # weekly must-watch, ranking peak, 热门
    assert video.staff == (53456,)  # the uploader is not his own co-creator
    assert (video.copyright, video.vertical, video.paid, video.upower_exclusive) == (1, False, False, False)


def test_view_detail_carries_bilibilis_title_segmentation():
    detail = models.parse_view_detail(
        {"View": VIEW, "Tags": [], "Related": [RELATED_ROW], "participle": ["保加利亚", "azis", "mv", "", 7, "mv"]}
    )
    assert detail.video.participle == ("保加利亚", "azis", "mv")
    assert detail.related[0].participle is None  # a related row says nothing about it


@pytest.mark.parametrize(
    "rights, exclusive",
    [
        ({"pay": 1, "ugc_pay": 0, "arc_pay": 0}, False),
        ({"pay": 0, "ugc_pay": 1, "arc_pay": 0}, False),
        ({"pay": 0, "ugc_pay": 0, "arc_pay": 1}, False),
        ({"pay": 0, "ugc_pay": 0, "arc_pay": 0}, True),
    ],
)
def test_a_paid_or_members_only_view_says_so(rights, exclusive):
    video, _ = models.parse_view({**VIEW, "rights": {**VIEW["rights"], **rights}, "is_upower_exclusive": exclusive})
    assert video.paid == any(rights.values()) and video.upower_exclusive == exclusive


def test_list_rows_carry_their_reason_copyright_and_shape():
    popular, _ = models.parse_popular({"list": [POPULAR_ROW], "no_more": False})
    weekly = models.parse_archive_page({"list": [WEEKLY_ROW]}, "weekly")
    related = models.parse_archives([RELATED_ROW], "related")
    assert (popular[0].rcmd_reason, popular[0].vertical, popular[0].copyright) == ("百万播放", True, 1)
    assert (weekly[0].rcmd_reason, weekly[0].vertical, weekly[0].copyright) == (
        "和B站小伙伴一起见证历史！黑洞到底长啥样？",
        False,
        2,
    )
    assert related[0].rcmd_reason is None  # "" says nothing
    assert (related[0].tid_v2, related[0].tname_v2) == (2036, "舞蹈综合")  # related rows spell it tidv2
    assert related[0].vertical is True  # 2592x1456 rotated: portrait
    assert popular[0].tid_v2 is None and popular[0].upower_exclusive is None  # not said by a list row
    assert popular[0].paid is False  # rights are


def test_a_home_feed_cards_reason_speaks_to_its_viewer_and_is_not_kept():
    card = {
        "id": 1354614895,
        "bvid": "BV1Dz42117GZ",
        "goto": "av",
        "title": "t",
        "owner": {"mid": 1, "name": "u"},
        "stat": {"view": 1},
        "business_info": None,
        "rcmd_reason": {"content": "已关注", "reason_type": 1},
    }
    videos, _ = models.parse_home_feed({"item": [card], "mid": 5})
    assert videos[0].rcmd_reason is None


def test_a_history_row_says_whether_the_user_faved_it():
    page = models.parse_history_page(
        {
            "cursor": {"max": 1, "view_at": 1, "business": "archive"},
            "list": [
                HISTORY_ROW,
                {
                    **HISTORY_ROW,
                    "is_fav": 0,
                    "kid": 5,
                    "history": {**HISTORY_ROW["history"], "oid": 5, "bvid": "BV1xx411c7mD"},
                },
            ],
        }
    )
    assert [i.is_fav for i in page.items] == [True, False]


ODD = ["x", "1.5", [1], {"a": 1}, 2**80, -1, None, True, float("nan")]


@pytest.mark.parametrize("odd", ODD, ids=repr)
def test_an_odd_optional_field_is_not_said_and_spoils_nothing(odd):
    """Every new field of a wrong type or edge value: the row still parses, the field reads as unknown
    (None) or a storable value, numbers inside the 32-bit columns."""
    spoilt = {
        **VIEW,
        "tid_v2": odd,
        "tname_v2": odd,
        "copyright": odd,
        "dimension": odd,
        "rights": odd,
        "is_upower_exclusive": odd,
        "honor_reply": odd,
        "staff": odd,
        "rcmd_reason": odd,
    }
    video, _ = models.parse_view(spoilt)
    assert video.bvid == VIEW["bvid"] and video.like == VIEW["stat"]["like"]
    for name in ("tid_v2", "copyright", "honors", "top_rank"):
        value = getattr(video, name)
        assert value is None or models.INT32_MIN <= value <= models.INT32_MAX, name
    nested = {
        **VIEW,
        "dimension": {"width": odd, "height": 10, "rotate": odd},
        "rights": {"pay": odd, "ugc_pay": odd},
        "staff": [{"mid": odd}, odd],
        "honor_reply": {"honor": [{"type": odd, "desc": odd}, odd]},
        "rcmd_reason": {"content": odd},
    }
    video, _ = models.parse_view(nested)
    assert video.bvid == VIEW["bvid"]
    history = models.parse_history_page(
        {"cursor": {"max": 1, "view_at": 1, "business": "archive"}, "list": [{**HISTORY_ROW, "is_fav": odd}]}
    )
    assert len(history.items) == 1 and isinstance(history.items[0].is_fav, bool)
    detail = models.parse_view_detail({"View": VIEW, "Tags": [], "participle": odd})
    assert detail.video.participle in (None, ())


def test_a_huge_rank_and_long_texts_fit_their_columns():
    video, _ = models.parse_view(
        {
            **VIEW,
            "tname_v2": "分" * 500,
            "rcmd_reason": "荐" * 5000,
            "honor_reply": {"honor": [{"type": 3, "desc": "全站排行榜最高第999999999名"}]},
        }
    )
    assert len(video.tname_v2) == models.TNAME_MAX_LEN and len(video.rcmd_reason) == models.RCMD_REASON_MAX_LEN
    assert video.top_rank <= models.INT32_MAX


# -- storage: a field is written only by an answer that says it ----------------------------------------
def test_a_list_row_never_erases_what_view_said(any_db):
    view, _ = models.parse_view({**VIEW, "is_upower_exclusive": True})
    detail = models.parse_view_detail(
        {"View": {**VIEW, "is_upower_exclusive": True}, "Tags": [], "participle": ["拜年祭", "快板"]}
    ).video
    catalogue.save_videos(any_db, [detail], now=100)
    row = {**VIEW, "rcmd_reason": {"content": "百万播放"}}
    row.pop("tid_v2"), row.pop("tname_v2"), row.pop("is_upower_exclusive"), row.pop("honor_reply"), row.pop("staff")
    listed = models.parse_archives([row], "popular")
    catalogue.save_videos(any_db, listed, now=200, candidate=True)

    stored = catalogue.get_videos(any_db, [view.bvid])[view.bvid]
    assert (stored.tid_v2, stored.tname_v2, stored.honors, stored.top_rank) == (2061, "人力VOCALOID", 0b1110, 55)
    assert stored.upower_exclusive and json.loads(stored.staff) == [53456]
    assert json.loads(stored.participle) == ["拜年祭", "快板"] and stored.rcmd_reason == "百万播放"
    assert stored.candidate_at == 200
    assert view.bvid not in {v.bvid for v in catalogue.candidate_videos(any_db, since=0)}  # members only


# -- is_fav: a favourite label where no folder said so ---------------------------------------------------
MID = 5301


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_a_history_rows_is_fav_becomes_a_favourite_label(tmp_path, bilibili_double, request, database):
    bili = bilibili_double
    watched = bili.popular_order[100:110]
    in_folder, elsewhere = watched[0], watched[1]
    bili.add_user(
        MID,
        "fan",
        history=[(b, 1_700_000_000 - i * 60) for i, b in enumerate(watched)],
        favs=[(in_folder, 1_600_000_000)],
    )
    bili.users[MID].faved_elsewhere.add(elsewhere)  # a folder the favourites API does not list
    url = request.getfixturevalue("postgres_url") if database == "postgres" else None
    svc = make_services(tmp_path, bili, database_url=url)
    try:
        uid = link_user(svc, bili, 1, MID)
        assert (await quick_sync(svc, uid)).ok
        assert (await sync_user(svc, uid)).ok
        favs = {b.bvid: b.at for b in behaviour.user_behaviours(svc.db, uid) if b.kind == "favorite"}
        assert favs == {in_folder: 1_600_000_000, elsewhere: 1_700_000_000 - 60}  # the folder keeps its time

        events = user_events(svc.db, uid)
        videos = {v.bvid: v for v in (catalogue.get_videos(svc.db, watched).values())}
        from jobs.convert import to_rec_videos

        samples, _ = make_samples(events, [], to_rec_videos(videos.values()), svc.now(), TrainConfig())
        label = {s.bvid: (s.label, s.kind) for s in samples}
        assert label[elsewhere] == (1.0, "explicit") and label[watched[2]][1] == "watch"

        report = await sync_user(svc, uid)  # read again: nothing new
        assert report.ok and report.new_items == 0
    finally:
        await svc.close()


# -- never pick what the user cannot play -----------------------------------------------------------------
ALICE, ALICE_CHAT = 5401, 9901


def excellent(video) -> None:
    """Stats no other video matches: the cold ranking (by quality) would put it first."""
    video.view = 10_000_000
    video.like = video.coin = video.favorite = video.share = video.view


def paywalled(bili) -> dict[str, str]:
    """The best popular videos behind each kind of paywall (rights flags in every list row; members
    only is said by view alone), plus a free one just as good."""
    kinds = {"pay": 0, "ugc_pay": 1, "arc_pay": 2, "upower": 3, "": 4}
    chosen = {kind: bili.popular_order[i] for kind, i in kinds.items()}
    for kind, bvid in chosen.items():
        excellent(bili.videos[bvid])
        bili.set_paywall(bvid, kind)
    return chosen


def metadata_fetched(svc, bvid: str) -> bool:
    row = catalogue.get_videos(svc.db, [bvid]).get(bvid)
    return row is not None and row.fetched_at > 0


async def test_paid_and_members_only_videos_never_reach_recommend_nor_the_digest(tmp_path, tg, bilibili_double):
    bili = bilibili_double
    chosen = paywalled(bili)
    bili.add_user(ALICE, "alice")
    async with running_bot(tmp_path, tg, bili, tick_seconds=0.2) as (_app, svc):
        clock = lambda: now  # noqa: E731
        now = time.time()
        svc.clock = clock
        tz = "Asia/Shanghai"
        soon = (datetime.fromtimestamp(now, ZoneInfo(tz)) + timedelta(minutes=1)).strftime("%H:%M")
        link_user(svc, bili, ALICE_CHAT, ALICE, timezone=tz, digest_time=soon, picks_per_page=10)
        await eventually(lambda: all(metadata_fetched(svc, b) for b in chosen.values()), 90, "the metadata")
        stored = catalogue.get_videos(svc.db, chosen.values())
        assert stored[chosen["upower"]].upower_exclusive and stored[chosen["ugc_pay"]].paid

        await tg.send_text(tg.user(ALICE_CHAT, language_code="en"), "/recommend")
        await eventually(lambda: len(pick_messages(tg, ALICE_CHAT)) >= 10, 60, "the picks")
        recommended = {pick_bvid(m) for m in pick_messages(tg, ALICE_CHAT)}

        now += 61
        await eventually(lambda: len(pick_messages(tg, ALICE_CHAT)) >= 20, 60, "the digest")
        digest = {pick_bvid(m) for m in pick_messages(tg, ALICE_CHAT)} - recommended

    assert chosen[""] in recommended  # the free one as good as them is picked first...
    paid = {b for kind, b in chosen.items() if kind}
    assert not paid & recommended and not paid & digest  # ...the others never


async def test_a_members_only_upload_of_a_followed_creator_is_not_picked(tmp_path, bilibili_double):
    """The followed feed's rows carry no rights: view/detail tells, before the video can be picked."""
    bili = bilibili_double
    creator = 777_101
    bili.add_user(ALICE, "alice")
    bili.follow(ALICE, creator)
    free = bili.upload(creator, at=int(time.time()) - 900)
    members = bili.upload(creator, at=int(time.time()) - 600)
    excellent(free), excellent(members)
    bili.set_paywall(members.bvid, "upower")
    svc = make_services(tmp_path, bili)
    try:
        uid = link_user(svc, bili, ALICE_CHAT, ALICE)
        assert (await sync_user(svc, uid)).ok
        assert bili.calls[VIEW_DETAIL] > 0
        picked = {c.bvid for c in choose_picks(svc, users.get_user_by_id(svc.db, uid), 10_000).items}
    finally:
        await svc.close()
    assert free.bvid in picked and members.bvid not in picked


# -- /popular and /search list them as bilibili does, marked -----------------------------------------------
def line_of(content: str, title: str) -> str:
    return next(line for line in content.splitlines() if title[:20] in line)


async def test_popular_and_search_mark_a_paid_or_members_only_video(tmp_path, tg, bilibili_double):
    """A list the user asked for keeps bilibili's rows (hiding them would make a search look broken),
    with the paid and members-only ones marked in the user's language: they are never a pick."""
    bili = bilibili_double
    site_wide = [v for v in sorted(bili.videos.values(), key=lambda v: -(v.like + 10 * v.coin + 5 * v.favorite))]
    paid, free = site_wide[0], site_wide[1]
    bili.set_paywall(paid.bvid, "ugc_pay")
    async with running_bot(tmp_path, tg, bili, tick_seconds=3600) as (_app, _svc):
        alice = tg.user(ALICE_CHAT, first_name="A", language_code="en")
        mark = tg.mark()
        await tg.send_text(alice, "/popular all")
        popular = await tg.wait_for(lambda m: paid.title[:20] in m.content, chat=alice, since=mark, timeout=20)
        bob = tg.user(ALICE_CHAT + 1, first_name="B", language_code="zh")
        mark = tg.mark()
        await tg.send_text(bob, f"/search {paid.title[:8]}")
        found = await tg.wait_for(lambda m: paid.title[:20] in m.content, chat=bob, since=mark, timeout=20)

    assert "💰 paid or members-only" in line_of(popular.content, paid.title)
    assert "💰" not in line_of(popular.content, free.title)
    assert "💰 付费或充电专属" in line_of(found.content, paid.title)
