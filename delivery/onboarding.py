"""The onboarding's chat side with any Telegram bot: the front's (embedded mode) or a worker's
(distributed mode). One status message, sent once and edited in place; notes of their own.

The status message is known by its id alone, so whoever sends it first (the front, right after the
QR confirm) can hand the id to a worker job, and a retried job edits the same message.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from telegram.error import BadRequest, TelegramError

from delivery.i18n import t
from delivery.outcome import best_effort

log = logging.getLogger(__name__)


class BotOnboardingView:
    """jobs.onboarding.OnboardingView over a telegram.Bot. Telegram hiccups never stop the first
    sync and training (best effort): a status that could not be sent is sent anew next time."""

    def __init__(self, bot: Any, chat_id: int, language: str, message_id: int | None = None) -> None:
        self.bot, self.chat_id, self.language = bot, chat_id, language
        self.message_id = message_id

    def text(self, key: str, **values: object) -> str:
        return t(self.language, key, **{k: html.escape(v) if isinstance(v, str) else v for k, v in values.items()})

    async def status(self, key: str, **values: object) -> None:
        text = self.text(key, **values)
        if self.message_id is None:
            try:
                self.message_id = (await self.bot.send_message(self.chat_id, text)).message_id
            except TelegramError as exc:
                log.info("onboarding status skipped: %s", exc)  # the next one is sent anew
            return
        try:
            await self.bot.edit_message_text(text, chat_id=self.chat_id, message_id=self.message_id)
        except BadRequest as exc:
            if "not modified" not in exc.message:  # a retried job repeating the text it showed
                log.info("onboarding status edit skipped: %s", exc.message)
        except TelegramError as exc:
            log.info("onboarding status edit skipped: %s", exc)

    async def notify(self, key: str, **values: object) -> None:
        await best_effort(self.bot.send_message(self.chat_id, t(self.language, key, **values)), "note")
