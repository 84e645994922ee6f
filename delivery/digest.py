"""How a digest opens and the forms it takes beside one photo per pick: the header that rings (the
picks after it are silent), the compact digest (one text message, a line per pick) and the short
line of a day with nothing new."""

from __future__ import annotations

import html
import logging
from datetime import date

from telegram import LinkPreviewOptions, Message
from telegram.error import TelegramError
from telegram.ext import ExtBot

from delivery.card import PickCard
from delivery.i18n import t
from delivery.outcome import maybe_delivered, with_retries
from delivery.ratelimit import BULK
from delivery.render import VIDEO_URL, reason_text
from services import Services
from storage import picks
from storage.models import User

log = logging.getLogger(__name__)

_TITLE_MAX = 48  # as a /search line: one line on a phone
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)  # ten links: no card for the first one


def header_text(lang: str, count: int, local_date: str) -> str:
    """ "Your 5 picks for Tuesday": the digest's local date names the day."""
    weekday = date.fromisoformat(local_date).weekday()
    return t(lang, "digest_header", count=count, day=t(lang, f"weekday_{weekday}"))


def compact_line(n: int, card: PickCard, lang: str) -> str:
    """Rating, linked title, reason: a /search line with the pick's reason for its uploader."""
    title = card.title if len(card.title) <= _TITLE_MAX else card.title[: _TITLE_MAX - 1] + "…"
    link = f'<a href="{VIDEO_URL.format(bvid=card.bvid)}">{html.escape(title)}</a>'
    return f"{n}. <b>{card.rating:02d}/100</b> · {link} · 💡 {html.escape(reason_text(card.reason, lang))}"


def compact_text(header: str, cards: list[PickCard], lang: str) -> str:
    return "\n".join([f"<b>{html.escape(header)}</b>", *(compact_line(n, c, lang) for n, c in enumerate(cards, 1))])


async def send_note(bot: ExtBot, user: User, text: str) -> Message:
    """One digest message of its own (the header, the nothing-new line): with a sound."""
    return await with_retries(lambda: bot.send_message(user.chat_id, text, rate_limit_args=BULK))


async def send_compact(
    bot: ExtBot, services: Services, user: User, header: str, items: list[tuple[PickCard, int]]
) -> int:
    """The recorded picks as one text message; how many it carried. Each pick is marked before the
    send, as a photo digest marks them (a resumed digest never repeats one that may have arrived)."""
    now = services.now()
    started = [(card, shown_id) for card, shown_id in items if picks.mark_send_started(services.db, shown_id, now)]
    if not started:
        return 0  # another process (a rolling deploy) sends them
    text = compact_text(header, [card for card, _ in started], user.language)
    try:
        message = await with_retries(
            lambda: bot.send_message(user.chat_id, text, link_preview_options=_NO_PREVIEW, rate_limit_args=BULK)
        )
    except TelegramError as exc:
        if maybe_delivered(exc):
            log.warning("compact digest of user %d may have arrived (%s); not resent", user.id, exc)
            return 0
        for _, shown_id in started:  # refused: a later attempt may send them
            picks.mark_send_started(services.db, shown_id, None)
        raise
    picks.set_shown_messages(services.db, {shown_id: message.message_id for _, shown_id in started})
    return len(started)
