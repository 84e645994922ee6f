"""Whether a user's rows are in the collaborative signals (recommender/shared.py counts what users
chose: behaviour on bilibili and 👍 taps; shown picks and 👎 are not counted)."""

from __future__ import annotations

from sqlmodel import select

from storage.db import Database
from storage.models import Behaviour, Feedback


def contributed_to_shared(db: Database, user_id: int) -> bool:
    with db.session() as s:
        if s.exec(select(Behaviour.id).where(Behaviour.user_id == user_id).limit(1)).first() is not None:
            return True
        liked = select(Feedback.id).where(Feedback.user_id == user_id, Feedback.label > 0).limit(1)
        return s.exec(liked).first() is not None
