"""The error handler, and the log filter that keeps the bot token out of every log line."""

from __future__ import annotations

import logging
import re

from telegram import Update
from telegram.error import Forbidden
from telegram.ext import ContextTypes

from handlers.common import services_of
from handlers.i18n import language_for, t
from storage import users

log = logging.getLogger(__name__)


class Redactor:
    """Replaces the given secrets (and anything shaped like a bot token) in a log record."""

    TOKEN_SHAPE = re.compile(r"\d{6,12}:[A-Za-z0-9_-]{20,}")

    def __init__(self, *secrets: str) -> None:
        self._secrets = [s for s in secrets if s]

    def clean(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return self.TOKEN_SHAPE.sub("<redacted>", text)

    def apply(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        cleaned = self.clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks are rendered later from exc_info: render them now, redacted.
            record.exc_text = self.clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None


def install_redaction(*secrets: str) -> None:
    """Redact at record creation, so every logger and every handler (httpx, telegram, ours) is covered."""
    redactor = Redactor(*secrets)
    make_record = logging.getLogRecordFactory()

    def redacted_record(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        redactor.apply(record)
        return record

    logging.setLogRecordFactory(redacted_record)


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
