"""How a /search or /popular page looks: one compact message, a line per video, ◀ ▶ buttons."""

from __future__ import annotations

import html
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bilibili.partitions import OVERALL, PARTITIONS, Partition
from delivery import callbacks
from delivery.i18n import t

PAGE_SIZE = 10  # lines per message: one screen on a phone
_TITLE_MAX = 48
_PARTITION_ROW = 3


@dataclass(frozen=True)
class Line:
    """One video of a /search or /popular page."""

    bvid: str
    title: str
    owner_name: str
    duration: int  # seconds
    rating: int | None  # NN/100 for a user with a model, else None
    paywalled: bool = False  # paid or members-only: listed as bilibili lists it, marked (never a pick)

    @property
    def url(self) -> str:
        return f"https://www.bilibili.com/video/{self.bvid}"


@dataclass(frozen=True)
class Page:
    lines: list[Line]
    page: int  # 1-based
    num_pages: int
    personal: bool  # ordered (and rated) by the user's model
    hidden: int = 0  # lines of bilibili's list the user's block rules left out


def duration_text(seconds: int) -> str:
    """12:34, or 1:02:03 past an hour; "" when unknown."""
    if seconds <= 0:
        return ""
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def partition_name(part: Partition | None, lang: str) -> str:
    if part is None:
        return t(lang, "popular_overall")
    return part.zh if lang == "zh" else part.en


def _line(n: int, line: Line, lang: str) -> str:
    title = line.title if len(line.title) <= _TITLE_MAX else line.title[: _TITLE_MAX - 1] + "…"
    parts = [f"<b>{line.rating:02d}/100</b>"] if line.rating is not None else []
    parts.append(f'<a href="{line.url}">{html.escape(title)}</a>')
    parts.append(html.escape(line.owner_name[:32]))
    if duration := duration_text(line.duration):
        parts.append(duration)
    if line.paywalled:
        parts.append(t(lang, "discover_paywalled"))
    return f"{n}. " + " · ".join(parts)


def page_text(heading: str, page: Page, lang: str) -> str:
    start = (page.page - 1) * PAGE_SIZE + 1
    lines = [f"{heading} · {t(lang, 'discover_page', page=page.page, pages=max(page.num_pages, page.page))}"]
    lines += [_line(start + i, line, lang) for i, line in enumerate(page.lines)]
    if not page.personal:
        lines.append(t(lang, "discover_unrated"))
    return "\n".join(lines)


def search_heading(query: str, lang: str) -> str:
    return t(lang, "search_heading", words=html.escape(query[:64]))


def popular_heading(part: Partition | None, lang: str) -> str:
    return t(lang, "popular_heading", name=html.escape(partition_name(part, lang)))


def page_keyboard(token: str, page: Page) -> InlineKeyboardMarkup | None:
    buttons = []
    if page.page > 1:
        buttons.append(InlineKeyboardButton("◀", callback_data=callbacks.discover_page(token, page.page - 1)))
    if page.page < page.num_pages:
        buttons.append(InlineKeyboardButton("▶", callback_data=callbacks.discover_page(token, page.page + 1)))
    return InlineKeyboardMarkup([buttons]) if buttons else None


def partition_keyboard(telegram_id: int, lang: str) -> InlineKeyboardMarkup:
    """The whole site first, then the fourteen v2 partitions, three to a row."""
    choices = [(OVERALL, None), *((p.id, p) for p in PARTITIONS)]
    buttons = [
        InlineKeyboardButton(partition_name(p, lang), callback_data=callbacks.partition_choice(telegram_id, rid))
        for rid, p in choices
    ]
    return InlineKeyboardMarkup([buttons[i : i + _PARTITION_ROW] for i in range(0, len(buttons), _PARTITION_ROW)])


def partition_names() -> str:
    """Every name /popular takes, for the reply to an unknown one."""
    return html.escape(", ".join(f"{p.zh} ({p.en})" for p in PARTITIONS))
