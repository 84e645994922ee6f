"""/logout, /forget and /reset (each with a confirm button) and /privacy."""

from __future__ import annotations

import logging

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from delivery import callbacks
from delivery.i18n import language_for, t
from delivery.outcome import best_effort
from handlers.common import current_user, is_private, services_of
from handlers.cooldown import cooldowns_of
from jobs.training import forget_from_shared, forget_from_twotower
from storage import users


async def logout(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not is_private(update):
        return
    svc, user = services_of(context), current_user(update, context)
    if user.credentials is None:
        await update.effective_message.reply_text(t(user.language, "logout_none"))
        return
    users.unlink_bilibili(svc.db, user.id)
    if user.bili_mid:
        svc.bili.forget_account(user.bili_mid)  # refreshed cookies the client still holds
    await update.effective_message.reply_text(t(user.language, "logout_done"))


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not is_private(update):
        return
    svc, user = services_of(context), current_user(update, context)
    limits = cooldowns_of(context.application)
    if limits.take(user.telegram_id, "forget", svc.settings.telegram.forget_cooldown_s):
        if limits.tell_once(user.telegram_id, "forget"):
            await update.effective_message.reply_text(t(user.language, "cooldown_forget"))
        return
    # The button carries when it was offered: an old confirmation found later in the chat expires.
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(t(user.language, "forget_yes"), callback_data=callbacks.forget_yes(svc.now())),
                InlineKeyboardButton(t(user.language, "forget_no"), callback_data=callbacks.FORGET_NO),
            ]
        ]
    )
    await update.effective_message.reply_text(t(user.language, "forget_confirm"), reply_markup=keyboard)


log = logging.getLogger(__name__)


async def forget_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await best_effort(query.answer(), "tap answer")
    svc = services_of(context)
    user = users.get_user(svc.db, update.effective_user.id)
    lang = user.language if user else language_for(update.effective_user.language_code)
    cooldowns_of(context.application).reset(update.effective_user.id, "forget")  # answered: no prompt waits
    if user is None or not query.data.startswith(callbacks.FORGET_YES_PREFIX):
        await _edit(query, t(lang, "forget_cancelled" if user else "forget_done"))
        return
    offered_at = callbacks.parse_forget_yes(query.data)
    age_s = svc.now() - offered_at if offered_at is not None else -1
    if not 0 <= age_s <= svc.settings.telegram.forget_confirm_ttl_s:  # old, or not one we sent
        await _edit(query, t(lang, "forget_expired"))
        return
    svc.cancel_user_task(user.id)  # a login or first sync in flight must not write rows back
    users.forget_user(svc.db, user.id)
    if user.bili_mid:
        svc.bili.forget_account(user.bili_mid)
    svc.models.delete(str(user.id))
    forget_from_shared(svc, user.id)  # after the rows went: a build reading them now sees them gone
    forget_from_twotower(svc, user.id)
    await _edit(query, t(lang, "forget_done"))


async def reset(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reset: forget the taste (taps, shown picks, model) but keep the login and the synced history."""
    if not is_private(update):
        return
    svc, user = services_of(context), current_user(update, context)
    limits = cooldowns_of(context.application)
    if limits.take(user.telegram_id, "reset", svc.settings.telegram.forget_cooldown_s):
        if limits.tell_once(user.telegram_id, "reset"):
            await update.effective_message.reply_text(t(user.language, "cooldown_forget"))
        return
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(t(user.language, "reset_yes"), callback_data=callbacks.reset_yes(svc.now())),
                InlineKeyboardButton(t(user.language, "forget_no"), callback_data=callbacks.RESET_NO),
            ]
        ]
    )
    await update.effective_message.reply_text(t(user.language, "reset_confirm"), reply_markup=keyboard)


async def reset_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await best_effort(query.answer(), "tap answer")
    svc = services_of(context)
    user = users.get_user(svc.db, update.effective_user.id)  # a stale tap must not re-create a user
    lang = user.language if user else language_for(update.effective_user.language_code)
    cooldowns_of(context.application).reset(update.effective_user.id, "reset")  # answered: no prompt waits
    if user is None or not query.data.startswith(callbacks.RESET_YES_PREFIX):
        await _edit(query, t(lang, "reset_cancelled"))
        return
    offered_at = callbacks.parse_reset_yes(query.data)
    age_s = svc.now() - offered_at if offered_at is not None else -1
    if not 0 <= age_s <= svc.settings.telegram.forget_confirm_ttl_s:  # old, or not one we sent
        await _edit(query, t(lang, "reset_expired"))
        return
    # Rows and model files together (a training pass that read the old taps then saves nothing).
    users.reset_taste(svc.db, user.id, svc.now(), lambda: svc.models.delete(str(user.id)))
    forget_from_shared(svc, user.id)  # their 👍 counted in the shared signals
    await _edit(query, t(lang, "reset_done"))


async def _edit(query: CallbackQuery, text: str) -> None:
    try:
        await query.edit_message_text(text)
    except BadRequest as exc:  # tapped twice, or not the confirmation (forged data): say it anew
        if "not modified" not in exc.message:
            await best_effort(query.get_bot().send_message(query.from_user.id, text), "forget reply")
    except TelegramError as exc:
        log.info("forget reply edit skipped: %s", exc)


async def privacy(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    user = current_user(update, context) if is_private(update) else None
    lang = user.language if user else "en"
    await update.effective_message.reply_text(t(lang, "privacy"))
