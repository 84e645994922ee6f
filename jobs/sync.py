"""One user's sync: bilibili behaviour → storage, plus the metadata and candidates it needs.

Incremental by design: history stops at the newest view time already stored, favourite folders
whose count did not change are skipped, and video metadata is fetched once for all users.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field, replace

from bilibili import (
    BilibiliError,
    Credentials,
    EmptyData,
    MalformedResponse,
    RiskControl,
    SessionExpired,
    VideoInfo,
    VideoUnavailable,
)
from services import Services
from storage import behaviour, catalogue, users
from storage.behaviour import BehaviourRow

log = logging.getLogger(__name__)

HISTORY = "history"
ACCOUNT_CHANGED = "account_changed"
COIN_SEED_LIMIT = 5  # related lists are pulled for this many of the user's newest strong signals
CANDIDATE_TTL_S = 3 * 3600
POPULAR_PAGES = 5
FAV_PAGE_SIZE = 20  # bilibili's largest page of favourite items (the client asks for it)


@dataclass
class SyncReport:
    user_id: int
    new_items: int = 0
    metadata_fetched: int = 0
    candidates: int = 0
    calls: int = 0
    seconds: float = 0.0
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


async def sync_user(services: Services, user_id: int) -> SyncReport:
    """Refresh the login if due, pull behaviour, fetch missing metadata, refresh candidates.

    One sync of a user at a time in this process: a second caller waits for the first to finish
    (then reads only what is new); the tick skips a user who is syncing (`Services.syncing`)."""
    async with services.sync_lock(user_id):
        return await _sync_user(services, user_id)


async def _sync_user(services: Services, user_id: int) -> SyncReport:
    report = SyncReport(user_id)
    calls_before, started = services.bili.calls, time.monotonic()
    try:
        user = users.get_user_by_id(services.db, user_id)
        if user is None:
            report.error = ACCOUNT_CHANGED  # gone with /forget
            return report
        creds = await _fresh_credentials(services, user_id)
        if creds is None:
            report.error = "session_dead"
            return report
        mid = user.bili_mid or int(creds.dedeuserid)
        pull = await _pull_behaviour(services, user_id, creds, mid)
        # Rows and cursors together, after the whole pull: a fault anywhere above stores neither.
        new_items = behaviour.save_pull(services.db, user_id, user.bili_mid, pull.rows, pull.cursors, services.now())
        if new_items is None:
            report.error = ACCOUNT_CHANGED  # a /login with another account (or /forget) meanwhile
            return report
        report.new_items = new_items
        report.metadata_fetched = await fetch_metadata(services, {r.bvid for r in pull.rows}, pull.videos)
        report.candidates = await refresh_candidates_safely(services)
        report.candidates += await _pull_related(services, user_id)
        report.counts = behaviour.behaviour_counts(services.db, user_id)
    except SessionExpired:
        report.error = "session_dead"  # after_sync marks it; the tick tells the user once
    except RiskControl as exc:
        report.error = f"risk_control:{exc.code}"
    except BilibiliError as exc:
        report.error = f"{type(exc).__name__}:{getattr(exc, 'code', '')}"
    except Exception as exc:  # noqa: BLE001 - a parser bug or a DB error: this user fails, the others go on
        log.error("sync user=%d failed unexpectedly: %s", user_id, type(exc).__name__, exc_info=True)
        report.error = f"unexpected:{type(exc).__name__}"
    finally:
        report.calls = services.bili.calls - calls_before
        report.seconds = time.monotonic() - started
    return report


async def _fresh_credentials(services: Services, user_id: int) -> Credentials | None:
    stored = users.stored_credentials(services.db, user_id)
    secrets = services.vault.decrypt(stored) if stored is not None else None
    if secrets is None:
        return None
    creds = Credentials.from_dict(secrets)

    async def persist(new: Credentials) -> None:
        # The new cookies are stored before bilibili is told to retire the old ones, and only over
        # the login they refresh: a /logout or another /login meanwhile is not undone.
        if not users.replace_credentials(services.db, services.vault, user_id, stored, new.to_dict()):
            log.info("login changed during a cookie refresh; the refreshed cookies are dropped")

    return await services.bili.refresh_if_needed(creds, persist)


class Progress:
    """Guards one paginated bilibili list against pages that never end: at most `max_pages` pages,
    the cursor must move, and a page may not repeat items already read (an empty page may be
    honest: a page of deleted favourites comes back empty, so only the page count bounds those)."""

    def __init__(self, source: str, user_id: int, max_pages: int) -> None:
        self.source, self.user_id, self.max_pages = source, user_id, max_pages
        self.pages = 0
        self.cursors: set[Hashable] = set()
        self.items: set[str] = set()
        self.cut = False  # True once the guard stopped the list before bilibili said it ended

    def advanced(self, *, cursor: Hashable | None = None, items: Iterable[str] | None = None) -> bool:
        """After a page that says there is more: is the next page worth asking for?"""
        self.pages += 1
        if cursor is not None:
            if cursor in self.cursors:
                return self._stop("the cursor did not advance")
            self.cursors.add(cursor)
        if items is not None:
            page = set(items)
            if page and page <= self.items:
                return self._stop("a page repeated items already read")
            self.items |= page
        if self.pages >= self.max_pages:
            return self._stop(f"{self.max_pages} pages (SYNC_MAX_PAGES)")
        return True

    def _stop(self, why: str) -> bool:
        self.cut = True
        log.warning("sync user=%d source=%s: stopped after %d pages: %s", self.user_id, self.source, self.pages, why)
        return False


@dataclass
class Pull:
    """What one sync read from bilibili, not stored yet: rows, their videos, and the new cursors."""

    rows: list[BehaviourRow] = field(default_factory=list)
    videos: list[VideoInfo] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)


async def _pull_behaviour(services: Services, user_id: int, creds: Credentials, mid: int) -> Pull:
    """Reads only; the caller stores rows and cursors in one transaction (storage.behaviour.save_pull)."""
    bili, db = services.bili, services.db
    pull = Pull()
    rows, videos = pull.rows, pull.videos

    max_pages = services.settings.jobs.sync_max_pages
    newest_seen = int(behaviour.get_cursor(db, user_id, HISTORY) or 0)
    newest = newest_seen
    cursor = None
    history_pages = Progress(HISTORY, user_id, max_pages)
    while True:
        page = await bili.history_page(creds, cursor)
        fresh = [item for item in page.items if item.view_at > newest_seen]
        for item in fresh:
            rows.append(BehaviourRow(item.video.bvid, "watch", at=item.view_at,
                                     progress=item.progress, duration=item.duration))  # fmt: skip
            videos.append(item.video)
            newest = max(newest, item.view_at)
        if page.next_cursor is None or len(fresh) < len(page.items):
            break  # the end, or we reached what is stored
        if not history_pages.advanced(cursor=page.next_cursor):
            break
        cursor = page.next_cursor

    for folder in await bili.fav_folders(creds, mid):
        source = f"favorite:{folder.id}"
        if behaviour.get_cursor(db, user_id, source) == str(folder.media_count):
            continue  # unchanged folder: skip its pages
        pn, has_more = 1, True
        # The folder's count bounds its pages (+1: it may grow while we read).
        folder_pages = Progress(source, user_id, min(max_pages, -(-folder.media_count // FAV_PAGE_SIZE) + 1))
        while has_more:
            items, has_more = await bili.fav_items(creds, folder.id, pn)
            rows += [BehaviourRow(i.video.bvid, "favorite", at=i.fav_time) for i in items]
            videos += [i.video for i in items]
            pn += 1
            if has_more and not folder_pages.advanced(items=[i.video.bvid for i in items]):
                break
        if not folder_pages.cut:  # a folder read only in part is read again next sync
            pull.cursors[source] = str(folder.media_count)

    for coin in await bili.coined_videos(creds, mid):
        rows.append(BehaviourRow(coin.video.bvid, "coin", at=coin.time, coins=coin.coins))
        videos.append(coin.video)

    liked = await bili.liked_videos(creds, mid)
    known_likes = {b.bvid: b.at for b in behaviour.user_behaviours(db, user_id) if b.kind == "like"}
    for video in liked:
        # bilibili gives no like time: keep the first time we saw it.
        rows.append(BehaviourRow(video.bvid, "like", at=known_likes.get(video.bvid, services.now())))
        videos.append(video)

    # History read only in part (bilibili paginated badly) keeps the old mark, so the next sync
    # reads past what it got this time instead of stopping at it.
    if newest > newest_seen and not history_pages.cut:
        pull.cursors[HISTORY] = str(newest)
    return pull


async def fetch_metadata(services: Services, bvids: set[str], seen: list[VideoInfo]) -> int:
    """view + tags for videos unknown to the catalogue or older than the TTL: once for all users."""
    db, bili, now = services.db, services.bili, services.now()
    catalogue.add_partial_videos(db, [v for v in seen if v.tid == 0])
    catalogue.save_videos(db, [v for v in seen if v.tid > 0 and v.tags is None], now)
    stale = catalogue.stale_bvids(db, bvids, now, services.settings.jobs.video_ttl_s)
    need_view = catalogue.needs_view(db, stale)
    fetched = 0
    for bvid in stale:
        try:
            video = await bili.view(bvid) if bvid in need_view else None
            tags = await bili.tags(bvid)
        except VideoUnavailable:
            catalogue.mark_unavailable(db, bvid, now)
            continue
        except (MalformedResponse, EmptyData) as exc:  # one odd video: the others still get metadata
            log.warning("metadata for %s skipped: %s", bvid, type(exc).__name__)
            continue
        if video is None:
            row = catalogue.get_videos(db, [bvid])[bvid]
            video = _with_tags_from_row(row, tags)
        else:
            video = _replace_tags(video, tags)
        catalogue.save_videos(db, [video], now)
        fetched += 1
    return fetched


async def refresh_candidates(services: Services, force: bool = False) -> int:
    """Popular, the latest weekly issue and the ranking, at most every few hours for everyone."""
    db, bili, now = services.db, services.bili, services.now()
    if not force and now - catalogue.last_candidate_refresh(db) < CANDIDATE_TTL_S:
        return 0
    found: list[VideoInfo] = []
    for pn in range(1, POPULAR_PAGES + 1):
        items, no_more = await bili.popular(pn)
        found += items
        if no_more or not items:
            break
    numbers = await bili.weekly_numbers()
    if numbers:
        found += await bili.weekly_issue(max(numbers))
    found += await bili.ranking()
    catalogue.save_videos(db, found, now, candidate=True)
    await fetch_metadata(services, {v.bvid for v in found}, [])
    return len({v.bvid for v in found})


async def refresh_candidates_safely(services: Services) -> int:
    """The shared candidate refresh, failing no user's sync: RiskControl propagates (it pauses
    everything); any other failure (a bad item, a bug) is logged and waits for the next run."""
    try:
        return await refresh_candidates(services)
    except RiskControl:
        raise
    except BilibiliError as exc:
        log.warning("candidate refresh failed: %s", type(exc).__name__)
    except Exception:  # noqa: BLE001
        log.exception("candidate refresh failed unexpectedly")
    return 0


async def _pull_related(services: Services, user_id: int) -> int:
    """Related videos of the user's newest liked/faved/coined videos become candidates too."""
    db, bili, now = services.db, services.bili, services.now()
    strong = sorted(
        (b for b in behaviour.user_behaviours(db, user_id) if b.kind != "watch"),
        key=lambda b: b.at,
        reverse=True,
    )
    seeds = list(dict.fromkeys(b.bvid for b in strong))[:COIN_SEED_LIMIT]
    done = catalogue.related_fetched(db, seeds, since=now - int(services.settings.jobs.video_ttl_s))
    added = 0
    for bvid in seeds:
        if bvid in done:
            continue
        try:
            related = await bili.related(bvid)
        except (VideoUnavailable, MalformedResponse, EmptyData):
            continue
        catalogue.save_videos(db, related, now, candidate=True)
        catalogue.save_related(db, bvid, [v.bvid for v in related], now)
        added += await fetch_metadata(services, {v.bvid for v in related}, [])
    return added


def _replace_tags(video: VideoInfo, tags: tuple[str, ...]) -> VideoInfo:
    return replace(video, tags=tuple(tags))


def _with_tags_from_row(row, tags: tuple[str, ...]) -> VideoInfo:
    return VideoInfo(
        bvid=row.bvid, aid=row.aid, title=row.title, cover=row.cover, owner_mid=row.owner_mid,
        owner_name=row.owner_name, duration=row.duration, tid=row.tid, tname=row.tname,
        pubdate=row.pubdate, view=row.view, danmaku=row.danmaku, reply=row.reply,
        favorite=row.favorite, coin=row.coin, share=row.share, like=row.like, tags=tuple(tags),
    )  # fmt: skip

