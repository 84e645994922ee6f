"""/recommend and "More ▸": the next picks, one message each, with 👍/👎."""

from __future__ import annotations

import logging
import math

from telegram import Update
from telegram.constants import ChatAction
from telegram.error import Forbidden, TelegramError
from telegram.ext import ContextTypes

from bilibili import BilibiliError
from delivery.i18n import t
from delivery.outcome import best_effort
from delivery.send import deliver_picks
from handlers.common import current_user, is_private, services_of, user_lock
from handlers.cooldown import cooldowns_of, seconds_text
from jobs.picks import choose_picks
from jobs.sync import refresh_candidates
from storage import catalogue, users
from storage.models import User

log = logging.getLogger(__name__)


async def recommend(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not is_private(update):
        return
    svc = services_of(context)
    user = current_user(update, context)
    limits, tg = cooldowns_of(context.application), svc.settings.telegram
    if wait_s := limits.take(user.telegram_id, "recommend", tg.recommend_cooldown_s, tg.recommend_burst):
        if limits.tell_once(user.telegram_id, "recommend"):
            text = t(user.language, "cooldown_recommend", seconds=seconds_text(wait_s))
            await update.effective_message.reply_text(text)
        return
    async with user_lock(context, "recommend", user.id):  # a second page waits: no pick sent twice
        await send_page(update, context, user)


async def send_page(update: Update, context: ContextTypes.DEFAULT_TYPE, user: User) -> None:
    """One page of picks for `user`, answering `update` (/recommend, or a tap on "More ▸"); the caller
    holds the user's "recommend" lock and took a cooldown token."""
    svc = services_of(context)
    await best_effort(context.bot.send_chat_action(user.chat_id, ChatAction.TYPING), "typing action")
    batch = choose_picks(svc, user, user.picks_per_page)
    if not batch.items and catalogue.last_candidate_refresh(svc.db) == 0:
        if svc.bili.throttle.paused:  # no waiting out bilibili's risk pause in a reply
            minutes = max(1, math.ceil(svc.bili.throttle.pause_left_s / 60))
            await update.effective_message.reply_text(t(user.language, "login_rate_limited", minutes=minutes))
            return
        try:  # a brand-new bot has no candidates yet: pull the popular lists once, now
            await refresh_candidates(svc, force=True)
            batch = choose_picks(svc, user, user.picks_per_page)
        except BilibiliError as exc:
            log.warning("candidate refresh failed: %s", type(exc).__name__)
    if not batch.items:
        await update.effective_message.reply_text(t(user.language, "no_picks"))
        return
    if batch.mode != "personal":
        await best_effort(update.effective_message.reply_text(t(user.language, f"cold_{batch.mode}")), "cold note")
    # A full page may have a next one: its last pick offers it (a short page emptied the pool).
    more_for = user.telegram_id if len(batch.items) >= user.picks_per_page else None
    try:
        sent = await deliver_picks(context.bot, svc, user, batch.items, source="recommend", more_for=more_for)
    except Forbidden:
        raise  # blocked: the error handler marks the user; nothing can be said
    except TelegramError as exc:
        # Refused even after retries (Telegram down, a long flood wait): one clear line, not silence.
        log.warning("picks for user %d not sent: %s", user.id, exc)
        await best_effort(update.effective_message.reply_text(t(user.language, "picks_failed")), "failure note")
        return
    if sent and users.mark_rating_explained(svc.db, user.id):  # the first page: what NN/100 means, once
        await best_effort(context.bot.send_message(user.chat_id, t(user.language, "rating_explained")), "rating note")
