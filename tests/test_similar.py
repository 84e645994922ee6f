"""/similar, pasted links, b23.tv short links, the pick's "more like this" button and /history (issue 18
items 1 and 5) as a user meets them: the real Application against the Telegram and bilibili doubles."""

from __future__ import annotations

import re

import pytest

from bilibili.client import P_VIEW_DETAIL
from bilibili.models import av_to_bv
from jobs.sync import refresh_candidates
from storage import behaviour, blocks, catalogue, picks, users
from tests.botenv import eventually, is_pick, pick_bvid
from tests.doubles.bilibili import SHORT, VIEW_DETAIL, BilibiliDouble
from tests.doubles.bilibili_catalogue import Video
from tests.doubles.telegram import SentMessage
from tests.test_discover import bvids, command, linked_with_model

SIMILAR_LINE = re.compile(r"^\d+\. (?:(\d{2,3})/100 · )?(.+?) · ", re.M)
REASON = re.compile(r"^\s+↳ (.+)$", re.M)


@pytest.fixture
async def world(tmp_path, tg, bilibili_double):
    from tests.botenv import running_bot

    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=3600) as (app, svc):
        yield tg, bilibili_double, svc


def listed(message: SentMessage) -> list[str]:
    """The videos a /similar reply lists (the first link is the video asked about)."""
    return bvids(message)[1:]


def ratings(message: SentMessage) -> list[int]:
    return [int(m.group(1)) for m in SIMILAR_LINE.finditer(message.content) if m.group(1)]


def reasons(message: SentMessage) -> list[str]:
    return REASON.findall(message.content)


def some_video(bili: BilibiliDouble, n: int = 0) -> str:
    """A video of the double's catalogue that no list shows (so the bot has not fetched it yet), alike
    a popular one with tags (content neighbours need something)."""
    model = [v for v in bili.videos.values() if v.in_popular and len(v.tags) >= 2][n]
    aid = 980_000_000 + n
    if (bvid := av_to_bv(aid)) not in bili.videos:
        bili.add_video(
            Video(
                aid=aid,
                bvid=bvid,
                title=f"没人看过的视频 {n}",
                pic=model.pic,
                tid=model.tid,
                tname=model.tname,
                pubdate=model.pubdate,
                duration=200 + n,
                owner_mid=model.owner_mid,
                owner_name=model.owner_name,
                view=1000,
                tags=list(model.tags),
                in_popular=False,
            )
        )
    return bvid


async def recommend_page(tg, svc, user: dict) -> list[SentMessage]:
    """/recommend's five picks, once all are sent and recorded (the page's message ids are stored
    together, right after its last send)."""
    mark = tg.mark()
    await tg.send_text(user, "/recommend")
    await tg.wait_for(
        lambda m: sum(is_pick(x) for x in tg.sent_to(user) if x.seq > mark) >= 5, chat=user, since=mark, timeout=30
    )
    sent = [m for m in tg.sent_to(user) if m.seq > mark and is_pick(m)]
    await eventually(
        lambda: picks.shown_by_message(svc.db, user["id"], sent[-1].message_id) is not None, what="the page recorded"
    )
    return sent


def is_similar(message: SentMessage) -> bool:
    return message.content.startswith("🔁")


async def test_similar_for_a_linked_user_lists_five_rated_videos_with_reasons_and_caches_the_call(world):
    tg, bili, svc = world
    await linked_with_model(svc, bili, 15001, 7101)
    alice = tg.user(15001, first_name="A", language_code="en")
    asked = some_video(bili, 3)
    bili.reset_calls()
    reply = await command(tg, alice, f"/similar {asked}", is_similar)
    assert bvids(reply)[0] == asked and bili.videos[asked].title[:10] in reply.content
    shown = listed(reply)
    assert len(shown) == 5 and asked not in shown and len(set(shown)) == 5
    assert len(ratings(reply)) == 5, "each line rated NN/100 for the user"
    assert len(reasons(reply)) == 5 and all(
        r.startswith(("watched together", "same tags", "same uploader", "bilibili lists", "same partition"))
        for r in reasons(reply)
    )
    for bvid, reason in zip(shown, reasons(reply)):
        if reason.startswith("same tags: "):
            tags = reason.removeprefix("same tags: ").split(", ")
            assert set(tags) <= set(bili.videos[asked].tags) & set(bili.videos[bvid].tags)
    assert bili.calls[VIEW_DETAIL] == 1, "one view/detail call: the video and its related list"
    again = await command(tg, alice, f"/similar https://www.bilibili.com/video/{asked}/?p=1", is_similar)
    assert listed(again) == shown and bili.calls[VIEW_DETAIL] == 1, "asked again: from what was stored"
    assert set(catalogue.related_graph(svc.db, [asked])[asked]) == set(bili.related_bvids(asked))


async def test_a_synced_video_needs_no_call_since_the_sync_kept_its_related_list(world):
    tg, bili, svc = world
    await linked_with_model(svc, bili, 15002, 7102)
    alice = tg.user(15002, first_name="A", language_code="en")
    watched = behaviour.watched_bvids(svc.db, users.get_user(svc.db, 15002).id)
    graph = catalogue.related_graph(svc.db, watched)
    assert graph, "the sync kept the related lists view/detail brought with the watched videos"
    target = sorted(graph)[0]
    bili.reset_calls()
    reply = await command(tg, alice, f"/similar {target}", is_similar)
    assert listed(reply) and bili.calls[VIEW_DETAIL] == 0


async def test_a_video_nobody_watched_and_bilibili_lists_nothing_beside_gets_content_neighbours(world):
    tg, bili, svc = world
    model = bili.videos[some_video(bili, 5)]
    fresh = bili.add_video(
        Video(
            aid=990_000_001,
            bvid="BV1Ab4y1C7xz",
            title="全新的视频",
            pic=model.pic,
            tid=model.tid,
            tname=model.tname,
            pubdate=model.pubdate,
            duration=300,
            owner_mid=123_456_789,
            owner_name="新人UP",
            tags=list(model.tags[:3]),
            in_popular=False,
        )
    )
    bili.related_override[fresh.bvid] = []
    bob = tg.user(15003, first_name="B", language_code="en")
    await refresh_candidates(svc, force=True)  # a bot with candidates (the popular lists, their metadata)
    reply = await command(tg, bob, f"/similar {fresh.bvid}", is_similar)
    shown = listed(reply)
    assert shown and ratings(reply) == [], "an unlinked user gets a plain list"
    assert "Not rated for you" in reply.content
    assert not any(r.startswith("watched together") for r in reasons(reply))
    for bvid in shown:
        other = bili.videos[bvid]
        assert set(other.tags) & set(fresh.tags) or other.tid == fresh.tid, "alike by content"


async def test_bad_ids_and_videos_bilibili_refuses_get_clear_replies(world):
    tg, bili, svc = world
    alice = tg.user(15004, first_name="A", language_code="en")
    assert "Send /similar with a bilibili link" in (await command(tg, alice, "/similar")).content
    for bad in ("BV123", "hello", "av0", "BV1" + "0" * 9):
        reply = await command(tg, alice, f"/similar {bad}")
        assert "is not a bilibili video id" in reply.content, bad
    bili.reset_calls()
    gone = await command(tg, alice, "/similar BV1xx411c7mZ")  # well-formed, no such video: -404
    assert "no such video" in gone.content
    hidden, locked = some_video(bili, 1), some_video(bili, 2)
    bili.set_unavailable(hidden, 62012)
    assert "refuses to show that video (code 62012)" in (await command(tg, alice, f"/similar {hidden}")).content
    bili.set_restricted(locked, -403)
    assert "refuses to show that video (code -403)" in (await command(tg, alice, f"/similar {locked}")).content
    bangumi = await command(tg, alice, "/similar https://www.bilibili.com/bangumi/play/ep1234")
    assert "not a bilibili video" in bangumi.content
    space = await command(tg, alice, "/similar https://space.bilibili.com/2")
    assert "not a bilibili video" in space.content


async def test_a_link_pasted_as_plain_text_means_similar_and_other_text_still_gets_the_hint(world):
    tg, bili, svc = world
    alice = tg.user(15005, first_name="A", language_code="en")
    asked = some_video(bili, 7)
    reply = await command(
        tg, alice, f"【分享】看看这个 https://www.bilibili.com/video/{asked}?share_source=copy", is_similar
    )
    assert bvids(reply)[0] == asked and listed(reply)
    aid = bili.videos[asked].aid
    assert bvids(await command(tg, alice, f"av{aid}", is_similar))[0] == asked
    assert "I did not understand" in (await command(tg, alice, "hello there")).content


async def test_a_b23_short_link_is_resolved_through_the_configured_host_never_followed(world):
    tg, bili, svc = world
    alice = tg.user(15006, first_name="A", language_code="en")
    asked = some_video(bili, 9)
    code = bili.short_link_to(asked)
    reply = await command(tg, alice, f"https://b23.tv/{code}", is_similar)
    assert bvids(reply)[0] == asked and bili.calls[SHORT] == 1
    assert bvids(await command(tg, alice, f"/similar b23.tv/{code}", is_similar))[0] == asked
    assert bili.calls[SHORT] == 1, "a short link resolved once is remembered"
    bili.add_short_link("toLive1", "https://live.bilibili.com/22")
    bili.add_short_link("toEvil1", "https://evil.example/video/BV1xx411c7mD")
    bili.add_short_link("toShort", "https://b23.tv/toLive1")
    for code in ("toLive1", "toEvil1", "toShort", "nosuch12"):
        reply = await command(tg, alice, f"/similar https://b23.tv/{code}")
        assert "not a bilibili video" in reply.content, code
    assert not any(r.path.startswith("/video") for r in bili.requests), "the redirect is read, never followed"


async def test_replying_similar_to_a_pick_and_its_button_are_about_that_pick_and_its_owner_only(world):
    tg, bili, svc = world
    await linked_with_model(svc, bili, 15007, 7103)
    alice = tg.user(15007, first_name="A", language_code="en")
    bob = tg.user(15008, first_name="B", language_code="en")
    await command(tg, bob, "/start")
    pick = (await recommend_page(tg, svc, alice))[0]
    mark = tg.mark()
    await tg.send_text(alice, "/similar", reply_to=pick)
    reply = await tg.wait_for(is_similar, chat=alice, since=mark, timeout=20)
    assert bvids(reply)[0] == pick_bvid(pick)
    not_pick = await command(tg, alice, "/start")
    mark = tg.mark()
    await tg.send_text(alice, "/similar", reply_to=not_pick)
    assert "not one of your picks" in (await tg.wait_for(lambda m: True, chat=alice, since=mark)).content

    shown = picks.shown_by_message(svc.db, alice["id"], pick.message_id)
    mark = tg.mark()
    answer = await tg.wait_answer(await tg.tap(alice, pick, f"sim:{shown.id}", check_button=False))
    assert "text" not in answer or not answer["text"]
    by_button = await tg.wait_for(is_similar, chat=alice, since=mark, timeout=20)
    assert bvids(by_button)[0] == pick_bvid(pick)
    mark = tg.mark()
    refused = await tg.wait_answer(await tg.tap(bob, pick, f"sim:{shown.id}", check_button=False))
    assert "belongs to someone else" in refused["text"]
    for stale in (f"sim:{shown.id + 10_000}", "sim:x"):
        answer = await tg.wait_answer(await tg.tap(alice, pick, stale, check_button=False))
        assert answer.get("text"), stale
    assert [m for m in tg.sent_to(bob) if m.seq > mark] == [] and [m for m in tg.sent_to(alice) if m.seq > mark] == []


async def test_during_a_risk_pause_similar_says_when_to_come_back_and_sends_nothing(world):
    tg, bili, svc = world
    alice = tg.user(15009, first_name="A", language_code="en")
    throttle = svc.bili.throttle
    throttle.pause_base_s = throttle.pause_max_s = 600  # the tests' pause is short: this one outlasts three commands
    bili.inject(P_VIEW_DETAIL, "412_json")
    refused = await command(tg, alice, f"/similar {some_video(bili, 11)}")
    assert "-412" in refused.content and svc.bili.throttle.paused
    calls = bili.calls[VIEW_DETAIL], bili.calls[SHORT]
    paused = await command(tg, alice, f"/similar {some_video(bili, 12)}")
    assert "try again in" in paused.content
    short = await command(tg, alice, f"https://b23.tv/{bili.short_link_to(some_video(bili, 13))}")
    assert "try again in" in short.content
    assert (bili.calls[VIEW_DETAIL], bili.calls[SHORT]) == calls, "nothing sent during the pause"


async def test_a_dead_login_still_gets_similar_videos_never_an_error(world):
    tg, bili, svc = world
    await linked_with_model(svc, bili, 15010, 7104)
    uid = users.get_user(svc.db, 15010).id
    users.update_user(svc.db, uid, session_dead=True)
    bili.sessions.clear()  # bilibili forgot the login too
    alice = tg.user(15010, first_name="A", language_code="en")
    reply = await command(tg, alice, f"/similar {some_video(bili, 4)}", is_similar)
    assert len(listed(reply)) == 5


# -- /history ---------------------------------------------------------------------------------------
async def test_history_lists_the_picks_newest_first_with_taps_and_pages_in_place(world):
    tg, bili, svc = world
    await linked_with_model(svc, bili, 15011, 7105)
    alice = tg.user(15011, first_name="A", language_code="en")
    bob = tg.user(15012, first_name="B", language_code="en")
    assert "not been shown any picks" in (await command(tg, alice, "/history")).content
    sent: list[SentMessage] = []
    for _ in range(3):  # 15 picks: two pages
        sent += await recommend_page(tg, svc, alice)
        svc.clock = (lambda at: lambda: at)(svc.clock() + 60)
    liked, disliked = sent[-1], sent[-2]
    for message, data in (
        (liked, next(d for d in liked.callback_data if d.endswith("+1"))),
        (disliked, next(d for d in disliked.callback_data if d.endswith("-1"))),
    ):
        await tg.wait_answer(await tg.tap(alice, message, data))
    page1 = await command(tg, alice, "/history", lambda m: "Your picks" in m.content)
    newest = [pick_bvid(m) for m in reversed(sent)]
    assert bvids(page1) == newest[:10], "newest first"
    lines = [ln for ln in page1.content.splitlines() if re.match(r"^\d+\. ", ln)]
    assert lines[0].startswith("1. ✓") and lines[1].startswith("2. ✗") and "/100" in lines[0]
    assert "page 1/2" in page1.content and len(page1.callback_data) == 1

    refused = await tg.wait_answer(await tg.tap(bob, page1, page1.callback_data[0]))
    assert "belongs to someone else" in refused["text"] and page1.edits == []
    mark = tg.mark()
    await tg.wait_answer(await tg.tap(alice, page1, page1.callback_data[0]))
    page2 = await tg.wait_for(
        lambda m: m.message_id == page1.message_id and "page 2/2" in m.content, chat=alice, since=mark
    )
    assert bvids(page2) == newest[10:15]
    assert [m for m in tg.sent_to(alice) if m.seq > mark and m.message_id != page1.message_id] == []
    missing = await tg.wait_answer(await tg.tap(alice, page1, "hs:15011:9", check_button=False))
    assert "does not exist" in missing["text"]
    garbage = await tg.wait_answer(await tg.tap(alice, page1, "hs:nope", check_button=False))
    assert "expired" in garbage["text"]


async def test_help_and_the_menu_list_similar_and_history_in_both_languages(world):
    tg, bili, svc = world
    for lang, code in (("en", "en"), ("zh", "zh-hans")):
        user = tg.user(15020 + len(lang) + (lang == "zh"), first_name="H", language_code=code)
        text = (await command(tg, user, "/help")).content
        assert "/similar" in text and "/history" in text, lang
        names = [c["command"] for c in tg.my_commands({"type": "all_private_chats"}, "" if lang == "en" else lang)]
        assert {"similar", "history"} <= set(names), lang


async def test_a_blocked_uploader_never_appears_among_similar_videos(world):
    tg, bili, svc = world
    alice = tg.user(15030, first_name="A", language_code="en")
    asked = some_video(bili, 14)
    shown = listed(await command(tg, alice, f"/similar {asked}", is_similar))
    blocked = {bili.videos[b].owner_mid for b in shown[:2]}
    uid = users.get_user(svc.db, 15030).id
    for mid in blocked:
        blocks.add_rule(svc.db, uid, "uploader", str(mid), "someone", svc.now())
    again = await command(tg, alice, f"/similar {asked}")
    assert not {bili.videos[b].owner_mid for b in listed(again)} & blocked, "a block rule holds in /similar too"
    assert listed(again), "others like it are still listed"
