"""/similar (a BV or av id, a link, a b23.tv short link, or a reply to a pick), a link pasted as plain
text, a pick's "more like this" button, and /history with its ◀ ▶ buttons."""

from __future__ import annotations

import html
import logging
import math

from telegram import LinkPreviewOptions, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bilibili import BilibiliError
from bilibili.links import VideoRef, find_video_ref
from delivery import callbacks
from delivery.i18n import language_for, t
from delivery.outcome import best_effort
from delivery.similar import HISTORY_PAGE_SIZE, history_keyboard, history_text, similar_text
from handlers.common import current_user, is_private, services_of
from handlers.discover import failure_text
from jobs.similar import SimilarRefused, similar_page, video_of
from storage import picks, users
from storage.models import User

log = logging.getLogger(__name__)
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
# Plain text that names a bilibili video (a link, a BV or an av id): answered as /similar.
PASTED_VIDEO = r"(?i)(bilibili\.com/|b23\.tv/|bili2233\.cn/|(?<![a-z0-9])bv1[0-9a-z]{3,15}|(?<![a-z0-9])av\d{1,20})"


async def _similar_reply(context: ContextTypes.DEFAULT_TYPE, user: User, ref: VideoRef) -> str:
    """The reply's text: the five neighbours, or the one line saying why there are none."""
    svc = services_of(context)
    lang = user.language
    try:
        page = await similar_page(svc, user, await video_of(svc, ref))
    except SimilarRefused as exc:
        if exc.kind == "refused":
            return t(lang, "similar_refused", code=exc.code if exc.code is not None else "?")
        return t(lang, f"similar_{exc.kind}", text=html.escape(ref.value[:64]))
    except BilibiliError as exc:
        log.warning("similar failed: %s", type(exc).__name__)
        return failure_text(exc, lang)
    if not page.lines:
        return t(lang, "similar_empty")
    return similar_text(page.bvid, page.title, page.lines, page.personal, lang)


async def _answer(message: Message, context: ContextTypes.DEFAULT_TYPE, user: User, ref: VideoRef) -> None:
    text = await _similar_reply(context, user, ref)
    await message.reply_text(text, link_preview_options=_NO_PREVIEW)


def _replied_pick(update: Update, context: ContextTypes.DEFAULT_TYPE, user: User) -> VideoRef | None:
    """The pick the command replies to (the user's own), else None."""
    replied = update.effective_message.reply_to_message
    if replied is None:
        return None
    shown = picks.shown_by_message(services_of(context).db, update.effective_chat.id, replied.message_id)
    return VideoRef("video", shown.bvid) if shown is not None and shown.user_id == user.id else None


async def similar(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not is_private(update):
        return
    user = current_user(update, context)
    words = " ".join(context.args or []).strip()
    message = update.effective_message
    if not words:
        ref = _replied_pick(update, context, user)
        if ref is None:
            key = "similar_not_a_pick" if message.reply_to_message is not None else "similar_usage"
            await message.reply_text(t(user.language, key))
            return
    else:
        ref = find_video_ref(words) or VideoRef("malformed", words)
    await _answer(message, context, user, ref)


async def pasted(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A bilibili link or id sent as plain text: /similar for it."""
    user = current_user(update, context)
    text = update.effective_message.text or ""
    ref = find_video_ref(text[:2000])
    if ref is None:
        await update.effective_message.reply_text(t(user.language, "unknown"))
        return
    await _answer(update.effective_message, context, user, ref)


async def similar_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A pick's "more like this" (sim:<shown id>): /similar for that pick, for its owner only."""
    query = update.callback_query
    svc = services_of(context)
    user = users.get_user(svc.db, update.effective_user.id)  # a tap never creates a user
    lang = user.language if user else language_for(update.effective_user.language_code)
    shown_id = callbacks.parse_similar(query.data)
    shown = picks.get_shown(svc.db, shown_id) if shown_id is not None else None
    if shown is None:  # malformed, or from before /forget
        await best_effort(query.answer(t(lang, "fb_stale"), show_alert=True), "similar answer")
        return
    if user is None or shown.user_id != user.id:
        await best_effort(query.answer(t(lang, "similar_not_yours"), show_alert=True), "similar answer")
        return
    await best_effort(query.answer(), "similar answer")
    text = await _similar_reply(context, user, VideoRef("video", shown.bvid))
    if isinstance(query.message, Message):
        await query.message.reply_text(text, link_preview_options=_NO_PREVIEW)
    else:  # too old for Telegram to hand over: a new message in the user's chat
        await context.bot.send_message(user.chat_id, text, link_preview_options=_NO_PREVIEW)


# -- /history ---------------------------------------------------------------------------------------
def _history(context: ContextTypes.DEFAULT_TYPE, user: User, telegram_id: int, page: int):
    """(text, keyboard) of the page, or None when there is no such page."""
    db = services_of(context).db
    total = picks.count_sent(db, user.id)
    num_pages = math.ceil(total / HISTORY_PAGE_SIZE)
    if page < 1 or page > num_pages:
        return None
    rows = picks.sent_page(db, user.id, (page - 1) * HISTORY_PAGE_SIZE, HISTORY_PAGE_SIZE)
    return (
        history_text(rows, page, num_pages, user.timezone, user.language),
        history_keyboard(telegram_id, page, num_pages),
    )


async def history(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not is_private(update):
        return
    user = current_user(update, context)
    shown = _history(context, user, update.effective_user.id, 1)
    if shown is None:
        await update.effective_message.reply_text(t(user.language, "history_empty"))
        return
    text, keyboard = shown
    await update.effective_message.reply_text(text, reply_markup=keyboard, link_preview_options=_NO_PREVIEW)


async def history_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """◀ / ▶ on /history: the same message shows another page; someone else's is refused."""
    query = update.callback_query
    svc = services_of(context)
    user = users.get_user(svc.db, update.effective_user.id)
    lang = user.language if user else language_for(update.effective_user.language_code)
    tap = callbacks.parse_history_page(query.data)
    if tap is not None and tap[0] != update.effective_user.id:
        await best_effort(query.answer(t(lang, "discover_not_yours"), show_alert=True), "history answer")
        return
    if tap is None or user is None:
        await best_effort(query.answer(t(lang, "discover_stale"), show_alert=True), "history answer")
        return
    shown = _history(context, user, tap[0], tap[1])
    if shown is None:
        await best_effort(query.answer(t(lang, "discover_no_page"), show_alert=True), "history answer")
        return
    await best_effort(query.answer(), "history answer")
    try:
        await query.edit_message_text(shown[0], reply_markup=shown[1], link_preview_options=_NO_PREVIEW)
    except BadRequest as exc:
        if "not modified" not in exc.message:
            log.warning("history edit refused: %s", exc.message)
    except TelegramError as exc:
        log.info("history edit skipped: %s", exc)
