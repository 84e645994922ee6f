"""/search and /popular: one compact paged message, its ◀ ▶ buttons and /popular's partition keyboard."""

from __future__ import annotations

import html
import logging
import math

from telegram import InlineKeyboardMarkup, LinkPreviewOptions, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bilibili import BilibiliError, RiskControl, RiskPaused
from delivery import callbacks
from delivery.discover import (
    page_keyboard,
    page_text,
    partition_keyboard,
    partition_names,
    popular_heading,
    search_heading,
)
from delivery.i18n import language_for, t
from delivery.outcome import best_effort
from handlers.common import current_user, is_private, services_of
from jobs.discover import Listing, find_listing, find_partition, listing_page, open_listing, partition_of
from storage import users
from storage.models import User

log = logging.getLogger(__name__)
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)  # ten links: a preview of the first would drown the list


def _heading(listing: Listing, lang: str) -> str:
    if listing.kind == "search":
        return search_heading(listing.query, lang)
    return popular_heading(partition_of(listing.rid), lang)


def failure_text(exc: BilibiliError, lang: str) -> str:
    if isinstance(exc, RiskPaused):
        return t(lang, "login_rate_limited", minutes=max(1, math.ceil((exc.retry_in_s or 60) / 60)))
    if isinstance(exc, RiskControl):
        return t(lang, "discover_risk")
    return t(lang, "discover_failed")


async def _render(
    context: ContextTypes.DEFAULT_TYPE, user: User, listing: Listing, token: str, page: int
) -> tuple[str, InlineKeyboardMarkup | None] | str:
    """(text, keyboard) of the page, or the one-line reason it cannot be shown."""
    svc = services_of(context)
    try:
        shown = await listing_page(svc, user, listing, page)
    except BilibiliError as exc:
        log.warning("%s page failed: %s", listing.kind, type(exc).__name__)
        return failure_text(exc, user.language)
    if not shown.lines:
        if shown.hidden and page == 1:  # bilibili listed videos; the user's block rules hid them all
            return t(user.language, "discover_all_blocked")
        if page > 1:
            return t(user.language, "discover_no_page")
        if listing.kind == "search":
            return t(user.language, "search_empty", words=html.escape(listing.query[:64]))
        return t(user.language, "popular_empty")
    return page_text(_heading(listing, user.language), shown, user.language), page_keyboard(token, shown)


async def _send_first_page(update: Update, context: ContextTypes.DEFAULT_TYPE, user: User, listing: Listing) -> None:
    token = open_listing(services_of(context), listing)
    rendered = await _render(context, user, listing, token, 1)
    if isinstance(rendered, str):
        await update.effective_message.reply_text(rendered)
        return
    text, keyboard = rendered
    await update.effective_message.reply_text(text, reply_markup=keyboard, link_preview_options=_NO_PREVIEW)


async def search(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not is_private(update):
        return
    user = current_user(update, context)
    words = " ".join(context.args or [])[:100].strip()
    if not words:
        await update.effective_message.reply_text(t(user.language, "search_usage"))
        return
    await _send_first_page(update, context, user, Listing(update.effective_user.id, "search", query=words))


async def popular(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not is_private(update):
        return
    user = current_user(update, context)
    if not context.args:
        keyboard = partition_keyboard(update.effective_user.id, user.language)
        await update.effective_message.reply_text(t(user.language, "popular_choose"), reply_markup=keyboard)
        return
    rid = find_partition(" ".join(context.args))
    if rid is None:
        await update.effective_message.reply_text(t(user.language, "popular_unknown", names=partition_names()))
        return
    await _send_first_page(update, context, user, Listing(update.effective_user.id, "popular", rid=rid))


async def _edit(update: Update, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
    try:
        await update.callback_query.edit_message_text(text, reply_markup=keyboard, link_preview_options=_NO_PREVIEW)
    except BadRequest as exc:
        if "not modified" not in exc.message:
            log.warning("page edit refused: %s", exc.message)
    except TelegramError as exc:
        log.info("page edit skipped: %s", exc)


def _tapper(update: Update, context: ContextTypes.DEFAULT_TYPE) -> tuple[User | None, str]:
    """The tapping user's row (never created by a tap) and their language."""
    user = users.get_user(services_of(context).db, update.effective_user.id)
    return user, user.language if user else language_for(update.effective_user.language_code)


async def page_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """◀ / ▶: the same message shows another page; a foreign, expired or unknown page is refused."""
    query = update.callback_query
    user, lang = _tapper(update, context)
    tap = callbacks.parse_discover_page(query.data)
    listing = find_listing(services_of(context), tap[0]) if tap else None
    if listing is None or user is None:
        await best_effort(query.answer(t(lang, "discover_stale"), show_alert=True), "page answer")
        return
    if listing.owner != update.effective_user.id:
        await best_effort(query.answer(t(lang, "discover_not_yours"), show_alert=True), "page answer")
        return
    if tap[1] < 1:
        await best_effort(query.answer(t(lang, "discover_no_page")), "page answer")
        return
    rendered = await _render(context, user, listing, tap[0], tap[1])
    if isinstance(rendered, str):  # nothing there, or bilibili refused: the message stays as it is
        await best_effort(query.answer(rendered, show_alert=True), "page answer")
        return
    await best_effort(query.answer(), "page answer")
    await _edit(update, *rendered)


async def partition_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A partition chosen on /popular's keyboard: that message becomes the ranking's first page."""
    query = update.callback_query
    user, lang = _tapper(update, context)
    choice = callbacks.parse_partition_choice(query.data)
    if choice is None or user is None or (choice[1] != 0 and partition_of(choice[1]) is None):
        await best_effort(query.answer(t(lang, "discover_stale"), show_alert=True), "partition answer")
        return
    if choice[0] != update.effective_user.id:
        await best_effort(query.answer(t(lang, "discover_not_yours"), show_alert=True), "partition answer")
        return
    listing = Listing(update.effective_user.id, "popular", rid=choice[1])
    token = open_listing(services_of(context), listing)
    rendered = await _render(context, user, listing, token, 1)
    if isinstance(rendered, str):
        await best_effort(query.answer(rendered, show_alert=True), "partition answer")
        return
    await best_effort(query.answer(), "partition answer")
    await _edit(update, *rendered)
