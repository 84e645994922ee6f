"""A user's block rules as one filter every source applies before ranking (digest, /recommend,
/search, /popular, /similar): `allowed(rules_of(db, user_id), videos)`.

Keyword patterns run on the `regex` module with a timeout, never on `re`: `re` cannot be interrupted,
so one pattern that backtracks exponentially would stall the event loop for every chat. A pattern is
tried against hostile inputs before it is stored (`check_pattern`); at ranking each match has a
timeout and the whole filter a budget, and a video whose match ran out of time is left out (a block
must hold; a few videos too many hidden is the lesser harm)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, TypeVar

import regex

from bilibili.partitions import partition_tids
from storage import blocks
from storage.db import Database
from storage.models import BlockRule

log = logging.getLogger(__name__)

MAX_PATTERN_LEN = 100
MAX_KEYWORD_LEN = 50
MATCH_TIMEOUT_S = 0.005  # one pattern on one video's text (~400 characters: microseconds when sane)
FILTER_BUDGET_S = 0.1  # every pattern on every candidate of one ranking
PROBE_TIMEOUT_S = 0.02  # one hostile probe when a pattern is checked
_TEXT_MAX = 400  # the title and tags a pattern reads: bounded, so a match's cost is too
_FLAGS = regex.IGNORECASE | regex.V0


class Filterable(Protocol):
    """What the filter reads of a video (recommender.Video fits)."""

    title: str
    owner_mid: int
    tags: Sequence[str]
    tid: int
    duration: int


V = TypeVar("V", bound=Filterable)


@dataclass(frozen=True)
class Rules:
    uploaders: frozenset[int] = frozenset()
    tags: frozenset[str] = frozenset()  # casefolded
    keywords: tuple[str, ...] = ()  # casefolded
    patterns: tuple[regex.Pattern, ...] = ()
    tids: frozenset[int] = frozenset()  # every tid (legacy and 2025) of the blocked partitions
    duration: tuple[int, int] | None = None  # allowed seconds, inclusive

    def __bool__(self) -> bool:
        return bool(self.uploaders or self.tags or self.keywords or self.patterns or self.tids or self.duration)


NO_RULES = Rules()


def rules_from(rows: Sequence[BlockRule]) -> Rules:
    by_kind: dict[str, list[str]] = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row.value)
    duration = None
    if durations := by_kind.get("duration"):
        low, _, high = durations[-1].partition("-")
        duration = (int(low), int(high))
    return Rules(
        uploaders=frozenset(int(v) for v in by_kind.get("uploader", ()) if v.isdigit()),
        tags=frozenset(v.casefold() for v in by_kind.get("tag", ())),
        keywords=tuple(v.casefold() for v in by_kind.get("keyword", ())),
        patterns=tuple(p for v in by_kind.get("regex", ()) if (p := _compiled(v)) is not None),
        tids=frozenset(t for v in by_kind.get("partition", ()) if v.isdigit() for t in partition_tids(int(v))),
        duration=duration,
    )


def rules_of(db: Database, user_id: int) -> Rules:
    """The user's rules, ready to filter with (one small read)."""
    return rules_from(blocks.rules(db, user_id))


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> regex.Pattern | None:
    try:
        return regex.compile(pattern, _FLAGS)
    except (regex.error, RecursionError, OverflowError):  # stored before a stricter check: ignore it
        return None


def allowed(rules: Rules, videos: Sequence[V]) -> list[V]:
    """The videos no rule blocks, in their order."""
    if not rules:
        return list(videos)
    deadline = time.monotonic() + FILTER_BUDGET_S
    return [v for v in videos if not _blocked(rules, v, deadline)]


def _blocked(rules: Rules, v: Filterable, deadline: float) -> bool:
    if v.owner_mid in rules.uploaders or v.tid in rules.tids:
        return True
    if rules.duration is not None and not rules.duration[0] <= v.duration <= rules.duration[1]:
        return True
    tags = [t.casefold() for t in v.tags]
    if rules.tags and any(t in rules.tags for t in tags):
        return True
    if not rules.keywords and not rules.patterns:
        return False
    title = v.title.casefold()
    if any(k in title or any(k in t for t in tags) for k in rules.keywords):
        return True
    text = "\n".join([v.title, *v.tags])[:_TEXT_MAX]
    for pattern in rules.patterns:
        left = deadline - time.monotonic()
        if left <= 0:
            return True  # the budget is spent: hide rather than let a block slip or ranking stall
        try:
            if pattern.search(text, timeout=min(MATCH_TIMEOUT_S, left)):
                return True
        except TimeoutError:
            log.warning("a block pattern ran out of time; the video is left out")
            return True
    return False


# ---------------------------------------------------------------------------------------------- input


def parse_keyword(text: str) -> tuple[str, str] | str:
    """("keyword", word) or ("regex", pattern) from what follows `/block keyword`; else an error key."""
    text = text.strip()
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        return check_pattern(text[1:-1])
    if not text:
        return "block_keyword_usage"
    if len(text) > MAX_KEYWORD_LEN:
        return "block_keyword_long"
    return "keyword", text


def check_pattern(pattern: str) -> tuple[str, str] | str:
    """("regex", pattern) when it is short, compiles and is quick on hostile inputs; else an error key.
    Run it off the event loop: a hostile pattern costs up to PROBE_TIMEOUT_S per probe here."""
    if not pattern.strip():
        return "block_keyword_usage"
    if len(pattern) > MAX_PATTERN_LEN:
        return "block_regex_long"
    try:
        compiled = regex.compile(pattern, _FLAGS)
    except (regex.error, RecursionError, OverflowError):
        return "block_regex_invalid"
    if compiled.search("") is not None:  # matches everything: it would hide every video
        return "block_regex_everything"
    budget = time.monotonic() + 20 * PROBE_TIMEOUT_S
    for probe in _probes(pattern):
        try:
            compiled.search(probe, timeout=PROBE_TIMEOUT_S)
        except TimeoutError:
            return "block_regex_slow"
        if time.monotonic() > budget:
            return "block_regex_slow"
    return "regex", pattern


def _probes(pattern: str) -> list[str]:
    """Inputs that make backtracking patterns blow up: long runs of the characters the pattern names
    and of each character class, each followed by a character that spoils the match at the very end.
    Best effort: the timeouts at ranking are what bound a pattern that slips through."""
    named = list(dict.fromkeys(c for c in pattern if c.isalnum() or c in " _-.,"))[:12]
    runs = [c * _TEXT_MAX for c in named] + ["".join(named) * (_TEXT_MAX // max(len(named), 1))]
    runs += [c * _TEXT_MAX for c in ("a", "1", " ", "中", "a1 ")]
    return [r[: _TEXT_MAX - 1] + end for r in runs if r for end in ("!", "\n")]
