"""One chatty user must not slow anyone else down (issue 16 §7, §8, §11): per-chat Telegram pace,
a cap on each user's updates, cooldowns that /forget does not reset, and a waiting person's covers and
picks before a digest's. The real Application against the Telegram and bilibili doubles."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobs.digest import DigestRunner
from jobs.sync import refresh_candidates, sync_user
from jobs.training import train_users_now
from services import CoverCache
from storage import users
from tests.botenv import eventually, forget_in_chat, is_pick, pick_messages, running_bot
from tests.doubles.bilibili import IMAGES
from tests.harness import link_user

HELP = "/recommend —"  # a line of the /help reply
SLOW_DOWN = "slow down"


@pytest.fixture
async def world(tmp_path, tg, bilibili_double):
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=3600) as (app, svc):
        await refresh_candidates(svc, force=True)
        yield app, tg, bilibili_double, svc


async def started(tg, telegram_id: int) -> dict:
    user = tg.user(telegram_id, first_name="U", language_code="en")
    await tg.send_text(user, "/start")
    await tg.wait_for(lambda m: "BiliPick" in m.content, chat=user)
    return user


async def test_a_user_flooding_help_does_not_delay_another_users_reply(world):
    app, tg, bili, svc = world
    svc.settings.telegram.updates_burst = 3
    # Telegram: a chat sent more than one message a second waits; its waits run long.
    tg.flood_limits, tg.chat_retry_after = (1000, 1), 5
    alice, bob = await started(tg, 13001), await started(tg, 13002)
    await asyncio.sleep(1.1)  # the /start replies are a second old: each chat may get a message now
    mark = tg.mark()
    for _ in range(40):
        await tg.send_text(alice, "/help")
    await tg.send_text(bob, "/help")

    bobs = await tg.wait_for(lambda m: HELP in m.content, chat=bob, since=mark, timeout=60)
    await eventually(
        lambda: any(SLOW_DOWN in m.content for m in tg.sent_to(alice) if m.seq > mark), what="alice told to slow down"
    )
    await eventually(lambda: len([m for m in tg.sent_to(alice) if m.seq > mark]) >= 4, what="alice's replies")
    await asyncio.sleep(1.5)  # anything more for alice would go out by now
    to_alice = [m for m in tg.sent_to(alice) if m.seq > mark]
    assert [HELP in m.content for m in to_alice].count(True) == 3, "her burst is answered, the rest dropped"
    assert [SLOW_DOWN in m.content for m in to_alice].count(True) == 1, "told once"
    assert [m for m in tg.sent_to(bob) if m.seq > mark] == [bobs], "bob got his one answer"
    assert bobs.time < to_alice[1].time, "bob's reply did not queue behind alice's"
    assert tg.max_rate_per_chat() <= 1, "no chat went faster than Telegram allows"
    assert not any(at <= bobs.time < at + pause for at, _, pause in tg.retry_afters), "no 429 held bob"


async def test_forget_resets_no_limit(world):
    app, tg, bili, svc = world
    svc.settings.telegram.recommend_burst = 1
    alice = await started(tg, 13003)
    await tg.send_text(alice, "/recommend")
    await eventually(lambda: len(pick_messages(tg, alice)) >= 5, what="the first page")
    first = pick_messages(tg, alice)[0]
    await tg.wait_answer(await tg.tap(alice, first, first.callback_data[0]))
    await forget_in_chat(tg, alice)
    mark = tg.mark()
    await tg.send_text(alice, "/recommend")
    await tg.wait_for(lambda m: "try /recommend again in" in m.content, chat=alice, since=mark)
    await asyncio.sleep(1.0)
    assert not [m for m in pick_messages(tg, alice) if m.seq > mark], "no second page within the cooldown"


async def test_profile_has_a_cooldown(world):
    app, tg, bili, svc = world
    bili.add_generated_user(6301, seed=4, n_history=60, uname="drawn")
    uid = link_user(svc, bili, 13004, 6301)
    assert (await sync_user(svc, uid)).ok
    await train_users_now(svc, [uid])
    alice = await started(tg, 13004)
    mark = tg.mark()
    await tg.send_text(alice, "/profile")
    await tg.wait_for(lambda m: m.is_photo, chat=alice, since=mark, timeout=20)
    await tg.send_text(alice, "/profile")
    await tg.send_text(alice, "/profile")
    await tg.wait_for(lambda m: "try /profile again in" in m.content, chat=alice, since=mark)
    await asyncio.sleep(1.0)
    assert len([m for m in tg.sent_to(alice) if m.seq > mark and m.is_photo]) == 1, "one chart"
    assert len([m for m in tg.sent_to(alice) if "try /profile again" in m.content]) == 1, "told once"


def due_now(svc, telegram_id: int) -> None:
    """A user who joined yesterday and whose digest time was a minute ago."""
    tz = "Asia/Shanghai"
    local = datetime.fromtimestamp(svc.now(), ZoneInfo(tz)) - timedelta(minutes=1)
    users.ensure_user(
        svc.db, telegram_id, telegram_id, "en", now=svc.now() - 86400, timezone=tz, digest_time=local.strftime("%H:%M")
    )


async def test_a_recommend_during_a_digest_fan_out_goes_before_the_digests_remaining_picks(world):
    app, tg, bili, svc = world
    svc.bili.throttle.max_rps = 25  # bilibili's pace matters here: covers queue for it
    svc.covers = CoverCache(capacity=0)  # every pick's cover fetched, as when each is a different video
    readers = list(range(13100, 13140))
    for telegram_id in readers:
        tg.known_chat(telegram_id)
        due_now(svc, telegram_id)
    asker = await started(tg, 13005)
    digest = asyncio.create_task(DigestRunner(svc).run(app.bot))
    await eventually(lambda: any(is_pick(m) for c in readers for m in tg.sent_to(c)), what="the digest going out")
    await tg.send_text(asker, "/recommend")
    report = await asyncio.wait_for(digest, 120)
    assert bili.calls[IMAGES] >= 5 * (len(readers) + 1)
    assert report.sent_users == len(readers)
    await eventually(lambda: len(pick_messages(tg, asker)) >= 5, what="the asker's picks")

    asked_at = pick_messages(tg, asker)[0].time
    first_pick_of = {c: pick_messages(tg, c)[0].time for c in readers}
    later = [c for c, at in first_pick_of.items() if at > asked_at]
    assert len(later) > len(readers) // 2, (
        f"the asker's covers and picks went before the digest's: {len(later)} of {len(readers)} digests "
        "started after the asker's first pick"
    )
