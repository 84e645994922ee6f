"""The tables. Times are unix seconds (UTC) in BIGINT columns: portable across SQLite and Postgres."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _bigint(**kw) -> Column:
    return Column(BigInteger, **kw)


class User(SQLModel, table=True):
    __tablename__ = "users"
    # SQLite reuses the highest freed rowid without AUTOINCREMENT; model files are keyed by user id,
    # so a newcomer would load a leaver's model. Postgres sequences never reuse ids anyway.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    # Telegram ids exceed 32 bits (up to 52 significant bits).
    telegram_id: int = Field(sa_column=_bigint(nullable=False, unique=True))
    chat_id: int = Field(sa_column=_bigint(nullable=False))
    language: str = Field(default="en", max_length=8)
    # Chosen with /language: wins over Telegram's language_code, which `language` follows otherwise.
    language_chosen: str | None = Field(default=None, max_length=8)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    digest_time: str = Field(default="09:00", max_length=5)
    digest_paused: bool = False
    # /settings "pause 1/7 days": a digest whose slot comes before this time is not sent.
    digest_paused_until: int | None = Field(default=None, sa_column=_bigint(nullable=True))
    digest_compact: bool = False  # the digest as one text message of N lines instead of N photos
    picks_per_page: int = 5
    # Told what NN/100 means (under the first /recommend page, or by /help): never told twice.
    rating_explained: bool = False
    blocked: bool = False  # the user blocked the bot (403 / my_chat_member kicked)
    bili_mid: int | None = Field(default=None, sa_column=_bigint(nullable=True))
    bili_uname: str | None = Field(default=None, max_length=128)
    # MultiFernet token of the credential JSON; never plaintext.
    credentials: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    session_dead: bool = False  # refresh impossible: the user must /login again
    linked_at: int | None = Field(default=None, sa_column=_bigint(nullable=True))
    next_sync_at: int | None = Field(default=None, sa_column=_bigint(nullable=True))
    train_due_at: int | None = Field(default=None, sa_column=_bigint(nullable=True))
    sync_requested_at: int | None = Field(default=None, sa_column=_bigint(nullable=True))  # the last /sync
    # Bumped by /reset: a training pass that read the user's taps before it saves no model.
    taste_epoch: int = 0
    created_at: int = Field(sa_column=_bigint(nullable=False))


class Video(SQLModel, table=True):
    """The catalogue, shared by all users."""

    __tablename__ = "videos"

    bvid: str = Field(primary_key=True, max_length=16)
    aid: int = Field(default=0, sa_column=_bigint(nullable=False, default=0))
    title: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    cover: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    owner_mid: int = Field(default=0, sa_column=_bigint(nullable=False, default=0))
    owner_name: str = Field(default="", max_length=128)
    duration: int = 0
    tid: int = 0
    tname: str = Field(default="", max_length=64)
    pubdate: int = Field(default=0, sa_column=_bigint(nullable=False, default=0))
    view: int = Field(default=0, sa_column=_bigint(nullable=False, default=0))
    danmaku: int = Field(default=0, sa_column=_bigint(nullable=False, default=0))
    reply: int = Field(default=0, sa_column=_bigint(nullable=False, default=0))
    favorite: int = Field(default=0, sa_column=_bigint(nullable=False, default=0))
    coin: int = Field(default=0, sa_column=_bigint(nullable=False, default=0))
    share: int = Field(default=0, sa_column=_bigint(nullable=False, default=0))
    like: int = Field(default=0, sa_column=_bigint(nullable=False, default=0))
    tags: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))  # JSON list
    # The title's words (JSON list), segmented when the title was saved (catalogue.use_title_tokeniser).
    title_tokens: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]", server_default="[]"))
    # 0 until metadata + tags were fetched from view/tag; list rows alone do not count.
    fetched_at: int = Field(default=0, sa_column=_bigint(nullable=False, default=0))
    # Last time the video appeared in a shared candidate list (popular, weekly, ranking). Indexed:
    # /recommend reads this week's few thousand candidates out of a catalogue of millions.
    candidate_at: int = Field(default=0, sa_column=_bigint(nullable=False, default=0, index=True))
    unavailable: bool = False
    # A video bilibili refused (-403 member-only, -400) rather than removed: from this time on the
    # syncs of the users who have it ask for its metadata again. None: gone for good, or not refused.
    recheck_at: int | None = Field(default=None, sa_column=_bigint(nullable=True))
    # What view / view/detail / the lists say beyond the basics (migration 0007f). Each is written only
    # by an answer that carries it, so a list row never erases what view said.
    tid_v2: int = 0  # the finer 2025 partition; 0 unknown
    tname_v2: str = Field(default="", max_length=64)
    copyright: int = 0  # 1 original, 2 repost, 0 unknown
    vertical: bool = False  # portrait: short-form
    # Paid (rights.pay / ugc_pay / arc_pay) or for the uploader's paying supporters only: never picked.
    paid: bool = False
    upower_exclusive: bool = False
    honors: int = 0  # honor_reply types as bits: 1 入站必刷, 2 每周必看, 4 ranking peak, 8 热门
    top_rank: int = 0  # best site-wide ranking place reached (0: none)
    staff: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))  # co-creators' mids, JSON
    participle: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))  # title words, JSON
    rcmd_reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class Behaviour(SQLModel, table=True):
    """What the user did on bilibili: one row per user × video × kind, upserted."""

    __tablename__ = "behaviours"
    __table_args__ = (UniqueConstraint("user_id", "bvid", "kind", name="uq_behaviour"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    bvid: str = Field(max_length=16)
    kind: str = Field(max_length=12)  # watch | favorite | coin | like | later (saved from a pick)
    progress: int | None = None
    duration: int | None = None
    coins: int | None = None
    views: int | None = None  # watch: times watched (a newer view time on an upsert counts one more)
    at: int = Field(sa_column=_bigint(nullable=False))


class Feedback(SQLModel, table=True):
    """👍 (+1) / 👎 (-1) taps; one current label per user × video."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("user_id", "bvid", name="uq_feedback"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    bvid: str = Field(max_length=16)
    label: int
    at: int = Field(sa_column=_bigint(nullable=False))


class Shown(SQLModel, table=True):
    """Each pick shown to a user: for no-repeat, for feedback validation and as ignored-negatives."""

    __tablename__ = "shown"
    # (chat, message): a /similar replying to a pick message finds that pick.
    __table_args__ = (
        Index("ix_shown_user_bvid", "user_id", "bvid"),
        Index("ix_shown_chat_message", "chat_id", "message_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    bvid: str = Field(max_length=16)
    shown_at: int = Field(sa_column=_bigint(nullable=False))
    rating: int = 0
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    source: str = Field(default="recommend", max_length=12)  # recommend | digest
    chat_id: int | None = Field(default=None, sa_column=_bigint(nullable=True))
    message_id: int | None = Field(default=None, sa_column=_bigint(nullable=True))
    # Set just before the send, cleared when Telegram refuses it: a row with this set and no
    # message_id after a crash may have been delivered, so a resumed digest skips it.
    send_started_at: int | None = Field(default=None, sa_column=_bigint(nullable=True))


class DigestStatus(StrEnum):
    """Where a day's digest stands; only CLAIMED is unfinished (sent, resumed, or expired later)."""

    CLAIMED = "claimed"
    SENT = "sent"
    SKIPPED = "skipped"  # late, paused, or the user left
    BLOCKED = "blocked"  # the user blocked the bot
    EXPIRED = "expired"  # interrupted longer than the grace period


class Digest(SQLModel, table=True):
    """A claim on one user's digest for one local date: the unique key makes it exactly-once."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("user_id", "local_date", name="uq_digest_day"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    local_date: str = Field(max_length=10)  # YYYY-MM-DD in the user's time zone
    status: str = Field(default=DigestStatus.CLAIMED, max_length=10)  # a DigestStatus
    picks: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    sent_count: int = 0
    claimed_at: int = Field(sa_column=_bigint(nullable=False))
    finished_at: int | None = Field(default=None, sa_column=_bigint(nullable=True))


class SyncCursor(SQLModel, table=True):
    __tablename__ = "sync_cursors"

    user_id: int = Field(foreign_key="users.id", primary_key=True)
    source: str = Field(primary_key=True, max_length=24)  # history | favorite:<id> | coin | like
    cursor: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    updated_at: int = Field(sa_column=_bigint(nullable=False))


class ModelVersion(SQLModel, table=True):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("user_id", "version", name="uq_model_version"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    version: int
    n_samples: int = 0
    metrics: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    created_at: int = Field(sa_column=_bigint(nullable=False))


class Related(SQLModel, table=True):
    """bilibili's related-video graph for videos the users engaged with (shared signal)."""

    __tablename__ = "related"

    bvid: str = Field(primary_key=True, max_length=16)
    related_bvid: str = Field(primary_key=True, max_length=16)
    fetched_at: int = Field(sa_column=_bigint(nullable=False))


class ModelBlob(SQLModel, table=True):
    """Distributed mode: models and shared signals as safetensors bytes every machine reads."""

    __tablename__ = "model_blobs"

    key: str = Field(primary_key=True, max_length=80)
    version: int = Field(sa_column=Column(BigInteger, primary_key=True))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: int = Field(sa_column=_bigint(nullable=False))  # ns: tells a re-created version 1 apart


class TelegramPace(SQLModel, table=True):
    """Distributed mode: the next free Telegram send slot for every process (one row, storage/pace.py)."""

    __tablename__ = "telegram_pace"

    id: int = Field(primary_key=True)
    next_slot: float  # database-clock epoch seconds


class BilibiliPace(SQLModel, table=True):
    """Distributed mode: bilibili's pace and risk pause per egress IP, for every process leaving by it
    (one row per BILIBILI_EGRESS, storage/pace.py)."""

    __tablename__ = "bilibili_pace"

    egress: str = Field(primary_key=True, max_length=64)
    next_slot: float = 0.0  # database-clock epoch seconds
    paused_until: float = 0.0  # database-clock epoch seconds
    strikes: int = 0  # risk-control pauses in a row (a successful call clears them)


class TelegramChatPace(SQLModel, table=True):
    """Distributed mode: each chat's next free message slot, for every process (storage/pace.py)."""

    __tablename__ = "telegram_chat_pace"

    chat_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    next_slot: float  # database-clock epoch seconds


class UserCandidate(SQLModel, table=True):
    """A candidate for one user only, and where it came from: "followed" (a followed creator's new
    upload), "home" (bilibili's own home feed for the user), "related" (the related list of one of
    the user's videos). Ranked with the shared lists for this user, never for another."""

    __tablename__ = "user_candidates"
    __table_args__ = (UniqueConstraint("user_id", "bvid", "source", name="uq_user_candidate"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    bvid: str = Field(max_length=16)
    source: str = Field(max_length=12)  # followed | home | related
    seen_at: int = Field(sa_column=_bigint(nullable=False))


class BlockRule(SQLModel, table=True):
    """One "never show me this" rule of a user: kept on /logout, deleted on /forget.

    kind / value: "uploader" <mid> | "tag" <tag as shown> | "keyword" <word> | "regex" <pattern> |
    "partition" <v2 main id> | "duration" "<min s>-<max s>" (one per user: the videos allowed).
    `label` is what /blocked shows (an uploader's name); `source` "user" or "bilibili" (the user's
    own bilibili blacklist, read at sync and replaced whole each time)."""

    __tablename__ = "block_rules"
    __table_args__ = (UniqueConstraint("user_id", "kind", "value", name="uq_block_rule"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    kind: str = Field(max_length=12)
    value: str = Field(sa_column=Column(Text, nullable=False))
    label: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    source: str = Field(default="user", max_length=12)
    created_at: int = Field(sa_column=_bigint(nullable=False))
