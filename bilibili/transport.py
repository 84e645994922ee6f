"""How BiliPick talks HTTP to bilibili: one session, a rate limit, the risk-control pause, WBI signing,
retries with backoff and typed errors. Endpoint methods live in `client.py` and all go through here.

One `aiohttp.ClientSession` (cookie jar disabled: cookies are sent per call, verbatim, so one session
serves every account). Every request — JSON or a cover image — passes `Throttle.acquire` (the one
place that decides to wait out or refuse a risk-control pause) and `Transport._retrying` (the one
retry path).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, TypeVar

import aiohttp

from settings import BilibiliSettings

from . import wbi
from .errors import (
    RISK_CODES,
    ApiError,
    BilibiliError,
    CoverTooLarge,
    EmptyData,
    MalformedResponse,
    NotLoggedIn,
    RiskControl,
    RiskPaused,
    TransportError,
)
from .login import parse_set_cookies
from .models import Credentials, parse_device, parse_wbi_keys

log = logging.getLogger("bilibili.client")
R = TypeVar("R")

USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
REFERER = "https://www.bilibili.com"
WBI_TTL_S = 3600.0
P_SPI = "/x/frontend/finger/spi"
P_NAV = "/x/web-interface/nav"


# Set inside `Throttle.urgent()`: this task's requests take the next free slots before the background's;
# inside `Throttle.background()` they wait behind them even when `fail_fast`. Unset: `fail_fast` decides.
_URGENT: contextvars.ContextVar[bool | None] = contextvars.ContextVar("bilibili_urgent", default=None)
# Set inside `Throttle.refusing_pauses()`: this task's requests raise RiskPaused instead of waiting a pause out.
_REFUSE_PAUSES: contextvars.ContextVar[bool] = contextvars.ContextVar("bilibili_refuse_pauses", default=False)


class SharedPace(Protocol):
    """The pace and the risk pause of every process that leaves by the same egress IP (bilibili limits
    per IP, not per process). Implemented in storage/pace.py; blocking calls, run in a thread.

    Each returns (seconds until the reserved slot, seconds of risk pause left, consecutive strikes).
    """

    def reserve(self, interval_s: float) -> tuple[float, float, int]:
        """Take the next free slot, `interval_s` after the last one taken; none while a pause runs."""
        ...

    def pause(self, base_s: float, max_s: float) -> tuple[float, float, int]:
        """A risk-control answer: pause everyone (`base_s` doubling per strike, at most `max_s`),
        unless a pause already runs (the requests in flight when it started count once)."""
        ...

    def clear_strikes(self) -> None:
        """A call succeeded: the next pause starts again from `base_s`."""
        ...

    def pause_left_s(self) -> float:
        """Seconds of risk pause left for the egress IP (0 when none runs); a read, no slot taken."""
        ...


class Throttle:
    """Process-wide traffic gate: a rate limiter (time slots), a risk-control pause, and a priority.

    Slots go one at a time to the waiting requests, first to the urgent ones (made inside
    `urgent()`, or `fail_fast` outside `background()`: a user is waiting), then to the background,
    each in arrival order.
    A task asks for one slot at a time, so two users onboarding at once share the slots evenly.
    With `shared` (distributed mode), the request at the head of this process's line also reserves
    a slot shared with the other processes on the same egress IP, and learns of their risk pause;
    a risk answer here pauses them too. The order inside the process stays as above.
    Loop-agnostic (monotonic timestamps and sleeps, no asyncio primitives), so it can be shared.
    """

    def __init__(
        self, max_rps: float, pause_base_s: float, pause_max_s: float, shared: SharedPace | None = None
    ) -> None:
        self.max_rps = max_rps
        self.pause_base_s = pause_base_s
        self.pause_max_s = pause_max_s
        self.shared = shared
        self.paused_until = 0.0  # time.monotonic() timestamp every request awaits
        self.strikes = 0  # consecutive risk-control hits (reset by a successful call)
        self.pauses = 0  # how many pauses were started
        self.rate_waits = 0  # how many requests the rate limiter delayed
        self._shared_strikes = 0  # as the shared pace last said (a success clears them there)
        self._next_slot = 0.0
        self._waiting: tuple[deque[object], deque[object]] = (deque(), deque())  # urgent, background

    @property
    def paused(self) -> bool:
        return self.paused_until > time.monotonic()

    @property
    def pause_left_s(self) -> float:
        return max(0.0, self.paused_until - time.monotonic())

    async def any_pause_left_s(self) -> float:
        """The risk pause left for this process or, with `shared`, for any process on its egress IP
        (this one learns of theirs only at its next request): for /status, no slot taken."""
        left = self.pause_left_s
        if self.shared is not None:
            left = max(left, await asyncio.to_thread(self.shared.pause_left_s))
        return left

    @property
    def interval_s(self) -> float:
        return 1.0 / self.max_rps if self.max_rps > 0 else 0.0

    @staticmethod
    @contextlib.contextmanager
    def urgent() -> Iterator[None]:
        """Requests made inside (in this task) go before the background's."""
        token = _URGENT.set(True)
        try:
            yield
        finally:
            _URGENT.reset(token)

    @staticmethod
    @contextlib.contextmanager
    def refusing_pauses() -> Iterator[None]:
        """Requests made inside (in this task) raise RiskPaused during a risk pause instead of waiting
        it out, without going first: a queued job gives its worker slot back and comes back later."""
        token = _REFUSE_PAUSES.set(True)
        try:
            yield
        finally:
            _REFUSE_PAUSES.reset(token)

    def _pause_for(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    @staticmethod
    @contextlib.contextmanager
    def background() -> Iterator[None]:
        """Requests made inside (in this task) go after a waiting user's, even `fail_fast` ones (a
        digest's covers: nobody waits for them, yet during a risk pause they are skipped, not waited for)."""
        token = _URGENT.set(False)
        try:
            yield
        finally:
            _URGENT.reset(token)

    async def _wait_pause(self, fail_fast: bool) -> None:
        while (delay := self.paused_until - time.monotonic()) > 0:
            if fail_fast:  # a user is waiting: say when to come back instead of sleeping for minutes
                raise RiskPaused(f"risk-control pause, {delay:.0f}s left", code=-412, retry_in_s=delay)
            await asyncio.sleep(delay)

    async def acquire(self, fail_fast: bool = False) -> None:
        """Wait for the pause and a rate slot; with `fail_fast` (or inside `refusing_pauses()`), raise
        RiskPaused instead of pausing. A pause that starts while waiting for a slot is waited out
        (or refused) and the slot taken again, so the waiters do not all go at once when it ends."""
        refuse = fail_fast or _REFUSE_PAUSES.get()
        lane = _URGENT.get()
        urgent = fail_fast if lane is None else lane
        while True:
            await self._wait_pause(refuse)
            if self.max_rps <= 0 and self.shared is None:
                return
            if await self._take_slot(urgent) and not self.paused:
                return

    async def _take_slot(self, urgent: bool) -> bool:
        """This process's next slot, then (with `shared`) the one shared across processes; False when
        the shared pace says a risk pause runs (no slot was taken)."""
        ticket, line = object(), self._waiting[0 if urgent else 1]
        line.append(ticket)
        delayed = False
        try:
            while True:
                now = time.monotonic()
                head = self._waiting[0][0] if self._waiting[0] else self._waiting[1][0]
                if head is ticket and now >= self._next_slot:
                    self._next_slot = now + self.interval_s
                    self.rate_waits += delayed
                    # Still at the head: one reservation at a time per process keeps the urgent-first order.
                    return await self._shared_slot() if self.shared is not None else True
                delayed = True
                await asyncio.sleep(max(self._next_slot - now, 0.002))
        finally:
            line.remove(ticket)

    async def _shared_slot(self) -> bool:
        assert self.shared is not None
        wait_s, pause_left_s, self._shared_strikes = await asyncio.to_thread(self.shared.reserve, self.interval_s)
        if pause_left_s > 0:  # another process hit risk control
            self._pause_for(pause_left_s)
            return False
        if wait_s > 0:  # other processes hold the slots before ours: the rest of this line sleeps too
            self._next_slot = max(self._next_slot, time.monotonic() + wait_s + self.interval_s)
            self.rate_waits += 1
            await asyncio.sleep(wait_s)
        return True

    def risk(self) -> float:
        """Start (or extend) this process's pause with exponential backoff; returns its length."""
        self.strikes += 1
        pause = min(self.pause_base_s * (2 ** (self.strikes - 1)), self.pause_max_s)
        self.paused_until = max(self.paused_until, time.monotonic() + pause)
        self.pauses += 1
        return pause

    def ok(self) -> None:
        self.strikes = 0

    async def share_risk(self) -> float:
        """After `risk()`: pause the other processes on this egress too; the pause left here."""
        if self.shared is not None:
            _, pause_left_s, self._shared_strikes = await asyncio.to_thread(
                self.shared.pause, self.pause_base_s, self.pause_max_s
            )
            self._pause_for(pause_left_s)
        return self.pause_left_s

    async def share_ok(self) -> None:
        """After `ok()`: the shared backoff starts from the base again (one write, only after strikes)."""
        if self.shared is not None and self._shared_strikes:
            self._shared_strikes = 0
            await asyncio.to_thread(self.shared.clear_strikes)


@dataclass
class Reply:
    status: int
    payload: Any  # the JSON envelope (a dict with an int `code`), or text when raw
    set_cookies: dict[str, str] = field(default_factory=dict)


class _Transient(Exception):
    """A failure worth retrying (timeout, connection error, 5xx, unreadable body)."""

    def __init__(self, error: BilibiliError) -> None:
        self.error = error


def root(url: str) -> str:
    return url.rstrip("/")


class Transport:
    def __init__(
        self,
        settings: BilibiliSettings,
        session: aiohttp.ClientSession | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self.settings = settings
        self._session = session
        self._own_session = session is None
        self.throttle = throttle or Throttle(
            settings.max_requests_per_second, settings.risk_pause_base_s, settings.risk_pause_max_s
        )
        self.calls = 0  # bilibili HTTP requests made
        self.api = root(settings.api_url)
        self.device: dict[str, str] = {}
        self._device_checked_at: float | None = None
        self._mixin: str | None = None
        self._mixin_at = 0.0
        self._locks: dict[str, asyncio.Lock] = {}

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

    def _lock(self, name: str) -> asyncio.Lock:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    # -- the one retry path ----------------------------------------------------------------
    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[R]]) -> R:
        """Run `attempt`; transient failures retry with exponential backoff, then raise typed."""
        tries = 0
        while True:
            try:
                return await attempt()
            except _Transient as t:
                if tries >= self.settings.retries:
                    raise t.error from None
                delay = self.settings.backoff_base_s * (2**tries)
                tries += 1
                log.debug("%s transient (%s), retry %d in %.2fs", what, type(t.error).__name__, tries, delay)
                await asyncio.sleep(delay)

    async def _send(
        self,
        method: str,
        url: str,
        path: str,
        handle: Callable[[aiohttp.ClientResponse], Awaitable[R]],
        *,
        headers: Mapping[str, str],
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        fail_fast: bool = False,
    ) -> R:
        """One HTTP request: throttle, count, let `handle` read the response; network errors are transient."""
        await self.throttle.acquire(fail_fast)
        self.calls += 1
        try:
            async with self.session.request(
                method,
                url,
                params=params,
                data=data,
                headers=dict(headers),
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
                allow_redirects=False,
            ) as resp:
                return await handle(resp)
        except TimeoutError as e:
            raise _Transient(TransportError(f"{path}: timeout", path=path)) from e
        except aiohttp.ClientError as e:
            raise _Transient(TransportError(f"{path}: {type(e).__name__}", path=path)) from e
        except RiskControl as e:  # a 412 answer (`handle` paused this process): the other processes too
            e.retry_in_s = await self.throttle.share_risk()
            raise

    def risk(self, path: str, code: int | None) -> NoReturn:
        """Start this process's pause and raise RiskControl (carrying how long the pause runs)."""
        pause = self.throttle.risk()
        log.warning("bilibili risk control on %s (code %s): pausing all traffic %.1fs", path, code, pause)
        raise RiskControl(
            f"{path}: risk control code {code}", code=code, path=path, retry_in_s=self.throttle.pause_left_s
        )

    async def _shared_risk(self, path: str, code: int | None) -> NoReturn:
        """`risk`, and the pause reaches the other processes on this egress."""
        try:
            self.risk(path, code)
        except RiskControl as e:
            e.retry_in_s = await self.throttle.share_risk()
            raise

    def _check_status(self, path: str, status: int) -> None:
        if status == 412:
            log.debug("%s -> http 412", path)
            self.risk(path, -412)
        if status >= 500:
            log.debug("%s -> http %s", path, status)
            raise _Transient(TransportError(f"{path}: HTTP {status}", code=status, path=path))

    # -- JSON endpoints --------------------------------------------------------------------
    def _headers(self, creds: Credentials | None, referer: str | None) -> dict[str, str]:
        cookies = dict(self.device)
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

    def _classify(self, path: str, status: int, body: bytes, set_cookie: list[str], raw: bool) -> Reply:
        self._check_status(path, status)
        cookies = parse_set_cookies(set_cookie)
        if raw:
            log.debug("%s -> http %s (%d bytes)", path, status, len(body))
            return Reply(status, body.decode("utf-8", "replace"), cookies)
        try:
            payload = json.loads(body)
        except ValueError:  # not JSON (UnicodeDecodeError is a ValueError too)
            if status >= 400:
                raise ApiError(f"{path}: HTTP {status}", code=-status, path=path) from None
            raise _Transient(MalformedResponse(f"{path}: body is not JSON", path=path)) from None
        except RecursionError:
            raise _Transient(MalformedResponse(f"{path}: body nests too deep", path=path)) from None
        code = payload.get("code") if isinstance(payload, dict) else None
        if not isinstance(code, int) or isinstance(code, bool):
            raise _Transient(MalformedResponse(f"{path}: no envelope code", path=path))
        return Reply(status, payload, cookies)

    async def request(
        self,
        method: str,
        base: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        creds: Credentials | None = None,
        signed: bool = False,
        referer: str | None = None,
        raw: bool = False,
        fail_fast: bool = False,
    ) -> Reply:
        """A request with retries. Returns the parsed JSON envelope (or text when raw=True).

        Raises RiskControl (after starting the global pause), RiskPaused (fail_fast during a pause),
        TransportError, MalformedResponse. Non-zero codes other than risk control are returned for
        the caller to classify.
        """
        if path != P_SPI:
            await self._ensure_device(fail_fast)
        url = base + path
        keys_refetched = False

        async def attempt() -> Reply:
            query = dict(params or {})
            if signed:
                query = wbi.sign(query, await self._wbi_mixin(fail_fast))

            async def handle(resp: aiohttp.ClientResponse) -> Reply:
                body = await resp.read()
                return self._classify(path, resp.status, body, resp.headers.getall("Set-Cookie", []), raw)

            return await self._send(
                method,
                url,
                path,
                handle,
                headers=self._headers(creds, referer),
                params=query or None,
                data=data,
                fail_fast=fail_fast,
            )

        while True:
            reply = await self._retrying(f"{method} {path}", attempt)
            if raw:
                return reply
            code = reply.payload.get("code")
            log.debug("%s %s -> http %s code %s", method, path, reply.status, code)
            body_data = reply.payload.get("data")
            voucher = code == 0 and signed and isinstance(body_data, dict) and set(body_data) == {"v_voucher"}
            if signed and not keys_refetched and (code in (-352, -403) or voucher):
                keys_refetched = True  # maybe stale WBI keys: refetch once and re-sign
                self._mixin = None
                continue
            if code in RISK_CODES or voucher:
                await self._shared_risk(path, code if not voucher else -352)
            if code == 0:
                self.throttle.ok()
                await self.throttle.share_ok()
            return reply

    async def _ensure_device(self, fail_fast: bool) -> None:
        """buvid3/buvid4 from `spi`, fetched once (retried at most once a minute if it failed)."""
        if self.device:
            return
        now = time.monotonic()
        if self._device_checked_at is not None and now - self._device_checked_at < 60:
            return
        async with self._lock("spi"):
            if self.device or (self._device_checked_at is not None and time.monotonic() - self._device_checked_at < 60):
                return
            self._device_checked_at = time.monotonic()
            try:
                reply = await self.request("GET", self.api, P_SPI, fail_fast=fail_fast)
                self.device = parse_device(envelope_data(reply, P_SPI))
            except RiskControl:
                self._device_checked_at = None  # nothing learnt: ask again after the pause
                raise
            except BilibiliError as e:
                log.debug("spi failed: %s", type(e).__name__)

    async def _wbi_mixin(self, fail_fast: bool) -> str:
        if self._mixin and time.monotonic() - self._mixin_at < WBI_TTL_S:
            return self._mixin
        async with self._lock("wbi"):
            if self._mixin and time.monotonic() - self._mixin_at < WBI_TTL_S:
                return self._mixin
            reply = await self.request("GET", self.api, P_NAV, fail_fast=fail_fast)
            self.store_wbi(reply.payload.get("data"))
            if not self._mixin:
                raise MalformedResponse(f"{P_NAV}: no wbi_img", path=P_NAV)
            return self._mixin

    def store_wbi(self, data: Any) -> None:
        keys = parse_wbi_keys(data)
        if keys is not None:
            self._mixin = wbi.mixin_key(*keys)
            self._mixin_at = time.monotonic()

    # -- raw bytes (covers) ----------------------------------------------------------------
    async def fetch_image(self, url: str, path: str, cap: int, *, fail_fast: bool = False) -> bytes:
        """GET an image through the same throttle and retry path; at most `cap` bytes."""

        async def handle(resp: aiohttp.ClientResponse) -> bytes:
            self._check_status(path, resp.status)
            if resp.status != 200:
                raise ApiError(f"cover: HTTP {resp.status}", code=-resp.status, path=path)
            if not resp.content_type.startswith("image/"):  # an error page or JSON is not a cover
                raise MalformedResponse(f"cover: {resp.content_type[:40]} is not an image", path=path)
            if resp.content_length is not None and resp.content_length > cap:
                raise CoverTooLarge(f"cover: {resp.content_length} > {cap} bytes", path=path)
            buf = bytearray()
            async for chunk in resp.content.iter_chunked(65536):
                buf += chunk
                if len(buf) > cap:
                    raise CoverTooLarge(f"cover: more than {cap} bytes", path=path)
            log.debug("GET %s -> http 200 (%d bytes)", path, len(buf))
            return bytes(buf)

        headers = {"User-Agent": USER_AGENT, "Referer": REFERER}
        return await self._retrying(
            f"GET {path}", lambda: self._send("GET", url, path, handle, headers=headers, fail_fast=fail_fast)
        )

    # -- redirects (short links) -----------------------------------------------------------
    async def redirect_target(self, url: str, path: str, *, fail_fast: bool = False) -> str | None:
        """Where a GET of `url` redirects to (its Location), never followed; None when it does not
        redirect. Through the same throttle and retry path as every call."""

        async def handle(resp: aiohttp.ClientResponse) -> str | None:
            self._check_status(path, resp.status)
            await resp.read()
            if resp.status in (301, 302, 303, 307, 308):
                return resp.headers.get("Location")
            log.debug("GET %s -> http %s, no redirect", path, resp.status)
            return None

        headers = {"User-Agent": USER_AGENT, "Referer": REFERER}
        return await self._retrying(
            f"GET {path}", lambda: self._send("GET", url, path, handle, headers=headers, fail_fast=fail_fast)
        )


def envelope_data(reply: Reply, path: str, *, nullable: bool = False) -> Any:
    """Check the code and return `data`: -101 -> NotLoggedIn, other != 0 -> ApiError, null -> EmptyData."""
    p = reply.payload
    code = p.get("code")
    if code == -101:
        raise NotLoggedIn(f"{path}: not logged in (-101)", code=-101, path=path)
    if code != 0:
        raise ApiError(f"{path}: code {code} {str(p.get('message', ''))[:80]}", code=code, path=path)
    data = p.get("data")
    if data is None and not nullable:
        raise EmptyData(f"{path}: data is null", code=0, path=path)
    return data
