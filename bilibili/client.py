"""The only code in the project that talks HTTP to bilibili.

One `aiohttp.ClientSession` (cookie jar disabled: cookies are sent per call, verbatim, so one
session serves every account), a global rate limiter, a global risk-control pause, WBI signing,
retries with exponential backoff for transient failures, typed results and typed errors.
Use one `BilibiliClient` per process (or share a `Throttle` between clients).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from settings import BilibiliSettings

from . import wbi
from .errors import (
    RISK_CODES,
    UNAVAILABLE_CODES,
    ApiError,
    BilibiliError,
    CoverTooLarge,
    EmptyData,
    MalformedResponse,
    NotLoggedIn,
    RiskControl,
    SessionExpired,
    TransportError,
    VideoUnavailable,
)
from .login import POLL_STATES, cookies_from_url, credentials_from_cookies, parse_set_cookies
from .models import (
    Account,
    CoinItem,
    Credentials,
    FavFolder,
    FavItem,
    HistoryCursor,
    HistoryItem,
    HistoryPage,
    LoginEvent,
    QrCode,
    VideoInfo,
    https,
)
from .refresh import correspond_path, parse_refresh_csrf

log = logging.getLogger("bilibili.client")

USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
REFERER = "https://www.bilibili.com"
WBI_TTL_S = 3600.0
WEB_LOCATION_POPULAR = "333.934"

# endpoint paths (relative to the configured base URLs)
P_QR_GENERATE = "/x/passport-login/web/qrcode/generate"
P_QR_POLL = "/x/passport-login/web/qrcode/poll"
P_COOKIE_INFO = "/x/passport-login/web/cookie/info"
P_COOKIE_REFRESH = "/x/passport-login/web/cookie/refresh"
P_CONFIRM_REFRESH = "/x/passport-login/web/confirm/refresh"
P_CORRESPOND = "/correspond/1/"
P_SPI = "/x/frontend/finger/spi"
P_NAV = "/x/web-interface/nav"
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
P_VIEW = "/x/web-interface/view"
P_TAGS = "/x/web-interface/view/detail/tag"


class Throttle:
    """Process-wide traffic gate: a rate limiter (time slots) and a risk-control pause.

    Loop-agnostic (only monotonic timestamps, no asyncio primitives), so it can be shared.
    """

    def __init__(self, max_rps: float, pause_base_s: float, pause_max_s: float) -> None:
        self.max_rps = max_rps
        self.pause_base_s = pause_base_s
        self.pause_max_s = pause_max_s
        self.paused_until = 0.0  # time.monotonic() timestamp every request awaits
        self.strikes = 0  # consecutive risk-control hits (reset by a successful call)
        self.pauses = 0  # how many pauses were started
        self.rate_waits = 0  # how many requests the rate limiter delayed
        self._next_slot = 0.0

    @property
    def paused(self) -> bool:
        return self.paused_until > time.monotonic()

    async def _wait_pause(self) -> None:
        while (delay := self.paused_until - time.monotonic()) > 0:
            await asyncio.sleep(delay)

    async def acquire(self) -> None:
        await self._wait_pause()
        if self.max_rps > 0:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / self.max_rps
            if slot > now:
                self.rate_waits += 1
                await asyncio.sleep(slot - now)
            await self._wait_pause()

    def risk(self) -> float:
        """Start (or extend) the global pause with exponential backoff; returns its length."""
        self.strikes += 1
        pause = min(self.pause_base_s * (2 ** (self.strikes - 1)), self.pause_max_s)
        self.paused_until = max(self.paused_until, time.monotonic() + pause)
        self.pauses += 1
        return pause

    def ok(self) -> None:
        self.strikes = 0


@dataclass
class _Reply:
    status: int
    payload: Any
    set_cookies: dict[str, str] = field(default_factory=dict)


class _Transient(Exception):
    def __init__(self, error: BilibiliError) -> None:
        self.error = error


def _root(url: str) -> str:
    return url.rstrip("/")


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
        self._session = session
        self._own_session = session is None
        self.throttle = throttle or Throttle(
            settings.max_requests_per_second, settings.risk_pause_base_s, settings.risk_pause_max_s
        )
        self._correspond_key = correspond_public_key  # None = bilibili's real key
        self.calls = 0  # bilibili HTTP requests made
        self._api = _root(settings.api_url)
        self._passport = _root(settings.passport_url)
        self._www = _root(settings.www_url)
        self._device: dict[str, str] = {}
        self._device_checked_at: float | None = None
        self._mixin: str | None = None
        self._mixin_at = 0.0
        self._locks: dict[str, asyncio.Lock] = {}
        self._refresh_locks: dict[str, asyncio.Lock] = {}
        self._last_refresh: dict[str, tuple[str, Credentials]] = {}

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> BilibiliClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _lock(self, name: str) -> asyncio.Lock:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    # -- transport -------------------------------------------------------------------------
    def _headers(self, creds: Credentials | None, referer: str | None) -> dict[str, str]:
        cookies = dict(self._device)
        if creds is not None:
            cookies.update(creds.cookies())
        headers = {
            "User-Agent": USER_AGENT,
            "Referer": referer or REFERER,
            "Accept": "application/json, text/plain, */*",
        }
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        return headers

    async def _send(
        self, method: str, url: str, path: str, *, params: Mapping[str, Any] | None,
        data: Mapping[str, str] | None, headers: dict[str, str],
    ) -> tuple[int, bytes, list[str]]:
        """One HTTP request: throttle, count, read the body before anything else."""
        await self.throttle.acquire()
        self.calls += 1
        try:
            async with self.session.request(
                method, url, params=params, data=data, headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s), allow_redirects=False,
            ) as resp:
                body = await resp.read()
                return resp.status, body, resp.headers.getall("Set-Cookie", [])
        except (TimeoutError, asyncio.TimeoutError) as e:
            raise _Transient(TransportError(f"{path}: timeout", path=path)) from e
        except aiohttp.ClientError as e:
            raise _Transient(TransportError(f"{path}: {type(e).__name__}", path=path)) from e

    async def _call(
        self, method: str, base: str, path: str, *, params: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None, creds: Credentials | None = None,
        signed: bool = False, referer: str | None = None, raw: bool = False,
    ) -> _Reply:
        """A request with retries. Returns the parsed JSON envelope (or text when raw=True).

        Raises RiskControl (after starting the global pause), TransportError, MalformedResponse.
        Non-zero codes other than risk control are returned for the caller to classify.
        """
        if path != P_SPI:
            await self._ensure_device()
        url = base + path
        keys_refetched = False
        attempt = 0
        while True:
            query = dict(params or {})
            if signed:
                query = wbi.sign(query, await self._wbi_mixin())
            try:
                status, body, set_cookie = await self._send(
                    method, url, path, params=query or None, data=data,
                    headers=self._headers(creds, referer),
                )
                reply = self._classify(path, status, body, set_cookie, raw)
            except _Transient as t:
                if attempt < self.settings.retries:
                    delay = self.settings.backoff_base_s * (2**attempt)
                    attempt += 1
                    log.debug("%s %s transient (%s), retry %d in %.2fs", method, path,
                              type(t.error).__name__, attempt, delay)
                    await asyncio.sleep(delay)
                    continue
                raise t.error from None
            if raw:
                return reply
            code = reply.payload.get("code")
            log.debug("%s %s -> http %s code %s", method, path, status, code)
            voucher = (
                code == 0 and signed and isinstance(reply.payload.get("data"), dict)
                and set(reply.payload["data"]) == {"v_voucher"}
            )
            if signed and not keys_refetched and (code in (-352, -403) or voucher):
                keys_refetched = True  # maybe stale WBI keys: refetch once and re-sign
                self._mixin = None
                continue
            if code in RISK_CODES or voucher:
                self._risk(path, code if not voucher else -352)
            if code == 0:
                self.throttle.ok()
            return reply

    def _risk(self, path: str, code: int | None) -> None:
        pause = self.throttle.risk()
        log.warning("bilibili risk control on %s (code %s): pausing all traffic %.1fs", path, code, pause)
        raise RiskControl(f"{path}: risk control code {code}", code=code, path=path)

    def _classify(self, path: str, status: int, body: bytes, set_cookie: list[str], raw: bool) -> _Reply:
        if status == 412:
            log.debug("%s -> http 412", path)
            self._risk(path, -412)
        if status >= 500:
            log.debug("%s -> http %s", path, status)
            raise _Transient(TransportError(f"{path}: HTTP {status}", code=status, path=path))
        cookies = parse_set_cookies(set_cookie)
        if raw:
            log.debug("%s -> http %s (%d bytes)", path, status, len(body))
            return _Reply(status, body.decode("utf-8", "replace"), cookies)
        try:
            payload = json.loads(body)
        except ValueError:
            if status >= 400:
                raise ApiError(f"{path}: HTTP {status}", code=-status, path=path) from None
            raise _Transient(MalformedResponse(f"{path}: body is not JSON", path=path)) from None
        if not isinstance(payload, dict) or not isinstance(payload.get("code"), int):
            raise _Transient(MalformedResponse(f"{path}: no envelope code", path=path))
        return _Reply(status, payload, cookies)

    async def _ensure_device(self) -> None:
        """buvid3/buvid4 from `spi`, fetched once (retried at most once a minute if it failed)."""
        if self._device:
            return
        now = time.monotonic()
        if self._device_checked_at is not None and now - self._device_checked_at < 60:
            return
        async with self._lock("spi"):
            if self._device or (
                self._device_checked_at is not None and time.monotonic() - self._device_checked_at < 60
            ):
                return
            self._device_checked_at = time.monotonic()
            try:
                reply = await self._call("GET", self._api, P_SPI)
                data = self._data(reply, P_SPI, dict)
                self._device = {k: str(data[s]) for k, s in (("buvid3", "b_3"), ("buvid4", "b_4")) if data.get(s)}
            except RiskControl:
                raise
            except BilibiliError as e:
                log.debug("spi failed: %s", type(e).__name__)

    async def _wbi_mixin(self) -> str:
        if self._mixin and time.monotonic() - self._mixin_at < WBI_TTL_S:
            return self._mixin
        async with self._lock("wbi"):
            if self._mixin and time.monotonic() - self._mixin_at < WBI_TTL_S:
                return self._mixin
            reply = await self._call("GET", self._api, P_NAV)
            self._store_wbi(reply.payload.get("data"))
            if not self._mixin:
                raise MalformedResponse(f"{P_NAV}: no wbi_img", path=P_NAV)
            return self._mixin

    def _store_wbi(self, data: Any) -> None:
        img = (data or {}).get("wbi_img") if isinstance(data, dict) else None
        if isinstance(img, dict) and img.get("img_url") and img.get("sub_url"):
            self._mixin = wbi.mixin_key(wbi.key_from_url(img["img_url"]), wbi.key_from_url(img["sub_url"]))
            self._mixin_at = time.monotonic()

    @staticmethod
    def _data(reply: _Reply, path: str, kind: type | tuple[type, ...] | None = None,
              *, nullable: bool = False) -> Any:
        """Check the code and return `data`: -101 -> NotLoggedIn, other != 0 -> ApiError."""
        p = reply.payload
        code = p.get("code")
        if code == -101:
            raise NotLoggedIn(f"{path}: not logged in (-101)", code=-101, path=path)
        if code != 0:
            raise ApiError(f"{path}: code {code} {str(p.get('message', ''))[:80]}", code=code, path=path)
        data = p.get("data")
        if data is None:
            if nullable:
                return None
            raise EmptyData(f"{path}: data is null", code=0, path=path)
        if kind is not None and not isinstance(data, kind):
            raise MalformedResponse(f"{path}: data is {type(data).__name__}", path=path)
        return data

    @staticmethod
    def _archives(items: Any, path: str) -> list[VideoInfo]:
        if items is None:
            return []
        if not isinstance(items, list):
            raise MalformedResponse(f"{path}: list is {type(items).__name__}", path=path)
        out = []
        for it in items:
            if isinstance(it, dict) and it.get("bvid"):
                out.append(VideoInfo.from_archive(it))
        return out

    # -- login -----------------------------------------------------------------------------
    async def generate_qr(self) -> QrCode:
        reply = await self._call("GET", self._passport, P_QR_GENERATE, params={"source": "main-fe-header"})
        data = self._data(reply, P_QR_GENERATE, dict)
        if not data.get("url") or not data.get("qrcode_key"):
            raise MalformedResponse(f"{P_QR_GENERATE}: no url/qrcode_key", path=P_QR_GENERATE)
        return QrCode(url=str(data["url"]), key=str(data["qrcode_key"]))

    async def poll_login(self, qr: QrCode, interval: float | None = None) -> AsyncIterator[LoginEvent]:
        """Poll until a final state; yield each state change (waiting -> scanned -> success|expired)."""
        interval = self.settings.qr_poll_interval_s if interval is None else interval
        last: str | None = None
        while True:
            reply = await self._call(
                "GET", self._passport, P_QR_POLL, params={"qrcode_key": qr.key, "source": "main-fe-header"}
            )
            data = self._data(reply, P_QR_POLL, dict)
            state = POLL_STATES.get(data.get("code"))  # type: ignore[arg-type]
            if state is None:
                raise ApiError(f"{P_QR_POLL}: unknown state {data.get('code')}", code=data.get("code"), path=P_QR_POLL)
            if state == "success":
                cookies = dict(reply.set_cookies)
                if not cookies.get("SESSDATA"):
                    cookies.update(cookies_from_url(str(data.get("url") or "")))
                if not cookies.get("SESSDATA") or not cookies.get("bili_jct") or not cookies.get("DedeUserID"):
                    raise MalformedResponse(f"{P_QR_POLL}: success without login cookies", path=P_QR_POLL)
                creds = credentials_from_cookies(cookies, str(data.get("refresh_token") or ""), self._device)
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
        reply = await self._call("GET", self._api, P_NAV, creds=creds)
        data = reply.payload.get("data")
        self._store_wbi(data)
        if reply.payload.get("code") == -101:
            return None
        data = self._data(reply, P_NAV, dict)
        if not data.get("isLogin"):
            return None
        return Account(mid=int(data.get("mid") or 0), uname=str(data.get("uname") or ""))

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
        reply = await self._call("GET", self._passport, P_COOKIE_INFO, params={"csrf": creds.bili_jct}, creds=creds)
        try:
            info = self._data(reply, P_COOKIE_INFO, dict)
        except NotLoggedIn:
            raise SessionExpired(f"{P_COOKIE_INFO}: session dead (-101)", code=-101, path=P_COOKIE_INFO) from None
        if not info.get("refresh"):
            return creds
        refresh_csrf = None
        for _ in range(2):  # a 404 means a stale path: regenerate once
            path = correspond_path(int(time.time() * 1000), self._correspond_key)
            page = await self._call("GET", self._www, P_CORRESPOND + path, creds=creds, raw=True)
            if page.status == 404:
                continue
            refresh_csrf = parse_refresh_csrf(page.payload)
            break
        if not refresh_csrf:
            raise MalformedResponse(f"{P_CORRESPOND}: no refresh_csrf", path=P_CORRESPOND)
        old_token = creds.refresh_token
        reply = await self._call(
            "POST", self._passport, P_COOKIE_REFRESH, creds=creds,
            data={"csrf": creds.bili_jct, "refresh_csrf": refresh_csrf, "source": "main_web",
                  "refresh_token": old_token},
        )
        code = reply.payload.get("code")
        if code in (86095, -101):
            raise SessionExpired(f"{P_COOKIE_REFRESH}: refresh impossible ({code})", code=code, path=P_COOKIE_REFRESH)
        data = self._data(reply, P_COOKIE_REFRESH, dict)
        if not reply.set_cookies.get("SESSDATA") or not data.get("refresh_token"):
            raise MalformedResponse(f"{P_COOKIE_REFRESH}: no new cookies", path=P_COOKIE_REFRESH)
        new = credentials_from_cookies(reply.set_cookies, str(data["refresh_token"]), base=creds)
        await persist(new)  # before confirming: if we die now, the new pair is still usable
        self._last_refresh[creds.dedeuserid] = (creds.sessdata, new)
        try:
            reply = await self._call(
                "POST", self._passport, P_CONFIRM_REFRESH, creds=new,
                data={"csrf": new.bili_jct, "refresh_token": old_token},
            )
            if reply.payload.get("code") != 0:
                log.warning("%s: code %s (new cookies kept)", P_CONFIRM_REFRESH, reply.payload.get("code"))
        except BilibiliError as e:
            log.warning("%s failed: %s (new cookies kept)", P_CONFIRM_REFRESH, type(e).__name__)
        log.debug("cookie refreshed for mid %s", creds.dedeuserid)
        return new

    # -- the user's behaviour --------------------------------------------------------------
    async def history_page(
        self, creds: Credentials, cursor: HistoryCursor | None = None, ps: int = 30
    ) -> HistoryPage:
        params: dict[str, Any] = {"type": "archive", "ps": min(max(ps, 1), 30)}
        if cursor is not None:
            params.update(max=cursor.max, view_at=cursor.view_at, business=cursor.business)
        reply = await self._call("GET", self._api, P_HISTORY, params=params, creds=creds)
        data = self._data(reply, P_HISTORY, dict)
        rows = data.get("list") or []
        if not isinstance(rows, list):
            raise MalformedResponse(f"{P_HISTORY}: list is {type(rows).__name__}", path=P_HISTORY)
        items = []
        for row in rows:
            if not isinstance(row, dict):
                continue
            business = (row.get("history") or {}).get("business", "archive")
            video = VideoInfo.from_history_row(row)
            if business != "archive" or not video.bvid:
                continue
            items.append(HistoryItem(video=video, progress=int(row.get("progress") or 0),
                                     duration=int(row.get("duration") or 0), view_at=int(row.get("view_at") or 0)))
        next_cursor = None
        c = data.get("cursor")
        if rows and isinstance(c, dict):
            next_cursor = HistoryCursor(max=int(c.get("max") or 0), view_at=int(c.get("view_at") or 0),
                                        business=str(c.get("business") or ""))
        return HistoryPage(items=items, next_cursor=next_cursor)

    async def fav_folders(self, creds: Credentials, mid: int) -> list[FavFolder]:
        reply = await self._call("GET", self._api, P_FAV_FOLDERS, params={"up_mid": mid}, creds=creds)
        data = self._data(reply, P_FAV_FOLDERS, dict, nullable=True)
        if data is None:
            return []
        return [FavFolder(id=int(f["id"]), title=str(f.get("title") or ""), media_count=int(f.get("media_count") or 0))
                for f in data.get("list") or [] if isinstance(f, dict) and f.get("id")]

    async def fav_items(
        self, creds: Credentials, media_id: int, pn: int = 1, ps: int = 20
    ) -> tuple[list[FavItem], bool]:
        params = {"media_id": media_id, "pn": pn, "ps": min(max(ps, 1), 20), "platform": "web", "order": "mtime"}
        reply = await self._call("GET", self._api, P_FAV_ITEMS, params=params, creds=creds)
        data = self._data(reply, P_FAV_ITEMS, dict)
        items = []
        for m in data.get("medias") or []:
            if not isinstance(m, dict) or m.get("attr", 0) != 0 or m.get("type", 2) != 2:
                continue
            items.append(FavItem(video=VideoInfo.from_fav_media(m), fav_time=int(m.get("fav_time") or 0)))
        return items, bool(data.get("has_more"))

    async def coined_videos(self, creds: Credentials, mid: int) -> list[CoinItem]:
        reply = await self._call(
            "GET", self._api, P_COIN, params={"vmid": mid, "gaia_source": "main_web"}, creds=creds,
            signed=True, referer=f"https://space.bilibili.com/{mid}/",
        )
        if reply.payload.get("code") == 53013:
            return []
        data = self._data(reply, P_COIN, list, nullable=True)
        out = []
        for it in data or []:
            if isinstance(it, dict) and it.get("bvid"):
                out.append(CoinItem(video=VideoInfo.from_archive(it), coins=int(it.get("coins") or 0),
                                    time=int(it.get("time") or 0)))
        return out

    async def liked_videos(self, creds: Credentials, mid: int) -> list[VideoInfo]:
        reply = await self._call(
            "GET", self._api, P_LIKE, params={"vmid": mid}, creds=creds, signed=True,
            referer=f"https://space.bilibili.com/{mid}/",
        )
        if reply.payload.get("code") == 53013:
            return []
        data = self._data(reply, P_LIKE, (dict, list), nullable=True)
        if isinstance(data, dict):
            data = data.get("list")
        return self._archives(data, P_LIKE)

    # -- candidates ------------------------------------------------------------------------
    async def popular(self, pn: int = 1, ps: int = 20) -> tuple[list[VideoInfo], bool]:
        reply = await self._call("GET", self._api, P_POPULAR, signed=True,
                                 params={"pn": pn, "ps": ps, "web_location": WEB_LOCATION_POPULAR})
        data = self._data(reply, P_POPULAR, dict)
        return self._archives(data.get("list"), P_POPULAR), bool(data.get("no_more"))

    async def weekly_numbers(self) -> list[int]:
        reply = await self._call("GET", self._api, P_SERIES_LIST, signed=True,
                                 params={"web_location": WEB_LOCATION_POPULAR})
        data = self._data(reply, P_SERIES_LIST, dict)
        return [int(i["number"]) for i in data.get("list") or [] if isinstance(i, dict) and "number" in i]

    async def weekly_issue(self, number: int) -> list[VideoInfo]:
        reply = await self._call("GET", self._api, P_SERIES_ONE, signed=True,
                                 params={"number": number, "web_location": WEB_LOCATION_POPULAR})
        data = self._data(reply, P_SERIES_ONE, dict)
        return self._archives(data.get("list"), P_SERIES_ONE)

    async def ranking(self, rid: int = 0) -> list[VideoInfo]:
        reply = await self._call("GET", self._api, P_RANKING, signed=True,
                                 params={"rid": rid, "type": "all", "web_location": WEB_LOCATION_POPULAR})
        data = self._data(reply, P_RANKING, dict)
        return self._archives(data.get("list"), P_RANKING)

    async def related(self, bvid: str) -> list[VideoInfo]:
        reply = await self._call("GET", self._api, P_RELATED, params={"bvid": bvid})
        if reply.payload.get("code") in UNAVAILABLE_CODES:
            return []
        return self._archives(self._data(reply, P_RELATED, list, nullable=True), P_RELATED)

    async def view(self, bvid: str) -> VideoInfo:
        reply = await self._call("GET", self._api, P_VIEW, params={"bvid": bvid})
        code = reply.payload.get("code")
        if code in UNAVAILABLE_CODES:
            raise VideoUnavailable(f"{P_VIEW}: {bvid} unavailable ({code})", code=code, path=P_VIEW)
        data = self._data(reply, P_VIEW, dict)
        state = int(data.get("state") or 0)
        if state < 0:
            raise VideoUnavailable(f"{P_VIEW}: {bvid} state {state}", code=state, path=P_VIEW)
        return VideoInfo.from_archive(data)

    async def tags(self, bvid: str) -> tuple[str, ...]:
        reply = await self._call("GET", self._api, P_TAGS, params={"bvid": bvid})
        code = reply.payload.get("code")
        if code in UNAVAILABLE_CODES:
            raise VideoUnavailable(f"{P_TAGS}: {bvid} unavailable ({code})", code=code, path=P_TAGS)
        data = self._data(reply, P_TAGS, list, nullable=True) or []
        return tuple(
            str(t["tag_name"]) for t in data
            if isinstance(t, dict) and t.get("tag_name") and t.get("tag_type") not in ("bgm", "topic")
        )

    # -- images ----------------------------------------------------------------------------
    def cover_fetch_url(self, url: str) -> str:
        url = https(url)
        if self.settings.image_url:
            parts = urlsplit(url)
            tail = parts.path + (f"?{parts.query}" if parts.query else "")
            url = _root(self.settings.image_url) + tail
        return url

    async def fetch_cover(self, url: str) -> bytes:
        target = self.cover_fetch_url(url)
        path = urlsplit(target).path
        cap = self.settings.cover_max_bytes
        attempt = 0
        while True:
            await self.throttle.acquire()
            self.calls += 1
            try:
                async with self.session.get(
                    target, headers={"User-Agent": USER_AGENT, "Referer": REFERER},
                    timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
                ) as resp:
                    if resp.status == 412:
                        self._risk(path, -412)
                    if resp.status >= 500:
                        raise _Transient(TransportError(f"cover: HTTP {resp.status}", code=resp.status, path=path))
                    if resp.status != 200:
                        raise ApiError(f"cover: HTTP {resp.status}", code=-resp.status, path=path)
                    if resp.content_length is not None and resp.content_length > cap:
                        raise CoverTooLarge(f"cover: {resp.content_length} > {cap} bytes", path=path)
                    buf = bytearray()
                    async for chunk in resp.content.iter_chunked(65536):
                        buf += chunk
                        if len(buf) > cap:
                            raise CoverTooLarge(f"cover: more than {cap} bytes", path=path)
                    log.debug("GET %s -> http 200 (%d bytes)", path, len(buf))
                    return bytes(buf)
            except (TimeoutError, asyncio.TimeoutError, aiohttp.ClientError, _Transient) as e:
                err = e.error if isinstance(e, _Transient) else TransportError(f"cover: {type(e).__name__}", path=path)
                if attempt < self.settings.retries:
                    await asyncio.sleep(self.settings.backoff_base_s * (2**attempt))
                    attempt += 1
                    continue
                raise err from None
