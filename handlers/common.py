"""What every handler needs: the services, the current user in storage, and their language."""

from __future__ import annotations

import asyncio
from weakref import WeakValueDictionary

from telegram import Chat, Update
from telegram.ext import ContextTypes

from delivery.i18n import language_for
from services import SERVICES_KEY, Services
from storage import users
from storage.models import User


def services_of(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.application.bot_data[SERVICES_KEY]


def is_private(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type == Chat.PRIVATE


def current_user(update: Update, context: ContextTypes.DEFAULT_TYPE) -> User:
    """The sender's row (created on first contact); language follows Telegram's language_code unless
    the user chose one with /language."""
    svc = services_of(context)
    tg_user, chat = update.effective_user, update.effective_chat
    jobs = svc.settings.jobs
    user = users.ensure_user(
        svc.db,
        telegram_id=tg_user.id,
        chat_id=chat.id if chat and chat.type == Chat.PRIVATE else tg_user.id,
        language=language_for(tg_user.language_code),
        now=svc.now(),
        timezone=jobs.default_timezone,
        digest_time=jobs.default_digest_time,
        picks_per_page=jobs.default_picks,
    )
    lang = user.language_chosen or language_for(tg_user.language_code)
    if user.language != lang:
        user = users.update_user(svc.db, user.id, language=lang)
    return user


LOCKS_KEY = "user_locks"  # application.bot_data: (kind, user id) -> the lock, while anyone holds it


def user_lock(context: ContextTypes.DEFAULT_TYPE, kind: str, user_id: int) -> asyncio.Lock:
    """One `kind` of work per user at a time (e.g. /recommend: a second page waits for the first, so
    it never picks what the first is still sending). Kept only while in use."""
    locks: WeakValueDictionary[tuple[str, int], asyncio.Lock] = context.application.bot_data.setdefault(
        LOCKS_KEY, WeakValueDictionary()
    )
    lock = locks.get((kind, user_id))
    if lock is None:
        lock = locks[(kind, user_id)] = asyncio.Lock()
    return lock
