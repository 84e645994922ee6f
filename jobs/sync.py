"""One user's sync: bilibili behaviour → storage, plus the metadata and candidates it needs.

Incremental by design: history stops at the newest view time already stored, favourite folders
whose count did not change are skipped, and video metadata is fetched once for all users.

A user's first sync comes in two parts. `quick_sync` (onboarding, urgent) reads the newest history
pages and the strong signals, and metadata for the few dozen videos a first model needs. The rest of
the history is then read by `sync_user` from a backfill cursor (jobs/pull.py), a few pages per commit,
each with the cursor that follows it, so a crash resumes where it stopped; the metadata the user's
videos still lack is fetched most valuable first (`behaviour.bvids_missing_metadata`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace

from bilibili import (
    ApiError,
    BilibiliError,
    Credentials,
    EmptyData,
    MalformedResponse,
    NotLoggedIn,
    RiskControl,
    SessionExpired,
    VideoInfo,
    VideoRestricted,
    VideoUnavailable,
)
from jobs.pull import (
    HISTORY_BACKFILL,
    NO_HISTORY,
    Account,
    Progress,
    Pull,
    decode_cursor,
    pull_behaviour,
    pull_first_part,
    pull_older_history,
)
from services import Services
from storage import behaviour, blocks, candidates, catalogue, users

log = logging.getLogger(__name__)

QUICK_METADATA = 30  # videos whose metadata the first model gets (the strong signals, the newest watches)
# Of each view/detail answer in the first part, this many related videos become the user's own
# candidates: the first page then ranks videos next to the user's own, not only this week's lists.
QUICK_RELATED_PER_VIDEO = 10
BACKFILL_COMMIT_PAGES = 5  # history pages per commit while backfilling (a crash re-reads at most these)
ACCOUNT_CHANGED = "account_changed"
COIN_SEED_LIMIT = 5  # related lists are pulled for this many of the user's newest strong signals
CANDIDATE_TTL_S = 3 * 3600
POPULAR_PAGES = 5
FOLLOWINGS_TTL_S = 86400  # whom the user follows is read at most once a day
FOLLOWINGS_MAX_PAGES = 40  # 50 a page: 2,000 follows, above bilibili's own cap of 2,000
BLACKLIST_AT = "blacklist:at"  # cursor: when the user's bilibili blacklist was last read (unix s)
BLACKLIST_MAX_PAGES = 40  # 50 a page: storage keeps at most 2,000 (blocks.MAX_BILIBILI_BLACKLIST)
FEED_BASELINE = "feed:baseline"  # cursor: the newest feed row stored (the update poll counts after it)
FEED_MAX_PAGES = 5  # feed pages read when the poll says there is something new (20 rows a page)
FEED_FIRST_PAGES = 1  # a user's first read of the feed: the newest uploads only
HOME_FEED_AT = "home:at"  # cursor: when the home feed was last read
HOME_FEED_MIN_S = 3600  # a sync right after another (/sync, a retry) does not ask the home feed again
OWN_CANDIDATES_KEPT_S = 14 * 86400  # twice the ranking window (jobs/picks.CANDIDATE_WINDOW_S), then dropped


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
    history_done: bool = False  # no older history left to read

    @property
    def ok(self) -> bool:
        return self.error is None


# Called as a long sync goes (after each history commit, every few dozen videos' metadata).
OnProgress = Callable[["SyncReport"], Awaitable[None]]


class AccountChanged(Exception):
    """A /login with another account (or /forget) while the sync ran: it stores nothing more."""


async def sync_user(services: Services, user_id: int, on_progress: OnProgress | None = None) -> SyncReport:
    """Refresh the login if due, pull behaviour (and the rest of a first sync's history), fetch
    missing metadata, refresh candidates.

    One sync of a user at a time in this process: a second caller waits for the first to finish
    (then reads only what is new); the tick skips a user who is syncing (`Services.syncing`)."""
    async with services.sync_lock(user_id):
        return await _guarded(
            services, user_id, lambda report, account: _full_sync(services, account, report, on_progress)
        )


async def quick_sync(services: Services, user_id: int) -> SyncReport:
    """A new user's first part: the newest history pages, likes, coins and the first page of the
    default favourite folder, with metadata for the videos the first model needs; urgent, so the
    background traffic waits. `sync_user` reads the rest afterwards."""
    async with services.sync_lock(user_id):
        with services.bili.urgent():
            return await _guarded(services, user_id, lambda report, account: _quick_sync(services, account, report))


async def _full_sync(services: Services, account: Account, report: SyncReport, on_progress: OnProgress | None) -> None:
    pull = await pull_behaviour(services, account)
    # Rows and cursors together, after the whole pull: a fault anywhere above stores neither.
    _commit(services, account, pull, report)
    await _backfill_history(services, account, report, on_progress)
    # Never fetched first (most valuable first), then this pull's videos whose metadata grew old.
    owed = behaviour.bvids_missing_metadata(services.db, account.user_id, services.now())
    bvids = owed + [r.bvid for r in pull.rows]
    report.metadata_fetched = await fetch_metadata(services, bvids, pull.videos, report=report, on_progress=on_progress)
    report.candidates = await refresh_candidates_safely(services)
    report.candidates += await _pull_related(services, account)
    report.candidates += await _pull_own_candidates(services, account)


async def _quick_sync(services: Services, account: Account, report: SyncReport) -> None:
    pull = await pull_first_part(services, account)
    _commit(services, account, pull, report)
    wanted = behaviour.bvids_missing_metadata(services.db, account.user_id, services.now())[:QUICK_METADATA]
    related: dict[str, list[VideoInfo]] = {}
    report.metadata_fetched = await fetch_metadata(
        services, wanted, pull.videos, report=report, on_related=related.__setitem__
    )
    report.candidates += _keep_related(services, account, related)
    # the related lists of the strongest signals, as the full sync pulls them (a few calls, no metadata)
    try:
        report.candidates += await _pull_related(services, account, with_metadata=False)
    except (NotLoggedIn, SessionExpired, RiskControl, AccountChanged):
        raise
    except BilibiliError as exc:  # the first picks do without them; the full sync asks again
        log.warning("related lists for user=%d's first part failed: %s", account.user_id, type(exc).__name__)
    if not catalogue.candidate_videos(services.db, since=services.now() - CANDIDATE_TTL_S):
        # A bot with no candidates yet: the lists now, their tags with the background sync.
        report.candidates = await refresh_candidates_safely(services, with_metadata=False)


def _keep_related(services: Services, account: Account, related: dict[str, list[VideoInfo]]) -> int:
    """The related lists view/detail returned with the first part's metadata (no call of their own):
    stored once in the related graph, and the first few of each become this user's own candidates
    (never everyone's). Their list rows give stats, title, uploader and partition; tags come later."""
    own: list[VideoInfo] = []
    for rows in related.values():  # the lists themselves were stored by fetch_metadata (keep_related)
        own += rows[:QUICK_RELATED_PER_VIDEO]
    if not own:
        return 0
    _keep_list_rows(services, own)
    _save_own(services, account, "related", [v.bvid for v in own])
    return len({v.bvid for v in own})


def _commit(services: Services, account: Account, pull: Pull, report: SyncReport) -> None:
    new_items = behaviour.save_pull(
        services.db, account.user_id, account.linked_mid, pull.rows, pull.cursors, services.now(), implied=pull.implied
    )
    if new_items is None:
        raise AccountChanged
    report.new_items += new_items
    report.counts = behaviour.behaviour_counts(services.db, account.user_id)
    if not any(report.counts.values()):  # a bilibili account with nothing to learn from (yet)
        behaviour.set_cursor(services.db, account.user_id, NO_HISTORY, str(services.now()), services.now())


async def _guarded(
    services: Services, user_id: int, body: Callable[[SyncReport, Account], Awaitable[None]]
) -> SyncReport:
    """Credentials, then `body`; every failure ends in the report (typed), none escapes."""
    report = SyncReport(user_id)
    calls_before, started = services.bili.calls, time.monotonic()
    try:
        user = users.get_user_by_id(services.db, user_id)
        if user is None:
            report.error = ACCOUNT_CHANGED  # gone with /forget
            return report
        creds = await fresh_credentials(services, user_id)
        if creds is None:
            report.error = "session_dead"
            return report
        await body(report, Account(user_id, user.bili_mid, creds))  # each commit updates report.counts
    except AccountChanged:
        report.error = ACCOUNT_CHANGED  # a /login with another account (or /forget) meanwhile
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


async def fresh_credentials(services: Services, user_id: int) -> Credentials | None:
    """The user's stored login, refreshed when bilibili says it is due (None: no login stored)."""
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


async def _backfill_history(
    services: Services, account: Account, report: SyncReport, on_progress: OnProgress | None
) -> None:
    """The older history a first sync left, a few pages per commit, each commit with the cursor of
    the page after it: a crash re-reads at most BACKFILL_COMMIT_PAGES pages."""
    raw = behaviour.get_cursor(services.db, account.user_id, HISTORY_BACKFILL)
    cursor = decode_cursor(raw)
    if raw is not None and cursor is None:  # unreadable: dropped (logged), the rest is not read
        _commit(services, account, Pull(cursors={HISTORY_BACKFILL: None}), report)
    guard = Progress(HISTORY_BACKFILL, account.user_id, services.settings.jobs.sync_max_pages)
    while cursor is not None and not guard.cut:
        batch, cursor = await pull_older_history(services, account, cursor, guard, BACKFILL_COMMIT_PAGES)
        _keep_list_rows(services, batch.videos)
        _commit(services, account, batch, report)
        if on_progress is not None:
            await on_progress(report)
    report.history_done = cursor is None


def _keep_list_rows(services: Services, seen: list[VideoInfo]) -> None:
    """What list pages already told about a video (title, cover, uploader, partition, duration)."""
    db, now = services.db, services.now()
    catalogue.add_partial_videos(db, [v for v in seen if v.tid == 0])
    catalogue.save_videos(db, [v for v in seen if v.tid > 0 and v.tags is None], now)


METADATA_PROGRESS_EVERY = 50  # videos between two progress reports
# Of the related list view/detail brings (up to 40), a sync keeps the first these many (bilibili's
# closest): /similar has them at no call, at a quarter of the rows. /similar's own call keeps all.
RELATED_KEPT = 10


async def fetch_metadata(
    services: Services,
    bvids: Iterable[str],
    seen: list[VideoInfo],
    *,
    report: SyncReport | None = None,
    on_progress: OnProgress | None = None,
    on_related: Callable[[str, list[VideoInfo]], None] | None = None,
) -> int:
    """Metadata + tags for videos unknown to the catalogue or older than the TTL, once for all users,
    in the order given (most valuable first). One call per video: view/detail (falling back to view +
    tags), also where a list already gave the stats: only view tells a members-only video (never
    picked), the 2025 partition, the honours, the co-creators and bilibili's title segmentation.
    `on_related(bvid, related)`: given the related list of each view/detail answer."""
    db, now = services.db, services.now()
    order = list(dict.fromkeys(bvids))
    _keep_list_rows(services, seen)
    rank = {b: i for i, b in enumerate(order)}
    stale = sorted(catalogue.stale_bvids(db, order, now, services.settings.jobs.video_ttl_s), key=rank.__getitem__)
    fetched = 0
    related: dict[str, list[VideoInfo]] = {}  # view/detail's related lists, stored a batch at a time
    try:
        for bvid in stale:
            try:
                video, video_related = await _video_with_tags(services, bvid)
            except VideoRestricted as exc:
                # Refused (member-only -403, -400), maybe for a while: out of the candidates, not asked
                # about again until VIDEO_TTL has passed, then looked at anew.
                log.info("metadata for %s refused (%s): looked at again later", bvid, exc.code)
                catalogue.mark_unavailable(db, bvid, now, recheck_at=now + int(services.settings.jobs.video_ttl_s))
                continue
            except VideoUnavailable:
                catalogue.mark_unavailable(db, bvid, now)
                continue
            except (MalformedResponse, EmptyData) as exc:  # one odd video: the others still get metadata
                log.warning("metadata for %s skipped: %s", bvid, type(exc).__name__)
                continue
            catalogue.save_videos(db, [video], now)
            if video_related is not None:
                related[bvid] = video_related[:RELATED_KEPT]
                if video_related and on_related is not None:
                    on_related(bvid, video_related)
            fetched += 1
            if fetched % METADATA_PROGRESS_EVERY == 0:
                keep_related(services, related)
                if report is not None and on_progress is not None:
                    report.metadata_fetched = fetched
                    await on_progress(report)
    finally:  # what was fetched before a failure is kept too
        keep_related(services, related)
    return fetched


async def _video_with_tags(services: Services, bvid: str) -> tuple[VideoInfo, list[VideoInfo] | None]:
    """The video with its tags, and its related list when the call brought one (view/detail)."""
    bili = services.bili
    try:
        detail = await bili.view_detail(bvid)
    except (ApiError, MalformedResponse, EmptyData) as exc:  # the older pair still answers
        log.info("view/detail for %s failed (%s): view + tags instead", bvid, type(exc).__name__)
    else:
        return detail.video, detail.related
    video = await bili.view(bvid)
    return _replace_tags(video, await bili.tags(bvid)), None


def keep_related(services: Services, related: dict[str, list[VideoInfo]]) -> None:
    """The related lists view/detail brought with videos (video -> its list): their rows into the
    catalogue and their edges into `related`, so /similar (and the shared signals) have them without
    another call. Emptied once stored."""
    if not related:
        return
    _keep_list_rows(services, [v for rows in related.values() for v in rows])
    catalogue.save_related_lists(
        services.db, {b: [v.bvid for v in rows] for b, rows in related.items()}, services.now()
    )
    related.clear()


async def refresh_candidates(services: Services, force: bool = False, with_metadata: bool = True) -> int:
    """Popular, the latest weekly issue and the ranking, at most every few hours for everyone.
    `with_metadata=False`: the lists only (their tags come with the next refresh or sync)."""
    db, bili, now = services.db, services.bili, services.now()
    if not force and now - catalogue.last_candidate_refresh(db) < CANDIDATE_TTL_S:
        # Lists pulled without their tags (a first sync on an empty bot) get them now.
        return await fetch_metadata(services, catalogue.candidates_never_fetched(db, since=now - CANDIDATE_TTL_S), [])
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
    if with_metadata:
        await fetch_metadata(services, [v.bvid for v in found], [])
    return len({v.bvid for v in found})


def candidate_refresh_due(services: Services) -> bool:
    """Whether `refresh_candidates` has work: the lists are older than CANDIDATE_TTL_S, or some of
    them still lack their metadata (pulled without it by a first sync on an empty bot)."""
    db, now = services.db, services.now()
    if now - catalogue.last_candidate_refresh(db) >= CANDIDATE_TTL_S:
        return True
    return bool(catalogue.candidates_never_fetched(db, since=now - CANDIDATE_TTL_S))


async def refresh_candidates_safely(services: Services, with_metadata: bool = True) -> int:
    """The shared candidate refresh, failing no user's sync: RiskControl propagates (it pauses
    everything); any other failure (a bad item, a bug) is logged and waits for the next run."""
    try:
        return await refresh_candidates(services, with_metadata=with_metadata)
    except RiskControl:
        raise
    except BilibiliError as exc:
        log.warning("candidate refresh failed: %s", type(exc).__name__)
    except Exception:  # noqa: BLE001
        log.exception("candidate refresh failed unexpectedly")
    return 0


async def _pull_related(services: Services, account: Account, with_metadata: bool = True) -> int:
    """bilibili's related lists of the user's newest liked/faved/coined videos become the user's own
    "related" candidates, not everyone's: each list is fetched and stored once (catalogue.related),
    and a list another user's sync already stored is read from there. `with_metadata=False` (the first
    part of a first sync): their list rows only (stats, title, uploader, partition: enough to rank on);
    the next full sync fetches the metadata of those never fetched."""
    db, bili, now, user_id = services.db, services.bili, services.now(), account.user_id
    strong = sorted(
        (b for b in behaviour.user_behaviours(db, user_id) if b.kind != "watch"),
        key=lambda b: b.at,
        reverse=True,
    )
    seeds = list(dict.fromkeys(b.bvid for b in strong))[:COIN_SEED_LIMIT]
    since = now - int(services.settings.jobs.video_ttl_s)
    # A seed refused or gone (its related list too) is asked about again once its check is stale.
    gone = catalogue.unavailable_since(db, seeds, since)
    # A list stored fresh (this pull, the seed's view/detail call, or another user's sync) costs no call:
    # only the rest are asked. Either way it becomes this user's own candidates, never a shared list.
    stored = catalogue.related_graph(db, catalogue.related_fetched(db, seeds, since=since))
    pulled: set[str] = set()
    for bvid in seeds:
        if bvid in gone:
            continue
        if bvid in stored:
            related_bvids = stored[bvid]
        else:
            try:
                related = await bili.related(bvid)
            except (VideoUnavailable, MalformedResponse, EmptyData):
                continue
            catalogue.save_videos(db, related, now)  # in the catalogue (recall reads it), in no shared list
            catalogue.save_related(db, bvid, [v.bvid for v in related], now)
            related_bvids = [v.bvid for v in related]
        _save_own(services, account, "related", related_bvids)
        pulled |= set(related_bvids)
    if not with_metadata:
        return len(pulled)
    own = {b for b, source in candidates.user_candidates(db, user_id) if source == "related"}
    never_fetched = set(catalogue.stale_bvids(db, own, now, ttl_s=now))  # fetched_at 0
    return await fetch_metadata(services, pulled | never_fetched, [])


# -- the user's own candidates: followed creators' uploads, the home feed --------------------------
async def _pull_own_candidates(services: Services, account: Account) -> int:
    """Whom the user follows (daily), their new uploads (one update poll, paged only when something
    is new) and bilibili's home feed for the user. A failure here fails no sync: logged, and the
    next sync tries again. A dead login, risk control or an account change end the sync as elsewhere."""
    added = 0
    for step in (_sync_followings, _sync_blacklist, _pull_followed_uploads, _pull_home_feed):
        try:
            added += await step(services, account)
        except (NotLoggedIn, SessionExpired, RiskControl, AccountChanged):
            raise
        except BilibiliError as exc:
            log.warning("%s for user=%d failed: %s", step.__name__, account.user_id, type(exc).__name__)
        except Exception:  # noqa: BLE001 - a parser or storage bug in one source: the others go on
            log.exception("%s for user=%d failed unexpectedly", step.__name__, account.user_id)
    candidates.prune_user_candidates(services.db, account.user_id, before=services.now() - OWN_CANDIDATES_KEPT_S)
    return added


def _save_own(services: Services, account: Account, source: str, bvids: list[str]) -> None:
    if not candidates.save_user_candidates(
        services.db, account.user_id, account.linked_mid, source, bvids, services.now()
    ):
        raise AccountChanged


def _save_cursors(services: Services, account: Account, cursors: dict[str, str | None]) -> None:
    if behaviour.save_pull(services.db, account.user_id, account.linked_mid, [], cursors, services.now()) is None:
        raise AccountChanged


def _cursor_int(services: Services, account: Account, source: str) -> int | None:
    raw = behaviour.get_cursor(services.db, account.user_id, source)
    return int(raw) if raw is not None and raw.isdigit() else None


async def _sync_followings(services: Services, account: Account) -> int:
    """The uploaders the user follows, read in full at most once a day."""
    now = services.now()
    read_at = _cursor_int(services, account, candidates.FOLLOWINGS_AT)
    if read_at is not None and now - read_at < FOLLOWINGS_TTL_S:
        return 0
    mids: list[int] = []
    for pn in range(1, FOLLOWINGS_MAX_PAGES + 1):
        page = await services.bili.followings(account.creds, account.mid, pn)
        mids += [f.mid for f in page.items]
        if not page.has_more or not page.items:
            break
    _save_cursors(
        services, account, {candidates.FOLLOWINGS: candidates.encode_followed(mids), candidates.FOLLOWINGS_AT: str(now)}
    )
    return 0


async def _sync_blacklist(services: Services, account: Account) -> int:
    """The user's bilibili blacklist (黑名单) as blocked uploaders, read with the followings: at most
    once a day (a repeat sync within the day asks nothing), one call for a list of up to 50."""
    now = services.now()
    read_at = _cursor_int(services, account, BLACKLIST_AT)
    if read_at is not None and now - read_at < FOLLOWINGS_TTL_S:
        return 0
    entries: list[tuple[int, str]] = []
    for pn in range(1, BLACKLIST_MAX_PAGES + 1):
        page = await services.bili.blacklist(account.creds, pn)
        entries += [(f.mid, f.uname) for f in page.items]
        if not page.has_more or not page.items:
            break
    if not blocks.replace_bilibili_blacklist(services.db, account.user_id, account.linked_mid, entries, now):
        raise AccountChanged
    _save_cursors(services, account, {BLACKLIST_AT: str(now)})
    return 0


async def _pull_followed_uploads(services: Services, account: Account) -> int:
    """New uploads of the followed creators: one `feed_update` poll against the stored baseline, and
    the feed paged (newest first, down to the baseline) only when it counts something new."""
    bili = services.bili
    baseline = _cursor_int(services, account, FEED_BASELINE)
    if await bili.feed_update(account.creds, str(baseline or 0)) == 0:
        return 0
    seen: list[VideoInfo] = []
    newest, offset = "", ""
    for _ in range(FEED_MAX_PAGES if baseline is not None else FEED_FIRST_PAGES):
        page = await bili.video_feed(account.creds, offset)
        newest = newest or page.update_baseline
        fresh = [i for i in page.items if baseline is None or int(i.dynamic_id) > baseline]
        seen += [i.video for i in fresh]
        if len(fresh) < len(page.items) or not page.has_more or not page.offset:
            break
        offset = page.offset
    if seen:
        _keep_list_rows(services, seen)
        _save_own(services, account, "followed", [v.bvid for v in seen])
    if newest.isdigit() and (baseline is None or int(newest) > baseline):
        _save_cursors(services, account, {FEED_BASELINE: newest})
    return await fetch_metadata(services, [v.bvid for v in seen], [])


async def _pull_home_feed(services: Services, account: Account) -> int:
    """bilibili's own home feed for the user (one signed call): list rows only, no metadata calls
    (it answers anew on every call; its videos are ranked on what the list tells)."""
    now = services.now()
    read_at = _cursor_int(services, account, HOME_FEED_AT)
    if read_at is not None and now - read_at < HOME_FEED_MIN_S:
        return 0
    videos = await services.bili.home_feed(account.creds)
    _keep_list_rows(services, videos)
    _save_own(services, account, "home", [v.bvid for v in videos])
    _save_cursors(services, account, {HOME_FEED_AT: str(now)})
    return len(videos)


def _replace_tags(video: VideoInfo, tags: tuple[str, ...]) -> VideoInfo:
    return replace(video, tags=tuple(tags))
