"""How a pick looks in Telegram: the caption and the 👍/👎 keyboard."""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from delivery import callbacks
from delivery.card import PickCard
from delivery.i18n import t
from recommender import Reason

VIDEO_URL = "https://www.bilibili.com/video/{bvid}"
_TITLE_MAX = 300


def reason_text(reason: Reason, lang: str) -> str:
    return t(lang, f"reason_{reason.kind}", detail=reason.detail[:60])


def pick_caption(card: PickCard, lang: str) -> str:
    title = card.title if len(card.title) <= _TITLE_MAX else card.title[:_TITLE_MAX] + "…"
    return (
        f"<b>{html.escape(title)}</b>\n"
        f"{t(lang, 'by')} {html.escape(card.owner_name[:64])} · "
        f"{t(lang, 'rating')} <b>{card.rating:02d}/100</b>\n"
        f"💡 {html.escape(reason_text(card.reason, lang))}\n"
        f"{VIDEO_URL.format(bvid=card.bvid)}"
    )


def feedback_keyboard(shown_id: int, current: int, lang: str) -> InlineKeyboardMarkup:
    """👍/👎 buttons; the chosen one carries a check mark (and tapping it again clears it)."""
    like = t(lang, "btn_like") + (" ✓" if current > 0 else "")
    dislike = t(lang, "btn_dislike") + (" ✓" if current < 0 else "")
    return InlineKeyboardMarkup(
        [[
            InlineKeyboardButton(like, callback_data=callbacks.feedback(shown_id, 1)),
            InlineKeyboardButton(dislike, callback_data=callbacks.feedback(shown_id, -1)),
        ]]
    )  # fmt: skip
