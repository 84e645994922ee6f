"""Lists of ids go to the database in chunks: stock SQLite allows 32,766 bound variables and
PostgreSQL 65,535 parameters per statement, and a real user brings ~1,000 videos of their own."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

# Far under both limits, with room for the other parameters of the statement.
ID_CHUNK = 1000


def chunked(ids: Iterable[T], size: int = ID_CHUNK) -> Iterator[list[T]]:
    """The distinct ids (first-seen order) in lists of at most `size`."""
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), size):
        yield unique[start : start + size]
