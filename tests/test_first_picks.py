"""First personal picks while the history is still syncing (issue 13), in the running bot against
both doubles: the picks come from a trained model, the rest of the history follows in the
background, and the stored behaviour ends up as a one-shot full sync of the same account."""

from __future__ import annotations

from jobs.pull import FIRST_HISTORY_PAGES
from jobs.sync import sync_user
from storage import behaviour, users
from tests.botenv import all_synced, first_picks_ready, is_pick, last_message_id, qr_key_after_login, running_bot
from tests.doubles.bilibili import HISTORY
from tests.harness import link_user, make_services

MID, CHAT = 3601, 5601
STATUS_WORDS = ("Syncing your bilibili", "Synced your newest", "Synced so far", "All synced")


def stored(svc, user_id: int) -> set[tuple]:
    """Every row as bilibili defines it (a like's time is when the bot first saw it: left out)."""
    return {
        (b.bvid, b.kind, b.at if b.kind != "like" else 0, b.progress, b.coins)
        for b in behaviour.user_behaviours(svc.db, user_id)
    }


async def test_first_picks_come_from_a_model_before_the_history_is_synced_and_nothing_is_lost(
    tmp_path, tg, bilibili_double
):
    double = bilibili_double
    total = 30 * (FIRST_HISTORY_PAGES + 5)
    double.add_long_history_user(MID, "heavy", watches=total, seed=41)
    alice = tg.user(CHAT, first_name="Alice", language_code="en")
    async with running_bot(tmp_path / "bot", tg, double, tick_seconds=3600) as (_app, svc):
        svc.settings.bilibili.timeout_s = 60  # the held history page below must not time out
        key = await qr_key_after_login(tg, double, alice)
        double.hold(HISTORY, after=FIRST_HISTORY_PAGES)  # the older history waits until released
        mark, before = tg.mark(), last_message_id(tg, alice)
        double.scan(key)
        double.confirm(key, MID)

        await first_picks_ready(tg, alice, mark, timeout=60)
        user = users.get_user(svc.db, CHAT)
        assert svc.models.load(str(user.id)) is not None, "a personal model is trained"
        watched = behaviour.behaviour_counts(svc.db, user.id)["watch"]
        assert watched == 30 * FIRST_HISTORY_PAGES < total, "the history is still syncing"
        asked = tg.mark()
        await tg.send_text(alice, "/recommend")
        await tg.wait_for(is_pick, chat=alice, since=asked, timeout=30)
        assert not any("still being trained" in m.content for m in tg.sent_to(alice)), "not the popular fallback"

        double.release(HISTORY)
        done = await all_synced(tg, alice, mark, timeout=120)
        assert "You lean toward" in done.content
        status = {
            m.message_id
            for m in tg.sent_to(alice)
            if m.message_id > before and any(w in m.content for w in STATUS_WORDS)
        }
        assert status == {done.message_id}, "one status message, edited in place"
        after_onboarding = stored(svc, user.id)

    oneshot = make_services(tmp_path / "oneshot", double)
    try:
        other = link_user(oneshot, double, 1, MID)
        assert (await sync_user(oneshot, other)).ok
        assert after_onboarding == stored(oneshot, other), "the same rows as a one-shot full sync"
        assert len(after_onboarding) > total
    finally:
        await oneshot.close()
