"""Every button's callback data, defined once: made here, matched here (bot.py's patterns, handlers)."""

from __future__ import annotations

import re

FEEDBACK_PATTERN = r"^fb:"
LOGIN_PATTERN = r"^login:"
SETTINGS_PATTERN = r"^set:"
FORGET_PATTERN = r"^forget:"
LANGUAGE_PATTERN = r"^lang:"

_FEEDBACK = re.compile(r"^fb:(\d{1,18}):([+-]1)$")

LOGIN_REPLACE, LOGIN_KEEP, LOGIN_NEW = "login:replace", "login:keep", "login:new"
SETTINGS_PAUSE, SETTINGS_RESUME = "set:pause", "set:resume"
SETTINGS_FEWER, SETTINGS_MORE = "set:picks:-1", "set:picks:+1"
FORGET_NO = "forget:no"
FORGET_YES_PREFIX = "forget:yes"
_FORGET_YES = re.compile(r"^forget:yes:(\d{1,12})$")
# /reset's confirmation, like /forget's: stamped with when it was offered (it expires).
RESET_PATTERN = r"^reset:"
RESET_NO = "reset:no"
RESET_YES_PREFIX = "reset:yes"
_RESET_YES = re.compile(r"^reset:yes:(\d{1,12})$")
# /settings: snooze the digest for N days; the compact (one message) or the photo digest.
SETTINGS_SNOOZE_1, SETTINGS_SNOOZE_7 = "set:snooze:1", "set:snooze:7"
SETTINGS_COMPACT_ON, SETTINGS_COMPACT_OFF = "set:compact:on", "set:compact:off"
SNOOZE_DAYS = {SETTINGS_SNOOZE_1: 1, SETTINGS_SNOOZE_7: 7}


def feedback(shown_id: int, label: int) -> str:
    """👍 (+1) or 👎 (-1) on the pick recorded as `shown_id`."""
    return f"fb:{shown_id}:{label:+d}"


def parse_feedback(data: str | None) -> tuple[int, int] | None:
    """(shown_id, label) of a well-formed 👍/👎 tap, else None."""
    match = _FEEDBACK.match(data or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def forget_yes(offered_at: int) -> str:
    """The /forget confirmation, stamped with when it was offered (it expires)."""
    return f"forget:yes:{offered_at}"


def parse_forget_yes(data: str | None) -> int | None:
    """When a well-formed confirmation was offered, else None."""
    match = _FORGET_YES.match(data or "")
    return int(match.group(1)) if match else None


def reset_yes(offered_at: int) -> str:
    return f"reset:yes:{offered_at}"


def parse_reset_yes(data: str | None) -> int | None:
    """When a well-formed /reset confirmation was offered, else None."""
    match = _RESET_YES.match(data or "")
    return int(match.group(1)) if match else None


# /search and /popular: "dv:<token>:<page>" turns a page of the list kept behind `token`
# (jobs/discover.py); "dvp:<telegram id>:<rid>" picks a partition on /popular's keyboard.
DISCOVER_PATTERN = r"^dv:"
PARTITION_PATTERN = r"^dvp:"
_DISCOVER = re.compile(r"^dv:([A-Za-z0-9_-]{8}):(\d{1,4})$")
_PARTITION = re.compile(r"^dvp:(\d{1,15}):(\d{1,5})$")


def discover_page(token: str, page: int) -> str:
    return f"dv:{token}:{page}"


def parse_discover_page(data: str | None) -> tuple[str, int] | None:
    """(token, page) of a well-formed page button, else None."""
    match = _DISCOVER.match(data or "")
    return (match.group(1), int(match.group(2))) if match else None


def partition_choice(telegram_id: int, rid: int) -> str:
    return f"dvp:{telegram_id}:{rid}"


def parse_partition_choice(data: str | None) -> tuple[int, int] | None:
    """(telegram id the keyboard was made for, partition id), else None."""
    match = _PARTITION.match(data or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


# The chooser names its owner: a forwarded chooser tapped by someone else changes nothing.
_LANGUAGE = re.compile(r"^lang:(en|zh):(\d{1,18})$")


def language(lang: str, telegram_id: int) -> str:
    """/language's button for `lang`, offered to `telegram_id`."""
    return f"lang:{lang}:{telegram_id}"


def parse_language(data: str | None) -> tuple[str, int] | None:
    """(language, owner's telegram id) of a well-formed chooser tap, else None."""
    match = _LANGUAGE.match(data or "")
    return (match.group(1), int(match.group(2))) if match else None


# A pick's further buttons (issues 18 and 19). Each names the pick's shown row; the handler checks
# that row belongs to the tapping user (a forwarded keyboard changes nothing). All stay ≤ 64 bytes.
#   "pk:<shown>:open" / "pk:<shown>:fold"  unfold the "⋯" row / fold it back (edits the keyboard only)
#   "wl:<shown>"                          save to bilibili's watch later (稍后再看)
#   "bu:<shown>"                          never show this pick's uploader again
#   "bt:<shown>:<index>"                  never show this tag again (an index into the pick's tags:
#                                         Chinese tag text overflows 64 bytes)
#   "sim:<shown>"                         /similar for this pick
#   "more:<telegram id>"                  the next /recommend page (under /recommend's cooldown)
PICK_MENU_PATTERN = r"^pk:"
WATCH_LATER_PATTERN = r"^wl:"
BLOCK_UPLOADER_PATTERN = r"^bu:"
BLOCK_TAG_PATTERN = r"^bt:"
SIMILAR_PATTERN = r"^sim:"
MORE_PATTERN = r"^more:"

_PICK_MENU = re.compile(r"^pk:(\d{1,18}):(open|fold)$")
_WATCH_LATER = re.compile(r"^wl:(\d{1,18})$")
_BLOCK_UPLOADER = re.compile(r"^bu:(\d{1,18})$")
_BLOCK_TAG = re.compile(r"^bt:(\d{1,18}):(\d{1,2})$")
_SIMILAR = re.compile(r"^sim:(\d{1,18})$")
_MORE = re.compile(r"^more:(\d{1,18})$")


def pick_menu(shown_id: int, unfold: bool) -> str:
    return f"pk:{shown_id}:{'open' if unfold else 'fold'}"


def parse_pick_menu(data: str | None) -> tuple[int, bool] | None:
    """(shown_id, unfold?) of a well-formed ⋯ / fold tap, else None."""
    match = _PICK_MENU.match(data or "")
    return (int(match.group(1)), match.group(2) == "open") if match else None


def watch_later(shown_id: int) -> str:
    return f"wl:{shown_id}"


def parse_watch_later(data: str | None) -> int | None:
    match = _WATCH_LATER.match(data or "")
    return int(match.group(1)) if match else None


def block_uploader(shown_id: int) -> str:
    return f"bu:{shown_id}"


def parse_block_uploader(data: str | None) -> int | None:
    match = _BLOCK_UPLOADER.match(data or "")
    return int(match.group(1)) if match else None


def block_tag(shown_id: int, index: int) -> str:
    return f"bt:{shown_id}:{index}"


def parse_block_tag(data: str | None) -> tuple[int, int] | None:
    """(shown_id, index into the pick's tags) of a well-formed tap, else None."""
    match = _BLOCK_TAG.match(data or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def similar(shown_id: int) -> str:
    return f"sim:{shown_id}"


def parse_similar(data: str | None) -> int | None:
    match = _SIMILAR.match(data or "")
    return int(match.group(1)) if match else None


def more(telegram_id: int) -> str:
    return f"more:{telegram_id}"


def parse_more(data: str | None) -> int | None:
    """The telegram id the "More ▸" button was made for, else None."""
    match = _MORE.match(data or "")
    return int(match.group(1)) if match else None


# /history: "hs:<telegram id>:<page>" turns its message to another page (the list lives in storage,
# so a button stays good across restarts; only its owner may turn it).
HISTORY_PATTERN = r"^hs:"
_HISTORY = re.compile(r"^hs:(\d{1,18}):(\d{1,6})$")


def history_page(telegram_id: int, page: int) -> str:
    return f"hs:{telegram_id}:{page}"


def parse_history_page(data: str | None) -> tuple[int, int] | None:
    """(owner's telegram id, page) of a well-formed /history page button, else None."""
    match = _HISTORY.match(data or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


# /blocked: "ub:<telegram id>:<rule id>:<page>" removes one rule and shows that page again;
# "blp:<telegram id>:<page>" turns the list's page. Both name the list's owner: a forwarded list
# tapped by someone else changes nothing (and storage removes only the owner's rules anyway).
UNBLOCK_PATTERN = r"^ub:"
BLOCKED_PAGE_PATTERN = r"^blp:"
_UNBLOCK = re.compile(r"^ub:(\d{1,18}):(\d{1,12}):(\d{1,3})$")
_BLOCKED_PAGE = re.compile(r"^blp:(\d{1,18}):(\d{1,3})$")


def unblock(telegram_id: int, rule_id: int, page: int) -> str:
    return f"ub:{telegram_id}:{rule_id}:{page}"


def parse_unblock(data: str | None) -> tuple[int, int, int] | None:
    """(owner's telegram id, rule id, page) of a well-formed undo tap, else None."""
    match = _UNBLOCK.match(data or "")
    return (int(match.group(1)), int(match.group(2)), int(match.group(3))) if match else None


def blocked_page(telegram_id: int, page: int) -> str:
    return f"blp:{telegram_id}:{page}"


def parse_blocked_page(data: str | None) -> tuple[int, int] | None:
    """(owner's telegram id, page) of a well-formed page tap, else None."""
    match = _BLOCKED_PAGE.match(data or "")
    return (int(match.group(1)), int(match.group(2))) if match else None
