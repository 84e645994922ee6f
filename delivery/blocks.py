"""How /blocked looks: the user's rules, numbered, a page at a time, with a ✕ button to undo each."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bilibili.partitions import BY_ID
from delivery import callbacks
from delivery.i18n import t
from storage.models import BlockRule

RULES_PER_PAGE = 20  # the text stays far under Telegram's 4,096 characters
_BUTTONS_PER_ROW = 5
_SHOWN_MAX = 60  # characters of a tag, keyword or pattern in a line


def minutes_range(value: str) -> tuple[int, int]:
    """A duration rule's "<min s>-<max s>" as whole minutes."""
    low, _, high = value.partition("-")
    return int(low) // 60, int(high) // 60


def rule_text(rule: BlockRule, lang: str) -> str:
    """One rule as a line of /blocked (HTML-escaped)."""
    value = html.escape(rule.value[:_SHOWN_MAX])
    if rule.kind == "uploader":
        return t(lang, "blocked_line_uploader", name=html.escape(rule.label[:64] or rule.value))
    if rule.kind == "partition":
        part = BY_ID.get(int(rule.value)) if rule.value.isdigit() else None
        name = (part.zh if lang == "zh" else part.en) if part else rule.value
        return t(lang, "blocked_line_partition", name=html.escape(name))
    if rule.kind == "duration":
        low, high = minutes_range(rule.value)
        return t(lang, "blocked_line_duration", low=low, high=high)
    return t(lang, f"blocked_line_{rule.kind}", value=value)


def page_count(own: Sequence[BlockRule]) -> int:
    return max(1, math.ceil(len(own) / RULES_PER_PAGE))


def blocked_message(
    telegram_id: int, rules: Sequence[BlockRule], page: int, max_rules: int, lang: str
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The text and keyboard of /blocked at `page` (clamped to the pages there are)."""
    own = [r for r in rules if r.source == "user"]
    from_bilibili = len(rules) - len(own)
    if not own and not from_bilibili:
        return t(lang, "blocked_empty"), None
    pages = page_count(own)
    page = min(max(page, 1), pages)
    first = (page - 1) * RULES_PER_PAGE
    shown = own[first : first + RULES_PER_PAGE]
    lines = [t(lang, "blocked_header", count=len(own), max=max_rules)]
    lines += [f"{first + i + 1}. {rule_text(rule, lang)}" for i, rule in enumerate(shown)]
    if from_bilibili:
        lines.append(t(lang, "blocked_bilibili", count=from_bilibili))
    if shown:
        lines.append(t(lang, "blocked_footer"))
    buttons = [
        InlineKeyboardButton(f"✕{first + i + 1}", callback_data=callbacks.unblock(telegram_id, rule.id, page))
        for i, rule in enumerate(shown)
    ]
    rows = [buttons[i : i + _BUTTONS_PER_ROW] for i in range(0, len(buttons), _BUTTONS_PER_ROW)]
    turn = []
    if page > 1:
        turn.append(InlineKeyboardButton("◀", callback_data=callbacks.blocked_page(telegram_id, page - 1)))
    if page < pages:
        turn.append(InlineKeyboardButton("▶", callback_data=callbacks.blocked_page(telegram_id, page + 1)))
    if turn:
        rows.append(turn)
        lines.insert(1, t(lang, "blocked_page", page=page, pages=pages))
    return "\n".join(lines), InlineKeyboardMarkup(rows) if rows else None
