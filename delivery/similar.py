"""How a /similar reply and a /history page look: one compact message, a line per video (as /search's)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

import recommender as rec
from delivery import callbacks
from delivery.discover import duration_text
from delivery.i18n import t

HISTORY_PAGE_SIZE = 10
_TITLE_MAX = 48
_SOURCE_MAX = 32
_TAP_MARK = {1: "✓", -1: "✗", 0: "·"}


@dataclass(frozen=True)
class SimilarLine:
    """One video of a /similar reply."""

    bvid: str
    title: str
    owner_name: str
    duration: int  # seconds
    rating: int | None  # NN/100 for a user with a model, else None
    reason: rec.SimilarReason


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _link(bvid: str, title: str) -> str:
    return f'<a href="https://www.bilibili.com/video/{bvid}">{html.escape(_short(title or bvid, _TITLE_MAX))}</a>'


def reason_text(reason: rec.SimilarReason, source_title: str, lang: str) -> str:
    """Why a neighbour is listed, in the user's language."""
    if reason.kind == "cowatch":
        return t(lang, "similar_reason_cowatch", title=html.escape(_short(source_title, _SOURCE_MAX)))
    if reason.kind == "tags":
        return t(lang, "similar_reason_tags", tags=html.escape(", ".join(reason.detail)))
    if reason.kind == "uploader":
        return t(lang, "similar_reason_uploader")
    if reason.kind == "related":
        return t(lang, "similar_reason_related")
    return t(lang, "similar_reason_partition", name=html.escape(reason.detail[0] if reason.detail else "?"))


def similar_text(source_bvid: str, source_title: str, lines: Sequence[SimilarLine], personal: bool, lang: str) -> str:
    out = [t(lang, "similar_heading", title=_link(source_bvid, source_title))]
    for n, line in enumerate(lines, 1):
        parts = [f"<b>{line.rating:02d}/100</b>"] if line.rating is not None else []
        parts.append(_link(line.bvid, line.title))
        parts.append(html.escape(line.owner_name[:32]))
        if duration := duration_text(line.duration):
            parts.append(duration)
        out.append(f"{n}. " + " · ".join(parts))
        out.append(f"    ↳ <i>{reason_text(line.reason, source_title, lang)}</i>")
    if not personal:
        out.append(t(lang, "similar_unrated"))
    return "\n".join(out)


def history_text(rows: Sequence, page: int, num_pages: int, timezone: str, lang: str) -> str:
    """`rows`: storage.picks.HistoryRow, newest first; ✓ 👍'd, ✗ 👎'd, · not tapped."""
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    start = (page - 1) * HISTORY_PAGE_SIZE + 1
    out = [t(lang, "history_heading", page=page, pages=max(num_pages, page))]
    for n, row in enumerate(rows, start):
        day = datetime.fromtimestamp(row.shown_at, zone).strftime("%m-%d %H:%M")
        out.append(f"{n}. {_TAP_MARK.get(row.label, '·')} {_link(row.bvid, row.title)} · {row.rating:02d}/100 · {day}")
    out.append(t(lang, "history_legend"))
    return "\n".join(out)


def history_keyboard(telegram_id: int, page: int, num_pages: int) -> InlineKeyboardMarkup | None:
    buttons = []
    if page > 1:
        buttons.append(InlineKeyboardButton("◀", callback_data=callbacks.history_page(telegram_id, page - 1)))
    if page < num_pages:
        buttons.append(InlineKeyboardButton("▶", callback_data=callbacks.history_page(telegram_id, page + 1)))
    return InlineKeyboardMarkup([buttons]) if buttons else None
