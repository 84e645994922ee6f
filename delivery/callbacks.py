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
