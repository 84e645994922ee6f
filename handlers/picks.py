"""A pick's further buttons: "⋯" / fold, "⏰ later" and "More ▸" (👍/👎 are in feedback.py).

Every tap is checked against its owner: a pick's shown row must belong to the tapping user, "More ▸"
names the Telegram id it was made for. A forwarded keyboard, or one from before /forget, changes nothing.
"""

from __future__ import annotations

import logging

from telegram import CallbackQuery, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from delivery import callbacks
from delivery.i18n import language_for, t
from delivery.outcome import best_effort
from delivery.render import feedback_keyboard, keyboard_state
from delivery.send import shown_card
from handlers.common import services_of, user_lock
from handlers.cooldown import cooldowns_of, seconds_text
from handlers.recommend import send_page
from jobs.later import save_for_later
from services import Services
from storage import behaviour, picks, users
from storage.models import Shown, User

log = logging.getLogger(__name__)


async def _stale(update: Update, user: User | None) -> None:
    lang = user.language if user else language_for(update.effective_user.language_code)
    await best_effort(update.callback_query.answer(t(lang, "fb_stale")), "tap answer")


def _owned_pick(svc: Services, update: Update, shown_id: int | None) -> tuple[User, Shown] | None:
    """The tapping user and the pick they own, or None (malformed, foreign, or forgotten)."""
    user = users.get_user(svc.db, update.effective_user.id)  # a stale tap must not re-create a user
    shown = picks.get_shown(svc.db, shown_id) if shown_id is not None and user else None
    if shown is None or shown.user_id != user.id:
        return None
    return user, shown


async def redraw_keyboard(
    query: CallbackQuery,
    svc: Services,
    user: User,
    shown: Shown,
    *,
    label: int | None = None,
    unfolded: bool | None = None,
) -> None:
    """Edit the pick's keyboard to the variant its state asks for: the 👍/👎 label and "saved" from
    storage, folded or not and "More ▸" as the message shows them now unless told otherwise."""
    shown_unfolded, more_for = keyboard_state(query.message.reply_markup if query.message else None, shown.id)
    keyboard = feedback_keyboard(
        shown.id,
        picks.feedback_label(svc.db, user.id, shown.bvid) if label is None else label,
        user.language,
        card=shown_card(svc, shown),
        unfolded=shown_unfolded if unfolded is None else unfolded,
        saved=behaviour.has_kind(svc.db, user.id, shown.bvid, behaviour.LATER),
        more_for=more_for,
    )
    await _edit_markup(query, keyboard)


async def _edit_markup(query: CallbackQuery, keyboard: InlineKeyboardMarkup) -> None:
    try:
        await query.edit_message_reply_markup(keyboard)
    except BadRequest as exc:
        if "not modified" not in exc.message:
            log.warning("keyboard edit refused: %s", exc.message)
    except TelegramError as exc:
        log.info("keyboard edit skipped: %s", exc)


async def pick_menu_tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """ "⋯" unfolds the pick's further buttons in place; "▴" folds them back."""
    query, svc = update.callback_query, services_of(context)
    tap = callbacks.parse_pick_menu(query.data)
    owned = _owned_pick(svc, update, tap[0] if tap else None)
    if owned is None:
        await _stale(update, users.get_user(svc.db, update.effective_user.id))
        return
    user, shown = owned
    await best_effort(query.answer(), "tap answer")
    async with user_lock(context, "tap", user.id):  # in order with 👍/👎 edits of the same keyboards
        await redraw_keyboard(query, svc, user, shown, unfolded=tap[1])


async def watch_later_tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """ "⏰ later": the video goes to the user's bilibili watch later list; the button says "✓ saved"."""
    query, svc = update.callback_query, services_of(context)
    owned = _owned_pick(svc, update, callbacks.parse_watch_later(query.data))
    if owned is None:
        await _stale(update, users.get_user(svc.db, update.effective_user.id))
        return
    user, shown = owned
    async with user_lock(context, "later", user.id):  # two fast taps: one bilibili call
        result = await save_for_later(svc, user, shown.bvid)
    toast = t(user.language, f"later_{result.outcome}", minutes=result.minutes)  # only "paused" says when
    done = result.outcome in ("saved", "already")
    # A failure is worth a dialog the user must close; success is a toast.
    await best_effort(query.answer(toast, show_alert=not done), "tap answer")
    if done:
        async with user_lock(context, "tap", user.id):
            await redraw_keyboard(query, svc, user, shown)


async def more_tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """ "More ▸": the next /recommend page, under /recommend's cooldown. The button leaves the page it
    was on (the new page's last pick carries the next one)."""
    query, svc = update.callback_query, services_of(context)
    owner = callbacks.parse_more(query.data)
    user = users.get_user(svc.db, update.effective_user.id)
    if user is None or owner != update.effective_user.id:
        await _stale(update, user)
        return
    limits, tg = cooldowns_of(context.application), svc.settings.telegram
    if wait_s := limits.take(user.telegram_id, "recommend", tg.recommend_cooldown_s, tg.recommend_burst):
        await best_effort(query.answer(t(user.language, "more_cooldown", seconds=seconds_text(wait_s))), "tap answer")
        return
    await best_effort(query.answer(), "tap answer")
    markup = query.message.reply_markup if query.message else None
    if markup is not None:
        rows = [[b for b in row if not (b.callback_data or "").startswith("more:")] for row in markup.inline_keyboard]
        await _edit_markup(query, InlineKeyboardMarkup([row for row in rows if row]))
    async with user_lock(context, "recommend", user.id):  # as /recommend: a second page waits
        await send_page(update, context, user)
