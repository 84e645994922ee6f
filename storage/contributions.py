"""What the collaborative signals are built from (recommender/shared.py counts what users chose:
behaviour on bilibili and 👍 taps; shown picks and 👎 are not counted), read for a bounded sample."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, union_all
from sqlmodel import select

from storage.chunks import chunked
from storage.db import Database
from storage.models import Behaviour, Feedback, User

# Users per query: a few hundred users' newest rows stay a small result.
_USERS_PER_QUERY = 200


def sample_user_ids(db: Database, limit: int) -> list[int]:
    """Up to `limit` users drawn uniformly (all of them while there are fewer)."""
    with db.session() as s:
        return sorted(s.exec(select(User.id).order_by(func.random()).limit(limit)).all())


def recent_choices(db: Database, user_ids: Sequence[int], per_user: int) -> dict[int, list[str]]:
    """Each user's newest `per_user` chosen videos (newest first): what they did on bilibili, and 👍."""
    chosen: dict[int, list[str]] = {}
    with db.engine.connect() as conn:
        for chunk in chunked(user_ids, _USERS_PER_QUERY):
            did = select(Behaviour.user_id, Behaviour.bvid, Behaviour.at).where(Behaviour.user_id.in_(chunk))
            liked = select(Feedback.user_id, Feedback.bvid, Feedback.at).where(
                Feedback.user_id.in_(chunk), Feedback.label > 0
            )
            rows = union_all(did, liked).subquery()
            newest = func.row_number().over(partition_by=rows.c.user_id, order_by=rows.c.at.desc())
            ranked = select(rows.c.user_id, rows.c.bvid, newest.label("n")).subquery()
            # Rows are per user x video x kind: room for the duplicates, deduplicated below.
            stmt = (
                select(ranked.c.user_id, ranked.c.bvid)
                .where(ranked.c.n <= per_user * 2)
                .order_by(ranked.c.user_id, ranked.c.n)
            )
            for user_id, bvid in conn.execute(stmt):
                chosen.setdefault(user_id, []).append(bvid)
    return {u: list(dict.fromkeys(b))[:per_user] for u, b in chosen.items()}
