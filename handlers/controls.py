"""/language (zh or en, over Telegram's language_code), /status ("is it working?") and /sync ("sync me now")."""

from __future__ import annotations

import html
import logging
import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from telegram import BotCommandScopeChat, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from delivery import callbacks
from delivery.i18n import LANGUAGES, t
from delivery.menu import MENU_KEY, command_menu
from delivery.onboarding import BotOnboardingView
from delivery.outcome import best_effort
from handlers.common import current_user, is_private, services_of
from jobs.sync_now import sync_now
from services import QUEUE_KEY, Services
from storage import behaviour, picks, users
from storage.models import User

log = logging.getLogger(__name__)


async def language(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not is_private(update):
        return
    svc, user = services_of(context), current_user(update, context)
    if not context.args:
        owner = user.telegram_id
        keyboard = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        t(user.language, f"btn_lang_{lang}"), callback_data=callbacks.language(lang, owner)
                    )
                    for lang in ("zh", "en")
                ]
            ]
        )
        await update.effective_message.reply_text(t(user.language, "language_choose"), reply_markup=keyboard)
        return
    choice = context.args[0].strip().lower()
    if choice not in LANGUAGES or len(context.args) > 1:
        arg = html.escape(" ".join(context.args)[:32])
        await update.effective_message.reply_text(t(user.language, "language_unknown", arg=arg))
        return
    user = users.choose_language(svc.db, user.id, choice)
    await _follow_choice(context, user)
    await update.effective_message.reply_text(t(choice, "language_set"))


async def language_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    parsed = callbacks.parse_language(query.data)
    if parsed is None or not is_private(update):  # not a chooser we sent: nothing changes
        user = users.get_user(services_of(context).db, update.effective_user.id)
        await best_effort(query.answer(t(user.language if user else "en", "language_stale")), "tap answer")
        return
    choice, owner = parsed
    if owner != update.effective_user.id:  # someone else's chooser (forwarded, or forged data)
        user = users.get_user(services_of(context).db, update.effective_user.id)
        await best_effort(query.answer(t(user.language if user else "en", "language_not_yours")), "tap answer")
        return
    svc, user = services_of(context), current_user(update, context)
    user = users.choose_language(svc.db, user.id, choice)
    await best_effort(query.answer(), "tap answer")
    await _follow_choice(context, user)
    try:
        await query.edit_message_text(t(choice, "language_set"))
    except BadRequest as exc:  # tapped twice: "not modified"
        if "not modified" not in exc.message:
            log.info("language edit refused: %s", exc.message)
    except TelegramError as exc:
        log.info("language edit skipped: %s", exc)


async def _follow_choice(context: ContextTypes.DEFAULT_TYPE, user: User) -> None:
    """This chat's command menu in the chosen language (the all-chats menu follows language_code)."""
    names = context.application.bot_data.get(MENU_KEY, ())
    menu = command_menu(user.language, names)
    await best_effort(context.bot.set_my_commands(menu, scope=BotCommandScopeChat(user.chat_id)), "chat menu")


async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """One message from what the database and this process hold: no bilibili call."""
    if not is_private(update):
        return
    svc, user = services_of(context), current_user(update, context)
    pause_left_s = await svc.bili.throttle.any_pause_left_s()
    await update.effective_message.reply_text(status_text(svc, user, pause_left_s))


def status_text(svc: Services, user: User, bilibili_pause_left_s: float) -> str:
    lang, now = user.language, svc.now()
    if user.credentials is None:
        return t(lang, "status_unlinked")
    if user.session_dead:
        return t(lang, "session_dead")
    counts = behaviour.behaviour_counts(svc.db, user.id)
    model = picks.latest_model_version(svc.db, user.id)
    trained = (
        t(lang, "status_model", version=model.version, at=_local(user, model.created_at), samples=model.n_samples)
        if model
        else t(lang, "status_model_none")
    )
    snooze_end = user.digest_paused_until if (user.digest_paused_until or 0) > now else None
    # A snoozed user's next digest is the first slot at or after the snooze's end.
    digest_at = _local(user, next_digest_at(user, snooze_end - 1 if snooze_end else now))
    return t(
        lang,
        "status",
        uname=html.escape(user.bili_uname or str(user.bili_mid or "")),
        sync=_sync_line(svc, user),
        next_sync=_local(user, user.next_sync_at) if user.next_sync_at else "—",
        **{kind: counts.get(kind, 0) for kind in ("watch", "favorite", "coin", "like")},
        model=trained,
        labels=picks.feedback_count(svc.db, user.id),
        digest=(
            t(lang, "status_digest_paused")
            if user.digest_paused
            else t(lang, "status_digest_at", at=digest_at, tz=user.timezone)
            + (" · " + t(lang, "status_digest_snoozed", until=_local(user, snooze_end)) if snooze_end else "")
        ),
        bili=(
            t(lang, "status_bili_limited", minutes=max(1, math.ceil(bilibili_pause_left_s / 60)))
            if bilibili_pause_left_s > 0
            else t(lang, "status_bili_ok")
        ),
    )


def _sync_line(svc: Services, user: User) -> str:
    lang = user.language
    if svc.syncing(user.id):
        return t(lang, "status_sync_running")
    state = behaviour.sync_state(svc.db, user.id)
    if state.failures:
        return t(lang, "status_sync_failed", at=_local(user, state.last_failed_at), failures=state.failures)
    if state.last_stored_at is None:
        return t(lang, "status_sync_never")
    return t(lang, "status_sync_ok", at=_local(user, state.last_stored_at))


def next_digest_at(user: User, now: int) -> int:
    """The next time of day `digest_time` comes round in the user's zone, after `now`."""
    tz = ZoneInfo(user.timezone)
    local_now = datetime.fromtimestamp(now, tz)
    hour, minute = (int(x) for x in user.digest_time.split(":"))
    slot = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if slot.timestamp() <= now:
        slot = (local_now + timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return int(slot.timestamp())


def _local(user: User, at: int) -> str:
    return datetime.fromtimestamp(at, ZoneInfo(user.timezone)).strftime("%Y-%m-%d %H:%M")


async def sync(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/sync: the user's sync now, once per SYNC_COOLDOWN; one status message edited as it runs
    (in distributed mode a worker runs it and edits the message the front sent)."""
    if not is_private(update):
        return
    svc, user = services_of(context), current_user(update, context)
    reply = update.effective_message.reply_text
    if user.credentials is None:
        await reply(t(user.language, "syncnow_unlinked"))
        return
    if user.session_dead:
        await reply(t(user.language, "session_dead"))
        return
    if svc.syncing(user.id):  # this process syncs them right now (a first sync, a scheduled one)
        await reply(t(user.language, "syncnow_busy"))
        return
    if (pause_left_s := await svc.bili.throttle.any_pause_left_s()) > 0:  # not counted against the limit
        await reply(t(user.language, "syncnow_limited", minutes=max(1, math.ceil(pause_left_s / 60))))
        return
    cooldown_s = svc.settings.telegram.sync_cooldown_s
    if (last := users.claim_sync_request(svc.db, user.id, svc.now(), cooldown_s)) is not None:
        again_at = last + int(cooldown_s)
        minutes = max(1, math.ceil((again_at - svc.now()) / 60))
        await reply(
            t(user.language, "syncnow_cooldown", last=_local(user, last), at=_local(user, again_at), minutes=minutes)
        )
        return
    view = BotOnboardingView(context.bot, user.chat_id, user.language)
    if not svc.settings.work.distributed:
        svc.spawn(sync_now(svc, user.id, view), name=f"sync-now:{user.id}")
        return
    from jobs.queue import defer_sync_now

    await view.status("syncnow_running")
    try:
        if not await defer_sync_now(context.application.bot_data[QUEUE_KEY], user.id, view.message_id):
            await view.status("syncnow_busy")  # an earlier /sync still waits for a worker
    except Exception as exc:  # noqa: BLE001 - the user is due: the scheduled sync runs it anyway
        log.warning("/sync of user %d not deferred: %s", user.id, type(exc).__name__)
