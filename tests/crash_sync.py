"""Run one user's sync in its own process and SIGKILL it at a chosen point (tests/test_sync_crash.py).

    python -m tests.crash_sync DATA_DIR BILIBILI_URL USER_ID POINT     (FERNET_KEYS in the environment)

POINT: "after_pull" (everything read from bilibili, nothing stored yet), "in_commit" (the rows
are written inside the transaction, the cursors not yet, nothing committed) or "in_backfill" (a
first sync's newest pages and one batch of older history pages are stored; the next batch is not).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import jobs.sync
from bilibili import BilibiliClient
from recommender import ModelStore
from services import Services
from settings import BilibiliSettings, JobSettings, Settings, StorageSettings
from storage import behaviour
from storage.crypto import CredentialVault
from storage.db import Database
from tests.harness import FAST_BILIBILI


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str) -> None:
    if point == "after_pull":

        def save_pull(*args, **kwargs):
            die()

        jobs.sync.behaviour.save_pull = save_pull
        jobs.sync.behaviour.save_behaviours = save_pull  # the name before rows and cursors were one commit
    elif point == "in_backfill":
        save_pull, commits = behaviour.save_pull, []

        def save_pull_then_die(*args, **kwargs):
            commits.append(1)
            if len(commits) == 3:  # 1: the newest pages, 2: the first backfill batch, 3: killed
                die()
            return save_pull(*args, **kwargs)

        jobs.sync.behaviour.save_pull = save_pull_then_die
    elif point == "in_commit":

        def upsert_cursors(*args, **kwargs):
            die()

        behaviour._upsert_cursors = upsert_cursors
    else:
        raise SystemExit(f"unknown point {point!r}")


async def main(data_dir: str, url: str, user_id: int, point: str) -> None:
    settings = Settings.__new__(Settings)
    settings.bilibili = BilibiliSettings.model_validate(
        {"BILIBILI_API_URL": url, "BILIBILI_PASSPORT_URL": url, "BILIBILI_WWW_URL": url, "BILIBILI_IMAGE_URL": url}
        | {BilibiliSettings.model_fields[k].alias: v for k, v in FAST_BILIBILI.items()}
    )
    settings.storage = StorageSettings(DATA_DIR=data_dir)
    settings.jobs = JobSettings()
    db = Database(settings.storage.resolved_database_url)
    svc = Services(
        settings=settings,
        db=db,
        vault=CredentialVault([os.environ["FERNET_KEYS"]]),
        bili=BilibiliClient(settings.bilibili),
        models=ModelStore(Path(data_dir) / "models"),
    )
    arm(point)
    report = await jobs.sync.sync_user(svc, user_id)
    raise SystemExit(f"not killed: {report}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
