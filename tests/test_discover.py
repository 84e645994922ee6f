"""/search and /popular (issue 18 items 2 and 3) as a user meets them: the real Application against the
Telegram and bilibili doubles, over HTTP."""

from __future__ import annotations

import re

import pytest

from bilibili.client import P_SEARCH
from jobs.sync import sync_user
from jobs.training import train_users_now
from tests.doubles.bilibili import RANKING, SEARCH, BilibiliDouble
from tests.doubles.telegram import SentMessage
from tests.harness import link_user

GAMES = 1008
LINE = re.compile(r"^\d+\. (?:(\d{2,3})/100 · )?(.+?) · ", re.M)


@pytest.fixture
async def world(tmp_path, tg, bilibili_double):
    from tests.botenv import running_bot

    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=3600) as (app, svc):
        yield tg, bilibili_double, svc


async def linked_with_model(svc, bili: BilibiliDouble, telegram_id: int, mid: int) -> None:
    bili.add_generated_user(mid, seed=mid % 97, n_history=60, uname=f"u{mid}")
    uid = link_user(svc, bili, telegram_id, mid)
    assert (await sync_user(svc, uid)).ok
    await train_users_now(svc, [uid])
    assert svc.models.load(str(uid)) is not None


def bvids(message: SentMessage) -> list[str]:
    """The videos a page links to, in order."""
    return [e["url"].rsplit("/", 1)[1] for e in message.entities if e.get("type") == "text_link"]


def ratings(message: SentMessage) -> list[int]:
    return [int(m.group(1)) for m in LINE.finditer(message.content) if m.group(1)]


async def command(tg, user: dict, text: str, predicate=lambda m: True) -> SentMessage:
    mark = tg.mark()
    await tg.send_text(user, text)
    return await tg.wait_for(predicate, chat=user, since=mark, timeout=20)


async def test_search_for_a_linked_user_is_rated_without_markup_and_pages_in_the_same_message(world):
    tg, bili, svc = world
    await linked_with_model(svc, bili, 14001, 7001)
    alice = tg.user(14001, first_name="A", language_code="en")
    first = await command(tg, alice, "/search 游戏", lambda m: "游戏" in m.content)
    expected = bili.search_bvids("游戏")[:20]  # bilibili's first page of 20 holds the message's pages 1 and 2
    page1 = bvids(first)
    assert len(page1) == 10 and set(page1) <= set(expected)
    got = ratings(first)
    assert len(got) == 10 and got == sorted(got, reverse=True), "each line rated, best first"
    for bvid in page1:
        title = bili.videos[bvid].title
        assert title[:20] in first.content, "the title as bilibili has it, highlight markup stripped"
    assert "<em" not in first.content and "&lt;" not in first.content
    assert "page 1/" in first.content and first.callback_data and len(first.callback_data) == 1  # ▶ only

    mark = tg.mark()
    await tg.wait_answer(await tg.tap(alice, first, first.callback_data[0]))
    edited = await tg.wait_for(
        lambda m: m.message_id == first.message_id and "page 2/" in m.content, chat=alice, since=mark
    )
    assert set(bvids(edited)) | set(page1) == set(expected), "page 2 is the rest of bilibili's page"
    assert [m for m in tg.sent_to(alice) if m.seq > mark and m.message_id != first.message_id] == []
    assert len(edited.callback_data) == 2  # ◀ ▶
    assert bili.calls[SEARCH] == 1, "the second page came from the cached search page"


async def test_someone_elses_page_button_is_refused_and_changes_nothing(world):
    tg, bili, svc = world
    alice = tg.user(14002, first_name="A", language_code="en")
    bob = tg.user(14003, first_name="B", language_code="en")
    await command(tg, bob, "/start")
    first = await command(tg, alice, "/search 游戏", lambda m: "游戏" in m.content)
    answer = await tg.wait_answer(await tg.tap(bob, first, first.callback_data[0]))
    assert "belongs to someone else" in answer["text"]
    assert tg.sent_to(alice)[-1].edits == [] and "page 1/" in first.content


async def test_a_stale_page_button_is_answered_clearly(world):
    tg, bili, svc = world
    alice = tg.user(14004, first_name="A", language_code="en")
    first = await command(tg, alice, "/search 游戏", lambda m: "游戏" in m.content)
    token = first.callback_data[0].split(":")[1]
    calls = bili.calls[SEARCH]
    answer = await tg.wait_answer(await tg.tap(alice, first, f"dv:{token}:999", check_button=False))
    assert "page does not exist" in answer["text"] and bili.calls[SEARCH] == calls, "past bilibili's 50 pages"
    svc.discover.listings = type(svc.discover.listings)(60, 10)  # a restart forgets what the buttons list
    answer = await tg.wait_answer(await tg.tap(alice, first, first.callback_data[0]))
    assert "expired" in answer["text"]
    answer = await tg.wait_answer(await tg.tap(alice, first, "dv:garbage", check_button=False))
    assert "expired" in answer["text"]
    assert first.edits == []


async def test_an_unlinked_user_gets_bilibilis_own_order_without_ratings(world):
    tg, bili, svc = world
    alice = tg.user(14005, first_name="A", language_code="en")
    first = await command(tg, alice, "/search 游戏", lambda m: "游戏" in m.content)
    assert bvids(first) == bili.search_bvids("游戏")[:10]
    assert ratings(first) == [] and "/100" not in first.content and "bilibili's own order" in first.content


async def test_search_without_words_or_results_gets_a_clear_reply(world):
    tg, bili, svc = world
    alice = tg.user(14006, first_name="A", language_code="en")
    usage = await command(tg, alice, "/search")
    assert "/search with some words" in usage.content
    empty = await command(tg, alice, "/search 没有这种视频zzzq")
    assert "Nothing found" in empty.content and "没有这种视频zzzq" in empty.content
    assert not empty.callback_data
    markup = await command(tg, alice, "/search <script>zzqq")
    assert "Nothing found" in markup.content and "<script>zzqq" in markup.content, "the words shown as typed"


async def test_a_search_refused_with_412_and_the_pause_after_it_get_clear_replies(world):
    tg, bili, svc = world
    alice = tg.user(14007, first_name="A", language_code="en")
    bili.inject(P_SEARCH, "412_json")
    refused = await command(tg, alice, "/search 游戏")
    assert "-412" in refused.content and svc.bili.throttle.paused
    calls = bili.calls[SEARCH]
    paused = await command(tg, alice, "/search 音乐")
    assert "try again in" in paused.content, "told when to come back, not kept waiting for the pause"
    assert bili.calls[SEARCH] == calls, "nothing sent during the pause"


async def test_popular_for_a_partition_is_that_partitions_ranking_by_the_users_rating(world):
    tg, bili, svc = world
    await linked_with_model(svc, bili, 14008, 7002)
    alice = tg.user(14008, first_name="A", language_code="en")
    first = await command(tg, alice, "/popular 游戏", lambda m: "Gaming" in m.content)
    shown = bvids(first)
    assert len(shown) == 10 and all(BilibiliDouble.v2_partition(bili.videos[b]) == GAMES for b in shown)
    got = ratings(first)
    assert len(got) == 10 and got == sorted(got, reverse=True)
    assert bili.last_request(RANKING).query["rid"] == str(GAMES)
    # Stored into the catalogue, so ranking had their metadata.
    from storage import catalogue

    assert set(catalogue.get_videos(svc.db, shown)) == set(shown)


async def test_popular_with_an_unknown_partition_lists_the_names(world):
    tg, bili, svc = world
    alice = tg.user(14009, first_name="A", language_code="en")
    reply = await command(tg, alice, "/popular 生活")  # no v2 ranking since 2025
    for odd in ("²", "9" * 5000, "1"):
        assert "don't know that partition" in (await command(tg, alice, f"/popular {odd}")).content
    assert (
        "don't know that partition" in reply.content
        and "游戏 (Gaming)" in reply.content
        and "科技数码 (Tech & Gadgets)" in reply.content
    )
    asked = {r.query.get("rid") for r in bili.requests if r.path == RANKING}
    assert asked <= {"0"}, "no partition asked for (the candidate refresh asks for the whole site's)"
    by_id = await command(tg, alice, "/popular 1003", lambda m: "Music" in m.content)
    assert bvids(by_id)


async def test_popular_alone_offers_a_keyboard_whose_choice_becomes_the_ranking(world):
    tg, bili, svc = world
    alice = tg.user(14010, first_name="A", language_code="zh-hans")
    bob = tg.user(14011, first_name="B", language_code="en")
    await command(tg, bob, "/start")
    choose = await command(tg, alice, "/popular", lambda m: m.callback_data)
    assert len(choose.callback_data) == 15 and all(len(d.encode()) <= 64 for d in choose.callback_data)
    games = f"dvp:14010:{GAMES}"
    refused = await tg.wait_answer(await tg.tap(bob, choose, games))
    assert "别人" not in refused["text"] and "someone else" in refused["text"]
    mark = tg.mark()
    await tg.wait_answer(await tg.tap(alice, choose, games))
    page = await tg.wait_for(
        lambda m: m.message_id == choose.message_id and "游戏" in m.content, chat=alice, since=mark
    )
    assert "第 1/10 页" in page.content and len(bvids(page)) == 10
    assert all(BilibiliDouble.v2_partition(bili.videos[b]) == GAMES for b in bvids(page))


def ranking_calls(bili: BilibiliDouble, rid: int) -> int:
    """Ranking requests for this partition (the candidate refresh asks for the whole site's on its own)."""
    return sum(1 for r in bili.requests if r.path == RANKING and r.query.get("rid") == str(rid))


async def test_users_asking_for_the_same_partition_within_ten_minutes_cost_one_ranking_call(world):
    tg, bili, svc = world
    people = [tg.user(14020 + i, first_name="U", language_code="en") for i in range(4)]
    mark = tg.mark()
    for user in people[:3]:  # at once: they share the one call in flight
        await tg.send_text(user, "/popular 游戏")
    for user in people[:3]:
        await tg.wait_for(lambda m: "Gaming" in m.content, chat=user, since=mark, timeout=20)
    await command(tg, people[3], "/popular gaming", lambda m: "Gaming" in m.content)  # later: from the cache
    assert ranking_calls(bili, GAMES) == 1
    later = svc.clock() + 601
    svc.clock = lambda: later
    await command(tg, people[0], "/popular 游戏", lambda m: "Gaming" in m.content)
    assert ranking_calls(bili, GAMES) == 2, "after ten minutes the ranking is asked afresh"
