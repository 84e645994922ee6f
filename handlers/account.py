"""/logout, /forget (with a confirm button) and /privacy."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from handlers.common import current_user, is_private, services_of
from handlers.i18n import t
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
    user = current_user(update, context)
    keyboard = InlineKeyboardMarkup([[
        InlineKeyboardButton(t(user.language, "forget_yes"), callback_data="forget:yes"),
        InlineKeyboardButton(t(user.language, "forget_no"), callback_data="forget:no"),
    ]])  # fmt: skip
    await update.effective_message.reply_text(t(user.language, "forget_confirm"), reply_markup=keyboard)


async def forget_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await query.answer()
    svc = services_of(context)
    user = users.get_user(svc.db, update.effective_user.id)
    lang = user.language if user else "en"
    if user is None or query.data != "forget:yes":
        await query.edit_message_text(t(lang, "forget_cancelled" if user else "forget_done"))
        return
    svc.cancel_user_task(user.id)  # a login or first sync in flight must not write rows back
    users.forget_user(svc.db, user.id)
    if user.bili_mid:
        svc.bili.forget_account(user.bili_mid)
    svc.models.delete(str(user.id))
    svc.models.drop_shared()  # built from everyone's behaviour, theirs too; the next tick rebuilds it
    await query.edit_message_text(t(lang, "forget_done"))


async def privacy(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    user = current_user(update, context) if is_private(update) else None
    lang = user.language if user else "en"
    await update.effective_message.reply_text(t(lang, "privacy"))
