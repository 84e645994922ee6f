"""The bilibili fault matrix over real HTTP to the double (issue 11 §2, client level): every fault on
every endpoint BiliPick calls ends in good data or a typed BilibiliError — never an AttributeError or
a hang — and once the fault is gone the next call returns what it returned before the fault."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bilibili import BilibiliError, Credentials
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
    P_QR_POLL,
    P_RANKING,
    P_RELATED,
    P_SEARCH,
    P_SERIES_LIST,
    P_SERIES_ONE,
    P_TAGS,
    P_VIEW,
    P_VIEW_DETAIL,
)
from tests.doubles.bilibili import IMAGES
from tests.doubles.bilibili_catalogue import load_popular

BV = "BV1FYjBzAE8h"
MID = 900

# "slow" outlasts the client's timeout once (the retry answers); every other fault lasts through all
# the client's attempts, so the caller meets it.
FAULTS = ["slow", "500", "412_html", "-352", "-101", "malformed", "wrong_types", "wrong_data", "null_data"]
ENDPOINTS = [
    "login poll",
    "history",
    "fav folders",
    "fav items",
    "coins",
    "likes",
    "related",
    "view",
    "tags",
    "view detail",
    "popular",
    "weekly numbers",
    "weekly issue",
    "ranking",
    "ranking partition",
    "search",
    "cover",
    "followings",
    "feed update",
    "video feed",
    "home feed",
]
PATHS = {
    "login poll": P_QR_POLL,
    "history": P_HISTORY,
    "fav folders": P_FAV_FOLDERS,
    "fav items": P_FAV_ITEMS,
    "coins": P_COIN,
    "likes": P_LIKE,
    "related": P_RELATED,
    "view": P_VIEW,
    "tags": P_TAGS,
    "view detail": P_VIEW_DETAIL,
    "popular": P_POPULAR,
    "weekly numbers": P_SERIES_LIST,
    "weekly issue": P_SERIES_ONE,
    "ranking": P_RANKING,
    "ranking partition": P_RANKING,
    "search": P_SEARCH,
    "cover": IMAGES,
    "followings": P_FOLLOWINGS,
    "feed update": P_FEED_UPDATE,
    "video feed": P_FEED,
    "home feed": P_HOME_FEED,
}


async def first_event(client, qr):
    gen = client.poll_login(qr)
    try:
        return await anext(gen)
    finally:
        await gen.aclose()


def make_calls(client, double, creds: Credentials, qr) -> dict[str, Callable[[], Awaitable[Any]]]:
    folder_id = double.users[MID].folders[0].id
    cover = "https://i1.hdslb.com/bfs/archive/74ff3c197c41a6d7bcef93d9a056f3ef1f1dc73d.jpg"

    async def history():
        return (await client.history_page(creds)).items

    async def fav_items():
        return (await client.fav_items(creds, folder_id))[0]

    async def popular():
        return (await client.popular())[0]

    async def search():
        return (await client.search_videos("游戏", 1)).hits

    async def followings():
        return (await client.followings(creds, MID)).items

    async def video_feed():
        return (await client.video_feed(creds)).items

    return {
        "login poll": lambda: first_event(client, qr),
        "history": history,
        "fav folders": lambda: client.fav_folders(creds, MID),
        "fav items": fav_items,
        "coins": lambda: client.coined_videos(creds, MID),
        "likes": lambda: client.liked_videos(creds, MID),
        "related": lambda: client.related(BV),
        "view": lambda: client.view(BV),
        "tags": lambda: client.tags(BV),
        "view detail": lambda: client.view_detail(BV),
        "popular": popular,
        "weekly numbers": client.weekly_numbers,
        "weekly issue": lambda: client.weekly_issue(300),
        "ranking": client.ranking,
        "ranking partition": lambda: client.ranking(1008),  # 游戏, a v2 main id
        "search": search,
        "cover": lambda: client.fetch_cover(cover),
        "followings": followings,
        "feed update": lambda: client.feed_update(creds, "0"),
        "video feed": video_feed,
        "home feed": lambda: client.home_feed(creds),
    }


def good(result: Any, baseline: Any) -> bool:
    """The same answer, or part of it (a list may lose rows a fault spoilt, never gain invented ones)."""
    if isinstance(baseline, list | tuple):
        return isinstance(result, type(baseline)) and all(r in baseline for r in result)
    return result == baseline


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("fault", FAULTS)
async def test_fault_ends_typed_and_the_client_recovers(bili_client, bilibili_double, fault, endpoint):
    bvids = [v.bvid for v in load_popular()[:6]]
    bilibili_double.add_user(
        MID,
        "matrix",
        history=[(b, 1_700_000_000 - i * 60) for i, b in enumerate(bvids)],
        favs=bvids[:4],
        coins=[(b, 1, 1_700_000_000 - i) for i, b in enumerate(bvids[:3])],
        likes=bvids[:5],
    )
    for bvid in bvids[:3]:  # followed creators, with an upload each
        bilibili_double.follow(MID, bilibili_double.videos[bvid].owner_mid)
        bilibili_double.upload(bilibili_double.videos[bvid].owner_mid, bilibili_double.videos[bvid])
    creds = Credentials.from_dict(bilibili_double.login(MID))
    qr = await bili_client.generate_qr()
    bilibili_double.scan(qr.key)
    call = make_calls(bili_client, bilibili_double, creds, qr)[endpoint]
    baseline = await call()
    assert baseline, "an empty answer would prove nothing"

    bilibili_double.inject(PATHS[endpoint], fault, times=1 if fault == "slow" else bili_client.settings.retries + 1)
    try:
        result = await call()
    except BilibiliError:
        pass  # typed: the caller knows what happened
    else:
        assert good(result, baseline), f"{fault} on {endpoint} returned bad data"

    bilibili_double.clear_faults()
    assert await call() == baseline  # the fault is gone: the client works again (after any pause)
    assert not bili_client.throttle.paused
