"""Per-user candidate sources at the client (issue 17 item 1), over real HTTP to the double: whom the
user follows (relation/followings), what those creators upload (the web-dynamic video feed and its
cheap update poll), and bilibili's own home feed for the user (WBI-signed, ads and live rooms out)."""

from __future__ import annotations

import pytest

from bilibili import Credentials, NotLoggedIn, models
from tests.doubles.bilibili import FEED, FEED_UPDATE, FOLLOWINGS, HOME_FEED

ME = 4100
OTHER = 4200
T0 = 1_750_000_000


def uploaders(double, n: int) -> list[int]:
    """`n` distinct uploaders of the catalogue, in list order."""
    mids: list[int] = []
    for bvid in double.popular_order:
        mid = double.videos[bvid].owner_mid
        if mid not in mids:
            mids.append(mid)
        if len(mids) == n:
            return mids
    raise AssertionError("the catalogue has too few uploaders")


def login(double, mid: int) -> Credentials:
    return Credentials.from_dict(double.login(mid))


# -- followings ------------------------------------------------------------------------------------
async def test_ones_own_followings_read_in_full_page_by_page_newest_follow_first(bili_client, bilibili_double):
    bilibili_double.add_user(ME, "me")
    ups = [10_000 + i for i in range(120)]
    for i, up in enumerate(ups):
        bilibili_double.follow(ME, up, at=T0 + i, special=i == 7)
    creds = login(bilibili_double, ME)
    seen, pn = [], 1
    while True:
        page = await bili_client.followings(creds, ME, pn)
        seen.extend(page.items)
        assert page.total == 120
        if not page.has_more:
            break
        pn += 1
    assert bilibili_double.calls[FOLLOWINGS] == pn == 3
    assert [f.mid for f in seen] == ups[::-1]  # every one of them, the newest follow first
    assert [f.mtime for f in seen] == [T0 + i for i in range(119, -1, -1)]
    assert [f.mid for f in seen if f.special] == [ups[7]]
    assert seen[0].uname == f"UP主{ups[-1]}"
    sent = bilibili_double.last_request(FOLLOWINGS)
    assert sent.query["vmid"] == str(ME) and sent.headers["Referer"].startswith("https://space.bilibili.com/")


async def test_another_users_followings_end_after_the_first_100_as_bilibili_caps_them(bili_client, bilibili_double):
    for i in range(130):
        bilibili_double.follow(OTHER, 20_000 + i, at=T0 + i)
    creds = login(bilibili_double, ME)
    seen, pn = [], 1
    while True:
        page = await bili_client.followings(creds, OTHER, pn)
        seen.extend(page.items)
        if not page.has_more:
            break
        pn += 1
    assert len(seen) == 100 and page.total == 130 and page.items == []  # the third page came back empty


async def test_a_hidden_followings_list_reads_as_empty(bili_client, bilibili_double):
    bilibili_double.follow(OTHER, 30_001)
    bilibili_double.users[OTHER].hide_follows = True
    page = await bili_client.followings(login(bilibili_double, ME), OTHER)
    assert page == models.FollowingsPage(items=[], total=0, has_more=False)


@pytest.mark.parametrize(
    "call",
    [
        lambda c, creds: c.followings(creds, ME),
        lambda c, creds: c.video_feed(creds),
        lambda c, creds: c.feed_update(creds, "0"),
        lambda c, creds: c.home_feed(creds),
    ],
    ids=["followings", "video feed", "feed update", "home feed"],
)
async def test_a_dead_session_is_not_logged_in_on_every_per_user_source(bili_client, bilibili_double, call):
    """The home feed answers a dead session with a visitor's feed (code 0): not the user's taste either."""
    bilibili_double.add_user(ME, "me")
    creds = login(bilibili_double, ME)
    bilibili_double.sessions[creds.sessdata].alive = False
    with pytest.raises(NotLoggedIn):
        await call(bili_client, creds)


# -- the followed creators' video feed -------------------------------------------------------------
async def test_the_update_check_counts_nothing_then_the_new_uploads_of_followed_creators_only(
    bili_client, bilibili_double
):
    followed, stranger = uploaders(bilibili_double, 3)[:2], uploaders(bilibili_double, 3)[2]
    for up in followed:
        bilibili_double.follow(ME, up)
        bilibili_double.upload(up, at=T0)
    creds = login(bilibili_double, ME)
    first = await bili_client.video_feed(creds)
    assert len(first.items) == 2 and first.update_baseline == first.items[0].dynamic_id

    calls = bili_client.calls
    assert await bili_client.feed_update(creds, first.update_baseline) == 0
    assert bili_client.calls == calls + 1  # one cheap call per poll
    assert bilibili_double.last_request(FEED_UPDATE).query["type"] == "video"

    new = [
        bilibili_double.upload(followed[0], at=T0 + 60),
        bilibili_double.upload(stranger, at=T0 + 70),
        bilibili_double.upload(followed[1], at=T0 + 80),
    ]
    assert await bili_client.feed_update(creds, first.update_baseline) == 2
    page = await bili_client.video_feed(creds, baseline=first.update_baseline)
    assert page.update_num == 2
    assert [i.video.bvid for i in page.items[:2]] == [new[2].bvid, new[0].bvid]
    assert new[1].bvid not in {i.video.bvid for i in page.items}
    assert int(page.update_baseline) > int(first.update_baseline)


async def test_the_video_feed_pages_on_its_offset_newest_first_without_repeats(bili_client, bilibili_double):
    ups = uploaders(bilibili_double, 3)
    for up in ups:
        bilibili_double.follow(ME, up)
    uploaded = [bilibili_double.upload(ups[i % 3], at=T0 + i) for i in range(45)]
    creds = login(bilibili_double, ME)
    pages, offset = [], ""
    while True:
        page = await bili_client.video_feed(creds, offset)
        pages.append(page)
        if not page.has_more:
            break
        offset = page.offset
    assert [len(p.items) for p in pages] == [20, 20, 5] and bilibili_double.calls[FEED] == 3
    items = [i for p in pages for i in p.items]
    assert [i.video.bvid for i in items] == [v.bvid for v in reversed(uploaded)]
    ids = [int(i.dynamic_id) for i in items]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 45
    assert pages[1].offset and bilibili_double.last_request(FEED).query["offset"] == pages[1].offset
    top, source = items[0].video, uploaded[-1]
    assert (top.aid, top.owner_mid, top.owner_name, top.title, top.duration, top.pubdate) == (
        source.aid,
        source.owner_mid,
        source.owner_name,
        source.title,
        source.duration,
        T0 + 44,
    )
    assert top.cover.startswith("https://") and top.view > 0  # "12.3万" read as 123000


async def test_a_feed_row_with_only_its_aid_keeps_its_upload_under_the_derived_bv_id(bili_client, bilibili_double):
    up = uploaders(bilibili_double, 1)[0]
    bilibili_double.follow(ME, up)
    video = bilibili_double.upload(up)
    bilibili_double.rows_without_bvid.add(FEED)
    (item,) = (await bili_client.video_feed(login(bilibili_double, ME))).items
    assert (item.video.aid, item.video.bvid) == (video.aid, video.bvid)


# -- bilibili's home feed --------------------------------------------------------------------------
async def test_the_home_feed_keeps_the_users_videos_and_skips_the_ad_and_the_live_room(bili_client, bilibili_double):
    bilibili_double.add_user(ME, "me")
    mine = bilibili_double.popular_order[100:130]
    bilibili_double.set_home_feed(ME, mine)
    creds = login(bilibili_double, ME)
    first = await bili_client.home_feed(creds, ps=12)
    second = await bili_client.home_feed(creds, fresh_idx=2, ps=12)
    assert [v.bvid for v in first] == mine[:10]  # 12 cards: an ad and a live room among them
    assert [v.bvid for v in second] == mine[10:20]
    assert all(v.owner_mid and v.title and v.cover.startswith("https://") and v.view for v in first)
    sent = bilibili_double.last_request(HOME_FEED).query
    assert sent["fresh_idx"] == "2" and "w_rid" in sent  # signed: the double refuses it otherwise (-352)


async def test_a_home_feed_card_with_only_its_aid_keeps_its_video_under_the_derived_bv_id(bili_client, bilibili_double):
    bilibili_double.add_user(ME, "me")
    mine = bilibili_double.popular_order[:5]
    bilibili_double.set_home_feed(ME, mine)
    bilibili_double.rows_without_bvid.add(HOME_FEED)
    videos = await bili_client.home_feed(login(bilibili_double, ME), ps=5)
    assert [v.bvid for v in videos] == mine[:4]  # 5 cards, the third an ad


# -- the shapes as recorded from the real API (parser level) ---------------------------------------
def feed_row(kind: str = "DYNAMIC_TYPE_AV", major: dict | None = None) -> dict:
    archive = {
        "aid": "1756441068",
        "bvid": "BV1d4421Z7nW",
        "title": "t",
        "cover": "http://i1.hdslb.com/bfs/a.jpg",
        "duration_text": "1:14:25",
        "stat": {"play": "1.4万", "danmaku": "217"},
        "type": 1,
    }
    return {
        "id_str": "966873782060843027",
        "type": kind,
        "visible": True,
        "modules": {
            "module_author": {"mid": 266765166, "name": "up", "pub_ts": 1723956245, "pub_action": "投稿了视频"},
            "module_dynamic": {"major": {"type": "MAJOR_TYPE_ARCHIVE", "archive": archive} if major is None else major},
        },
    }


def test_only_video_uploads_of_the_feed_are_kept_and_their_display_numbers_read():
    draw = feed_row("DYNAMIC_TYPE_DRAW", {"type": "MAJOR_TYPE_DRAW", "draw": {"id": 1, "items": []}})
    forward = {**feed_row("DYNAMIC_TYPE_FORWARD", None), "orig": feed_row()}
    forward["modules"]["module_dynamic"]["major"] = None
    season = feed_row(major={"type": "MAJOR_TYPE_UGC_SEASON", "ugc_season": {"aid": 5, "title": "合集"}})
    page = models.parse_video_feed(
        {
            "has_more": True,
            "offset": "966281785469042740",
            "update_num": 5,
            "update_baseline": "966888011247648768",
            "items": [draw, forward, feed_row(), season],
        }
    )
    (item,) = page.items
    assert item.dynamic_id == "966873782060843027"
    assert (item.video.aid, item.video.bvid, item.video.duration, item.video.view, item.video.danmaku) == (
        1756441068,
        "BV1d4421Z7nW",
        4465,
        14_000,
        217,
    )
    assert (page.offset, page.has_more, page.update_num) == ("966281785469042740", True, 5)


@pytest.mark.parametrize(
    ("shown", "count"),
    [
        ("0", 0),
        ("3364", 3364),
        ("1.4万", 14_000),
        ("10.1万", 101_000),
        ("595.1万", 5_951_000),
        ("2.35亿", 235_000_000),
        ("-", 0),
        ("", 0),
    ],
)
def test_feed_display_counts_read_as_numbers(shown, count):
    row = feed_row()
    row["modules"]["module_dynamic"]["major"]["archive"]["stat"]["play"] = shown
    (item,) = models.parse_video_feed({"items": [row]}).items
    assert item.video.view == count


@pytest.mark.parametrize("offset", ["", None, "abc", "-5", -5, "1" * 33])
def test_a_feed_page_without_a_usable_offset_is_the_last(offset):
    page = models.parse_video_feed({"has_more": True, "offset": offset, "items": [feed_row()]})
    assert not page.has_more and page.offset == ""  # asking again with it could only loop


def test_a_visitors_home_feed_is_told_apart_from_the_users():
    card = {
        "id": 2,
        "bvid": "BV1xx411c7mD",
        "goto": "av",
        "title": "t",
        "business_info": None,
        "owner": {"mid": 1, "name": "up"},
        "stat": {"view": 5, "like": 1, "danmaku": 0},
    }
    assert models.parse_home_feed({"item": [card], "mid": 0}) == (
        [models.VideoInfo.from_archive({**card, "aid": 2})],
        0,
    )
    assert models.parse_home_feed({"item": [card]})[1] is None  # an answer that does not say: not refused


@pytest.mark.parametrize("fault", ["repeat_cursor", "endless"])
async def test_a_feed_whose_next_offset_does_not_move_on_ends_instead_of_looping(bili_client, bilibili_double, fault):
    up = uploaders(bilibili_double, 1)[0]
    bilibili_double.follow(ME, up)
    for i in range(25):
        bilibili_double.upload(up, at=T0 + i)
    creds = login(bilibili_double, ME)
    first = await bili_client.video_feed(creds)
    assert first.has_more
    bilibili_double.inject(FEED, fault, times=50)  # the first page again / nothing, each saying "more"
    offset, pages = first.offset, 0
    while pages < 50:
        page = await bili_client.video_feed(creds, offset)
        pages += 1
        if not page.has_more:
            break
        offset = page.offset
    assert pages == 1


@pytest.mark.parametrize(
    ("rows", "total", "more"),
    [(50, 1028, True), (30, 1028, True), (0, 1028, False), (50, 100, False), (50, 0, True), (20, 0, False)],
)
def test_followings_page_on_while_short_of_the_total(rows, total, more):
    """A page bilibili trimmed (a closed account left out) does not end the list; an empty one does."""
    row = {"mid": 14082, "uname": "up", "mtime": 1584271945, "special": 0}
    page = models.parse_followings({"list": [row] * rows, "total": total}, pn=2, ps=50)
    assert page.has_more is more
