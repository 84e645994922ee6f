"""/start, /help, and the hint for anything unknown."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from delivery.i18n import language_for, t
from handlers.common import current_user, is_private, services_of
from storage import users


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    lang = language_for(update.effective_user.language_code)
    if not is_private(update):
        await update.effective_message.reply_text(t(lang, "group_only_private"))
        return
    user = current_user(update, context)
    await update.effective_message.reply_text(t(user.language, "start"))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    lang = language_for(update.effective_user.language_code)
    if not is_private(update):
        await update.effective_message.reply_text(t(lang, "group_only_private"))
        return
    user = current_user(update, context)
    await update.effective_message.reply_text(t(user.language, "help"))
    users.mark_rating_explained(services_of(context).db, user.id)  # /help says what NN/100 means


async def unknown(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Unknown commands and free text get a short hint, not silence."""
    user = current_user(update, context)
    await update.effective_message.reply_text(t(user.language, "unknown"))
