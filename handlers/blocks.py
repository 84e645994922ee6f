"""Block lists and filters: "not this uploader / tag" from a pick, /block keyword|partition, /duration,
and /blocked with a button to undo each rule. The rules filter every source (jobs/filters.py)."""

from __future__ import annotations

import asyncio
import html
import logging
import re

from telegram import InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bilibili.partitions import BY_ID, OVERALL
from delivery import callbacks
from delivery.blocks import blocked_message, minutes_range, rule_text
from delivery.discover import partition_names
from delivery.i18n import language_for, t
from delivery.outcome import best_effort
from handlers.common import current_user, is_private, services_of
from jobs.discover import find_partition
from jobs.filters import parse_keyword
from jobs.schedule import after_feedback
from services import Services
from storage import blocks, catalogue, picks, users
from storage.models import Shown, User

log = logging.getLogger(__name__)

MAX_DURATION_MIN = 1440  # a day: past that the bound means nothing
_DURATION = re.compile(r"^(\d{1,4})\s*[-–~～]\s*(\d{1,4})$")
_ADDED_KEYS = {"exists": "block_exists", "full": "block_full", "gone": "block_stale"}


# ----------------------------------------------------------------------------------- from a pick


def _tapped_pick(svc: Services, update: Update, shown_id: int | None) -> tuple[User, Shown] | str:
    """The tapper's row and the pick they tapped on, or why not (a message key). A tap never creates
    a user: after /forget the pick is no longer theirs."""
    user = users.get_user(svc.db, update.effective_user.id)
    shown = picks.get_shown(svc.db, shown_id) if shown_id is not None else None
    if shown is None:  # malformed, or the pick went with a /forget
        return "block_stale"
    if user is None or shown.user_id != user.id:  # a forwarded pick, or forged data
        return "block_not_yours"
    return user, shown


async def _answer(update: Update, text: str) -> None:
    await best_effort(update.callback_query.answer(text, show_alert=True), "block answer")


def _tapper_language(svc: Services, update: Update) -> str:
    user = users.get_user(svc.db, update.effective_user.id)
    return user.language if user else language_for(update.effective_user.language_code)


async def block_uploader_tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """ "Not this uploader" on a pick: every video of the pick's uploader is hidden from now on."""
    svc = services_of(context)
    tapped = _tapped_pick(svc, update, callbacks.parse_block_uploader(update.callback_query.data))
    if isinstance(tapped, str):
        await _answer(update, t(_tapper_language(svc, update), tapped))
        return
    user, shown = tapped
    video = catalogue.get_videos(svc.db, [shown.bvid]).get(shown.bvid)
    if video is None or video.owner_mid <= 0:
        await _answer(update, t(user.language, "block_stale"))
        return
    added = blocks.add_rule(svc.db, user.id, "uploader", str(video.owner_mid), video.owner_name[:64], svc.now())
    if added == "added":
        after_feedback(svc, user.id)  # the next model learns the uploader is unwanted
    text = t(
        user.language, _ADDED_KEYS.get(added, "block_uploader_done"), name=video.owner_name[:64], max=blocks.MAX_RULES
    )
    await _answer(update, text)


async def block_tag_tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """ "Not this tag": the tag travels as an index into the pick's tags (catalogue.video_tags order)."""
    svc = services_of(context)
    tap = callbacks.parse_block_tag(update.callback_query.data)
    tapped = _tapped_pick(svc, update, tap[0] if tap else None)
    if isinstance(tapped, str):
        await _answer(update, t(_tapper_language(svc, update), tapped))
        return
    user, shown = tapped
    video = catalogue.get_videos(svc.db, [shown.bvid]).get(shown.bvid)
    tags = catalogue.video_tags(video) if video is not None else ()
    if tap[1] >= len(tags):
        await _answer(update, t(user.language, "block_no_tag"))
        return
    tag = tags[tap[1]]
    added = blocks.add_rule(svc.db, user.id, "tag", tag, "", svc.now())
    if added == "added":
        after_feedback(svc, user.id)
    await _answer(
        update, t(user.language, _ADDED_KEYS.get(added, "block_tag_done"), tag=tag[:64], max=blocks.MAX_RULES)
    )


# -------------------------------------------------------------------------------------- commands


def _rest(update: Update, words_before: int) -> str:
    """The message text after its first `words_before` words, as typed (a pattern keeps its spaces)."""
    parts = (update.effective_message.text or "").split(None, words_before)
    return parts[words_before].strip() if len(parts) > words_before else ""


async def _reply(update: Update, text: str) -> None:
    await update.effective_message.reply_text(text)


async def block(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/block keyword <word or /regex/> · /block partition <name>."""
    if not is_private(update):
        return
    svc, user = services_of(context), current_user(update, context)
    lang = user.language
    what = context.args[0].lower() if context.args else ""
    rest = _rest(update, 2)
    if what in ("keyword", "关键词") and rest:
        # The pattern is tried on hostile inputs, up to a fraction of a second: off the event loop.
        parsed = await asyncio.to_thread(parse_keyword, rest)
        if isinstance(parsed, str):
            await _reply(update, t(lang, parsed))
            return
        kind, value = parsed
        added = blocks.add_rule(svc.db, user.id, kind, value, "", svc.now())
        done = "block_keyword_done" if kind == "keyword" else "block_regex_done"
        await _reply(update, t(lang, _ADDED_KEYS.get(added, done), value=html.escape(value), max=blocks.MAX_RULES))
    elif what in ("keyword", "关键词"):
        await _reply(update, t(lang, "block_keyword_usage"))
    elif what in ("partition", "分区") and rest:
        rid = find_partition(rest)
        if rid is None or rid == OVERALL:
            await _reply(
                update, t(lang, "block_partition_unknown", arg=html.escape(rest[:32]), names=partition_names())
            )
            return
        part = BY_ID[rid]
        added = blocks.add_rule(svc.db, user.id, "partition", str(rid), part.zh, svc.now())
        name = part.zh if lang == "zh" else part.en
        await _reply(
            update,
            t(lang, _ADDED_KEYS.get(added, "block_partition_done"), name=html.escape(name), max=blocks.MAX_RULES),
        )
    else:
        await _reply(update, t(lang, "block_usage", names=partition_names()))


async def duration(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/duration <min>-<max> (minutes) · /duration off · /duration (what is set)."""
    if not is_private(update):
        return
    svc, user = services_of(context), current_user(update, context)
    lang, text = user.language, _rest(update, 1)
    current = next((r for r in blocks.rules(svc.db, user.id) if r.kind == "duration"), None)
    if not text:
        now = (
            t(lang, "duration_range", low=minutes_range(current.value)[0], high=minutes_range(current.value)[1])
            if current
            else t(lang, "duration_none")
        )
        await _reply(update, t(lang, "duration_usage", current=now))
        return
    if text.lower() in ("off", "关", "关闭"):
        if current is not None:
            blocks.remove_rule(svc.db, user.id, current.id)
        await _reply(update, t(lang, "duration_off"))
        return
    match = _DURATION.match(text)
    low, high = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not match or low >= high or high > MAX_DURATION_MIN:
        await _reply(update, t(lang, "duration_bad", max=MAX_DURATION_MIN))
        return
    added = blocks.set_duration(svc.db, user.id, low * 60, high * 60, svc.now())
    await _reply(update, t(lang, _ADDED_KEYS.get(added, "duration_done"), low=low, high=high, max=blocks.MAX_RULES))


async def blocked(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/blocked: every rule, a page at a time, each with a button to undo it."""
    if not is_private(update):
        return
    svc, user = services_of(context), current_user(update, context)
    text, keyboard = blocked_message(
        user.telegram_id, blocks.rules(svc.db, user.id), 1, blocks.MAX_RULES, user.language
    )
    await update.effective_message.reply_text(text, reply_markup=keyboard)


# ----------------------------------------------------------------------------------- /blocked's buttons


def _list_owner(update: Update, context: ContextTypes.DEFAULT_TYPE, owner: int | None) -> tuple[User | None, str]:
    """The tapper's row when the list is theirs, else None and why (a message key)."""
    svc = services_of(context)
    user = users.get_user(svc.db, update.effective_user.id)
    if owner is None or user is None:
        return None, "blocked_stale"
    if owner != update.effective_user.id:
        return None, "blocked_not_yours"
    return user, ""


async def _show_page(update: Update, context: ContextTypes.DEFAULT_TYPE, user: User, page: int) -> None:
    svc = services_of(context)
    text, keyboard = blocked_message(
        user.telegram_id, blocks.rules(svc.db, user.id), page, blocks.MAX_RULES, user.language
    )
    try:
        await update.callback_query.edit_message_text(text, reply_markup=keyboard or InlineKeyboardMarkup([]))
    except BadRequest as exc:
        if "not modified" not in exc.message:
            log.warning("blocked list edit refused: %s", exc.message)
    except TelegramError as exc:
        log.info("blocked list edit skipped: %s", exc)


async def unblock_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """✕N on /blocked: that rule goes; the same page is shown again."""
    query, svc = update.callback_query, services_of(context)
    tap = callbacks.parse_unblock(query.data)
    user, why = _list_owner(update, context, tap[0] if tap else None)
    if user is None:
        await _answer(update, t(_tapper_language(svc, update), why))
        return
    removed = blocks.remove_rule(svc.db, user.id, tap[1])
    if removed is None:
        await best_effort(query.answer(t(user.language, "unblock_stale")), "unblock answer")
    else:
        if removed.kind in ("uploader", "tag"):
            after_feedback(svc, user.id)  # the next model no longer counts it against them
        toast = html.unescape(t(user.language, "unblocked", rule=rule_text(removed, user.language)))
        await best_effort(query.answer(toast[:190]), "unblock answer")  # a toast is plain text, ≤ 200
    await _show_page(update, context, user, tap[2])


async def blocked_page_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query, svc = update.callback_query, services_of(context)
    tap = callbacks.parse_blocked_page(query.data)
    user, why = _list_owner(update, context, tap[0] if tap else None)
    if user is None:
        await _answer(update, t(_tapper_language(svc, update), why))
        return
    await best_effort(query.answer(), "blocked page answer")
    await _show_page(update, context, user, tap[1])
