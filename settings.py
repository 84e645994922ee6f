"""Typed configuration, one pydantic-settings class per concern, read once from the environment.

Variable names are the public contract (README): BOT_TOKEN, TELEGRAM_BASE_URL, BILIBILI_API_URL,
BILIBILI_PASSPORT_URL, BILIBILI_WWW_URL, DATA_DIR, DATABASE_URL, FERNET_KEYS, plus tuning knobs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# env_ignore_empty: `FERNET_KEYS=` or `METRICS_PORT=` (as .env.example leaves them) means unset.
_ENV = SettingsConfigDict(
    env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True, env_ignore_empty=True
)


class TelegramSettings(BaseSettings):
    model_config = _ENV

    bot_token: SecretStr | None = Field(default=None, alias="BOT_TOKEN")
    # python-telegram-bot base_url semantics: the token is appended (or fills "{token}").
    base_url: str = Field(default="https://api.telegram.org/bot", alias="TELEGRAM_BASE_URL")
    webhook_url: str | None = Field(default=None, alias="WEBHOOK_URL")
    webhook_secret: SecretStr | None = Field(default=None, alias="WEBHOOK_SECRET")
    webhook_listen: str = Field(default="0.0.0.0", alias="WEBHOOK_LISTEN")
    webhook_port: int = Field(default=8443, alias="WEBHOOK_PORT")
    poll_timeout_s: float = Field(default=10.0, alias="TELEGRAM_POLL_TIMEOUT")
    # How long a request waits for Telegram's answer (PTB's default); no answer = "maybe delivered".
    read_timeout_s: float = Field(default=5.0, alias="TELEGRAM_READ_TIMEOUT")
    # Telegram's global limit; sends are spaced a little under it (delivery/ratelimit.py).
    max_messages_per_second: float = Field(default=30.0, alias="TELEGRAM_MAX_RPS")
    # Per-user limits (handlers/cooldown.py), keyed by the Telegram user id, so /forget resets none.
    # A new QR code while the last one is live: once per LOGIN_COOLDOWN s. /recommend:
    # RECOMMEND_BURST at once, then one per RECOMMEND_COOLDOWN s.
    login_cooldown_s: float = Field(default=30.0, alias="LOGIN_COOLDOWN")
    recommend_cooldown_s: float = Field(default=10.0, alias="RECOMMEND_COOLDOWN")
    recommend_burst: int = Field(default=5, alias="RECOMMEND_BURST")
    forget_cooldown_s: float = Field(default=10.0, alias="FORGET_COOLDOWN")  # /forget prompts
    forget_confirm_ttl_s: float = Field(default=600.0, alias="FORGET_CONFIRM_TTL")  # its button expires
    # /profile draws a chart (tens of ms of CPU and an upload): once per PROFILE_COOLDOWN s.
    profile_cooldown_s: float = Field(default=30.0, alias="PROFILE_COOLDOWN")
    # /sync: one per SYNC_COOLDOWN s per user, kept in the database (every front, every restart).
    sync_cooldown_s: float = Field(default=600.0, alias="SYNC_COOLDOWN")
    # Checked before any handler: messages and taps per Telegram user, UPDATES_BURST at once, then
    # UPDATES_PER_SECOND; the rest are dropped (handlers/flood.py).
    updates_per_second: float = Field(default=1.0, alias="UPDATES_PER_SECOND")
    updates_burst: int = Field(default=10, alias="UPDATES_BURST")


class BilibiliSettings(BaseSettings):
    model_config = _ENV

    api_url: str = Field(default="https://api.bilibili.com", alias="BILIBILI_API_URL")
    passport_url: str = Field(default="https://passport.bilibili.com", alias="BILIBILI_PASSPORT_URL")
    www_url: str = Field(default="https://www.bilibili.com", alias="BILIBILI_WWW_URL")
    # Where b23.tv short links are resolved: one GET, its redirect read (never followed).
    short_url: str = Field(default="https://b23.tv", alias="BILIBILI_SHORT_URL")
    # Where cover images are fetched from; unset means the cover's own (https) URL. Tests point
    # it at the double so real hdslb.com URLs in the catalogue stay untouched.
    image_url: str | None = Field(default=None, alias="BILIBILI_IMAGE_URL")
    max_requests_per_second: float = Field(default=4.0, alias="BILIBILI_MAX_RPS")
    # bilibili limits per egress IP: in distributed mode the processes with the same name share the
    # pace above and the risk pause (in the database); give each IP (proxy, NAT) its own name.
    egress: str = Field(default="default", min_length=1, max_length=64, alias="BILIBILI_EGRESS")
    timeout_s: float = Field(default=10.0, alias="BILIBILI_TIMEOUT")
    retries: int = Field(default=3, alias="BILIBILI_RETRIES")
    backoff_base_s: float = Field(default=0.5, alias="BILIBILI_BACKOFF_BASE")
    risk_pause_base_s: float = Field(default=30.0, alias="BILIBILI_RISK_PAUSE_BASE")
    risk_pause_max_s: float = Field(default=1800.0, alias="BILIBILI_RISK_PAUSE_MAX")
    cover_max_bytes: int = Field(default=5 * 1024 * 1024, alias="BILIBILI_COVER_MAX_BYTES")
    qr_poll_interval_s: float = Field(default=2.0, alias="BILIBILI_QR_POLL_INTERVAL")


class StorageSettings(BaseSettings):
    model_config = _ENV

    data_dir: Path = Field(default=Path("./data"), alias="DATA_DIR")
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    fernet_keys: SecretStr | None = Field(default=None, alias="FERNET_KEYS")
    # Personal models held in memory (least recently used leave first; the rest load from disk).
    model_cache_size: int = Field(default=256, ge=1, alias="MODEL_CACHE_SIZE")

    @property
    def resolved_database_url(self) -> str:
        """DATABASE_URL, or the embedded SQLite file inside DATA_DIR."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'bilipick.db').resolve()}"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


class JobSettings(BaseSettings):
    model_config = _ENV

    tick_seconds: float = Field(default=60.0, alias="JOB_TICK_SECONDS")
    sync_interval_s: float = Field(default=6 * 3600, alias="SYNC_INTERVAL")
    video_ttl_s: float = Field(default=24 * 3600, alias="VIDEO_TTL")
    # A paginated bilibili list (history, one favourite folder) stops after this many pages even
    # if bilibili keeps saying there is more: 500 pages is 15,000 history rows, 10,000 favourites.
    sync_max_pages: int = Field(default=500, ge=1, alias="SYNC_MAX_PAGES")
    retrain_debounce_s: float = Field(default=120.0, alias="RETRAIN_DEBOUNCE")
    # After a QR login the login task (distributed mode: an onboard_user job on a worker) runs the first
    # sync itself; the tick (or the scheduler) syncs the user only if that did not finish within this
    # time (the process died, or no worker serves the onboard queue).
    onboarding_hold_s: float = Field(default=600.0, alias="ONBOARDING_HOLD")
    digest_grace_s: float = Field(default=3 * 3600, alias="DIGEST_GRACE")
    default_timezone: str = Field(default="Asia/Shanghai", alias="DEFAULT_TIMEZONE")
    default_digest_time: str = Field(default="09:00", alias="DEFAULT_DIGEST_TIME")
    default_picks: int = Field(default=5, alias="DEFAULT_PICKS")
    recent_shown_days: float = Field(default=14.0, alias="RECENT_SHOWN_DAYS")
    # The collaborative signals are built on their own schedule from a bounded sample of users
    # (jobs/training.py build_shared): a training pass only loads them.
    shared_rebuild_s: float = Field(default=6 * 3600, alias="SHARED_REBUILD_INTERVAL")
    shared_sample_users: int = Field(default=2000, ge=1, alias="SHARED_SAMPLE_USERS")
    shared_items_per_user: int = Field(default=300, ge=1, alias="SHARED_ITEMS_PER_USER")

    # Checked at start: every new user gets these, and a bad one would break each of their digests.
    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"DEFAULT_TIMEZONE={value!r} is not an IANA time zone (e.g. Asia/Shanghai)") from None
        return value

    @field_validator("default_digest_time")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not is_clock_time(value):
            raise ValueError(f"DEFAULT_DIGEST_TIME={value!r} is not a time of day HH:MM (00:00-23:59)")
        return value


def is_clock_time(value: str) -> bool:
    """HH:MM on a 24-hour clock, as digest times are stored."""
    hours, sep, minutes = value.partition(":")
    return (
        sep == ":"
        and len(hours) == len(minutes) == 2
        and hours.isdigit()
        and minutes.isdigit()
        and int(hours) < 24
        and int(minutes) < 60
    )


class DistributedSettings(BaseSettings):
    """How the work runs: in this process (embedded) or as procrastinate tasks on Postgres workers."""

    model_config = _ENV

    # embedded: the JobQueue tick runs syncs, training and digests in-process (models in DATA_DIR).
    # distributed: bot.py answers Telegram (and runs QR logins); `python -m jobs.worker` runs the
    # scheduled work, models live in the database. Needs DATABASE_URL=postgresql+psycopg://...
    work_mode: Literal["embedded", "distributed"] = Field(default="embedded", alias="WORK_MODE")
    # /healthz and /metrics (Prometheus); unset: no HTTP server. Loopback unless told otherwise: the
    # page is for a scraper on the same host (or a container's own healthcheck), not the internet.
    metrics_port: int | None = Field(default=None, alias="METRICS_PORT")
    metrics_listen: str = Field(default="127.0.0.1", alias="METRICS_LISTEN")
    # How often the scheduler looks for due work (cron; a 6th column means seconds).
    scheduler_cron: str = Field(default="* * * * *", alias="SCHEDULER_CRON")
    # A worker silent this long is dead: its running jobs are handed to another worker.
    stalled_after_s: float = Field(default=60.0, alias="WORKER_STALLED_AFTER")
    heartbeat_s: float = Field(default=10.0, alias="WORKER_HEARTBEAT")
    train_shards: int = Field(default=8, alias="TRAIN_SHARDS")
    # Finished jobs: a succeeded one's row goes at once (KEEP_SUCCEEDED_JOBS keeps it, for audits and
    # the day tests' overlap check); failed, cancelled and kept ones go after this many days.
    failed_jobs_keep_days: int = Field(default=14, ge=0, alias="FAILED_JOBS_KEEP_DAYS")
    keep_succeeded_jobs: bool = Field(default=False, alias="KEEP_SUCCEEDED_JOBS")

    @property
    def distributed(self) -> bool:
        return self.work_mode == "distributed"


class Settings:
    """All concerns together; built once per process (see `get_settings`)."""

    def __init__(self) -> None:
        self.telegram = TelegramSettings()
        self.bilibili = BilibiliSettings()
        self.storage = StorageSettings()
        self.jobs = JobSettings()
        self.work = DistributedSettings()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
