"""What a sync reads from bilibili: a user's behaviour as rows, with the cursors that say where each
list stopped. Reads only: jobs/sync.py stores a Pull's rows and cursors in one transaction."""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from bilibili import Credentials, FavFolder, HistoryCursor, HistoryItem, VideoInfo
from services import Services
from storage import behaviour
from storage.behaviour import BehaviourRow

log = logging.getLogger(__name__)

HISTORY = "history"  # the newest view time stored: later syncs read down to it
# Set when a sync stored nothing at all (no history, favourites, coins or likes): /recommend tells the
# user so instead of "training…" (no model can be trained from nothing). Dropped with the cursors.
NO_HISTORY = "history:none"
HISTORY_BACKFILL = "history:backfill"  # where the older history still to read starts (absent: all read)
# A first sync's newest history pages (300 watches, 2.5 s at 4 req/s); the older ones are backfilled.
# Until then a pick may be a video watched long ago: most users' whole history fits here.
FIRST_HISTORY_PAGES = 10
FAV_PAGE_SIZE = 20  # bilibili's largest page of favourite items (the client asks for it)


@dataclass(frozen=True)
class Account:
    user_id: int
    linked_mid: int | None  # as stored: a pull is committed only while the user is still linked to it
    creds: Credentials

    @property
    def mid(self) -> int:
        return self.linked_mid or int(self.creds.dedeuserid)


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
    # Favourites that history rows tell (`is_fav`), stored where no folder said so already: a folder
    # not read yet (a first sync reads one page of the default folder) or one bilibili hides.
    implied: list[BehaviourRow] = field(default_factory=list)


async def pull_behaviour(services: Services, account: Account) -> Pull:
    """Reads only; the caller stores rows and cursors in one transaction (storage.behaviour.save_pull)."""
    pull = Pull()
    await pull_new_history(services, account, pull)
    for folder in await services.bili.fav_folders(account.creds, account.mid):
        await pull_folder(services, account, folder, pull)
    await pull_coins_and_likes(services, account, pull)
    return pull


async def pull_first_part(services: Services, account: Account) -> Pull:
    """What a first model needs most, in a few calls: the newest history pages, coins, likes and the
    default folder's first page (its count is not stored: the full sync reads the whole folder)."""
    pull = Pull()
    await pull_new_history(services, account, pull)
    await pull_coins_and_likes(services, account, pull)
    folders = await services.bili.fav_folders(account.creds, account.mid)
    if folders:
        items, _ = await services.bili.fav_items(account.creds, folders[0].id, 1)
        pull.rows += [BehaviourRow(i.video.bvid, "favorite", at=i.fav_time) for i in items]
        pull.videos += [i.video for i in items]
    return pull


async def pull_new_history(services: Services, account: Account, pull: Pull) -> None:
    """History newer than the stored mark. On a user's first sync only the newest pages: the rest
    is left to `_backfill_history`, which starts at the cursor this stores."""
    db, user_id = services.db, account.user_id
    newest_seen = int(behaviour.get_cursor(db, user_id, HISTORY) or 0)
    first_time = newest_seen == 0 and behaviour.get_cursor(db, user_id, HISTORY_BACKFILL) is None
    newest, cursor = newest_seen, None
    history_pages = Progress(HISTORY, user_id, services.settings.jobs.sync_max_pages)
    while True:
        page = await services.bili.history_page(account.creds, cursor)
        fresh = [item for item in page.items if item.view_at > newest_seen]
        add_watches(pull, fresh)
        newest = max([newest, *(item.view_at for item in fresh)])
        if page.next_cursor is None or len(fresh) < len(page.items):
            break  # the end, or we reached what is stored
        if first_time and history_pages.pages + 1 >= FIRST_HISTORY_PAGES:
            pull.cursors[HISTORY_BACKFILL] = encode_cursor(page.next_cursor)
            break
        if not history_pages.advanced(cursor=page.next_cursor):
            break
        cursor = page.next_cursor
    # History read only in part (bilibili paginated badly) keeps the old mark, so the next sync
    # reads past what it got this time instead of stopping at it.
    if newest > newest_seen and not history_pages.cut:
        pull.cursors[HISTORY] = str(newest)


def add_watches(pull: Pull, items: Iterable[HistoryItem]) -> None:
    for item in items:
        pull.rows.append(
            BehaviourRow(item.video.bvid, "watch", at=item.view_at, progress=item.progress, duration=item.duration)
        )
        pull.videos.append(item.video)
        if item.is_fav:  # when it was faved is not said: the view is the closest time known
            pull.implied.append(BehaviourRow(item.video.bvid, "favorite", at=item.view_at))


def encode_cursor(cursor: HistoryCursor) -> str:
    return json.dumps({"max": cursor.max, "view_at": cursor.view_at, "business": cursor.business})


def decode_cursor(raw: str | None) -> HistoryCursor | None:
    if raw is None:
        return None
    try:
        d = json.loads(raw)
        return HistoryCursor(max=int(d["max"]), view_at=int(d["view_at"]), business=str(d["business"]))
    except (ValueError, TypeError, KeyError):
        log.warning("unreadable %s cursor dropped: the older history is not read again", HISTORY_BACKFILL)
        return None


async def pull_folder(services: Services, account: Account, folder: FavFolder, pull: Pull) -> None:
    source = f"favorite:{folder.id}"
    if behaviour.get_cursor(services.db, account.user_id, source) == str(folder.media_count):
        return  # unchanged folder: skip its pages
    pn, has_more = 1, True
    # The folder's count bounds its pages (+1: it may grow while we read).
    max_pages = min(services.settings.jobs.sync_max_pages, -(-folder.media_count // FAV_PAGE_SIZE) + 1)
    folder_pages = Progress(source, account.user_id, max_pages)
    while has_more:
        items, has_more = await services.bili.fav_items(account.creds, folder.id, pn)
        pull.rows += [BehaviourRow(i.video.bvid, "favorite", at=i.fav_time) for i in items]
        pull.videos += [i.video for i in items]
        pn += 1
        if has_more and not folder_pages.advanced(items=[i.video.bvid for i in items]):
            break
    if not folder_pages.cut:  # a folder read only in part is read again next sync
        pull.cursors[source] = str(folder.media_count)


async def pull_coins_and_likes(services: Services, account: Account, pull: Pull) -> None:
    bili = services.bili
    for coin in await bili.coined_videos(account.creds, account.mid):
        pull.rows.append(BehaviourRow(coin.video.bvid, "coin", at=coin.time, coins=coin.coins))
        pull.videos.append(coin.video)
    liked = await bili.liked_videos(account.creds, account.mid)
    known_likes = {b.bvid: b.at for b in behaviour.user_behaviours(services.db, account.user_id) if b.kind == "like"}
    for video in liked:
        # bilibili gives no like time: keep the first time we saw it.
        pull.rows.append(BehaviourRow(video.bvid, "like", at=known_likes.get(video.bvid, services.now())))
        pull.videos.append(video)


async def pull_older_history(
    services: Services, account: Account, cursor: HistoryCursor, guard: Progress, pages: int
) -> tuple[Pull, HistoryCursor | None]:
    """Up to `pages` history pages from `cursor` (older history a first sync left): the rows, with the
    backfill cursor to go on from, and that cursor (None: the oldest page was read). `guard.cut`
    says the list stopped early (a page limit, a cursor that stopped moving): go on next sync."""
    pull = Pull()
    for _ in range(pages):
        page = await services.bili.history_page(account.creds, cursor)
        add_watches(pull, page.items)
        if page.next_cursor is None or not page.items:
            cursor = None  # the oldest page
            break
        cursor = page.next_cursor
        if not guard.advanced(cursor=cursor):
            break
    pull.cursors[HISTORY_BACKFILL] = encode_cursor(cursor) if cursor is not None else None
    return pull, cursor
