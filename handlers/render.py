"""How a pick looks in Telegram: caption, 👍/👎 keyboard, cover photo (or text when it fails)."""

from __future__ import annotations

import asyncio
import html
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import BadRequest, TelegramError
from telegram.ext import ExtBot

from bilibili import BilibiliError
from handlers.delivery import maybe_delivered, with_retries, worth_retrying
from handlers.i18n import t
from handlers.ratelimit import BULK
from jobs.picks import ChosenPick
from jobs.services import Services
from recommender import Reason
from storage import picks
from storage.models import User

log = logging.getLogger(__name__)

VIDEO_URL = "https://www.bilibili.com/video/{bvid}"
FEEDBACK_PREFIX = "fb"
_TITLE_MAX = 300
REASON_KINDS = ("tag", "uploader", "similar", "popular", "explore")


def reason_text(reason: Reason, lang: str) -> str:
    return t(lang, f"reason_{reason.kind}", detail=reason.detail[:60])


def pick_caption(chosen: ChosenPick, lang: str) -> str:
    video, pick = chosen.video, chosen.pick
    title = video.title if len(video.title) <= _TITLE_MAX else video.title[:_TITLE_MAX] + "…"
    caption = (
        f"<b>{html.escape(title)}</b>\n"
        f"{t(lang, 'by')} {html.escape(video.owner_name[:64])} · "
        f"{t(lang, 'rating')} <b>{pick.rating:02d}/100</b>\n"
        f"💡 {html.escape(reason_text(pick.reason, lang))}\n"
        f"{VIDEO_URL.format(bvid=video.bvid)}"
    )
    return caption


def feedback_callback(shown_id: int, label: int) -> str:
    return f"{FEEDBACK_PREFIX}:{shown_id}:{label:+d}"


def feedback_keyboard(shown_id: int, current: int, lang: str) -> InlineKeyboardMarkup:
    """👍/👎 buttons; the chosen one carries a check mark (and tapping it again clears it)."""
    like = t(lang, "btn_like") + (" ✓" if current > 0 else "")
    dislike = t(lang, "btn_dislike") + (" ✓" if current < 0 else "")
    return InlineKeyboardMarkup(
        [[
            InlineKeyboardButton(like, callback_data=feedback_callback(shown_id, 1)),
            InlineKeyboardButton(dislike, callback_data=feedback_callback(shown_id, -1)),
        ]]
    )  # fmt: skip


async def cover_for(services: Services, chosen: ChosenPick) -> bytes | str | None:
    """Cover bytes (or a known Telegram file_id); None when bilibili won't give it."""
    cached = services.covers.get(chosen.video.bvid)
    if cached is not None:
        return cached
    if not chosen.video.cover:
        return None
    try:
        # fail_fast: during bilibili's risk pause the pick goes out as text instead of waiting minutes
        data = await services.bili.fetch_cover(chosen.video.cover, fail_fast=True)
    except BilibiliError as exc:
        log.info("cover unavailable for %s: %s", chosen.video.bvid, type(exc).__name__)
        return None
    services.covers.put(chosen.video.bvid, data)
    return data


async def send_pick(
    bot: ExtBot, services: Services, chat_id: int, chosen: ChosenPick, shown_id: int,
    lang: str, cover: bytes | str | None, bulk: bool = False,
) -> Message:  # fmt: skip
    """One message per pick: the cover photo with the caption, or plain text if the photo is refused.

    `bulk` sends (the digest) yield to replies users are waiting for (see handlers/ratelimit.py).
    """
    caption = pick_caption(chosen, lang)
    keyboard = feedback_keyboard(shown_id, 0, lang)
    priority = BULK if bulk else None
    if cover is not None:
        try:
            message = await bot.send_photo(chat_id, cover, caption=caption, reply_markup=keyboard,
                                           rate_limit_args=priority)  # fmt: skip
            if message.photo:
                services.covers.put(chosen.video.bvid, message.photo[-1].file_id)
            return message
        except TelegramError as exc:
            # Text only when the photo surely did not arrive: refused (a bad image, a 502) or never
            # sent. Blocked or rate-limited: the caller stops or waits. Maybe delivered: a text copy
            # would be a duplicate.
            if not (isinstance(exc, BadRequest) or worth_retrying(exc)):
                raise
            log.warning("photo refused for %s (%s); sending text", chosen.video.bvid, exc)
    return await with_retries(
        lambda: bot.send_message(chat_id, caption, reply_markup=keyboard, rate_limit_args=priority)
    )


def encode_reason(reason: Reason) -> str:
    return f"{reason.kind}\t{reason.detail}"


def decode_reason(stored: str) -> Reason:
    kind, _, detail = stored.partition("\t")
    return Reason(kind=kind if kind in REASON_KINDS else "popular", detail=detail)


def record_picks(services: Services, user: User, chosen: list[ChosenPick], source: str) -> list[int]:
    """Shown rows are written before sending: a crash can lose a message, never repeat one."""
    return picks.record_shown(
        services.db, user.id,
        [picks.ShownPick(c.pick.bvid, c.pick.rating, encode_reason(c.pick.reason)) for c in chosen],
        source, services.now(), user.chat_id,
    )  # fmt: skip


async def send_recorded(
    bot: ExtBot, services: Services, user: User, items: list[tuple[ChosenPick, int]],
    pace_s: float = 0.0, bulk: bool = False,
) -> int:  # fmt: skip
    """Send recorded picks in order; returns how many Telegram confirmed.

    A pick that may have arrived (the connection broke after the request left) is skipped, not
    resent; a refusal (blocked, rate limit, Telegram down) stops the page and is raised.

    `pace_s` spaces messages to one chat (Telegram allows about one per second per chat).
    `bulk` (the digest): lower priority than replies, and resumable after a crash, so each send
    records that it started (a resumed digest never repeats a send that may have arrived).
    """
    covers = await asyncio.gather(*(cover_for(services, chosen) for chosen, _ in items))
    message_ids: dict[int, int] = {}  # written once for the page (a crash loses ids, never a send)
    try:
        for index, ((chosen, shown_id), cover) in enumerate(zip(items, covers, strict=True)):
            if index and pace_s:
                await asyncio.sleep(pace_s)
            if isinstance(known := services.covers.get(chosen.video.bvid), str):
                cover = known  # a file_id learnt since the covers were fetched: no re-upload
            if bulk and not picks.mark_send_started(services.db, shown_id, services.now()):
                continue  # another process (a rolling deploy) is sending this one
            try:
                message = await send_pick(bot, services, user.chat_id, chosen, shown_id, user.language, cover, bulk)
            except TelegramError as exc:
                if maybe_delivered(exc):
                    # It may be in the chat already: never resent (a digest keeps its send mark).
                    log.warning("pick %d may have arrived (%s); not resent", shown_id, exc)
                    continue
                if bulk:
                    picks.mark_send_started(services.db, shown_id, None)  # refused: a later attempt may send it
                raise
            message_ids[shown_id] = message.message_id
    finally:
        picks.set_shown_messages(services.db, message_ids)
    return len(message_ids)


async def deliver_picks(
    bot: ExtBot, services: Services, user: User, chosen: list[ChosenPick], source: str,
    pace_s: float = 0.0,
) -> int:  # fmt: skip
    shown_ids = record_picks(services, user, chosen, source)
    return await send_recorded(bot, services, user, list(zip(chosen, shown_ids, strict=True)), pace_s)
