"""The first check on every message and tap: at most UPDATES_BURST at once per Telegram user, then
UPDATES_PER_SECOND; the rest are dropped before any handler runs, with one short "slow down" per wait.

Each reply costs a message from the chat's 1/s and the bot's 30/s; a user sending 40 /help in a burst
would otherwise keep their chat busy for 40 s and get it 429'd. Keyed by the Telegram user id, which
/forget does not change.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes

from delivery.i18n import language_for, t
from delivery.outcome import best_effort
from handlers.common import is_private, services_of
from handlers.cooldown import cooldowns_of

ACTION = "updates"


async def cap_updates(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    sender = update.effective_user
    if sender is None or not (update.message or update.callback_query):
        return  # membership changes (blocked, unblocked) are never dropped
    tg = services_of(context).settings.telegram
    every_s = 1.0 / tg.updates_per_second if tg.updates_per_second > 0 else 0.0
    limits = cooldowns_of(context.application)
    if not limits.take(sender.id, ACTION, every_s, tg.updates_burst):
        return
    tell = limits.tell_once(sender.id, ACTION)
    text = t(language_for(sender.language_code), "slow_down")
    if update.callback_query:  # answered anyway: the button stops spinning
        await best_effort(update.callback_query.answer(text if tell else None), "slow-down answer")
    elif tell and is_private(update):
        await best_effort(update.message.reply_text(text), "slow-down reply")
    raise ApplicationHandlerStop
