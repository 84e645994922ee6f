"""/digest, /timezone and the /settings menu."""

from __future__ import annotations

import html
import logging
import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from delivery import callbacks
from delivery.i18n import t
from delivery.outcome import best_effort
from handlers.common import current_user, is_private, services_of
from storage import users
from storage.models import User

log = logging.getLogger(__name__)

DIGEST_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
MIN_PICKS, MAX_PICKS = 3, 10


async def digest(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not is_private(update):
        return
    svc, user = services_of(context), current_user(update, context)
    arg = (context.args[0] if context.args else "").strip().lower()
    if arg == "off":
        users.update_user(svc.db, user.id, digest_paused=True)
        text = t(user.language, "digest_off")
    elif arg == "on":
        user = users.update_user(svc.db, user.id, digest_paused=False, digest_paused_until=None)
        text = t(user.language, "digest_on", time=user.digest_time, tz=user.timezone)
    elif match := DIGEST_TIME.match(arg):
        value = f"{int(match.group(1)):02d}:{match.group(2)}"
        user = users.update_user(svc.db, user.id, digest_time=value, digest_paused=False)
        text = t(user.language, "digest_set", time=value, tz=user.timezone)
    else:
        text = t(user.language, "digest_usage")
    await update.effective_message.reply_text(text)


def valid_timezone(name: str) -> str | None:
    """The canonical IANA name, or None (zoneinfo also accepts odd paths; the catalogue does not)."""
    if name not in available_timezones():
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


async def timezone(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not is_private(update):
        return
    svc, user = services_of(context), current_user(update, context)
    if not context.args:
        await update.effective_message.reply_text(t(user.language, "tz_usage"))
        return
    name = valid_timezone(context.args[0].strip())
    if name is None:
        await update.effective_message.reply_text(t(user.language, "tz_unknown", tz=html.escape(context.args[0][:64])))
        return
    users.update_user(svc.db, user.id, timezone=name)
    await update.effective_message.reply_text(t(user.language, "tz_set", tz=name))


def snoozed_until(user: User, now: int) -> int | None:
    """The end of a snooze still running ("pause 1 day / 7 days"), else None."""
    until = user.digest_paused_until
    return until if until is not None and until > now else None


def settings_view(user: User, now: int) -> tuple[str, InlineKeyboardMarkup]:
    lang = user.language
    until = snoozed_until(user, now)
    if user.digest_paused:
        state = t(lang, "settings_off")
    elif until is not None:
        state = t(lang, "settings_snoozed", until=_local_day(user, until))
    else:
        state = t(lang, "settings_on")
    form = t(lang, "settings_compact" if user.digest_compact else "settings_photos")
    text = t(lang, "settings", state=state, time=user.digest_time, tz=user.timezone, picks=user.picks_per_page)
    text += "\n" + t(lang, "settings_form", form=form)
    paused = user.digest_paused or until is not None
    toggle = ("btn_resume", callbacks.SETTINGS_RESUME) if paused else ("btn_pause", callbacks.SETTINGS_PAUSE)
    rows = [
        [
            InlineKeyboardButton(t(lang, "btn_fewer"), callback_data=callbacks.SETTINGS_FEWER),
            InlineKeyboardButton(t(lang, "btn_more"), callback_data=callbacks.SETTINGS_MORE),
        ],
        [InlineKeyboardButton(t(lang, toggle[0]), callback_data=toggle[1])],
    ]
    if not user.digest_paused:  # "skip tomorrow" beside the switch (a second tap moves the end)
        rows[-1] += [
            InlineKeyboardButton(t(lang, "btn_snooze_1"), callback_data=callbacks.SETTINGS_SNOOZE_1),
            InlineKeyboardButton(t(lang, "btn_snooze_7"), callback_data=callbacks.SETTINGS_SNOOZE_7),
        ]
    compact = (
        ("btn_photos", callbacks.SETTINGS_COMPACT_OFF)
        if user.digest_compact
        else ("btn_compact", callbacks.SETTINGS_COMPACT_ON)
    )
    rows.append([InlineKeyboardButton(t(lang, compact[0]), callback_data=compact[1])])
    return text, InlineKeyboardMarkup(rows)


def _local_day(user: User, at: int) -> str:
    return datetime.fromtimestamp(at, ZoneInfo(user.timezone)).strftime("%Y-%m-%d %H:%M")


async def settings(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not is_private(update):
        return
    text, keyboard = settings_view(current_user(update, context), services_of(context).now())
    await update.effective_message.reply_text(text, reply_markup=keyboard)


async def settings_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await best_effort(query.answer(), "tap answer")
    if not is_private(update):
        return  # a settings message is only ever sent in a private chat
    svc, user = services_of(context), current_user(update, context)
    if query.data == callbacks.SETTINGS_PAUSE:
        user = users.update_user(svc.db, user.id, digest_paused=True)
    elif query.data == callbacks.SETTINGS_RESUME:
        user = users.update_user(svc.db, user.id, digest_paused=False, digest_paused_until=None)
    elif (days := callbacks.SNOOZE_DAYS.get(query.data)) is not None:
        # Days from now: the next `days` digest slots fall before it and are not sent.
        user = users.update_user(svc.db, user.id, digest_paused_until=svc.now() + days * 86400)
    elif query.data in (callbacks.SETTINGS_COMPACT_ON, callbacks.SETTINGS_COMPACT_OFF):
        user = users.update_user(svc.db, user.id, digest_compact=query.data == callbacks.SETTINGS_COMPACT_ON)
    elif query.data in (callbacks.SETTINGS_FEWER, callbacks.SETTINGS_MORE):
        step = -1 if query.data == callbacks.SETTINGS_FEWER else 1
        picks = min(MAX_PICKS, max(MIN_PICKS, user.picks_per_page + step))
        user = users.update_user(svc.db, user.id, picks_per_page=picks)
    text, keyboard = settings_view(user, svc.now())
    try:
        await query.edit_message_text(text, reply_markup=keyboard)
    except BadRequest as exc:  # tapped twice ("not modified"), or not a settings message (forged data)
        if "not modified" not in exc.message:
            log.info("settings edit refused: %s", exc.message)
    except TelegramError as exc:
        log.info("settings edit skipped: %s", exc)
