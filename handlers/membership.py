"""my_chat_member: a user who blocks the bot gets nothing more until they write again."""

from __future__ import annotations

from telegram import ChatMember, Update
from telegram.ext import ContextTypes

from handlers.common import services_of
from storage import users


async def chat_member_changed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    change = update.my_chat_member
    if change is None or change.chat.type != "private":
        return
    blocked = change.new_chat_member.status == ChatMember.BANNED  # "kicked"
    users.set_blocked(services_of(context).db, change.from_user.id, blocked)
