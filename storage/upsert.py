"""INSERT … ON CONFLICT for both SQLite and Postgres (the two dialects share this API)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel


def upsert(
    session: Session,
    model: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    update: Sequence[str] | None = None,
) -> None:
    """Insert rows; on a key conflict update the `update` columns (or do nothing when None/empty)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = model.__table__
    # Batches keep each statement under SQLite's bound-parameter limit.
    # In key order: two processes upserting overlapping rows then lock them in the same order
    # instead of deadlocking (distributed mode: two workers' syncs saving the same videos).
    rows = sorted(rows, key=lambda r: tuple(r[k] for k in keys))
    per_row = max(1, len(rows[0]))
    batch = max(1, 30000 // per_row)
    for start in range(0, len(rows), batch):
        stmt = insert(table).values(list(rows[start : start + batch]))
        if update:
            stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in update})
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
        session.exec(stmt)
