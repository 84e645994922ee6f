"""Storage rows → the recommender's plain data (the recommender knows no database)."""

from __future__ import annotations

from collections.abc import Iterable

import recommender as rec
from storage import behaviour, catalogue, picks
from storage.db import Database
from storage.models import Video

# Behaviour kinds are stored with the recommender's names already (a behaviour row of kind "later",
# saved for later, reaches the labels as it is). A feedback label of LATER is "saved for later".
LATER = 2
_FEEDBACK_KIND = {1: "thumb_up", -1: "thumb_down", LATER: "later"}


def to_rec_video(row: Video) -> rec.Video:
    return rec.Video(
        bvid=row.bvid, title=row.title, owner_mid=row.owner_mid, owner_name=row.owner_name,
        tags=catalogue.video_tags(row), tid=row.tid, tname=row.tname, duration=row.duration,
        pubdate=row.pubdate, view=row.view, like=row.like, favorite=row.favorite, coin=row.coin,
        share=row.share, danmaku=row.danmaku, reply=row.reply,
    )  # fmt: skip


def to_rec_videos(rows: Iterable[Video]) -> dict[str, rec.Video]:
    return {row.bvid: to_rec_video(row) for row in rows}


def user_events(db: Database, user_id: int) -> list[rec.Event]:
    """Everything the user did or was shown, as recommender events."""
    events = [
        rec.Event(bvid=b.bvid, kind=b.kind, at=b.at, progress=b.progress, duration=b.duration, coins=b.coins,
                  views=b.views)
        for b in behaviour.user_behaviours(db, user_id)
    ]
    events += [
        rec.Event(bvid=bvid, kind=_FEEDBACK_KIND[label], at=at)
        for bvid, (label, at) in picks.get_feedback(db, user_id).items()
        if label in _FEEDBACK_KIND
    ]
    events += [rec.Event(bvid=s.bvid, kind="shown", at=s.shown_at) for s in picks.shown_history(db, user_id)]
    return events
