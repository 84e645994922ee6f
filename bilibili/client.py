"""The bilibili endpoints BiliPick uses, as typed methods. The only code in the project that talks
HTTP to bilibili, through `transport.Transport` (throttle, risk pause, retries, signing, typed errors).

Use one `BilibiliClient` per process (or share a `Throttle` between clients; processes on one egress
IP share the pace through `Throttle(shared=...)`). Calls a user waits for pass `fail_fast=True`:
during a risk-control pause they raise `RiskPaused(retry_in_s)` at once instead of sleeping the pause
out; a queued job does the same inside `refusing_pauses()`; other background work waits.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp

from settings import BilibiliSettings

from .errors import (
    RESTRICTED_CODES,
    UNAVAILABLE_CODES,
    WATCH_LATER_DELETED,
    WATCH_LATER_FULL,
    ApiError,
    BilibiliError,
    MalformedResponse,
    NotLoggedIn,
    SessionExpired,
    VideoRestricted,
    VideoUnavailable,
    WatchLaterFull,
)
from .links import VideoRef, parse_redirect
from .login import POLL_STATES, cookies_from_url, credentials_from_cookies
from .models import (
    Account,
    CoinItem,
    Credentials,
    FavFolder,
    FavItem,
    FeedPage,
    FollowingsPage,
    HistoryCursor,
    HistoryPage,
    LoginEvent,
    QrCode,
    SearchPage,
    VideoDetail,
    VideoInfo,
    https,
    parse_archive_page,
    parse_archives,
    parse_coins,
    parse_cookie_info,
    parse_fav_folders,
    parse_fav_items,
    parse_feed_update,
    parse_followings,
    parse_history_page,
    parse_home_feed,
    parse_likes,
    parse_nav,
    parse_poll,
    parse_popular,
    parse_qr,
    parse_refresh_token,
    parse_search_page,
    parse_tags,
    parse_video_feed,
    parse_view,
    parse_view_detail,
    parse_weekly_numbers,
)
from .partitions import OVERALL, is_ranking_id
from .refresh import correspond_path, parse_refresh_csrf
from .transport import P_NAV, P_SPI, REFERER, USER_AGENT, Reply, Throttle, Transport, envelope_data, root

log = logging.getLogger("bilibili.client")
T = TypeVar("T")

__all__ = ["P_NAV", "P_SPI", "REFERER", "USER_AGENT", "BilibiliClient", "Throttle"]  # and the P_* paths

WEB_LOCATION_POPULAR = "333.934"
WEB_LOCATION_DYNAMIC = "333.1365"  # t.bilibili.com, the followed creators' feed
WEB_LOCATION_HOME = "1430650"  # www.bilibili.com's home page
REFERER_DYNAMIC = "https://t.bilibili.com/"
FOLLOWINGS_PS = 50  # relation/followings' page size (its default)
HOME_FEED_PS = 30  # the home feed's largest page
HOME_FEED_ROW = 4  # cards per home-page row (its `fetch_row` counts rows)

# endpoint paths (relative to the configured base URLs)
P_QR_GENERATE = "/x/passport-login/web/qrcode/generate"
P_QR_POLL = "/x/passport-login/web/qrcode/poll"
P_COOKIE_INFO = "/x/passport-login/web/cookie/info"
P_COOKIE_REFRESH = "/x/passport-login/web/cookie/refresh"
P_CONFIRM_REFRESH = "/x/passport-login/web/confirm/refresh"
P_CORRESPOND = "/correspond/1/"
P_HISTORY = "/x/web-interface/history/cursor"
P_FAV_FOLDERS = "/x/v3/fav/folder/created/list-all"
P_FAV_ITEMS = "/x/v3/fav/resource/list"
P_COIN = "/x/space/coin/video"
P_LIKE = "/x/space/like/video"
P_POPULAR = "/x/web-interface/popular"
P_SERIES_LIST = "/x/web-interface/popular/series/list"
P_SERIES_ONE = "/x/web-interface/popular/series/one"
P_RANKING = "/x/web-interface/ranking/v2"
P_RELATED = "/x/web-interface/archive/related"
P_SHORT = "/b23"  # a b23.tv short link (counted and logged under this name, never by its code)
P_VIEW = "/x/web-interface/view"
P_TAGS = "/x/web-interface/view/detail/tag"
P_VIEW_DETAIL = "/x/web-interface/wbi/view/detail"
P_SEARCH = "/x/web-interface/wbi/search/type"
SEARCH_REFERER = "https://search.bilibili.com/all"
P_FOLLOWINGS = "/x/relation/followings"
P_BLACKS = "/x/relation/blacks"
P_FEED = "/x/polymer/web-dynamic/v1/feed/all"
P_FEED_UPDATE = "/x/polymer/web-dynamic/v1/feed/all/update"
P_HOME_FEED = "/x/web-interface/wbi/index/top/feed/rcmd"
P_TOVIEW_ADD = "/x/v2/history/toview/add"


def _refuse_video(path: str, bvid: str, code: Any) -> None:
    """A per-video endpoint's refusal as the typed error a sync skips the video on."""
    if code in UNAVAILABLE_CODES:
        raise VideoUnavailable(f"{path}: {bvid} unavailable ({code})", code=code, path=path)
    if code in RESTRICTED_CODES:
        raise VideoRestricted(f"{path}: {bvid} refused ({code})", code=code, path=path)


def _parse(path: str, parse: Callable[[Any], T], data: Any) -> T:
    """Run a models.py parser; its MalformedResponse gets the endpoint path."""
    try:
        return parse(data)
    except MalformedResponse as exc:
        raise MalformedResponse(f"{path}: {exc}", path=path) from None


class BilibiliClient:
    def __init__(
        self,
        settings: BilibiliSettings,
        session: aiohttp.ClientSession | None = None,
        *,
        throttle: Throttle | None = None,
        correspond_public_key: bytes | str | None = None,
    ) -> None:
        self.settings = settings
        self.transport = Transport(settings, session, throttle)
        self._correspond_key = correspond_public_key  # None = bilibili's real key
        self._api = self.transport.api
        self._passport = root(settings.passport_url)
        self._www = root(settings.www_url)
        self._short = root(settings.short_url)
        self._refresh_locks: dict[str, asyncio.Lock] = {}
        self._last_refresh: dict[str, tuple[str, Credentials]] = {}  # mid -> (old SESSDATA, new creds)
        self._forgotten: Counter[str] = Counter()  # mid -> forget_account calls (a refresh in flight checks it)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def throttle(self) -> Throttle:
        return self.transport.throttle

    @staticmethod
    def urgent():
        """`with client.urgent():` — this task's requests go before the background's (a user waits)."""
        return Throttle.urgent()

    @staticmethod
    def refusing_pauses():
        """`with client.refusing_pauses():` — this task's requests raise RiskPaused during a risk pause
        instead of waiting it out (a queued job gives its worker slot back); no priority."""
        return Throttle.refusing_pauses()

    @staticmethod
    def background():
        """`with client.background():` — this task's requests wait behind a waiting user's, even
        `fail_fast` ones (a digest's covers)."""
        return Throttle.background()

    @property
    def calls(self) -> int:
        """bilibili HTTP requests made."""
        return self.transport.calls

    @property
    def risk_pauses(self) -> int:
        """Risk-control pauses started (412 / -352 answers that stopped every request for a while)."""
        return self.transport.throttle.pauses

    @property
    def session(self) -> aiohttp.ClientSession:
        return self.transport.session

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> BilibiliClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def forget_account(self, mid: int | str) -> None:
        """Drop what the client remembers of an account's cookies (after /logout or /forget)."""
        key = str(mid)
        self._forgotten[key] += 1  # a refresh still running for this account keeps nothing either
        self._last_refresh.pop(key, None)
        lock = self._refresh_locks.get(key)
        if lock is not None and not lock.locked():
            del self._refresh_locks[key]

    async def _get(self, base: str, path: str, **kwargs: Any) -> Reply:
        return await self.transport.request("GET", base, path, **kwargs)

    # -- login -----------------------------------------------------------------------------
    async def generate_qr(self, *, fail_fast: bool = False) -> QrCode:
        reply = await self._get(self._passport, P_QR_GENERATE, params={"source": "main-fe-header"}, fail_fast=fail_fast)
        return _parse(P_QR_GENERATE, parse_qr, envelope_data(reply, P_QR_GENERATE))

    async def poll_login(self, qr: QrCode, interval: float | None = None) -> AsyncIterator[LoginEvent]:
        """Poll until a final state; yield each state change (waiting -> scanned -> success|expired)."""
        interval = self.settings.qr_poll_interval_s if interval is None else interval
        last: str | None = None
        while True:
            with self.urgent():  # someone is looking at the QR code: a scan shows at once
                reply = await self._get(
                    self._passport, P_QR_POLL, params={"qrcode_key": qr.key, "source": "main-fe-header"}
                )
            poll = _parse(P_QR_POLL, parse_poll, envelope_data(reply, P_QR_POLL))
            state = POLL_STATES.get(poll.code)
            if state is None:
                raise ApiError(f"{P_QR_POLL}: unknown state {poll.code}", code=poll.code, path=P_QR_POLL)
            if state == "success":
                cookies = dict(reply.set_cookies)
                if not cookies.get("SESSDATA"):
                    cookies.update(cookies_from_url(poll.url))
                if not cookies.get("SESSDATA") or not cookies.get("bili_jct") or not cookies.get("DedeUserID"):
                    raise MalformedResponse(f"{P_QR_POLL}: success without login cookies", path=P_QR_POLL)
                creds = credentials_from_cookies(cookies, poll.refresh_token, self.transport.device)
                with self.urgent():
                    account = await self.nav(creds)
                if account is None:
                    raise NotLoggedIn(f"{P_NAV}: fresh login rejected", code=-101, path=P_NAV)
                log.debug("qr login succeeded for mid %s", account.mid)
                yield LoginEvent("success", creds, account)
                return
            if state != last:
                last = state
                yield LoginEvent(state)  # type: ignore[arg-type]
            if state == "expired":
                return
            await asyncio.sleep(interval)

    async def nav(self, creds: Credentials | None = None) -> Account | None:
        """Who am I; None when not logged in (-101 is normal here). Also caches the WBI keys."""
        reply = await self._get(self._api, P_NAV, creds=creds)
        self.transport.store_wbi(reply.payload.get("data"))
        if reply.payload.get("code") == -101:
            return None
        return _parse(P_NAV, parse_nav, envelope_data(reply, P_NAV))

    # -- cookie refresh --------------------------------------------------------------------
    async def refresh_if_needed(
        self, creds: Credentials, persist: Callable[[Credentials], Awaitable[None]]
    ) -> Credentials:
        """cookie/info -> correspond -> cookie/refresh -> persist(new) -> confirm/refresh.

        Returns the (possibly new) credentials. One refresh per account at a time; a caller that
        waited on another's refresh of the same session gets the new credentials without a
        second refresh. Raises SessionExpired on -101 / 86095.
        """
        key = creds.dedeuserid
        lock = self._refresh_locks.setdefault(key, asyncio.Lock())
        async with lock:
            done = self._last_refresh.get(key)
            if done is not None and done[0] == creds.sessdata:
                return done[1]
            return await self._refresh(creds, persist)

    async def _refresh(self, creds: Credentials, persist: Callable[[Credentials], Awaitable[None]]) -> Credentials:
        reply = await self._get(self._passport, P_COOKIE_INFO, params={"csrf": creds.bili_jct}, creds=creds)
        try:
            needed = _parse(P_COOKIE_INFO, parse_cookie_info, envelope_data(reply, P_COOKIE_INFO))
        except NotLoggedIn:
            raise SessionExpired(f"{P_COOKIE_INFO}: session dead (-101)", code=-101, path=P_COOKIE_INFO) from None
        if not needed:
            return creds
        generation = self._forgotten[creds.dedeuserid]
        refresh_csrf = None
        for _ in range(2):  # a 404 means a stale path: regenerate once
            path = correspond_path(int(time.time() * 1000), self._correspond_key)
            page = await self._get(self._www, P_CORRESPOND + path, creds=creds, raw=True)
            if page.status == 404:
                continue
            refresh_csrf = parse_refresh_csrf(page.payload)
            break
        if not refresh_csrf:
            raise MalformedResponse(f"{P_CORRESPOND}: no refresh_csrf", path=P_CORRESPOND)
        old_token = creds.refresh_token
        reply = await self.transport.request(
            "POST",
            self._passport,
            P_COOKIE_REFRESH,
            creds=creds,
            data={
                "csrf": creds.bili_jct,
                "refresh_csrf": refresh_csrf,
                "source": "main_web",
                "refresh_token": old_token,
            },
        )
        code = reply.payload.get("code")
        if code in (86095, -101):
            raise SessionExpired(f"{P_COOKIE_REFRESH}: refresh impossible ({code})", code=code, path=P_COOKIE_REFRESH)
        new_token = _parse(P_COOKIE_REFRESH, parse_refresh_token, envelope_data(reply, P_COOKIE_REFRESH))
        if not reply.set_cookies.get("SESSDATA") or not new_token:
            raise MalformedResponse(f"{P_COOKIE_REFRESH}: no new cookies", path=P_COOKIE_REFRESH)
        new = credentials_from_cookies(reply.set_cookies, new_token, base=creds)
        await persist(new)  # before confirming: if we die now, the new pair is still usable
        if self._forgotten[creds.dedeuserid] == generation:
            self._last_refresh[creds.dedeuserid] = (creds.sessdata, new)
        try:
            reply = await self.transport.request(
                "POST",
                self._passport,
                P_CONFIRM_REFRESH,
                creds=new,
                data={"csrf": new.bili_jct, "refresh_token": old_token},
            )
            if reply.payload.get("code") != 0:
                log.warning("%s: code %s (new cookies kept)", P_CONFIRM_REFRESH, reply.payload.get("code"))
        except BilibiliError as e:
            log.warning("%s failed: %s (new cookies kept)", P_CONFIRM_REFRESH, type(e).__name__)
        log.debug("cookie refreshed for mid %s", creds.dedeuserid)
        return new

    # -- the user's behaviour --------------------------------------------------------------
    async def history_page(self, creds: Credentials, cursor: HistoryCursor | None = None, ps: int = 30) -> HistoryPage:
        params: dict[str, Any] = {"type": "archive", "ps": min(max(ps, 1), 30)}
        if cursor is not None:
            params.update(max=cursor.max, view_at=cursor.view_at, business=cursor.business)
        reply = await self._get(self._api, P_HISTORY, params=params, creds=creds)
        return _parse(P_HISTORY, parse_history_page, envelope_data(reply, P_HISTORY))

    async def fav_folders(self, creds: Credentials, mid: int) -> list[FavFolder]:
        reply = await self._get(self._api, P_FAV_FOLDERS, params={"up_mid": mid}, creds=creds)
        return _parse(P_FAV_FOLDERS, parse_fav_folders, envelope_data(reply, P_FAV_FOLDERS, nullable=True))

    async def fav_items(
        self, creds: Credentials, media_id: int, pn: int = 1, ps: int = 20
    ) -> tuple[list[FavItem], bool]:
        params = {"media_id": media_id, "pn": pn, "ps": min(max(ps, 1), 20), "platform": "web", "order": "mtime"}
        reply = await self._get(self._api, P_FAV_ITEMS, params=params, creds=creds)
        return _parse(P_FAV_ITEMS, parse_fav_items, envelope_data(reply, P_FAV_ITEMS))

    async def coined_videos(self, creds: Credentials, mid: int) -> list[CoinItem]:
        reply = await self._get(
            self._api,
            P_COIN,
            params={"vmid": mid, "gaia_source": "main_web"},
            creds=creds,
            signed=True,
            referer=f"https://space.bilibili.com/{mid}/",
        )
        if reply.payload.get("code") == 53013:  # hidden by the owner
            return []
        return _parse(P_COIN, parse_coins, envelope_data(reply, P_COIN, nullable=True))

    async def liked_videos(self, creds: Credentials, mid: int) -> list[VideoInfo]:
        reply = await self._get(
            self._api,
            P_LIKE,
            params={"vmid": mid},
            creds=creds,
            signed=True,
            referer=f"https://space.bilibili.com/{mid}/",
        )
        if reply.payload.get("code") == 53013:
            return []
        return _parse(P_LIKE, parse_likes, envelope_data(reply, P_LIKE, nullable=True))

    # -- per-user candidate sources: followed creators, their uploads, bilibili's home feed ----
    async def followings(self, creds: Credentials, mid: int, pn: int = 1, ps: int = FOLLOWINGS_PS) -> FollowingsPage:
        """Page `pn` of the uploaders `mid` follows, newest follow first; page while `has_more`.

        One's own list reads in full; of another user's only the first 100 (later pages come back
        empty); a list its owner hid (22115) reads as empty.
        """
        pn, ps = max(pn, 1), min(max(ps, 1), FOLLOWINGS_PS)
        reply = await self._get(
            self._api,
            P_FOLLOWINGS,
            creds=creds,
            params={"vmid": mid, "pn": pn, "ps": ps, "order_type": ""},
            referer=f"https://space.bilibili.com/{mid}/fans/follow",
        )
        if reply.payload.get("code") == 22115:  # hidden by its owner
            return FollowingsPage(items=[], total=0, has_more=False)
        return _parse(P_FOLLOWINGS, lambda d: parse_followings(d, pn, ps), envelope_data(reply, P_FOLLOWINGS))

    async def blacklist(self, creds: Credentials, pn: int = 1, ps: int = FOLLOWINGS_PS) -> FollowingsPage:
        """Page `pn` of the logged-in user's own blacklist (黑名单), newest first; page while `has_more`.
        Relation objects as in `followings` (SocialSisterYi/bilibili-API-collect docs/user/relation.md,
        查询黑名单明细: SESSDATA, `pn`, `ps` default 50)."""
        pn, ps = max(pn, 1), min(max(ps, 1), FOLLOWINGS_PS)
        reply = await self._get(
            self._api,
            P_BLACKS,
            creds=creds,
            params={"pn": pn, "ps": ps},
            referer="https://account.bilibili.com/account/blacklist",
        )
        return _parse(P_BLACKS, lambda d: parse_followings(d, pn, ps), envelope_data(reply, P_BLACKS))

    async def feed_update(self, creds: Credentials, baseline: str = "") -> int:
        """How many uploads of followed creators came after `baseline` (a page's `update_baseline`):
        one cheap call to poll before paging `video_feed`."""
        reply = await self._get(
            self._api,
            P_FEED_UPDATE,
            creds=creds,
            referer=REFERER_DYNAMIC,
            params={"type": "video", "update_baseline": baseline or "0", "web_location": WEB_LOCATION_DYNAMIC},
        )
        return _parse(P_FEED_UPDATE, parse_feed_update, envelope_data(reply, P_FEED_UPDATE))

    async def video_feed(self, creds: Credentials, offset: str = "", baseline: str = "") -> FeedPage:
        """A page of the followed creators' new uploads, newest first. The next page: `offset=page.offset`
        while `page.has_more`. With `baseline`, `page.update_num` counts the uploads after it."""
        params: dict[str, Any] = {
            "type": "video",
            "timezone_offset": -480,
            "platform": "web",
            "features": "itemOpusStyle",
            "web_location": WEB_LOCATION_DYNAMIC,
        }
        if offset:
            params["offset"] = offset
        if baseline:
            params["update_baseline"] = baseline
        reply = await self._get(self._api, P_FEED, params=params, creds=creds, referer=REFERER_DYNAMIC)
        page = _parse(P_FEED, parse_video_feed, envelope_data(reply, P_FEED))
        if page.has_more and offset.isdigit() and int(page.offset) >= int(offset):
            # the ids only go down as the feed goes back in time: an offset that does not can only loop
            log.info("%s: next offset does not move on; the feed ends here", P_FEED)
            page = replace(page, has_more=False)
        return page

    async def home_feed(self, creds: Credentials, fresh_idx: int = 1, ps: int = 12) -> list[VideoInfo]:
        """bilibili's own home-page recommendations for this user (WBI-signed): videos only, no ads,
        live rooms or bangumi. `fresh_idx` 1, 2, ... asks for the next refresh of the page.

        bilibili answers a dead session with a visitor's feed (code 0, `mid` 0): that is NotLoggedIn
        here, never someone else's taste taken for the user's.
        """
        fresh_idx, ps = max(fresh_idx, 1), min(max(ps, 1), HOME_FEED_PS)
        rows = -(-ps // HOME_FEED_ROW)
        params = {
            "web_location": WEB_LOCATION_HOME,
            "y_num": HOME_FEED_ROW,
            "fresh_type": 4,
            "feed_version": "V8",
            "fresh_idx_1h": fresh_idx,
            "fetch_row": 1 + (fresh_idx - 1) * rows,
            "fresh_idx": fresh_idx,
            "brush": fresh_idx,
            "homepage_ver": 1,
            "ps": ps,
        }
        reply = await self._get(self._api, P_HOME_FEED, params=params, creds=creds, signed=True)
        videos, viewer = _parse(P_HOME_FEED, parse_home_feed, envelope_data(reply, P_HOME_FEED))
        if viewer == 0:
            raise NotLoggedIn(f"{P_HOME_FEED}: answered as to a visitor", code=-101, path=P_HOME_FEED)
        return videos

    # -- candidates ------------------------------------------------------------------------
    async def popular(self, pn: int = 1, ps: int = 20) -> tuple[list[VideoInfo], bool]:
        reply = await self._get(
            self._api, P_POPULAR, signed=True, params={"pn": pn, "ps": ps, "web_location": WEB_LOCATION_POPULAR}
        )
        return _parse(P_POPULAR, parse_popular, envelope_data(reply, P_POPULAR))

    async def weekly_numbers(self) -> list[int]:
        reply = await self._get(self._api, P_SERIES_LIST, signed=True, params={"web_location": WEB_LOCATION_POPULAR})
        return _parse(P_SERIES_LIST, parse_weekly_numbers, envelope_data(reply, P_SERIES_LIST))

    async def weekly_issue(self, number: int) -> list[VideoInfo]:
        reply = await self._get(
            self._api, P_SERIES_ONE, signed=True, params={"number": number, "web_location": WEB_LOCATION_POPULAR}
        )
        return _parse(P_SERIES_ONE, lambda d: parse_archive_page(d, "weekly issue"), envelope_data(reply, P_SERIES_ONE))

    async def ranking(self, rid: int = OVERALL) -> list[VideoInfo]:
        """The top 100 of a v2 main partition (`partitions.PARTITIONS`; 0 = the whole site).

        A legacy tid (动画 1 ...) gets a month-old list from bilibili, an unknown id -400 (ApiError):
        sent anyway (bilibili may add partitions), with a warning naming the id.
        """
        if not is_ranking_id(rid):
            log.warning("ranking: %s is not a v2 partition id of bilibili/partitions.py", rid)
        reply = await self._get(
            self._api, P_RANKING, signed=True, params={"rid": rid, "type": "all", "web_location": WEB_LOCATION_POPULAR}
        )
        return _parse(P_RANKING, lambda d: parse_archive_page(d, "ranking"), envelope_data(reply, P_RANKING))

    async def search_videos(
        self, query: str, page: int = 1, creds: Credentials | None = None, *, fail_fast: bool = False
    ) -> SearchPage:
        """One page (20) of bilibili's video search for `query` (WBI-signed; the device cookie buvid3 goes
        with it, without which bilibili refuses a search with -412). A blank query asks nothing and
        is an empty page. Raises RiskControl on -412 (the global pause starts), ApiError on -400."""
        page = max(page, 1)
        query = query.strip()
        if not query:
            return SearchPage(hits=[], page=page, num_pages=0, num_results=0)
        reply = await self._get(
            self._api,
            P_SEARCH,
            signed=True,
            creds=creds,
            referer=SEARCH_REFERER,
            params={"search_type": "video", "keyword": query, "page": page},
            fail_fast=fail_fast,
        )
        return _parse(P_SEARCH, parse_search_page, envelope_data(reply, P_SEARCH))

    async def related(self, bvid: str) -> list[VideoInfo]:
        reply = await self._get(self._api, P_RELATED, params={"bvid": bvid})
        if reply.payload.get("code") in UNAVAILABLE_CODES | RESTRICTED_CODES:
            return []
        return _parse(P_RELATED, parse_archives, envelope_data(reply, P_RELATED, nullable=True))

    async def view(self, bvid: str) -> VideoInfo:
        reply = await self._get(self._api, P_VIEW, params={"bvid": bvid})
        code = reply.payload.get("code")
        _refuse_video(P_VIEW, bvid, code)
        video, state = _parse(P_VIEW, parse_view, envelope_data(reply, P_VIEW))
        if state < 0:
            raise VideoUnavailable(f"{P_VIEW}: {bvid} state {state}", code=state, path=P_VIEW)
        return video

    async def view_detail(self, bvid: str) -> VideoDetail:
        """One call for what view + tags + related give (WBI-signed): the video with its tags."""
        reply = await self._get(self._api, P_VIEW_DETAIL, params={"bvid": bvid}, signed=True)
        code = reply.payload.get("code")
        if code in UNAVAILABLE_CODES:
            raise VideoUnavailable(f"{P_VIEW_DETAIL}: {bvid} unavailable ({code})", code=code, path=P_VIEW_DETAIL)
        detail = _parse(P_VIEW_DETAIL, parse_view_detail, envelope_data(reply, P_VIEW_DETAIL))
        if detail.state < 0:
            raise VideoUnavailable(
                f"{P_VIEW_DETAIL}: {bvid} state {detail.state}", code=detail.state, path=P_VIEW_DETAIL
            )
        return detail

    async def tags(self, bvid: str) -> tuple[str, ...]:
        reply = await self._get(self._api, P_TAGS, params={"bvid": bvid})
        code = reply.payload.get("code")
        _refuse_video(P_TAGS, bvid, code)
        return _parse(P_TAGS, parse_tags, envelope_data(reply, P_TAGS, nullable=True))

    # -- actions on the user's account -----------------------------------------------------
    async def add_to_watch_later(self, creds: Credentials, bvid: str, *, fail_fast: bool = False) -> None:
        """Add `bvid` to the user's watch later list (稍后再看; reference §11.1, csrf = bili_jct).

        Raises NotLoggedIn (-101), WatchLaterFull (90001), VideoUnavailable (90003: deleted, or a
        code of UNAVAILABLE_CODES), ApiError for any other code (-111 csrf, -400).
        """
        reply = await self.transport.request(
            "POST",
            self._api,
            P_TOVIEW_ADD,
            creds=creds,
            fail_fast=fail_fast,
            data={"bvid": bvid, "csrf": creds.bili_jct},
        )
        code = reply.payload.get("code")
        if code == WATCH_LATER_FULL:
            raise WatchLaterFull(f"{P_TOVIEW_ADD}: list full ({code})", code=code, path=P_TOVIEW_ADD)
        if code == WATCH_LATER_DELETED or code in UNAVAILABLE_CODES:
            raise VideoUnavailable(f"{P_TOVIEW_ADD}: {bvid} deleted ({code})", code=code, path=P_TOVIEW_ADD)
        envelope_data(reply, P_TOVIEW_ADD, nullable=True)  # -101 NotLoggedIn, any other code ApiError

    async def resolve_short_link(self, code: str, *, fail_fast: bool = False) -> VideoRef:
        """A b23.tv short link's video: one GET of `BILIBILI_SHORT_URL/<code>`, its redirect read,
        never followed; only a redirect to a bilibili video page counts (anything else: not_video)."""
        if not re.fullmatch(r"[0-9A-Za-z]{1,16}", code):
            return VideoRef("not_video", code)
        location = await self.transport.redirect_target(f"{self._short}/{code}", P_SHORT, fail_fast=fail_fast)
        return parse_redirect(location) if location else VideoRef("not_video", code)

    # -- images ----------------------------------------------------------------------------
    def cover_fetch_url(self, url: str) -> str:
        url = https(url)
        if self.settings.image_url:
            parts = urlsplit(url)
            tail = parts.path + (f"?{parts.query}" if parts.query else "")
            url = root(self.settings.image_url) + tail
        return url

    async def fetch_cover(self, url: str, *, fail_fast: bool = False) -> bytes:
        """The cover image (at most `cover_max_bytes`), through the same throttle and retries."""
        target = self.cover_fetch_url(url)
        return await self.transport.fetch_image(
            target, urlsplit(target).path, self.settings.cover_max_bytes, fail_fast=fail_fast
        )
