"""The storage under /sync, /reset, the digest snooze and the /profile trend, on SQLite and on
PostgreSQL (the chat-level behaviour is in test_sync_reset.py and test_digest_quiet.py)."""

from __future__ import annotations

from sqlmodel import select

import recommender as rec
from storage import behaviour, picks, users
from storage.behaviour import BehaviourRow
from storage.db import Database
from storage.models import Behaviour, Digest, Shown
from tests.dbfixtures import any_db, postgres_url  # noqa: F401

NOW = 1_760_000_000


def a_user(db: Database, telegram_id: int = 1) -> int:
    return users.ensure_user(db, telegram_id, telegram_id, "en", now=NOW - 86400).id


def tasteful(db: Database, uid: int) -> list[int]:
    """A user with a watch, a 👍, two shown picks, a model version and today's digest claim."""
    behaviour.save_behaviours(db, uid, [BehaviourRow(bvid="BV1aa", kind="watch", at=NOW - 50)])
    shown = picks.record_shown(
        db, uid, [picks.ShownPick("BV1bb", 80, ""), picks.ShownPick("BV1cc", 70, "")], "recommend", NOW, uid
    )
    picks.set_feedback(db, uid, "BV1bb", 1, NOW)
    assert picks.save_model_version(db, uid, lambda: 1, 3, NOW) == 1
    assert picks.claim_digest(db, uid, "2025-10-09", NOW)
    return shown


def test_reset_deletes_taps_shown_and_models_and_keeps_the_rest(any_db: Database):
    keep, other = a_user(any_db, 1), a_user(any_db, 2)
    tasteful(any_db, keep)
    tasteful(any_db, other)
    dropped = []
    assert users.reset_taste(any_db, keep, NOW + 5, lambda: dropped.append(keep))
    assert dropped == [keep], "the model files went inside the reset"
    assert picks.get_feedback(any_db, keep) == {} and picks.latest_model_version(any_db, keep) is None
    with any_db.session() as s:
        assert s.exec(select(Shown).where(Shown.user_id == keep)).all() == []
        assert len(s.exec(select(Behaviour).where(Behaviour.user_id == keep)).all()) == 1
        assert len(s.exec(select(Digest).where(Digest.user_id == keep)).all()) == 1, "today's digest is not resent"
    row = users.get_user_by_id(any_db, keep)
    assert (row.taste_epoch, row.train_due_at) == (1, NOW + 5)
    assert picks.feedback_count(any_db, other) == 1 and picks.latest_model_version(any_db, other) is not None
    assert not users.reset_taste(any_db, 999, NOW, lambda: None)


def test_a_model_read_before_a_reset_is_not_saved_after_it(any_db: Database):
    uid = a_user(any_db)
    epoch = users.taste_epochs(any_db, [uid])[uid]
    users.reset_taste(any_db, uid, NOW, lambda: None)
    saved = []
    assert picks.save_model_version(any_db, uid, lambda: saved.append(1) or 1, 3, NOW, epoch) is None
    assert saved == [], "no file was written for it"
    assert picks.save_model_version(any_db, uid, lambda: 1, 3, NOW, epoch + 1) == 1


def test_page_message_ids_skip_rows_deleted_meanwhile(any_db: Database):
    uid = a_user(any_db)
    shown = tasteful(any_db, uid)
    later = picks.record_shown(any_db, uid, [picks.ShownPick("BV1dd", 60, "")], "recommend", NOW, uid)
    users.reset_taste(any_db, uid, NOW, lambda: None)
    again = picks.record_shown(any_db, uid, [picks.ShownPick("BV1ee", 60, "")], "recommend", NOW, uid)
    picks.set_shown_messages(any_db, {shown[0]: 10, later[0]: 11, again[0]: 12})
    assert picks.get_shown(any_db, again[0]).message_id == 12


def test_one_sync_request_per_cooldown_and_it_makes_the_sync_due(any_db: Database):
    uid = a_user(any_db)
    users.update_user(any_db, uid, next_sync_at=NOW + 9999)
    assert users.claim_sync_request(any_db, uid, NOW, 600) is None
    assert users.get_user_by_id(any_db, uid).next_sync_at == NOW
    assert users.claim_sync_request(any_db, uid, NOW + 599, 600) == NOW
    assert users.claim_sync_request(any_db, uid, NOW + 600, 600) is None


def test_a_snoozed_user_is_no_digest_candidate_until_the_snooze_ends(any_db: Database):
    uid = a_user(any_db)
    users.update_user(any_db, uid, digest_paused_until=NOW + 86400)
    assert uid not in {c.id for c in users.digest_candidates(any_db, NOW)}
    slot = next(c for c in users.digest_candidates(any_db, NOW + 86400) if c.id == uid)
    assert slot.paused_until == NOW + 86400


def test_the_trend_counts_watches_not_likes(any_db: Database):
    uid = a_user(any_db)
    with any_db.session() as s:
        s.add_all([_video("BV1w1", ["游戏"]), _video("BV1w2", ["音乐"]), _video("BV1w3", [])])
    rows = [
        BehaviourRow(bvid="BV1w1", kind="watch", at=NOW - 40 * 86400),
        BehaviourRow(bvid="BV1w2", kind="watch", at=NOW),
        BehaviourRow(bvid="BV1w3", kind="watch", at=NOW),
        BehaviourRow(bvid="BV1w1", kind="like", at=NOW),
    ]
    behaviour.save_behaviours(any_db, uid, rows)
    watched = sorted(behaviour.watched_tags(any_db, uid))
    assert watched == [(NOW - 40 * 86400, ("游戏",)), (NOW, ("音乐",))], "likes and untagged videos are left out"
    trend = rec.tag_trend(watched, tz="UTC")
    assert trend.months == ["2025-08", "2025-09", "2025-10"], "September had no watch: kept, at share 0"
    shares = dict(trend.shares)
    assert shares == {"游戏": [1.0, 0.0, 0.0], "音乐": [0.0, 0.0, 1.0]}


def test_the_trend_keeps_empty_months_and_the_top_tags():
    month = 31 * 86400
    watches = [(NOW - 3 * month, ("a", "b")), (NOW - 3 * month, ("a",)), (NOW, ("c",)), (NOW, ("a",))]
    trend = rec.tag_trend(watches, tz="Asia/Shanghai", top=2)
    assert len(trend.months) == 4, "the months between stay, at share 0"
    assert [tag for tag, _ in trend.shares][0] == "a" and len(trend.shares) == 2
    assert dict(trend.shares)["a"] == [1.0, 0.0, 0.0, 0.5]
    assert rec.tag_trend([]).months == []


def _video(bvid: str, tags: list[str]):
    import json

    from storage.models import Video

    return Video(bvid=bvid, title=bvid, tags=json.dumps(tags, ensure_ascii=False), fetched_at=NOW)
