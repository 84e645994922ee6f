"""The long-lived pieces every handler and job uses, built once by bot.py."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bilibili import BilibiliClient, Throttle
from recommender import ModelStore
from recommender.text import title_tokens
from settings import Settings
from storage import catalogue
from storage.crypto import CredentialVault
from storage.db import Database

log = logging.getLogger(__name__)

# Every process that builds services stores each title's words with it (jieba, loaded once at import).
catalogue.use_title_tokeniser(title_tokens)

SERVICES_KEY = "services"  # where bot.py puts the Services in application.bot_data
QUEUE_KEY = "queue"  # distributed mode: where bot.py puts the procrastinate app the front defers to


class CoverCache:
    """Recently sent covers: bytes to re-upload, or the Telegram file_id once one is known."""

    def __init__(self, capacity: int = 512) -> None:
        self._items: OrderedDict[str, bytes | str] = OrderedDict()
        self._capacity = capacity

    def get(self, bvid: str) -> bytes | str | None:
        item = self._items.get(bvid)
        if item is not None:
            self._items.move_to_end(bvid)
        return item

    def put(self, bvid: str, item: bytes | str) -> None:
        self._items[bvid] = item
        self._items.move_to_end(bvid)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)


V = TypeVar("V")


class TtlCache(Generic[V]):
    """A small in-process cache: entries live `ttl_s` seconds (on the caller's clock), at most
    `capacity` of them (the least recently used goes first)."""

    def __init__(self, ttl_s: float, capacity: int) -> None:
        self.ttl_s, self._capacity = ttl_s, capacity
        self._items: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()

    def get(self, key: Hashable, now: float) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= now:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: Hashable, value: V, now: float) -> None:
        self._items[key] = (now + self.ttl_s, value)
        self._items.move_to_end(key)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def drop(self, key: Hashable) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class DiscoverCaches:
    """/search, /popular and /similar (jobs/discover.py, jobs/similar.py): ten users asking for the same
    list or video cost one bilibili call."""

    rankings: TtlCache = field(default_factory=lambda: TtlCache(600, 64))  # rid -> its top 100
    searches: TtlCache = field(default_factory=lambda: TtlCache(300, 256))  # (words, page) -> SearchPage
    listings: TtlCache = field(default_factory=lambda: TtlCache(86400, 10_000))  # token -> what a message lists
    # /similar (jobs/similar.py): a video's view/detail call shared by askers (its rows then live in the
    # catalogue), a short link's video, and a video's neighbours before each asker's filter and ratings.
    details: TtlCache = field(default_factory=lambda: TtlCache(600, 1024))  # bvid -> the call's task
    short_links: TtlCache = field(default_factory=lambda: TtlCache(3600, 1024))  # b23.tv code -> VideoRef
    neighbours: TtlCache = field(default_factory=lambda: TtlCache(300, 1024))  # bvid -> its neighbours


@dataclass
class Services:
    settings: Settings
    db: Database
    vault: CredentialVault
    bili: BilibiliClient
    models: ModelStore
    covers: CoverCache = field(default_factory=CoverCache)
    discover: DiscoverCaches = field(default_factory=DiscoverCaches)
    # One training pass at a time, off the event loop.
    trainer: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "train"))
    # Background work per user (QR login polling, onboarding), so a new /login cancels the old one.
    user_tasks: dict[int, asyncio.Task] = field(default_factory=dict)
    busy_training: set[int] = field(default_factory=set)
    _sync_locks: dict[int, asyncio.Lock] = field(default_factory=dict)
    # Every background task, so stopping cancels them instead of waiting for a QR code to expire.
    background: set[asyncio.Task] = field(default_factory=set)

    clock: Callable[[], float] = time.time  # tests move time forward through this

    def now(self) -> int:
        return int(self.clock())

    def spawn(self, work: Coroutine[Any, Any, Any], name: str, user_id: int | None = None) -> asyncio.Task:
        """Run `work` in the background; a user's new task replaces (cancels) their previous one."""
        task = asyncio.create_task(work, name=name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        task.add_done_callback(_log_failure)
        if user_id is not None:
            self.cancel_user_task(user_id)
            self.user_tasks[user_id] = task
            task.add_done_callback(lambda done: self._forget_user_task(user_id, done))
        return task

    def sync_lock(self, user_id: int) -> asyncio.Lock:
        """Held while the user syncs: the tick and an onboarding never sync one user twice at once."""
        return self._sync_locks.setdefault(user_id, asyncio.Lock())

    def syncing(self, user_id: int) -> bool:
        lock = self._sync_locks.get(user_id)
        return lock is not None and lock.locked()

    def cancel_user_task(self, user_id: int) -> None:
        task = self.user_tasks.pop(user_id, None)
        if task is not None:
            task.cancel()

    def _forget_user_task(self, user_id: int, task: asyncio.Task) -> None:
        if self.user_tasks.get(user_id) is task:
            del self.user_tasks[user_id]

    async def cancel_background(self) -> None:
        """Cancel background work (its progress is in the database; the next tick resumes it)."""
        tasks = list(self.background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        await self.cancel_background()
        self.trainer.shutdown(wait=False, cancel_futures=True)
        await self.bili.close()
        self.db.dispose()


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("background task %s failed: %s", task.get_name(), type(error).__name__, exc_info=error)


def build_services(settings: Settings) -> Services:
    storage = settings.storage
    storage.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(storage.resolved_database_url)
    db.migrate()
    keys = storage.fernet_keys.get_secret_value() if storage.fernet_keys else None
    return Services(
        settings=settings,
        db=db,
        vault=CredentialVault.from_config(keys, storage.data_dir),
        bili=build_bilibili(settings, db),
        models=build_model_store(settings, db),
    )


def build_bilibili(settings: Settings, db: Database, **client_options: Any) -> BilibiliClient:
    """The process's bilibili client. Distributed: its pace and risk pause are shared (in the database)
    with every process on the same egress IP (BILIBILI_EGRESS), since bilibili limits per IP.
    Embedded: one process, so the in-process throttle is the whole truth."""
    bili = settings.bilibili
    if not settings.work.distributed:
        return BilibiliClient(bili, **client_options)
    from storage.pace import BilibiliEgressPace

    throttle = Throttle(
        bili.max_requests_per_second,
        bili.risk_pause_base_s,
        bili.risk_pause_max_s,
        shared=BilibiliEgressPace(db, bili.egress),
    )
    return BilibiliClient(bili, throttle=throttle, **client_options)


def build_model_store(settings: Settings, db: Database):
    """Files in DATA_DIR (embedded), or blobs in the database every machine reads (distributed)."""
    if settings.work.distributed:
        from recommender.blobstore import BlobModelStore
        from storage.model_blobs import DatabaseBlobs

        return BlobModelStore(DatabaseBlobs(db), cache_size=settings.storage.model_cache_size)
    return ModelStore(settings.storage.models_dir, max_cached=settings.storage.model_cache_size)
