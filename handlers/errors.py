"""The error handler: log the failure (redacted, see redaction.py) and tell the user; never crash."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import Forbidden
from telegram.ext import ContextTypes

from delivery.i18n import language_for, t
from handlers.common import services_of
from storage import users

log = logging.getLogger(__name__)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failure (redacted) and tell the user something went wrong; never crash the bot."""
    if isinstance(context.error, Forbidden):
        # The user blocked us: replying is impossible; mark them so digests stop until they write again.
        log.info("update failed: the user blocked the bot")
        if isinstance(update, Update) and update.effective_user:
            users.set_blocked(services_of(context).db, update.effective_user.id, blocked=True)
        return
    log.error("update failed: %s", type(context.error).__name__, exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat and update.effective_chat.type == "private":
        lang = language_for(update.effective_user.language_code if update.effective_user else None)
        try:
            await context.bot.send_message(update.effective_chat.id, t(lang, "error"))
        except Exception:  # noqa: BLE001 - the error path must not raise again
            log.info("could not tell the user about the error")
