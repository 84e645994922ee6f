"""Fuller pick cards (issue 18 item 4) and their tidy buttons (issue 19 items 1 and 8), tried as a user
would: the real Application against the Telegram and bilibili doubles.

A card: cover, title, uploader and NN/100, a "duration · views · age" line, the reason, the link;
👍/👎 alone on the first row, then "▶ Open" and "⋯" (watch later, not this uploader/tag, more like
this, fold), and "More ▸" on a /recommend page's last pick.
"""

from __future__ import annotations

import re

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest

from delivery.i18n import t
from delivery.render import count_text, duration_text
from jobs.convert import user_events
from storage import behaviour, catalogue, users
from tests.botenv import forget_in_chat, pick_bvid, pick_messages, running_bot
from tests.doubles.telegram import SentMessage, TelegramDouble
from tests.harness import link_user

MID = 4242
BOB_MID = 4343


@pytest.fixture
async def world(tmp_path, tg, bilibili_double):
    bilibili_double.add_user(MID, "卡片用户")
    bilibili_double.add_user(BOB_MID, "bob")
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=3600) as (app, svc):
        yield tg, bilibili_double, svc


def rows(message: SentMessage) -> list[list[dict]]:
    return (message.reply_markup or {}).get("inline_keyboard", [])


def texts(message: SentMessage) -> list[str]:
    return [b["text"] for b in message.buttons]


def data_starting(message: SentMessage, prefix: str) -> list[str]:
    return [d for d in message.callback_data if d.startswith(prefix)]


def current(tg: TelegramDouble, message: SentMessage) -> SentMessage:
    """The message as the chat shows it now (edits applied)."""
    return next(m for m in tg.sent_to(message.chat_id) if m.message_id == message.message_id)


async def recommend(tg: TelegramDouble, user: dict, n: int = 5) -> list[SentMessage]:
    """/recommend; the page's picks, in order."""
    before = {m.message_id for m in pick_messages(tg, user)}
    await tg.send_text(user, "/recommend")
    await tg.wait_for(
        lambda m: len([p for p in pick_messages(tg, user) if p.message_id not in before]) >= n, chat=user, timeout=30
    )
    return [p for p in pick_messages(tg, user) if p.message_id not in before]


async def tap(tg: TelegramDouble, user: dict, message: SentMessage, data: str, *, on_keyboard: bool = True) -> dict:
    """The user taps `data` on `message`; Telegram's answer to the tap (its toast). `on_keyboard=False`:
    data the message may not show now (an unfolded menu's button tapped on an older copy of it)."""
    return await tg.wait_answer(await tg.tap(user, message, data, check_button=on_keyboard))


async def tap_and_see(
    tg: TelegramDouble, user: dict, message: SentMessage, data: str, until
) -> tuple[dict, SentMessage]:
    """Tap, then wait until the message's keyboard satisfies `until`."""
    mark = tg.mark()
    answer = await tap(tg, user, message, data)
    edited = await tg.wait_for(lambda m: m.message_id == message.message_id and until(m), chat=user, since=mark)
    return answer, edited


def linked(svc, bili, telegram_id: int, mid: int, language: str = "en") -> int:
    return link_user(svc, bili, telegram_id, mid, language=language)


async def test_a_card_has_the_open_button_the_menu_and_more_on_the_last_pick(world):
    tg, bili, svc = world
    alice = tg.user(7101, language_code="en")
    linked(svc, bili, 7101, MID)
    page = await recommend(tg, alice)
    assert len(page) == 5
    for message in page:
        first_row = rows(message)[0]
        assert [b["text"] for b in first_row] == ["👍", "👎"], "👍/👎 first and alone"
        opener = next(b for b in message.buttons if "url" in b)
        assert opener["text"] == "▶ Open"
        assert opener["url"] == f"https://www.bilibili.com/video/{pick_bvid(message)}"
        assert "⋯" in texts(message)
        assert not data_starting(message, "wl:"), "watch later sits behind ⋯"
        assert all(len(d.encode()) <= 64 for d in message.callback_data)
    assert data_starting(page[-1], "more:") == ["more:7101"], "the last pick offers the next page"
    assert not any(data_starting(m, "more:") for m in page[:-1])


async def test_unfold_fold_and_a_like_keeps_the_other_buttons(world):
    tg, bili, svc = world
    alice = tg.user(7102, language_code="en")
    uid = linked(svc, bili, 7102, MID)
    page = await recommend(tg, alice)
    pick, last = page[0], page[-1]
    shown_id = pick.callback_data[0].split(":")[1]
    video = catalogue.get_videos(svc.db, [pick_bvid(pick)])[pick_bvid(pick)]
    tags = catalogue.video_tags(video)

    _, unfolded = await tap_and_see(
        tg, alice, pick, f"pk:{shown_id}:open", lambda m: f"wl:{shown_id}" in m.callback_data
    )
    labels = texts(unfolded)
    assert [b["text"] for b in rows(unfolded)[0]] == ["👍", "👎"]
    assert "⏰ later" in labels and "🔍 more like this" in labels and "▴ fold" in labels and "▶ Open" in labels
    assert f"🚫 {video.owner_name[:23]}" in " ".join(labels), "not this uploader, by name"
    assert data_starting(unfolded, "bu:") == [f"bu:{shown_id}"]
    assert data_starting(unfolded, "sim:") == [f"sim:{shown_id}"]
    assert data_starting(unfolded, "bt:") == [f"bt:{shown_id}:{i}" for i in range(min(3, len(tags)))]
    assert all(len(d.encode()) <= 64 for d in unfolded.callback_data)

    # 👍 on the unfolded card: the check mark moves, every other button stays.
    _, liked = await tap_and_see(tg, alice, unfolded, f"fb:{shown_id}:+1", lambda m: "✓" in m.buttons[0]["text"])
    assert texts(liked)[2:] == labels[2:]
    assert behaviour.has_kind(svc.db, uid, pick_bvid(pick), behaviour.LATER) is False

    # Folded back: the like is still shown, the menu is gone.
    _, folded = await tap_and_see(tg, alice, liked, f"pk:{shown_id}:fold", lambda m: not data_starting(m, "wl:"))
    assert texts(folded) == ["👍 ✓", "👎", "▶ Open", "⋯"]

    # 👎 on the page's last pick keeps its "More ▸".
    last_id = last.callback_data[0].split(":")[1]
    _, disliked = await tap_and_see(tg, alice, last, f"fb:{last_id}:-1", lambda m: "✓" in m.buttons[1]["text"])
    assert data_starting(disliked, "more:") == ["more:7102"]
    assert texts(disliked)[-1] == "More ▸"


async def test_more_gives_the_next_page_under_the_recommend_cooldown(world):
    tg, bili, svc = world
    svc.settings.telegram.recommend_burst = 2  # /recommend and one More ▸; the next must wait
    svc.settings.telegram.recommend_cooldown_s = 3600
    alice = tg.user(7103, language_code="en")
    linked(svc, bili, 7103, MID)
    first = await recommend(tg, alice)
    seen = {m.message_id for m in pick_messages(tg, alice)}

    mark = tg.mark()
    await tap(tg, alice, first[-1], "more:7103")
    await tg.wait_for(
        lambda m: len([p for p in pick_messages(tg, alice) if p.message_id not in seen]) >= 5,
        chat=alice,
        since=mark,
        timeout=30,
    )
    second = [p for p in pick_messages(tg, alice) if p.message_id not in seen]
    assert len(second) == 5
    assert not {pick_bvid(m) for m in second} & {pick_bvid(m) for m in first}, "the next page, not the same"
    assert not data_starting(current(tg, first[-1]), "more:"), "the button left the page it was on"
    assert data_starting(second[-1], "more:") == ["more:7103"]

    shown_before = len(pick_messages(tg, alice))
    answer = await tap(tg, alice, second[-1], "more:7103")
    assert "try again in" in answer["text"], "the cooldown answers, as /recommend's does"
    assert len(pick_messages(tg, alice)) == shown_before, "no page past the cooldown"
    assert data_starting(current(tg, second[-1]), "more:") == ["more:7103"], "still there for later"


async def test_another_users_buttons_change_nothing(world):
    tg, bili, svc = world
    alice, bob = tg.user(7104, language_code="en"), tg.user(7105, language_code="en")
    linked(svc, bili, 7104, MID)
    bob_uid = linked(svc, bili, 7105, BOB_MID)
    await tg.send_text(bob, "/help")
    await tg.wait_for(lambda m: "Commands" in m.content, chat=bob)
    page = await recommend(tg, alice)
    pick = page[-1]
    shown_id = pick.callback_data[0].split(":")[1]
    calls = bili.calls["/x/v2/history/toview/add"]
    for data in (f"pk:{shown_id}:open", f"wl:{shown_id}", "more:7104"):
        answer = await tap(tg, bob, pick, data, on_keyboard=False)  # a forwarded keyboard, tapped by Bob
        assert answer["text"] == t("en", "fb_stale"), data
    assert current(tg, pick).reply_markup == pick.reply_markup, "the keyboard is untouched"
    assert bili.calls["/x/v2/history/toview/add"] == calls and not bili.users[BOB_MID].toview
    assert not behaviour.has_kind(svc.db, bob_uid, pick_bvid(pick), behaviour.LATER)
    assert len(pick_messages(tg, bob)) == 0, "Bob's tap on Alice's More ▸ sends Bob nothing"


async def test_buttons_from_before_forget_are_stale(world):
    tg, bili, svc = world
    alice = tg.user(7106, language_code="en")
    linked(svc, bili, 7106, MID)
    page = await recommend(tg, alice)
    pick = page[-1]
    shown_id = pick.callback_data[0].split(":")[1]
    await forget_in_chat(tg, alice)
    for data in (f"pk:{shown_id}:open", f"wl:{shown_id}", "more:7106"):
        answer = await tap(tg, alice, pick, data, on_keyboard=False)
        assert answer["text"] == t("en", "fb_stale"), data
    assert users.get_user(svc.db, 7106) is None, "a stale tap creates no user"
    assert not bili.users[MID].toview


async def _unfolded_pick(tg, alice) -> tuple[SentMessage, str]:
    page = await recommend(tg, alice)
    pick = page[0]
    shown_id = pick.callback_data[0].split(":")[1]
    _, unfolded = await tap_and_see(
        tg, alice, pick, f"pk:{shown_id}:open", lambda m: f"wl:{shown_id}" in m.callback_data
    )
    return unfolded, shown_id


async def test_watch_later_saves_on_bilibili_and_becomes_a_label(world):
    tg, bili, svc = world
    alice = tg.user(7107, language_code="en")
    uid = linked(svc, bili, 7107, MID)
    pick, shown_id = await _unfolded_pick(tg, alice)
    bvid = pick_bvid(pick)

    answer, saved = await tap_and_see(tg, alice, pick, f"wl:{shown_id}", lambda m: "✓ saved" in texts(m))
    assert answer["text"] == t("en", "later_saved") and not answer.get("show_alert")
    assert list(bili.users[MID].toview) == [bvid], "on the user's bilibili watch later list"
    assert "⏰ later" not in texts(saved)
    assert behaviour.has_kind(svc.db, uid, bvid, behaviour.LATER)
    assert any(e.bvid == bvid and e.kind == "later" for e in user_events(svc.db, uid)), "reaches the labels"
    assert users.get_user(svc.db, 7107).train_due_at is not None, "a retrain is due"

    calls = bili.calls["/x/v2/history/toview/add"]
    answer = await tap(tg, alice, saved, f"wl:{shown_id}")
    assert answer["text"] == t("en", "later_already")
    assert bili.calls["/x/v2/history/toview/add"] == calls, "no second call"

    # Folded and unfolded again: still "✓ saved" (kept in storage, not only on the keyboard).
    _, folded = await tap_and_see(tg, alice, saved, f"pk:{shown_id}:fold", lambda m: not data_starting(m, "wl:"))
    _, again = await tap_and_see(tg, alice, folded, f"pk:{shown_id}:open", lambda m: bool(data_starting(m, "wl:")))
    assert "✓ saved" in texts(again)


@pytest.mark.parametrize("failure", ["full", "deleted", "dead_login"])
async def test_watch_later_failures_get_a_clear_answer(world, failure):
    tg, bili, svc = world
    alice = tg.user(7108, language_code="en")
    uid = linked(svc, bili, 7108, MID)
    pick, shown_id = await _unfolded_pick(tg, alice)
    bvid = pick_bvid(pick)
    if failure == "full":
        bili.toview_cap = 0  # whatever the count, bilibili says 90001
        expected = "later_full"
    elif failure == "deleted":
        bili.set_unavailable(bvid)
        expected = "later_gone"
    else:
        for session in bili.sessions.values():
            session.alive = False  # logged out everywhere: -101, and the refresh fails too
        expected = "later_dead"

    answer = await tap(tg, alice, pick, f"wl:{shown_id}")
    assert answer["text"] == t("en", expected)
    assert answer.get("show_alert") is True, "a failure is a dialog, not a passing toast"
    assert bili.calls["/x/v2/history/toview/add"] >= 1
    assert "⏰ later" in texts(current(tg, pick)), "nothing claims it was saved"
    assert not behaviour.has_kind(svc.db, uid, bvid, behaviour.LATER)
    assert not bili.users[MID].toview
    assert users.get_user(svc.db, 7108).session_dead is (failure == "dead_login")


async def test_the_telegram_double_refuses_a_javascript_url_button(tg):
    tg.user(7109)
    tg.known_chat(7109)  # the user has started the bot
    async with Bot("123456789:AAFakeTokenForTheDoubleOnly_abcdefghij", base_url=tg.base_url) as bot:
        with pytest.raises(BadRequest, match="(?i)unsupported url protocol"):
            await bot.send_message(
                7109,
                "x",
                reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("evil", url="javascript:alert(1)")]]),
            )
        assert tg.errors[-1]["error_code"] == 400
        assert (
            tg.errors[-1]["description"]
            == "Bad Request: inline keyboard button URL 'javascript:alert(1)' is invalid: Unsupported URL protocol"
        )
        for url in ("https://www.bilibili.com/video/BV1xx411c7mD", "http://example.org", "tg://resolve?domain=x"):
            await bot.send_message(
                7109, "ok", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("ok", url=url)]])
            )


EN_META = re.compile(
    r"\n(\d+:\d{2}(?::\d{2})?) · ([\d.]+[KMB]?) views · (?:\d+ (?:hours?|days?|months?|years?) ago|just now)\n"
)
ZH_META = re.compile(r"\n(\d+:\d{2}(?::\d{2})?) · ([\d.]+[万亿]?)播放 · (?:\d+(?:小时|天|个月|年)前|刚刚)\n")


@pytest.mark.parametrize("language", ["en", "zh"])
async def test_the_caption_says_duration_views_and_age(world, language):
    tg, bili, svc = world
    telegram_id = 7110 if language == "en" else 7111
    user = tg.user(telegram_id, language_code=language)
    linked(svc, bili, telegram_id, MID, language=language)
    for message in await recommend(tg, user):
        video = catalogue.get_videos(svc.db, [pick_bvid(message)])[pick_bvid(message)]
        match = (EN_META if language == "en" else ZH_META).search(message.content)
        assert match, message.content
        assert match.group(1) == duration_text(video.duration)
        assert match.group(2) == count_text(video.view, language)
        assert re.search(r"\d{2,3}/100", message.content) and "💡" in message.content, "the shape stays"


def test_view_counts_and_durations_read_as_people_write_them():
    assert [count_text(n, "en") for n in (532, 1_234, 12_345, 999_960, 1_234_567, 2_000_000_000)] == [
        "532",
        "1.2K",
        "12K",
        "1M",
        "1.2M",
        "2B",
    ]
    assert [count_text(n, "zh") for n in (5_320, 12_345, 1_234_567, 99_999_999, 340_000_000)] == [
        "5320",
        "1.2万",
        "123万",
        "1亿",
        "3.4亿",
    ]
    assert [duration_text(s) for s in (5, 754, 3_723)] == ["0:05", "12:34", "1:02:03"]


async def test_what_nn_100_means_is_told_once(world):
    tg, bili, svc = world
    alice = tg.user(7112, language_code="en")
    linked(svc, bili, 7112, MID)
    note = "is how much I expect you to like"

    def notes() -> int:
        return sum(note in m.content for m in tg.sent_to(alice))

    page = await recommend(tg, alice)
    await tg.wait_for(lambda m: note in m.content, chat=alice)
    explained = next(m for m in tg.sent_to(alice) if note in m.content)
    assert explained.message_id > page[-1].message_id, "under the first page"
    await recommend(tg, alice)
    await tg.send_text(alice, "/help")
    await tg.wait_for(lambda m: "Commands" in m.content and "NN/100" in m.content, chat=alice)
    assert notes() == 1, "told once"

    # Someone who read /help first is not told again under their first page; in Chinese too.
    carol = tg.user(7113, language_code="zh")
    linked(svc, bili, 7113, BOB_MID, language="zh")
    await tg.send_text(carol, "/help")
    await tg.wait_for(lambda m: "NN/100" in m.content and "喜欢程度" in m.content, chat=carol)
    await recommend(tg, carol)
    assert not any("我预计你对这个视频" in m.content for m in tg.sent_to(carol))
    assert users.get_user(svc.db, 7113).rating_explained


async def test_the_client_types_every_watch_later_answer(bili_client, bilibili_double):
    """toview/add over real HTTP to the double: each documented code, and every fault, ends typed."""
    from dataclasses import replace

    from bilibili import ApiError, BilibiliError, Credentials, NotLoggedIn, VideoUnavailable, WatchLaterFull

    bvid, other = list(bilibili_double.videos)[:2]
    bilibili_double.add_user(MID, "client")
    creds = Credentials.from_dict(bilibili_double.login(MID))
    await bili_client.add_to_watch_later(creds, bvid)
    await bili_client.add_to_watch_later(creds, bvid)  # already listed: fine, listed once
    assert list(bilibili_double.users[MID].toview) == [bvid]
    request = bilibili_double.last_request("/x/v2/history/toview/add")
    assert request.method == "POST" and request.cookies["SESSDATA"] == creds.sessdata

    bilibili_double.toview_cap = 1
    with pytest.raises(WatchLaterFull) as full:
        await bili_client.add_to_watch_later(creds, other)
    assert full.value.code == 90001
    bilibili_double.toview_cap = 100
    bilibili_double.set_unavailable(other)
    with pytest.raises(VideoUnavailable) as gone:
        await bili_client.add_to_watch_later(creds, other)
    assert gone.value.code == 90003
    with pytest.raises(ApiError) as csrf:
        await bili_client.add_to_watch_later(replace(creds, bili_jct="0" * 32), bvid)
    assert csrf.value.code == -111
    bilibili_double.sessions[creds.sessdata].alive = False
    with pytest.raises(NotLoggedIn):
        await bili_client.add_to_watch_later(creds, bvid)

    live = Credentials.from_dict(bilibili_double.login(MID))
    for fault in ("500", "412_json", "malformed", "-352"):
        bilibili_double.inject("/x/v2/history/toview/add", fault, times=bili_client.settings.retries + 1)
        with pytest.raises(BilibiliError):
            await bili_client.add_to_watch_later(live, list(bilibili_double.videos)[2])
        bilibili_double.clear_faults()


async def test_the_unfolded_block_buttons_reach_the_block_rules(world):
    tg, bili, svc = world
    alice = tg.user(7114, language_code="en")
    linked(svc, bili, 7114, MID)
    pick, shown_id = await _unfolded_pick(tg, alice)
    answer = await tap(tg, alice, pick, f"bu:{shown_id}")
    assert "No more videos by" in answer["text"], "🚫 <uploader> is the blocks handler's, not 'stale'"
