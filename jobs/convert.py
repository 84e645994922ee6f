"""Storage rows → the recommender's plain data (the recommender knows no database)."""

from __future__ import annotations

from collections.abc import Iterable

import recommender as rec
from storage import behaviour, blocks, catalogue, picks
from storage.db import Database
from storage.models import Video

# Behaviour kinds are stored with the recommender's names already (a behaviour row of kind "later",
# saved for later, reaches the labels as it is). A feedback label of LATER is "saved for later".
LATER = 2
_FEEDBACK_KIND = {1: "thumb_up", -1: "thumb_down", LATER: "later"}


def to_rec_video(row: Video) -> rec.Video:
    """The partition is the finer 2025 one (tid_v2) where bilibili gave it, else the legacy tid."""
    return rec.Video(
        bvid=row.bvid,
        title=row.title,
        owner_mid=row.owner_mid,
        owner_name=row.owner_name,
        tags=catalogue.video_tags(row),
        tid=row.tid_v2 or row.tid,
        tname=row.tname_v2 or row.tname,
        duration=row.duration,
        pubdate=row.pubdate,
        view=row.view,
        like=row.like,
        favorite=row.favorite,
        coin=row.coin,
        share=row.share,
        danmaku=row.danmaku,
        reply=row.reply,
        title_tokens=catalogue.video_title_tokens(row),
    )


def to_rec_videos(rows: Iterable[Video]) -> dict[str, rec.Video]:
    return {row.bvid: to_rec_video(row) for row in rows}


def user_events(db: Database, user_id: int) -> list[rec.Event]:
    """Everything the user did or was shown, as recommender events."""
    events = [
        rec.Event(
            bvid=b.bvid, kind=b.kind, at=b.at, progress=b.progress, duration=b.duration, coins=b.coins, views=b.views
        )
        for b in behaviour.user_behaviours(db, user_id)
    ]
    events += [
        rec.Event(bvid=bvid, kind=_FEEDBACK_KIND[label], at=at)
        for bvid, (label, at) in picks.get_feedback(db, user_id).items()
        if label in _FEEDBACK_KIND
    ]
    events += [rec.Event(bvid=s.bvid, kind="shown", at=s.shown_at) for s in picks.shown_history(db, user_id)]
    return events + blocked_events(db, user_id, {e.bvid for e in events})


def blocked_events(db: Database, user_id: int, bvids: set[str]) -> list[rec.Event]:
    """A "blocked" event for each of these videos (the user's own: watched, shown...) whose uploader or
    a tag the user blocked, at the time of that block: "never this uploader" from a pick makes that
    pick, and the uploader's other videos the user knows, negatives for the model. Keywords,
    partitions and durations are filters only (they say nothing about taste the model can use)."""
    when: dict[tuple[str, str], int] = {}
    for rule in blocks.rules(db, user_id):
        if rule.kind == "uploader" or rule.kind == "tag":
            key = (rule.kind, rule.value if rule.kind == "uploader" else rule.value.casefold())
            when[key] = max(when.get(key, 0), rule.created_at)
    if not when or not bvids:
        return []
    events = []
    for bvid, row in catalogue.get_videos(db, bvids).items():
        times = [when.get(("uploader", str(row.owner_mid)), 0)]
        times += [when.get(("tag", tag.casefold()), 0) for tag in catalogue.video_tags(row)]
        if (at := max(times)) > 0:
            events.append(rec.Event(bvid=bvid, kind="blocked", at=at))
    return events
