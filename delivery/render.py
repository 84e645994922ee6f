"""How a pick looks in Telegram: the caption and its keyboard (👍/👎 first, the rest behind "⋯")."""

from __future__ import annotations

import html
import time

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from delivery import callbacks
from delivery.card import PickCard
from delivery.i18n import t
from recommender import Reason

VIDEO_URL = "https://www.bilibili.com/video/{bvid}"
_TITLE_MAX = 300
TAG_BUTTONS = 3  # "🚫 #tag" buttons for the pick's first tags (their index travels in the data)
_UPLOADER_LABEL_MAX = 24
_TAG_LABEL_MAX = 16


def reason_text(reason: Reason, lang: str) -> str:
    return t(lang, f"reason_{reason.kind}", detail=reason.detail[:60])


def duration_text(seconds: int) -> str:
    """12:34, or 1:02:03 past an hour."""
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _scaled(n: int, unit: int, suffix: str) -> str:
    value = n / unit
    text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
    return text.removesuffix(".0") + suffix


def count_text(n: int, lang: str) -> str:
    """A view count as people read it: 1.2K / 3.4M / 1.2B in English, 1.2万 / 3.4亿 in Chinese."""
    steps = (
        ((100_000_000, "亿"), (10_000, "万"))
        if lang == "zh"
        else ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K"))
    )
    for i, (unit, suffix) in enumerate(steps):
        if n >= unit:
            text = _scaled(n, unit, suffix)
            if i and float(text.removesuffix(suffix)) * unit >= steps[i - 1][0]:
                return "1" + steps[i - 1][1]  # 999,960 rounds to "1000K": that is "1M"
            return text
    return str(n)


def age_text(seconds: int, lang: str) -> str:
    """How long ago: just now, 5 hours, 3 days, 2 months, 1 year."""
    seconds = max(seconds, 0)
    for size, key in ((365 * 86400, "age_years"), (30 * 86400, "age_months"), (86400, "age_days"), (3600, "age_hours")):
        if seconds >= size:
            n = seconds // size
            return t(lang, key + ("_one" if n == 1 else ""), n=n)
    return t(lang, "age_now")


def meta_line(card: PickCard, lang: str, now: int | None = None) -> str:
    """duration · views · age, each part only when known ("" when none is)."""
    now = int(time.time()) if now is None else now
    parts = []
    if card.duration > 0:
        parts.append(duration_text(card.duration))
    if card.views > 0:
        parts.append(t(lang, "card_views", count=count_text(card.views, lang)))
    if card.pubdate > 0:
        parts.append(age_text(now - card.pubdate, lang))
    return " · ".join(parts)


def pick_caption(card: PickCard, lang: str, now: int | None = None) -> str:
    title = card.title if len(card.title) <= _TITLE_MAX else card.title[:_TITLE_MAX] + "…"
    meta = meta_line(card, lang, now)
    return (
        f"<b>{html.escape(title)}</b>\n"
        f"{t(lang, 'by')} {html.escape(card.owner_name[:64])} · "
        f"{t(lang, 'rating')} <b>{card.rating:02d}/100</b>\n"
        + (f"{html.escape(meta)}\n" if meta else "")
        + f"💡 {html.escape(reason_text(card.reason, lang))}\n"
        f"{VIDEO_URL.format(bvid=card.bvid)}"
    )


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def feedback_keyboard(
    shown_id: int,
    current: int,
    lang: str,
    *,
    card: PickCard | None = None,
    unfolded: bool = False,
    saved: bool = False,
    more_for: int | None = None,
) -> InlineKeyboardMarkup:
    """Every variant of a pick's keyboard, so any tap can rebuild the one the message shows.

    Row 1 is always 👍/👎 alone; the chosen one carries a check mark (tapping it again clears it).
    With `card`: "▶ Open" (the video page) and "⋯", which unfolds (`unfolded`) watch later (✓ saved
    once `saved`), "more like this", not this uploader, not this tag (the first TAG_BUTTONS tags), and
    folds back. `more_for` (a Telegram id): "More ▸", the next /recommend page, on the page's last pick.
    """
    like = t(lang, "btn_like") + (" ✓" if current > 0 else "")
    dislike = t(lang, "btn_dislike") + (" ✓" if current < 0 else "")
    rows = [
        [
            InlineKeyboardButton(like, callback_data=callbacks.feedback(shown_id, 1)),
            InlineKeyboardButton(dislike, callback_data=callbacks.feedback(shown_id, -1)),
        ]
    ]
    last: list[InlineKeyboardButton] = []
    if card is not None:
        if unfolded:
            rows += _menu_rows(shown_id, lang, card, saved)
        last.append(InlineKeyboardButton(t(lang, "btn_open"), url=VIDEO_URL.format(bvid=card.bvid)))
        last.append(
            InlineKeyboardButton(
                t(lang, "btn_fold" if unfolded else "btn_menu"),
                callback_data=callbacks.pick_menu(shown_id, unfold=not unfolded),
            )
        )
    if more_for is not None:
        last.append(InlineKeyboardButton(t(lang, "btn_next_page"), callback_data=callbacks.more(more_for)))
    if last:
        rows.append(last)
    return InlineKeyboardMarkup(rows)


def _menu_rows(shown_id: int, lang: str, card: PickCard, saved: bool) -> list[list[InlineKeyboardButton]]:
    rows = [
        [
            InlineKeyboardButton(
                t(lang, "btn_saved" if saved else "btn_later"), callback_data=callbacks.watch_later(shown_id)
            ),
            InlineKeyboardButton(t(lang, "btn_similar"), callback_data=callbacks.similar(shown_id)),
        ]
    ]
    if card.owner_name:
        name = _short(card.owner_name, _UPLOADER_LABEL_MAX)
        rows.append(
            [
                InlineKeyboardButton(
                    t(lang, "btn_block_uploader", name=name), callback_data=callbacks.block_uploader(shown_id)
                )
            ]
        )
    tags = [
        InlineKeyboardButton(
            t(lang, "btn_block_tag", tag=_short(tag, _TAG_LABEL_MAX)),
            callback_data=callbacks.block_tag(shown_id, index),
        )
        for index, tag in enumerate(card.tags[:TAG_BUTTONS])
    ]
    if tags:
        rows.append(tags)
    return rows


def keyboard_state(markup: InlineKeyboardMarkup | None, shown_id: int) -> tuple[bool, int | None]:
    """(unfolded?, the More ▸ button's Telegram id or None) of the keyboard a message shows now: a tap
    rebuilds that same variant (a 👍 keeps the other buttons)."""
    data = [b.callback_data for row in (markup.inline_keyboard if markup else ()) for b in row if b.callback_data]
    unfolded = callbacks.pick_menu(shown_id, unfold=False) in data
    more_for = next((m for d in data if (m := callbacks.parse_more(d)) is not None), None)
    return unfolded, more_for
