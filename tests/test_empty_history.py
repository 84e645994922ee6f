"""A bilibili account with no history at all (issue 16 §13), in the running bot against both doubles.

A first sync with nothing in it trains no model, and the user was left on "Training your first
model…" with /recommend saying "still being trained" for ever. Now they are told what happens, in
their language, /recommend says why the picks are popular ones, and a later sync that finds
something asks for a training.
"""

from __future__ import annotations

import pytest

from jobs.schedule import after_sync
from jobs.sync import sync_user
from storage import users
from tests.botenv import is_pick, qr_key_after_login, running_bot

MID, CHAT = 3701, 5701
NO_HISTORY_TOLD = {"en": "has no watch history", "zh": "还没有观看历史"}
STILL_TRAINING = {"en": "still being trained", "zh": "还在训练中"}


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_a_user_with_no_bilibili_history_is_told_so_and_not_left_training_for_ever(
    tmp_path, tg, bilibili_double, lang
):
    double = bilibili_double
    double.add_user(MID, "newcomer")  # no history, favourites, coins or likes
    bob = tg.user(CHAT, first_name="Bob", language_code=lang)
    async with running_bot(tmp_path / "bot", tg, double, tick_seconds=3600) as (_app, svc):
        key = await qr_key_after_login(tg, double, bob)
        mark = tg.mark()
        double.scan(key)
        double.confirm(key, MID)

        await tg.wait_for(lambda m: NO_HISTORY_TOLD[lang] in m.content, chat=bob, since=mark, timeout=60)
        user = users.get_user(svc.db, CHAT)
        assert user.next_sync_at is not None and user.next_sync_at > svc.now()  # it looks again later

        asked = tg.mark()
        await tg.send_text(bob, "/recommend")
        await tg.wait_for(is_pick, chat=bob, since=asked, timeout=30)  # popular picks meanwhile
        replies = [m.content for m in tg.sent_to(bob) if m.message_id > asked]
        assert any(NO_HISTORY_TOLD[lang] in text for text in replies)
        assert not any(STILL_TRAINING[lang] in text for text in replies)

        # The next sync finds a first watch: a training is asked for, and /recommend stops saying so.
        double.add_watch(MID, double.popular_order[0])
        report = await sync_user(svc, user.id)
        after_sync(svc, user.id, report)
        assert report.ok and report.new_items == 1
        assert users.get_user(svc.db, CHAT).train_due_at is not None
