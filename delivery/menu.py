"""The bot's command menu in one language: bot.py sets it for every private chat at start, /language
for one chat when its user chooses a language."""

from __future__ import annotations

from collections.abc import Iterable

from telegram import BotCommand

from delivery.i18n import t

MENU_KEY = "command_menu"  # application.bot_data: the command names the menu lists, in order


def command_menu(lang: str, names: Iterable[str]) -> list[BotCommand]:
    return [BotCommand(name, t(lang, f"cmd_{name}")) for name in names]
