"""Issue 18 items 2 and 3, client half, over real HTTP to the double: ranking by v2 partition id
(reference §11.5) and video search (reference §11.7)."""

from __future__ import annotations

import dataclasses

import aiohttp
import pytest

from bilibili import PARTITIONS, ApiError, RiskControl, RiskPaused, wbi
from bilibili.client import P_SEARCH
from bilibili.models import clock_seconds, strip_highlight
from bilibili.partitions import BY_ID, BY_LEGACY_TID, is_ranking_id
from tests.doubles.bilibili import SEARCH, SPI, STALE_RANKING_S, BilibiliDouble
from tests.doubles.bilibili_catalogue import Video

GAMES_V2, GAMES_LEGACY = 1008, 4


# -- the partition table ------------------------------------------------------------------------
def test_the_partition_table_holds_the_fourteen_v2_mains_and_no_life():
    assert [p.id for p in PARTITIONS] == [
        1005,
        1003,
        1004,
        1008,
        1010,
        1012,
        1018,
        1013,
        1020,
        1024,
        1007,
        1014,
        1002,
        1001,
    ]
    assert len(BY_ID) == len(BY_LEGACY_TID) == 14 and all(p.zh and p.en for p in PARTITIONS)
    assert 160 not in BY_LEGACY_TID and not any(p.zh == "生活" for p in PARTITIONS)
    assert is_ranking_id(0) and is_ranking_id(1008) and not is_ranking_id(4) and not is_ranking_id(160)


# -- ranking ------------------------------------------------------------------------------------
async def test_ranking_for_a_v2_partition_lists_that_partitions_videos(bili_client, bilibili_double):
    games = await bili_client.ranking(GAMES_V2)
    assert games, "bilibili answers a v2 main id with that partition's list"
    assert all(BilibiliDouble.v2_partition(bilibili_double.videos[v.bvid]) == GAMES_V2 for v in games)
    assert {v.tname for v in games} >= {"单机游戏", "手机游戏"}  # list items carry the legacy sub-partition
    assert bilibili_double.last_request("/x/web-interface/ranking/v2").query["rid"] == str(GAMES_V2)
    overall = await bili_client.ranking()
    assert len(overall) == 100 and {v.bvid for v in games} & {v.bvid for v in overall}


async def test_every_partition_of_the_table_is_answered_with_its_own_videos(bili_client, bilibili_double):
    for p in PARTITIONS:
        videos = await bili_client.ranking(p.id)
        assert videos, p.zh  # the catalogue has videos in every v2 main of the table
        assert {BilibiliDouble.v2_partition(bilibili_double.videos[v.bvid]) for v in videos} == {p.id}, p.zh


async def test_a_legacy_tid_gets_the_month_old_list_not_todays(bili_client, bilibili_double):
    """What a caller still sending 游戏 = 4 gets from bilibili since 2025: a list that stopped updating."""
    newest = max(v.pubdate for v in bilibili_double.videos.values())
    old = bilibili_double.add_video(
        Video(
            aid=170001,
            bvid="BV17x411w7KC",
            title="一个月前的游戏视频",
            pic="http://i0.hdslb.com/bfs/archive/a.jpg",
            tid=17,
            tname="单机游戏",
            pubdate=newest - STALE_RANKING_S - 86400,
            duration=300,
            owner_mid=42,
            owner_name="old",
            view=10,
            like=1,
        )
    )
    assert [v.bvid for v in await bili_client.ranking(GAMES_LEGACY)] == [old.bvid]
    current = await bili_client.ranking(GAMES_V2)
    assert len(current) > 1 and all(v.pubdate > old.pubdate for v in current)  # the v2 id: today's list


async def test_an_unknown_partition_is_refused_with_400(bili_client, bilibili_double, caplog):
    with pytest.raises(ApiError) as ei:
        await bili_client.ranking(9999)
    assert ei.value.code == -400 and ei.value.path == "/x/web-interface/ranking/v2"
    assert "9999 is not a v2 partition id" in caplog.text
    assert len(await bili_client.ranking(GAMES_V2)) > 0  # nothing paused, the next call is fine


# -- search -------------------------------------------------------------------------------------
TRICKY = Video(
    aid=455017605,
    bvid="BV1Q541167Qg",
    title="Tom & Jerry <3 猫和老鼠 JERRY",
    duration=3723,
    pic="http://i2.hdslb.com/bfs/archive/tricky.jpg",
    tid=27,
    tname="综合",
    pubdate=1_700_000_000,
    owner_mid=77,
    owner_name="汤姆",
    view=12345,
    tags=["动画"],
)


async def test_search_strips_the_highlight_markup_and_reads_the_entities(bili_client, bilibili_double):
    bilibili_double.add_video(dataclasses.replace(TRICKY, tags=list(TRICKY.tags)))
    page = await bili_client.search_videos("jerry", 1)
    assert (page.page, page.num_pages, page.num_results) == (1, 1, 1)
    hit = page.hits[0]
    assert (hit.bvid, hit.aid, hit.title) == (TRICKY.bvid, TRICKY.aid, "Tom & Jerry <3 猫和老鼠 JERRY")
    assert (hit.owner_mid, hit.owner_name, hit.view, hit.pubdate) == (77, "汤姆", 12345, 1_700_000_000)
    assert hit.duration == 3723 and hit.cover == "https://i2.hdslb.com/bfs/archive/tricky.jpg"
    # what went over the wire: the markup, entities, a "m:s" duration and a scheme-less cover
    row = BilibiliDouble._search_row(bilibili_double.videos[TRICKY.bvid], "jerry")
    assert row["title"] == ('Tom &amp; <em class="keyword">Jerry</em> &lt;3 猫和老鼠 <em class="keyword">JERRY</em>')
    assert (row["duration"], row["pic"]) == ("62:3", "//i2.hdslb.com/bfs/archive/tricky.jpg")


async def test_search_pages_through_the_catalogue_twenty_at_a_time(bili_client, bilibili_double):
    expected = bilibili_double.search_bvids("游戏")
    assert len(expected) > 40
    first, second = await bili_client.search_videos("游戏", 1), await bili_client.search_videos("游戏", 2)
    assert [h.bvid for h in first.hits + second.hits] == expected[:40]
    assert first.num_results == len(expected) and first.num_pages == -(-len(expected) // 20) and second.page == 2
    last = await bili_client.search_videos("游戏", first.num_pages + 1)
    assert last.hits == []
    req = bilibili_double.last_request(SEARCH)
    assert req.query["search_type"] == "video" and "w_rid" in req.query and "wts" in req.query
    assert req.cookies["buvid3"] == bilibili_double.buvid3  # without it bilibili refuses a search


async def test_a_search_that_finds_nothing_is_an_empty_page(bili_client, bilibili_double):
    page = await bili_client.search_videos("没有这种视频zzzq", 1)
    assert (page.hits, page.num_pages, page.num_results) == ([], 0, 0)
    calls = bilibili_double.calls[SEARCH]
    assert (await bili_client.search_videos("   ", 3)).hits == []
    assert bilibili_double.calls[SEARCH] == calls  # a blank query asks bilibili nothing


async def test_the_double_answers_an_empty_search_without_a_result_key(bilibili_double):
    """The shape the empty-page test above parses: code 0, counts 0, no `result` at all."""
    params = wbi.sign(
        {"search_type": "video", "keyword": "没有这种视频zzzq", "page": 1},
        wbi.mixin_key(bilibili_double.img_key, bilibili_double.sub_key),
    )
    async with aiohttp.ClientSession() as s:
        async with s.get(
            bilibili_double.url + SEARCH, params=params, headers={"Cookie": f"buvid3={bilibili_double.buvid3}"}
        ) as resp:
            body = await resp.json()
    assert body["code"] == 0 and body["data"]["numResults"] == 0 and "result" not in body["data"]


async def test_search_refused_412_raises_risk_control_and_pauses(bili_client, bilibili_double):
    await bili_client.search_videos("游戏", 1)
    bilibili_double.inject(P_SEARCH, "412_json")
    with pytest.raises(RiskControl) as ei:
        await bili_client.search_videos("游戏", 1)
    assert ei.value.code == -412 and bili_client.throttle.paused
    with pytest.raises(RiskPaused):  # a user waiting on a search is told at once, nothing is sent
        await bili_client.search_videos("游戏", 1, fail_fast=True)


async def test_search_without_the_device_cookie_is_refused_412(bili_client, bilibili_double):
    bilibili_double.inject(SPI, "500", times=bili_client.settings.retries + 1)  # no buvid3 learnt
    with pytest.raises(RiskControl) as ei:
        await bili_client.search_videos("游戏", 1)
    assert ei.value.code == -412 and ei.value.path == P_SEARCH


# -- the parsers' pieces --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("4:18", 258),
        ("4:1", 241),
        ("58:6", 3486),
        ("1:02:03", 3723),
        ("0:0", 0),
        (" 3:05 ", 185),
        ("130:00", 7800),
        (300, 300),
        ("", 0),
        ("abc", 0),
        ("1:2:3:4", 0),
        ("-1:30", 0),
        ("١:٢", 0),
        ("1.5:3", 0),
        ("9" * 5000, 0),
        ("999999999:0:0", 2**31 - 1),
        (-5, 0),
        (None, 0),
    ],
)
def test_a_search_duration_reads_as_seconds_whatever_the_text(text, seconds):
    assert clock_seconds(text) == seconds


@pytest.mark.parametrize(
    ("title", "shown"),
    [
        ('梦然-《<em class="keyword">少年</em>》官方版', "梦然-《少年》官方版"),
        ("a &lt;b&gt; &amp; c", "a <b> & c"),
        ("&lt;em class=&quot;keyword&quot;&gt;", '<em class="keyword">'),  # escaped text is text, not markup
        ('<em class="keyword">半', "半"),
        ("1 < 2", "1 < 2"),
        ("\x00x", "x"),
    ],
)
def test_a_search_title_loses_its_markup_and_keeps_its_text(title, shown):
    assert strip_highlight(title) == shown


def test_a_search_page_keeps_only_videos_and_names_each_by_both_ids():
    from bilibili.models import parse_search_page

    rows = [
        {"type": "ketang", "id": 5, "title": "付费课程"},  # courses are mixed into video results
        {"type": "video", "aid": 170001, "bvid": "", "title": "只有 av 号", "duration": "1:00"},
        {"type": "video", "aid": 0, "bvid": "BV1xx411c7mD", "title": "只有 BV 号"},
        {"type": "video", "aid": 3, "bvid": "BV1xx<script>", "title": "坏的 BV 号"},
    ]
    page = parse_search_page({"page": 1, "numPages": 1, "numResults": 4, "result": rows})
    assert [(h.aid, h.bvid, h.duration) for h in page.hits] == [(170001, "BV17x411w7KC", 60), (2, "BV1xx411c7mD", 0)]
    assert parse_search_page({"page": 1, "numPages": 0, "numResults": 0}).hits == []
