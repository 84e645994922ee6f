"""Storage on SQLite and Postgres: migrations, upserts, encryption at rest, exactly-once claims."""

from __future__ import annotations

import stat
from dataclasses import dataclass

from cryptography.fernet import Fernet
from sqlalchemy import inspect, text

from storage import behaviour, catalogue, picks, users
from storage.behaviour import BehaviourRow
from storage.contributions import recent_choices, sample_user_ids
from storage.crypto import CredentialVault, load_or_create_key
from storage.db import Database
from tests.dbfixtures import any_db, postgres_url, sqlite_db, vault  # noqa: F401

SESSDATA = "c9a1e2f3%2C1767225600%2Cab12c%2A91CjBsecretSESSDATAvalue"


@dataclass(frozen=True)
class FakeVideo:
    bvid: str
    tags: tuple[str, ...] | None
    aid: int = 1
    title: str = "标题"
    cover: str = "https://i0.hdslb.com/bfs/archive/x.jpg"
    owner_mid: int = 7
    owner_name: str = "UP"
    duration: int = 60
    tid: int = 17
    tname: str = "单机游戏"
    pubdate: int = 1_700_000_000
    view: int = 1000
    danmaku: int = 1
    reply: int = 1
    favorite: int = 10
    coin: int = 5
    share: int = 2
    like: int = 50


def test_migrations_create_every_table_and_are_idempotent(any_db: Database):
    any_db.migrate()  # a second start-up must be a no-op
    tables = set(inspect(any_db.engine).get_table_names())
    assert {
        "users",
        "videos",
        "behaviours",
        "feedback",
        "shown",
        "digests",
        "sync_cursors",
        "model_versions",
        "related",
        "alembic_version",
    } <= tables


def test_migrations_match_the_models(any_db: Database):
    """A model change without its alembic migration shows up here, on SQLite and on Postgres."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with any_db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_sqlite_runs_in_wal_mode_with_busy_timeout(sqlite_db: Database):
    with sqlite_db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000


def test_telegram_ids_beyond_32_bits_round_trip(any_db: Database):
    big = 2**51 + 12345
    created = users.ensure_user(any_db, big, big, "zh", now=1)
    assert users.get_user(any_db, big).id == created.id
    assert users.get_user(any_db, big).chat_id == big


def test_credentials_are_encrypted_at_rest(tmp_path, vault: CredentialVault):
    path = tmp_path / "bilipick.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    user = users.ensure_user(db, 1, 1, "en", now=1)
    secrets = {"sessdata": SESSDATA, "bili_jct": "f3e2d1c0b9a8", "refresh_token": "9f8e7d6c5b4a"}
    users.link_bilibili(db, vault, user.id, secrets, mid=42, uname="测试", now=5)
    assert users.load_credentials(db, vault, user.id) == secrets
    db.dispose()  # checkpoint the WAL into the main file
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("bilipick.db"))
    for value in secrets.values():
        assert value.encode() not in raw
    assert b"%2C1767225600" not in raw


def test_a_rotated_out_key_cannot_read_credentials(any_db: Database, vault: CredentialVault):
    user = users.ensure_user(any_db, 1, 1, "en", now=1)
    users.link_bilibili(any_db, vault, user.id, {"sessdata": SESSDATA}, 7, "u", now=1)
    other = CredentialVault([Fernet.generate_key().decode()])
    assert users.load_credentials(any_db, other, user.id) is None


def test_generated_key_file_is_private(tmp_path, caplog):
    key = load_or_create_key(tmp_path)
    mode = stat.S_IMODE((tmp_path / "secret.key").stat().st_mode)
    assert mode == 0o600
    assert load_or_create_key(tmp_path) == key  # generated once, then reused
    assert "FERNET_KEYS is not set" in caplog.text
    assert key not in caplog.text


def test_behaviour_upsert_reports_only_changes(any_db: Database):
    user = users.ensure_user(any_db, 1, 1, "en", now=1)
    rows = [
        BehaviourRow("BV1", "watch", at=10, progress=30, duration=60),
        BehaviourRow("BV1", "like", at=10),
        BehaviourRow("BV2", "coin", at=11, coins=2),
    ]
    assert behaviour.save_behaviours(any_db, user.id, rows) == 3
    assert behaviour.save_behaviours(any_db, user.id, rows) == 0  # unchanged: nothing new
    more = [BehaviourRow("BV1", "watch", at=20, progress=-1, duration=60)]
    assert behaviour.save_behaviours(any_db, user.id, more) == 1
    stored = {(b.bvid, b.kind): b for b in behaviour.user_behaviours(any_db, user.id)}
    assert len(stored) == 3
    assert stored[("BV1", "watch")].progress == -1


def test_catalogue_keeps_tags_when_a_list_row_arrives_later(any_db: Database):
    catalogue.save_videos(any_db, [FakeVideo("BV1", ("游戏", "攻略"))], now=100)
    catalogue.save_videos(any_db, [FakeVideo("BV1", None, view=5000)], now=200, candidate=True)
    video = catalogue.get_videos(any_db, ["BV1"])["BV1"]
    assert catalogue.video_tags(video) == ("游戏", "攻略")
    assert video.view == 5000 and video.candidate_at == 200
    assert catalogue.stale_bvids(any_db, ["BV1", "BV2"], now=300, ttl_s=1000) == ["BV2"]
    assert catalogue.stale_bvids(any_db, ["BV1"], now=2000, ttl_s=1000) == ["BV1"]


def test_digest_is_claimed_once_per_local_date(any_db: Database):
    user = users.ensure_user(any_db, 1, 1, "en", now=1)
    assert picks.claim_digest(any_db, user.id, "2026-11-23", now=1)
    assert not picks.claim_digest(any_db, user.id, "2026-11-23", now=2)
    assert picks.claim_digest(any_db, user.id, "2026-11-24", now=3)


def test_feedback_changes_and_clears(any_db: Database):
    user = users.ensure_user(any_db, 1, 1, "en", now=1)
    picks.set_feedback(any_db, user.id, "BV1", 1, now=1)
    picks.set_feedback(any_db, user.id, "BV1", -1, now=2)
    assert picks.get_feedback(any_db, user.id) == {"BV1": (-1, 2)}
    picks.set_feedback(any_db, user.id, "BV1", 0, now=3)
    assert picks.get_feedback(any_db, user.id) == {}


def test_refreshed_cookies_replace_only_the_login_they_refreshed(any_db: Database, vault: CredentialVault):
    user = users.ensure_user(any_db, 1, 1, "en", now=1)
    users.link_bilibili(any_db, vault, user.id, {"sessdata": "old"}, 7, "u", now=1)
    before = users.stored_credentials(any_db, user.id)
    assert users.replace_credentials(any_db, vault, user.id, before, {"sessdata": "new"})
    assert users.load_credentials(any_db, vault, user.id) == {"sessdata": "new"}
    assert not users.replace_credentials(any_db, vault, user.id, before, {"sessdata": "stale"}), "compare-and-set"
    users.unlink_bilibili(any_db, user.id)
    assert not users.replace_credentials(any_db, vault, user.id, before, {"sessdata": "late"})
    assert users.load_credentials(any_db, vault, user.id) is None


def test_a_tap_toggles_in_one_statement(any_db: Database):
    user = users.ensure_user(any_db, 1, 1, "en", now=1)
    assert picks.toggle_feedback(any_db, user.id, "BV1", 1, now=1) == 1
    assert picks.toggle_feedback(any_db, user.id, "BV1", -1, now=2) == -1
    assert picks.get_feedback(any_db, user.id) == {"BV1": (-1, 2)}
    assert picks.toggle_feedback(any_db, user.id, "BV1", -1, now=3) == 0  # the same button again
    assert picks.get_feedback(any_db, user.id) == {}


def test_a_send_is_claimed_once_and_released_only_when_refused(any_db: Database):
    user = users.ensure_user(any_db, 1, 1, "en", now=1)
    [shown] = picks.record_shown(any_db, user.id, [picks.ShownPick("BV1", 80, "r")], "digest", 1, 1)
    assert picks.mark_send_started(any_db, shown, now=5)
    assert not picks.mark_send_started(any_db, shown, now=6), "a second process never sends it too"
    picks.mark_send_started(any_db, shown, None)  # Telegram refused it
    assert picks.mark_send_started(any_db, shown, now=7)
    picks.set_shown_messages(any_db, {shown: 42})
    picks.mark_send_started(any_db, shown, None)
    assert not picks.mark_send_started(any_db, shown, now=8), "delivered: never again"


def test_what_the_shared_signals_read_of_each_user(any_db: Database):
    user = users.ensure_user(any_db, 1, 1, "en", now=1)
    assert recent_choices(any_db, [user.id], per_user=10) == {}
    picks.set_feedback(any_db, user.id, "BV1", -1, now=1)
    assert recent_choices(any_db, [user.id], per_user=10) == {}, "a 👎 is not in the signals"
    picks.set_feedback(any_db, user.id, "BV2", 1, now=2)
    assert recent_choices(any_db, [user.id], per_user=10) == {user.id: ["BV2"]}
    other = users.ensure_user(any_db, 2, 2, "en", now=1)
    behaviour.save_behaviours(
        any_db,
        other.id,
        [BehaviourRow(f"BV{i}", "watch", at=i) for i in range(1, 2500)] + [BehaviourRow("BV7", "like", at=5000)],
    )
    # Newest first, one entry per video whatever its kinds, at most per_user; many users in one call.
    chosen = recent_choices(any_db, [user.id, other.id], per_user=3)
    assert chosen == {user.id: ["BV2"], other.id: ["BV7", "BV2499", "BV2498"]}
    assert sorted(sample_user_ids(any_db, 5)) == [user.id, other.id] and len(sample_user_ids(any_db, 1)) == 1


def test_forget_leaves_no_row_about_the_user(any_db: Database, vault):
    keep = users.ensure_user(any_db, 2, 2, "en", now=1)
    user = users.ensure_user(any_db, 1, 1, "en", now=1)
    for uid in (keep.id, user.id):
        users.link_bilibili(any_db, vault, uid, {"sessdata": "x"}, uid, "u", now=1)
        behaviour.save_behaviours(any_db, uid, [BehaviourRow("BV1", "like", at=1)])
        behaviour.set_cursor(any_db, uid, "history", "123", now=1)
        picks.set_feedback(any_db, uid, "BV1", 1, now=1)
        picks.record_shown(any_db, uid, [picks.ShownPick("BV1", 80, "r")], "recommend", 1, uid)
        picks.claim_digest(any_db, uid, "2026-11-23", now=1)
        picks.record_model_versions(any_db, {uid: (1, 10)}, now=1)
    users.forget_user(any_db, user.id)
    with any_db.engine.connect() as conn:
        for table in ("behaviours", "feedback", "shown", "digests", "sync_cursors", "model_versions"):
            mine = conn.execute(text(f"SELECT count(*) FROM {table} WHERE user_id = :u"), {"u": user.id})
            theirs = conn.execute(text(f"SELECT count(*) FROM {table} WHERE user_id = :u"), {"u": keep.id})
            assert mine.scalar() == 0, table
            assert theirs.scalar() == 1, table
        assert conn.execute(text("SELECT count(*) FROM users WHERE id = :u"), {"u": user.id}).scalar() == 0


def test_training_due_is_debounced_to_the_earliest_request(any_db: Database):
    user = users.ensure_user(any_db, 1, 1, "en", now=1)
    users.mark_training_due(any_db, user.id, at=100)
    users.mark_training_due(any_db, user.id, at=150)
    assert [u.id for u in users.users_due_training(any_db, now=120)] == [user.id]
    users.clear_training_due(any_db, [user.id], started_at=120)
    assert users.users_due_training(any_db, now=10_000) == []
