"""/language and /status (issue 19 items 3 and 4), tried as a user would: the real Application
against the Telegram and bilibili doubles."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from delivery.i18n import t
from jobs.sync import sync_user
from jobs.training import train_users_now
from storage import behaviour, picks, users
from tests.botenv import running_bot
from tests.harness import link_user
from tests.test_bot_risk_pause import enter_risk_pause


@pytest.fixture
async def world(tmp_path, tg, bilibili_double):
    async with running_bot(tmp_path, tg, bilibili_double, tick_seconds=3600) as (app, svc):
        yield tg, bilibili_double, svc


async def ask(tg, user: dict, text: str, expect: str, timeout: float = 15):
    """The user sends `text`; the bot's first message (or edit) after it containing `expect`."""
    mark = tg.mark()
    await tg.send_text(user, text)
    return await tg.wait_for(lambda m: expect in m.content, chat=user, since=mark, timeout=timeout)


def chat_menu(tg, chat_id: int) -> dict[str, str]:
    """The command menu set for one private chat: command → description."""
    return {c["command"]: c["description"] for c in tg.my_commands({"type": "chat", "chat_id": chat_id})}


async def test_language_chosen_with_a_button_holds_against_an_english_client(world):
    tg, bili, svc = world
    alice = tg.user(31001, language_code="en")
    chooser = await ask(tg, alice, "/language", "Choose the language")
    assert [b["text"] for b in chooser.buttons] == ["中文", "English"]
    assert all(len(d.encode()) <= 64 for d in chooser.callback_data)

    mark = tg.mark()
    answer = await tg.wait_answer(await tg.tap(alice, chooser, "lang:zh:31001"))
    assert answer.get("text") in (None, "")
    await tg.wait_for(
        lambda m: m.message_id == chooser.message_id and "语言已设为中文" in m.content, chat=alice, since=mark
    )
    row = users.get_user(svc.db, 31001)
    assert (row.language, row.language_chosen) == ("zh", "zh")

    menu = chat_menu(tg, 31001)
    assert menu["recommend"] == t("zh", "cmd_recommend"), "this chat's menu speaks Chinese"
    assert {"status", "language"} <= set(menu)

    # The next update still comes from a Telegram client set to English: the choice holds.
    await ask(tg, alice, "/help", "/status —— 是否正常")
    await ask(tg, alice, "/settings", "时区")
    assert users.get_user(svc.db, 31001).language == "zh"


async def test_language_argument_sets_it_directly_and_a_bad_one_is_explained(world):
    tg, bili, svc = world
    bob = tg.user(31002, language_code="zh-hans")
    await ask(tg, bob, "/start", "BiliPick")
    assert users.get_user(svc.db, 31002).language == "zh"

    await ask(tg, bob, "/language fr", "未知语言“fr”")
    await ask(tg, bob, "/language <b>x</b>", "未知语言“<b>x</b>”")  # shown as typed, not as markup
    assert users.get_user(svc.db, 31002).language_chosen is None

    await ask(tg, bob, "/language EN", "Language set to English.")
    assert chat_menu(tg, 31002)["language"] == "中文 / English"
    assert chat_menu(tg, 31002)["recommend"] == "Picks for you now"
    await ask(tg, bob, "/help", "/status — is it working?")


async def test_someone_elses_or_a_forged_language_button_changes_nothing(world):
    tg, bili, svc = world
    alice = tg.user(31003, language_code="en")
    mallory = tg.user(31004, language_code="en")
    await ask(tg, mallory, "/start", "BiliPick")
    chooser = await ask(tg, alice, "/language", "Choose the language")

    answer = await tg.wait_answer(await tg.tap(mallory, chooser, "lang:zh:31003"))  # a forwarded chooser
    assert "someone else" in answer["text"]
    for forged in ("lang:fr:31003", "lang:zh:", "lang:zh:31003:x", "lang:" + "9" * 60):
        answer = await tg.wait_answer(await tg.tap(alice, chooser, forged, check_button=False))
        assert "no longer valid" in answer["text"], forged
    for telegram_id in (31003, 31004):
        assert users.get_user(svc.db, telegram_id).language_chosen is None
    assert chat_menu(tg, 31003) == {} and chat_menu(tg, 31004) == {}
    assert chooser.content.startswith("Choose the language"), "the chooser is left as it was"


async def test_logout_keeps_the_chosen_language_and_forget_deletes_it(world):
    tg, bili, svc = world
    bili.add_generated_user(7301, seed=3, n_history=20)
    link_user(svc, bili, 31005, 7301)
    carol = tg.user(31005, language_code="en")
    await ask(tg, carol, "/language zh", "语言已设为中文")
    await ask(tg, carol, "/logout", t("zh", "logout_done")[:12])
    assert users.get_user(svc.db, 31005).language_chosen == "zh"

    mark = tg.mark()
    await tg.send_text(carol, "/forget")
    confirm = await tg.wait_for(lambda m: bool(m.callback_data), chat=carol, since=mark)
    await tg.wait_answer(await tg.tap(carol, confirm, confirm.callback_data[0]))
    await tg.wait_for(lambda m: m.message_id == confirm.message_id and not m.callback_data, chat=carol, since=mark)
    assert users.get_user(svc.db, 31005) is None
    await ask(tg, carol, "/start", "learns your bilibili taste")  # a new row follows the client again
    assert users.get_user(svc.db, 31005).language_chosen is None


async def test_status_of_a_linked_user_shows_the_model_the_labels_and_the_next_digest(world):
    tg, bili, svc = world
    bili.add_generated_user(7302, seed=4, n_history=60, uname="dora")
    uid = link_user(svc, bili, 31006, 7302, timezone="Europe/Berlin", digest_time="07:30")
    assert (await sync_user(svc, uid)).ok
    await train_users_now(svc, [uid])
    model = picks.latest_model_version(svc.db, uid)
    assert model is not None
    picks.set_feedback(svc.db, uid, "BV1xx411c7mD", 1, svc.now())
    dora = tg.user(31006, language_code="en")

    calls = sum(bili.calls.values())
    status = await ask(tg, dora, "/status", "Status")
    text = status.content
    assert f"Model: v{model.version}, trained" in text
    assert "Your 👍/👎 labels: 1" in text
    counts = behaviour.behaviour_counts(svc.db, uid)
    assert f"Videos known: {counts['watch']} watched" in text
    assert "Last sync: " in text and "✅" in text.split("Last sync: ")[1].split("\n")[0]
    berlin = datetime.now(ZoneInfo("Europe/Berlin"))
    days = {berlin.date(), (berlin + timedelta(days=1)).date()}
    assert any(f"Next digest: {d.isoformat()} 07:30 (Europe/Berlin)" in text for d in days), text
    assert "not limiting the bot" in text
    assert sum(bili.calls.values()) == calls, "/status asks bilibili nothing"

    behaviour.count_sync_failure(svc.db, uid, svc.now())
    behaviour.count_sync_failure(svc.db, uid, svc.now())
    users.update_user(svc.db, uid, digest_paused=True)
    text = (await ask(tg, dora, "/status", "Status")).content
    assert "(2 in a row)" in text and "Next digest: paused" in text

    await ask(tg, dora, "/language zh", "语言已设为中文")
    text = (await ask(tg, dora, "/status", "状态")).content
    assert f"模型：v{model.version}" in text and "连续 2 次" in text


async def test_status_of_an_unlinked_user_suggests_login(world):
    tg, bili, svc = world
    erin = tg.user(31007, language_code="en")
    status = await ask(tg, erin, "/status", "Status")
    assert "No bilibili account is linked" in status.content and "/login" in status.content
    frank = tg.user(31008, language_code="zh")
    assert "/login" in (await ask(tg, frank, "/status", "尚未绑定")).content


async def test_status_during_a_risk_pause_says_bilibili_is_limiting(world):
    tg, bili, svc = world
    bili.add_generated_user(7303, seed=5, n_history=10)
    link_user(svc, bili, 31009, 7303)
    await enter_risk_pause(svc, bili)
    gina = tg.user(31009, language_code="en")
    status = await ask(tg, gina, "/status", "Status")
    assert "bilibili is limiting the bot right now; syncs wait about 2 min" in status.content
