"""Building the real services against the doubles (shared by tests and bench scripts)."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet

from bilibili import BilibiliClient
from recommender import ModelStore
from services import Services
from settings import DistributedSettings, JobSettings, Settings, StorageSettings
from storage import users
from storage.crypto import CredentialVault
from storage.db import Database
from tests.doubles.bilibili import BilibiliDouble

FAST_BILIBILI = dict(
    timeout_s=1.0,
    retries=2,
    backoff_base_s=0.01,
    risk_pause_base_s=0.3,
    risk_pause_max_s=2.0,
    max_requests_per_second=0,
    qr_poll_interval_s=0.02,
)


def link_user(
    svc: Services,
    double: BilibiliDouble,
    telegram_id: int,
    mid: int,
    language: str = "en",
    linked_ago_s: int = 0,
    **fields,
) -> int:
    """A user (private chat = telegram_id) linked to the double's account `mid`, as after a QR login;
    `fields` go to the user's row (timezone, digest_time, ...)."""
    user = users.ensure_user(svc.db, telegram_id, telegram_id, language, now=svc.now() - linked_ago_s, **fields)
    users.link_bilibili(svc.db, svc.vault, user.id, double.login(mid), mid, f"u{mid}", svc.now())
    return user.id


def link_generated_users(
    svc: Services, double: BilibiliDouble, count: int, first_mid: int, first_telegram_id: int = 1, n_history: int = 150
) -> list[int]:
    """`count` linked users, user i with a history the double generates from seed i."""
    ids = []
    for i in range(count):
        double.add_generated_user(first_mid + i, seed=i, n_history=n_history)
        ids.append(link_user(svc, double, first_telegram_id + i, first_mid + i))
    return ids


def make_settings(
    data_dir: Path, double: BilibiliDouble, database_url: str | None = None, fernet_keys: str | None = None, **jobs
) -> Settings:
    """`fernet_keys`: those of an earlier run on the same DATA_DIR (a restart); else a new key."""
    settings = Settings.__new__(Settings)
    settings.telegram = Settings().telegram
    settings.bilibili = double.settings(**FAST_BILIBILI)
    settings.storage = StorageSettings(
        DATA_DIR=str(data_dir), DATABASE_URL=database_url, FERNET_KEYS=fernet_keys or Fernet.generate_key().decode()
    )
    settings.jobs = JobSettings(**jobs)
    settings.work = DistributedSettings()
    return settings


def make_services(
    data_dir: Path, double: BilibiliDouble, database_url: str | None = None, fernet_keys: str | None = None, **jobs
) -> Services:
    settings = make_settings(data_dir, double, database_url, fernet_keys, **jobs)
    db = Database(settings.storage.resolved_database_url)
    db.migrate()
    return Services(
        settings=settings,
        db=db,
        vault=CredentialVault([settings.storage.fernet_keys.get_secret_value()]),
        bili=BilibiliClient(settings.bilibili, correspond_public_key=double.correspond_public_pem),
        models=ModelStore(settings.storage.models_dir),
    )
