"""Wrong-typed fields from bilibili, over real HTTP: a bad row is skipped (the good ones kept), a bad
object is a MalformedResponse — never an AttributeError/ValueError that kills a sync (issue 11 §1.2)."""

from __future__ import annotations

import logging

import pytest

from bilibili import Credentials, MalformedResponse
from bilibili.client import (
    P_COIN,
    P_FAV_FOLDERS,
    P_FAV_ITEMS,
    P_FEED,
    P_FEED_UPDATE,
    P_FOLLOWINGS,
    P_HISTORY,
    P_HOME_FEED,
    P_LIKE,
    P_POPULAR,
    P_QR_GENERATE,
    P_RANKING,
    P_RELATED,
    P_SEARCH,
    P_SERIES_LIST,
    P_SERIES_ONE,
    P_TAGS,
    P_VIEW,
    P_VIEW_DETAIL,
)
from tests.doubles.bilibili_catalogue import load_popular

BV = "BV1FYjBzAE8h"
MID = 700


@pytest.fixture
async def account(bilibili_double):
    bvids = [v.bvid for v in load_popular()[:6]]
    bilibili_double.add_user(
        MID,
        "typed",
        history=[(b, 1_700_000_000 - i * 60, 30) for i, b in enumerate(bvids)],
        favs={"默认收藏夹": bvids[:4], "其他": bvids[:2]},
        coins=[(b, 1, 1_700_000_000 - i) for i, b in enumerate(bvids[:3])],
        likes=bvids[:5],
    )
    for bvid in bvids[:3]:  # followed creators, with an upload each
        bilibili_double.follow(MID, bilibili_double.videos[bvid].owner_mid)
        bilibili_double.upload(bilibili_double.videos[bvid].owner_mid, bilibili_double.videos[bvid])
    return Credentials.from_dict(bilibili_double.login(MID))


def list_calls(client, creds):
    """Every list endpoint: (path, call, how many items it yields)."""

    async def folders():
        return await client.fav_folders(creds, MID)

    async def fav_items():
        default = (await client.fav_folders(creds, MID))[0]
        items, _ = await client.fav_items(creds, default.id)
        return items

    async def popular():
        return (await client.popular(ps=20))[0]

    async def weekly_issue():
        return await client.weekly_issue(max(await client.weekly_numbers()))

    async def history():
        return (await client.history_page(creds)).items

    async def search():
        return (await client.search_videos("游戏", 1)).hits

    async def followings():
        return (await client.followings(creds, MID)).items

    async def video_feed():
        return (await client.video_feed(creds)).items

    return {
        P_HISTORY: history,
        P_FAV_FOLDERS: folders,
        P_FAV_ITEMS: fav_items,
        P_COIN: lambda: client.coined_videos(creds, MID),
        P_LIKE: lambda: client.liked_videos(creds, MID),
        P_POPULAR: popular,
        P_SERIES_LIST: client.weekly_numbers,
        P_SERIES_ONE: weekly_issue,
        P_RANKING: client.ranking,
        P_RELATED: lambda: client.related(BV),
        P_TAGS: lambda: client.tags(BV),
        P_SEARCH: search,
        P_FOLLOWINGS: followings,
        P_FEED: video_feed,
        P_HOME_FEED: lambda: client.home_feed(creds),
    }


@pytest.mark.parametrize(
    "path",
    [
        P_HISTORY,
        P_FAV_FOLDERS,
        P_FAV_ITEMS,
        P_COIN,
        P_LIKE,
        P_POPULAR,
        P_SERIES_LIST,
        P_SERIES_ONE,
        P_RANKING,
        P_RELATED,
        P_TAGS,
        P_SEARCH,
        P_FOLLOWINGS,
        P_FEED,
        P_HOME_FEED,
    ],
)
async def test_a_wrong_typed_row_is_skipped_and_the_rest_kept(bili_client, bilibili_double, account, path, caplog):
    call = list_calls(bili_client, account)[path]
    good = await call()
    assert len(good) >= 2, "the endpoint needs two rows for this test to mean anything"
    bilibili_double.inject(path, "wrong_types")
    with caplog.at_level(logging.INFO, logger="bilibili.models"):
        spoilt = await call()
    assert spoilt == good[1:]  # the first row skipped, every other one kept as it was
    assert "skipping malformed" in caplog.text
    assert bilibili_double.pending_faults == 0


@pytest.mark.parametrize(
    "path,call",
    [
        (P_VIEW, lambda c, creds, folder: c.view(BV)),
        (P_VIEW_DETAIL, lambda c, creds, folder: c.view_detail(BV)),
        (P_QR_GENERATE, lambda c, creds, folder: c.generate_qr()),
        (P_POPULAR, lambda c, creds, folder: c.popular()),
        (P_HISTORY, lambda c, creds, folder: c.history_page(creds)),
        (P_FAV_ITEMS, lambda c, creds, folder: c.fav_items(creds, folder)),
        (P_SEARCH, lambda c, creds, folder: c.search_videos("游戏", 1)),
        (P_FOLLOWINGS, lambda c, creds, folder: c.followings(creds, MID)),
        (P_FEED_UPDATE, lambda c, creds, folder: c.feed_update(creds, "0")),
        (P_FEED, lambda c, creds, folder: c.video_feed(creds)),
        (P_HOME_FEED, lambda c, creds, folder: c.home_feed(creds)),
    ],
)
async def test_a_wrong_typed_object_is_malformed_response(bili_client, bilibili_double, account, path, call):
    await bili_client.view(BV)  # device and keys known: the fault meets the endpoint itself
    await bili_client.popular()
    fault = "wrong_types" if path in (P_VIEW, P_VIEW_DETAIL, P_QR_GENERATE, P_FEED_UPDATE) else "wrong_data"
    bilibili_double.inject(path, fault)
    with pytest.raises(MalformedResponse) as ei:
        await call(bili_client, account, bilibili_double.users[MID].folders[0].id)
    assert ei.value.path == path
    assert (await bili_client.view(BV)).bvid == BV  # and the next call is fine
