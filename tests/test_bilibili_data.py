"""Data endpoints over real HTTP: pagination, shapes, covers, catalogue-backed users."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter

import pytest

from bilibili import CoverTooLarge, Credentials, VideoUnavailable
from tests.doubles.bilibili_catalogue import (
    LONG_HISTORY,
    POPULAR_FIXTURE,
    av2bv,
    bv2av,
    load_popular,
    synthesise_long_history,
)
from tests.fixtures.make_popular import SOURCE, compact

BV = "BV1FYjBzAE8h"


async def test_history_pagination_newest_first_and_incremental(bili_client, bilibili_double):
    user = bilibili_double.add_generated_user(100, seed=1, n_history=75)
    creds = Credentials.from_dict(bilibili_double.login(100))
    seen, cursor, pages = [], None, 0
    while True:
        page = await bili_client.history_page(creds, cursor, ps=30)
        pages += 1
        if page.next_cursor is None:
            assert page.items == []
            break
        seen.extend(page.items)
        cursor = page.next_cursor
    assert pages == 4 and len(seen) == 75 == len({i.video.bvid for i in seen})
    assert [i.view_at for i in seen] == sorted((i.view_at for i in seen), reverse=True)
    assert {i.video.bvid for i in seen} == set(user.history)
    first = seen[0]
    assert first.video.cover.startswith("https://") and first.video.tags is None and first.duration > 0
    # new behaviour shows up on top
    bilibili_double.add_watch(100, BV, view_at=first.view_at + 100, progress=30, like=True)
    top = (await bili_client.history_page(creds, ps=1)).items[0]
    assert (top.video.bvid, top.progress, top.view_at) == (BV, 30, first.view_at + 100)


async def test_fav_folders_and_paged_items_skip_invalid(bili_client, bilibili_double):
    bvids = [v.bvid for v in load_popular()[:45]]
    user = bilibili_double.add_user(
        200, "fav", favs={"默认收藏夹": [(b, 1_700_000_000 + i) for i, b in enumerate(bvids)], "其他": bvids[:3]}
    )
    from tests.doubles.bilibili import FavEntry

    user.folders[0].items.append(FavEntry(bvids[0], 1_800_000_000, attr=9))
    creds = Credentials.from_dict(bilibili_double.login(200))
    folders = await bili_client.fav_folders(creds, 200)
    assert [(f.title, f.media_count) for f in folders] == [("默认收藏夹", 46), ("其他", 3)]
    got, pn = [], 1
    while True:
        items, has_more = await bili_client.fav_items(creds, folders[0].id, pn=pn, ps=20)
        got.extend(items)
        if not has_more:
            break
        pn += 1
    assert pn == 3 and len(got) == 45  # the deleted (attr 9) item is skipped
    assert [i.fav_time for i in got] == sorted((i.fav_time for i in got), reverse=True)
    assert got[-1].video.bvid == bvids[0] and got[0].video.view > 0


async def test_coin_and_like_shapes_and_privacy(bili_client, bilibili_double):
    bvids = [v.bvid for v in load_popular()[:5]]
    bilibili_double.add_user(
        300, "coiner", coins=[(bvids[0], 2, 1_700_000_100), (bvids[1], 1, 1_700_000_000)], likes=bvids[2:5]
    )
    creds = Credentials.from_dict(bilibili_double.login(300))
    coins = await bili_client.coined_videos(creds, 300)
    assert [(c.video.bvid, c.coins, c.time) for c in coins] == [
        (bvids[0], 2, 1_700_000_100),
        (bvids[1], 1, 1_700_000_000),
    ]
    assert coins[0].video.view > 0
    likes = await bili_client.liked_videos(creds, 300)
    assert [v.bvid for v in likes] == bvids[2:5]
    req = bilibili_double.last_request("/x/space/like/video")
    assert req.headers["Referer"] == "https://space.bilibili.com/300/" and "w_rid" in req.query
    # someone else's hidden lists -> 53013 -> []
    bilibili_double.add_user(301, "other", coins=[(bvids[0], 1, 1)], likes=bvids[:1])
    bilibili_double.users[301].hide_coins = bilibili_double.users[301].hide_likes = True
    assert await bili_client.coined_videos(creds, 301) == []
    assert await bili_client.liked_videos(creds, 301) == []


async def test_popular_pages_until_no_more(bili_client, bilibili_double):
    seen, pn = [], 1
    while True:
        items, no_more = await bili_client.popular(pn=pn, ps=50)
        seen.extend(items)
        if no_more:
            break
        pn += 1
    assert len(seen) == 708 == len({v.bvid for v in seen})
    assert all(v.cover.startswith("https://") for v in seen)
    req = bilibili_double.last_request("/x/web-interface/popular")
    assert req.headers["User-Agent"].startswith("Mozilla/5.0") and req.headers["Referer"] == "https://www.bilibili.com"
    assert req.cookies["buvid3"] == bilibili_double.buvid3 and req.cookies["buvid4"] == bilibili_double.buvid4
    assert bilibili_double.calls["/x/frontend/finger/spi"] == 1


async def test_weekly_ranking_related(bili_client, bilibili_double):
    numbers = await bili_client.weekly_numbers()
    assert numbers == sorted(numbers, reverse=True) and len(numbers) == 12
    issue = await bili_client.weekly_issue(numbers[0])
    assert len(issue) == 30 and all(v.bvid in bilibili_double.videos for v in issue)
    ranking = await bili_client.ranking()
    assert len(ranking) == 100
    related = await bili_client.related(BV)
    assert 0 < len(related) <= 40 and BV not in {v.bvid for v in related}
    assert [v.bvid for v in related] == bilibili_double.related_bvids(BV)


async def test_view_and_tags(bili_client, bilibili_double):
    row = next(v for v in load_popular() if v.bvid == BV)
    v = await bili_client.view(BV)
    assert (v.aid, v.title, v.owner_mid, v.tid, v.tname, v.view, v.like) == (
        row.aid,
        row.title,
        row.owner_mid,
        row.tid,
        row.tname,
        row.view,
        row.like,
    )
    assert v.cover == row.pic.replace("http://", "https://")
    for video in load_popular()[:12]:  # bgm and topic entries are dropped
        assert await bili_client.tags(video.bvid) == tuple(video.tags)
    bilibili_double.set_unavailable(BV, 62012)
    with pytest.raises(VideoUnavailable) as ei:
        await bili_client.view(BV)
    assert ei.value.code == 62012
    other = load_popular()[1].bvid
    bilibili_double.set_state(other, -100)
    with pytest.raises(VideoUnavailable):
        await bili_client.view(other)
    with pytest.raises(VideoUnavailable):
        await bili_client.view("BV1xx411c7mD")


async def test_cover_rewrite_fetch_and_cap(bili_client, bilibili_double):
    cover = (await bili_client.view(BV)).cover
    assert cover.startswith("https://i1.hdslb.com/bfs/archive/")
    assert (
        bili_client.cover_fetch_url("http://i1.hdslb.com/bfs/archive/x.jpg")
        == bilibili_double.url + "/bfs/archive/x.jpg"
    )
    data = await bili_client.fetch_cover(cover)
    assert data.startswith(b"\x89PNG")
    assert bilibili_double.last_request("/bfs").path == "/bfs"
    cap = bili_client.settings.cover_max_bytes
    bilibili_double.set_cover_size(cap + 1)
    with pytest.raises(CoverTooLarge):
        await bili_client.fetch_cover(cover)
    bilibili_double.set_cover_size(cap + 1, chunked=True)  # no Content-Length: capped while streaming
    with pytest.raises(CoverTooLarge):
        await bili_client.fetch_cover(cover)
    bilibili_double.set_cover_size(cap - 10)
    assert len(await bili_client.fetch_cover(cover)) == cap - 10


async def test_long_history_user(bili_client, bilibili_double):
    user = bilibili_double.add_long_history_user(555)
    n = LONG_HISTORY["watches"]
    assert len(user.history) == n and len(bilibili_double.videos) == 708 + n
    creds = Credentials.from_dict(bilibili_double.login(555))
    page = await bili_client.history_page(creds, ps=30)
    assert len(page.items) == 30 and page.items[0].view_at >= page.items[-1].view_at
    bvid = page.items[0].video.bvid
    v = await bili_client.view(bvid)
    assert v.bvid == bvid and v.view > 0
    assert await bili_client.tags(bvid) == tuple(bilibili_double.videos[bvid].tags)
    assert len(await bili_client.liked_videos(creds, 555)) == 20  # recent likes only
    assert len(await bili_client.coined_videos(creds, 555)) == len(LONG_HISTORY["coins"])
    folders = await bili_client.fav_folders(creds, 555)
    assert folders[0].media_count == LONG_HISTORY["favourites"]


def test_long_history_is_reproducible_and_learnable():
    popular = load_popular()
    rows = synthesise_long_history(popular)
    assert [r.bvid for r in rows] == [r.bvid for r in synthesise_long_history(popular)]
    assert all(bv2av(r.bvid) == r.video.aid and av2bv(r.video.aid) == r.bvid for r in rows)
    assert not {r.bvid for r in rows} & {v.bvid for v in popular}
    assert [r.view_at for r in rows] == sorted(r.view_at for r in rows)
    assert sum(r.u_like > 0 for r in rows) == LONG_HISTORY["likes"]
    # engagement follows the uploader and tags: liked uploaders' videos are liked far more often
    liked_by_up = Counter(r.video.owner_mid for r in rows if r.u_like)
    watched_by_up = Counter(r.video.owner_mid for r in rows)
    loyal = [up for up, k in watched_by_up.items() if k >= 3]
    rate = sum(liked_by_up[up] for up in loyal) / sum(watched_by_up[up] for up in loyal)
    assert rate > LONG_HISTORY["likes"] / len(rows)


@pytest.mark.skipif(not SOURCE.exists(), reason=f"the source CSV is not beside the repo ({SOURCE})")
def test_bundled_catalogue_matches_its_source():
    """tests/fixtures/make_popular.py regenerates the fixture from ../shared/data without a change."""
    with SOURCE.open(encoding="utf-8", newline="") as f:
        expected = [compact(row) for row in csv.DictReader(f)]
    with gzip.open(POPULAR_FIXTURE, "rt", encoding="utf-8") as f:
        assert [json.loads(line) for line in f] == expected


async def test_generated_user_has_planted_taste(bilibili_double):
    u = bilibili_double.add_generated_user(700, seed=42, n_history=150)
    again = type(bilibili_double)(load_catalogue=True).add_generated_user(700, seed=42, n_history=150)
    assert list(u.history) == list(again.history)  # deterministic per seed
    tags = set(u.taste["tags"])

    def liked(b):
        v = bilibili_double.videos[b]
        return bool(tags & set(v.tags)) or v.owner_mid in u.taste["owners"]

    base = sum(liked(b) for b in bilibili_double.popular_order) / 708
    watched = sum(liked(b) for b in u.history) / len(u.history)
    assert watched > 2 * base
    assert sum(liked(b) for b in u.likes) > len(u.likes) / 2
