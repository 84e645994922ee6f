"""How picks go out: recorded first, cover photo (or text when it fails), never sent twice, resumable."""

from __future__ import annotations

import asyncio
import logging

from telegram import Message
from telegram.error import BadRequest, TelegramError
from telegram.ext import ExtBot

from bilibili import BilibiliError
from delivery.card import PickCard, decode_reason
from delivery.outcome import chat_gone, maybe_delivered, with_retries, worth_retrying
from delivery.ratelimit import BULK
from delivery.render import feedback_keyboard, pick_caption
from services import Services
from storage import catalogue, picks
from storage.models import Shown, User

log = logging.getLogger(__name__)


async def cover_for(services: Services, card: PickCard, someone_waits: bool) -> bytes | str | None:
    """Cover bytes (or a known Telegram file_id); None when bilibili won't give it.

    `someone_waits` (a /recommend): its fetch takes bilibili's next free slots; otherwise (a digest)
    it waits behind those, so a person asking during the digest minute is not behind 300 covers.
    """
    cached = services.covers.get(card.bvid)
    if cached is not None:
        return cached
    if not card.cover:
        return None
    try:
        # fail_fast: during bilibili's risk pause the pick goes out as text instead of waiting minutes
        with services.bili.urgent() if someone_waits else services.bili.background():
            data = await services.bili.fetch_cover(card.cover, fail_fast=True)
    except BilibiliError as exc:
        log.info("cover unavailable for %s: %s", card.bvid, type(exc).__name__)
        return None
    services.covers.put(card.bvid, data)
    return data


async def send_pick(
    bot: ExtBot,
    services: Services,
    chat_id: int,
    card: PickCard,
    shown_id: int,
    lang: str,
    cover: bytes | str | None,
    bulk: bool = False,
    silent: bool = False,
    more_for: int | None = None,
) -> Message:
    """One message per pick: the cover photo with the caption, or plain text if the photo is refused.

    `bulk` sends (the digest) yield to replies users are waiting for (see delivery/ratelimit.py).
    `silent`: sent with disable_notification (a digest's picks; its header rang already).
    `more_for` (a Telegram id): the pick carries "More ▸", the next /recommend page.
    """
    caption = pick_caption(card, lang, services.now())
    keyboard = feedback_keyboard(shown_id, 0, lang, card=card, more_for=more_for)
    priority = BULK if bulk else None
    if cover is not None:
        try:
            message = await bot.send_photo(
                chat_id,
                cover,
                caption=caption,
                reply_markup=keyboard,
                disable_notification=silent,
                rate_limit_args=priority,
            )
            if message.photo:
                services.covers.put(card.bvid, message.photo[-1].file_id)
            return message
        except TelegramError as exc:
            # Text only when the photo surely did not arrive: refused (a bad image, a 502) or never
            # sent. Blocked, a chat that is gone, or rate-limited: the caller stops or waits. Maybe
            # delivered: a text copy would be a duplicate.
            if chat_gone(exc) or not (isinstance(exc, BadRequest) or worth_retrying(exc)):
                raise
            log.warning("photo refused for %s (%s); sending text", card.bvid, exc)
    return await with_retries(
        lambda: bot.send_message(
            chat_id, caption, reply_markup=keyboard, disable_notification=silent, rate_limit_args=priority
        )
    )


def record_picks(services: Services, user: User, cards: list[PickCard], source: str) -> list[int]:
    """Shown rows are written before sending: a crash can lose a message, never repeat one."""
    return picks.record_shown(services.db, user.id, [c.shown() for c in cards], source, services.now(), user.chat_id)


def unsent_cards(services: Services, shown_ids: list[int]) -> list[tuple[PickCard, int]]:
    """Recorded picks not delivered and not in flight when a previous run died (that one may have
    arrived): what a resumed digest still sends, rebuilt from the shown rows."""
    rows = [
        r for r in picks.get_shown_many(services.db, shown_ids) if r.message_id is None and r.send_started_at is None
    ]
    videos = catalogue.get_videos(services.db, [r.bvid for r in rows])
    return [(PickCard.of(videos[r.bvid], r.rating, decode_reason(r.reason)), r.id) for r in rows if r.bvid in videos]


def shown_card(services: Services, shown: Shown) -> PickCard | None:
    """The card a recorded pick showed, rebuilt to redraw its keyboard (None: the video is gone)."""
    video = catalogue.get_videos(services.db, [shown.bvid]).get(shown.bvid)
    return PickCard.of(video, shown.rating, decode_reason(shown.reason)) if video is not None else None


async def send_recorded(
    bot: ExtBot,
    services: Services,
    user: User,
    items: list[tuple[PickCard, int]],
    pace_s: float = 0.0,
    bulk: bool = False,
    silent: bool = False,
    more_for: int | None = None,
) -> int:
    """Send recorded picks in order (`silent`: without a sound); returns how many Telegram confirmed.
    The last carries "More ▸" for `more_for` (a Telegram id) when given.

    A pick that may have arrived (the connection broke after the request left) is skipped, not
    resent; a refusal (blocked, rate limit, Telegram down) stops the page and is raised.

    `pace_s` spaces messages to one chat (Telegram allows about one per second per chat).
    `bulk` (the digest): lower priority than replies (Telegram sends and bilibili cover fetches), and
    resumable after a crash, so each send records that it started (a resumed digest never repeats a
    send that may have arrived).
    """
    covers = await asyncio.gather(*(cover_for(services, card, someone_waits=not bulk) for card, _ in items))
    message_ids: dict[int, int] = {}  # written once for the page (a crash loses ids, never a send)
    try:
        for index, ((card, shown_id), cover) in enumerate(zip(items, covers, strict=True)):
            if index and pace_s:
                await asyncio.sleep(pace_s)
            if isinstance(known := services.covers.get(card.bvid), str):
                cover = known  # a file_id learnt since the covers were fetched: no re-upload
            if bulk and not picks.mark_send_started(services.db, shown_id, services.now()):
                continue  # another process (a rolling deploy) is sending this one
            try:
                last = index == len(items) - 1
                message = await send_pick(
                    bot,
                    services,
                    user.chat_id,
                    card,
                    shown_id,
                    user.language,
                    cover,
                    bulk,
                    silent,
                    more_for=more_for if last else None,
                )
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
    bot: ExtBot,
    services: Services,
    user: User,
    cards: list[PickCard],
    source: str,
    pace_s: float = 0.0,
    more_for: int | None = None,
) -> int:
    """/recommend's page: recorded, then sent in order (the last with "More ▸" for `more_for`)."""
    shown_ids = record_picks(services, user, cards, source)
    return await send_recorded(bot, services, user, list(zip(cards, shown_ids, strict=True)), pace_s, more_for=more_for)
