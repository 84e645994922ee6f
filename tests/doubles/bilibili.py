"""A faithful bilibili double: a real aiohttp server on 127.0.0.1 speaking bilibili's wire formats.

    async with BilibiliDouble() as double:
        settings = double.settings()            # BilibiliSettings pointed at the double
        double.add_generated_user(1001, seed=7)
        cookies = double.login(1001)            # dict for Credentials.from_dict (no QR needed)

One server serves api / passport / www / image paths; `api_url`, `passport_url`, `www_url` and
`image_url` all point at it. It checks what bilibili checks: SESSDATA (verbatim) on authenticated
endpoints (-101), WBI signatures on signed endpoints (-352), csrf on POSTs (-111), refresh_token
and refresh_csrf on cookie/refresh (86095), and confirm/refresh kills the old session.
Catalogue: the 708 real popular videos (public metadata bundled in tests/fixtures).
Per user, besides the behaviour lists: whom they follow (`follow`), what those uploaders publish
(`upload`: the followed creators' video feed) and bilibili's home feed for them (`set_home_feed`).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import io
import json
import random
import re
import secrets
import time
import urllib.parse
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .bilibili_catalogue import (
    Video,
    av2bv,
    history_spec,
    load_popular,
    stable_id,
    synthesise_long_history,
    tag_id,
)

# -- paths -----------------------------------------------------------------------------------
QR_GENERATE = "/x/passport-login/web/qrcode/generate"
QR_POLL = "/x/passport-login/web/qrcode/poll"
COOKIE_INFO = "/x/passport-login/web/cookie/info"
COOKIE_REFRESH = "/x/passport-login/web/cookie/refresh"
CONFIRM_REFRESH = "/x/passport-login/web/confirm/refresh"
CORRESPOND = "/correspond/1"
SPI = "/x/frontend/finger/spi"
NAV = "/x/web-interface/nav"
HISTORY = "/x/web-interface/history/cursor"
FAV_FOLDERS = "/x/v3/fav/folder/created/list-all"
FAV_ITEMS = "/x/v3/fav/resource/list"
COIN = "/x/space/coin/video"
LIKE = "/x/space/like/video"
POPULAR = "/x/web-interface/popular"
SERIES_LIST = "/x/web-interface/popular/series/list"
SERIES_ONE = "/x/web-interface/popular/series/one"
RANKING = "/x/web-interface/ranking/v2"
RELATED = "/x/web-interface/archive/related"
VIEW = "/x/web-interface/view"
TAGS = "/x/web-interface/view/detail/tag"
VIEW_DETAIL = "/x/web-interface/wbi/view/detail"
SEARCH = "/x/web-interface/wbi/search/type"
FOLLOWINGS = "/x/relation/followings"
BLACKS = "/x/relation/blacks"  # the logged-in user's own blacklist (黑名单)
FEED = "/x/polymer/web-dynamic/v1/feed/all"
FEED_UPDATE = "/x/polymer/web-dynamic/v1/feed/all/update"
HOME_FEED = "/x/web-interface/wbi/index/top/feed/rcmd"
TOVIEW_ADD = "/x/v2/history/toview/add"
IMAGES = "/bfs"
TOVIEW_CAP = 100  # watch later's documented cap (a 2024 report says 1000): `toview_cap` changes it
SHORT = "/b23"  # b23.tv short links: BILIBILI_SHORT_URL points here

SIGNED_PATHS = frozenset({POPULAR, SERIES_LIST, SERIES_ONE, RANKING, COIN, LIKE, VIEW_DETAIL, SEARCH, HOME_FEED})

# Ranking partitions (reference §11.5). Since 2025 ranking/v2 takes the v2 main ids; list items still
# carry the legacy sub-partition tid. Legacy main tid -> v2 main id, for the mains ranking answers:
V2_MAIN_OF_LEGACY_MAIN = {
    1: 1005,
    3: 1003,
    129: 1004,
    4: 1008,
    36: 1010,
    188: 1012,
    234: 1018,
    223: 1013,
    211: 1020,
    217: 1024,
    119: 1007,
    155: 1014,
    5: 1002,
    181: 1001,
}
# Legacy main tid -> its sub-partition tids (the pre-2025 partition tree). 生活 160 and 国创 167 have
# no v2 ranking: their videos rank only site-wide (rid=0).
LEGACY_SUBS = {
    1: (24, 25, 47, 210, 86, 253, 27),
    3: (28, 31, 30, 59, 193, 29, 130, 243, 244),
    129: (20, 154, 156, 198, 199, 200),
    4: (17, 171, 172, 65, 173, 121, 136, 19),
    36: (201, 124, 228, 207, 208, 209, 229, 122),
    188: (95, 230, 231, 232, 233),
    234: (235, 249, 164, 236, 237, 238),
    223: (245, 246, 247, 248, 240, 227, 176),
    160: (138, 250, 251, 239, 161, 162, 21, 254),
    211: (76, 212, 213, 214, 215),
    217: (218, 219, 220, 221, 222, 75),
    119: (22, 26, 126, 216, 127),
    155: (157, 252, 158, 159),
    5: (71, 241, 242, 137),
    181: (182, 183, 85, 184, 256),
    167: (153, 168, 169, 195, 170),
}
LEGACY_MAIN_OF_SUB = {sub: main for main, subs in LEGACY_SUBS.items() for sub in subs}
STALE_RANKING_S = 30 * 86400  # a legacy main tid gets the list as it was a month ago (issue #1281)
SEARCH_PAGE_SIZE = 20

# fault names for `inject`; any integer string ("-799", "-509", "-403", "53013") is a code fault.
# "wrong_types": the real answer, but its first item (or the data object itself) has every field of the
# wrong type ("owner": "x", "progress": "1.5", "bvid": {...}); "wrong_data": `data` is a string.
FAULTS = ("412_html", "412_json", "-352", "-101", "500", "slow", "malformed", "null_data", "wrong_types", "wrong_data")
_MUTATIONS = ("wrong_types", "wrong_data")
# Pagination that never ends, for the history and favourite-item lists (each injected request):
# "repeat_cursor" answers the first page whatever was asked (same items, same cursor, has_more);
# "endless" answers a page with nothing in it that still says there is more.
PAGINATION_FAULTS = ("repeat_cursor", "endless")

_TAB = [
    46,
    47,
    18,
    2,
    53,
    8,
    23,
    32,
    15,
    50,
    10,
    31,
    58,
    3,
    45,
    35,
    27,
    43,
    5,
    49,
    33,
    9,
    42,
    19,
    29,
    28,
    14,
    39,
    12,
    38,
    41,
    13,
    37,
    48,
    7,
    16,
    24,
    55,
    40,
    61,
    26,
    17,
    0,
    1,
    60,
    51,
    30,
    4,
    22,
    25,
    54,
    21,
    56,
    59,
    6,
    63,
    57,
    62,
    11,
    36,
    20,
    34,
    44,
    52,
]
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
_HTML_412 = (
    "<!DOCTYPE html><html><head><title>412 Precondition Failed</title></head><body>"
    "<h1>请求被拦截</h1><p>由于触发哔哩哔哩安全风控策略，该次访问请求被拦截。</p></body></html>"
)


def _wbi_verify(query: dict[str, str], img_key: str, sub_key: str) -> bool:
    """Re-derive w_rid from the received params exactly as bilibili does (reference §2)."""
    q = dict(query)
    w_rid = q.pop("w_rid", None)
    if not w_rid or "wts" not in q:
        return False
    raw = img_key + sub_key
    mixin = "".join(raw[i] for i in _TAB)[:32]
    cleaned = sorted((k, "".join(c for c in v if c not in "!'()*")) for k, v in q.items())
    expected = hashlib.md5((urllib.parse.urlencode(cleaned, quote_via=urllib.parse.quote) + mixin).encode())
    return expected.hexdigest() == w_rid


def _first_item(data: Any) -> dict | None:
    """The object a wrong-typed fault spoils: the first row of the answer's list, else `data` itself."""
    if isinstance(data, list):
        return next((d for d in data if isinstance(d, dict)), None)
    if isinstance(data, dict):
        for key in ("list", "medias", "result", "items", "item"):
            rows = data.get(key)
            if isinstance(rows, list) and rows and isinstance(rows[0], dict):
                return rows[0]
        return data
    return None


def _wrong_types(obj: dict | None) -> None:
    """Every field of the wrong type: objects become "x", numbers "1.5", text and lists objects."""
    if obj is None:
        return
    for key, value in obj.items():
        if isinstance(value, dict):
            obj[key] = "x"
        elif isinstance(value, bool) or value is None:
            obj[key] = [value]
        elif isinstance(value, int | float):
            obj[key] = "1.5"
        else:
            obj[key] = {"wrong": value}


_IMAGE_CACHE: dict[str, bytes] = {}


def _cover_png() -> bytes:
    if "png" not in _IMAGE_CACHE:
        from PIL import Image

        img = Image.new("RGB", (64, 36), (251, 114, 153))  # bilibili pink
        for x in range(0, 64, 8):
            for y in range(36):
                img.putpixel((x, y), (0, 161, 214))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        _IMAGE_CACHE["png"] = buf.getvalue()
    return _IMAGE_CACHE["png"]


_KEY_CACHE: dict[str, rsa.RSAPrivateKey] = {}


def test_correspond_key() -> rsa.RSAPrivateKey:
    """A process-wide 1024-bit test key pair standing in for bilibili's correspond key."""
    if "k" not in _KEY_CACHE:
        _KEY_CACHE["k"] = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return _KEY_CACHE["k"]


# -- state -------------------------------------------------------------------------------------
@dataclass
class Watch:
    bvid: str
    view_at: int
    progress: int = -1


@dataclass
class FavEntry:
    bvid: str
    fav_time: int
    attr: int = 0  # 0 ok; 9 deleted by uploader; 1 deleted


@dataclass
class Folder:
    id: int
    fid: int
    mid: int
    title: str
    attr: int = 0  # bit 0: private; bit 1: not default
    items: list[FavEntry] = field(default_factory=list)


@dataclass
class Follow:
    mtime: int  # when the follow was made (unix s)
    special: bool = False  # 特别关注


@dataclass
class Dynamic:
    """One row of the followed creators' feed: an upload (the only kind this double posts)."""

    id: int  # id_str; newer rows have larger ids
    uploader_mid: int
    bvid: str
    pub_ts: int


@dataclass
class User:
    mid: int
    uname: str
    history: dict[str, Watch] = field(default_factory=dict)
    folders: list[Folder] = field(default_factory=list)
    coins: list[tuple[str, int, int]] = field(default_factory=list)  # bvid, coins, time
    likes: list[str] = field(default_factory=list)  # newest first
    hide_coins: bool = False
    hide_likes: bool = False
    hide_favs: bool = False
    hide_follows: bool = False  # relation/followings answers 22115 to others
    follows: dict[int, Follow] = field(default_factory=dict)  # uploader mid -> the follow
    blacks: dict[int, int] = field(default_factory=dict)  # blacklisted mid -> when (unix s)
    home: list[str] = field(default_factory=list)  # the home feed's videos (bvids); empty: a default
    refresh_needed: bool = False
    taste: dict[str, Any] = field(default_factory=dict)  # generated users: the planted taste
    # Faved in a folder the favourites API does not list (history rows still say `is_fav: 1`)
    faved_elsewhere: set[str] = field(default_factory=set)
    toview: dict[str, int] = field(default_factory=dict)  # watch later (稍后再看): bvid -> add_at, in order

    @property
    def face(self) -> str:
        return f"https://i0.hdslb.com/bfs/face/{hashlib.sha1(str(self.mid).encode()).hexdigest()}.jpg"


@dataclass
class Session:
    sessdata: str
    bili_jct: str
    mid: int
    refresh_token: str
    ckmd5: str
    sid: str
    alive: bool = True
    refresh_csrf: str | None = None
    prev: Session | None = None  # the session this one replaced (alive until confirm)
    prev_token: str | None = None


@dataclass
class Qr:
    key: str
    created: float
    state: str = "waiting"  # waiting | scanned | confirmed | expired | used
    mid: int | None = None


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    cookies: dict[str, str]
    at: float = field(default_factory=time.monotonic)  # when it arrived (this process's clock)


class BilibiliDouble:
    def __init__(
        self,
        *,
        correspond_key: rsa.RSAPrivateKey | None = None,
        load_catalogue: bool = True,
        qr_ttl_s: float = 180.0,
        slow_s: float = 3.0,
        require_wbi: bool = True,
    ) -> None:
        self._key = correspond_key or test_correspond_key()
        self.qr_ttl_s = qr_ttl_s
        self.slow_s = slow_s  # how long a "slow" fault stalls (keep it above the client timeout)
        self.require_wbi = require_wbi
        self.set_cookie_on_login = True  # False: only data.url carries the cookies (client fallback)
        self.img_key = "7cd084941338484aae1ad9425b84077c"
        self.sub_key = "4932caff0ff746eab6f01bf08b70ac45"
        self.buvid3 = f"{uuid.uuid4()}".upper() + "79044infoc"
        self.buvid4 = f"{uuid.uuid4()}".upper() + "-024072309-666onEZSnlHVPjoRp4kDYg=="
        self.videos: dict[str, Video] = {}
        self._by_aid: dict[int, Video] = {}
        self.popular_order: list[str] = []
        if load_catalogue:
            for v in load_popular():
                self.add_video(v)
        self.users: dict[int, User] = {}
        self.sessions: dict[str, Session] = {}
        self.qrs: dict[str, Qr] = {}
        self.calls: Counter[str] = Counter()
        self.requests: deque[Request] = deque(maxlen=2000)
        self.refreshes: Counter[int] = Counter()  # completed cookie/refresh per mid
        self._faults: list[tuple[str | None, str]] = []
        self.risk_mode = False  # True: every request is refused with 412 (an IP-wide block) until False
        self.cover_size: int | None = None  # serve covers padded to this many bytes
        self.cover_chunked = False  # serve covers without Content-Length
        self._holds: dict[str, tuple[int, asyncio.Event]] = {}  # path -> (calls answered at once, release)
        self._runner: web.AppRunner | None = None
        self.port = 0
        # As recorded from the real API: archive/related rows with their aid and an empty bvid.
        self.related_without_bvid = False
        self.restricted: dict[str, int] = {}  # bvid -> -403/-400: view, view/detail, tags, related refuse it
        self.uploaders: dict[int, str] = {}  # uploader mid -> name (uploaders that are not users)
        self.dynamics: list[Dynamic] = []  # the uploads of every uploader, oldest first
        self._dynamic_id = 966_280_000_000_000_000  # where the feed's ids are in 2024, counting up
        self.feed_page_size = 20  # rows per feed/all page, as the web feed pages
        self.home_ads = True  # the home feed carries an ad card (slot 3) and a live room (slot 6)
        self.rows_without_bvid: set[str] = set()  # FEED / HOME_FEED: rows carry their aid, an empty bvid
        self.toview_cap = TOVIEW_CAP  # toview/add answers 90001 once a user's list holds this many
        self.short_links: dict[str, str] = {}  # b23.tv code -> where it redirects (`add_short_link`)
        self.related_override: dict[str, list[str]] = {}  # bvid -> its related list, instead of the graph

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> BilibiliDouble:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        for path, handler in [
            (SPI, self._spi),
            (NAV, self._nav),
            (QR_GENERATE, self._qr_generate),
            (QR_POLL, self._qr_poll),
            (COOKIE_INFO, self._cookie_info),
            (CORRESPOND + "/{path}", self._correspond),
            (HISTORY, self._history),
            (FAV_FOLDERS, self._fav_folders),
            (FAV_ITEMS, self._fav_items),
            (COIN, self._coin),
            (LIKE, self._like),
            (POPULAR, self._popular),
            (SERIES_LIST, self._series_list),
            (SERIES_ONE, self._series_one),
            (RANKING, self._ranking),
            (RELATED, self._related),
            (VIEW, self._view),
            (TAGS, self._tags),
            (VIEW_DETAIL, self._view_detail),
            (SEARCH, self._search),
            (IMAGES + "/{tail:.*}", self._image),
            (FOLLOWINGS, self._followings),
            (BLACKS, self._blacks),
            (FEED, self._feed),
            (FEED_UPDATE, self._feed_update),
            (HOME_FEED, self._home_feed),
            (SHORT + "/{code}", self._short_link),
        ]:
            r.add_get(path, handler)
        r.add_post(COOKIE_REFRESH, self._cookie_refresh)
        r.add_post(CONFIRM_REFRESH, self._confirm_refresh)
        r.add_post(TOVIEW_ADD, self._toview_add)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BilibiliDouble:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    api_url = passport_url = www_url = image_url = url

    @property
    def correspond_public_pem(self) -> bytes:
        """Give this to `BilibiliClient(correspond_public_key=...)` so the double can decrypt."""
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def settings(self, **overrides: Any):
        """BilibiliSettings pointed at this double; overrides by field name (timeout_s=...)."""
        from settings import BilibiliSettings

        values: dict[str, Any] = {
            "api_url": self.url,
            "passport_url": self.url,
            "www_url": self.url,
            "image_url": self.url,
            "short_url": self.url + SHORT,
        }
        values.update(overrides)
        aliases = {name: f.alias or name for name, f in BilibiliSettings.model_fields.items()}
        return BilibiliSettings.model_validate({aliases[k]: v for k, v in values.items()})

    # -- controls: calls and faults ----------------------------------------------------------
    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def reset_calls(self) -> None:
        self.calls.clear()
        self.requests.clear()

    def last_request(self, path: str) -> Request | None:
        for req in reversed(self.requests):
            if req.path == path:
                return req
        return None

    def inject(self, path: str | None, fault: str, times: int = 1) -> None:
        """Make the next `times` requests to `path` (None: any path) fail with `fault`."""
        if fault not in FAULTS + PAGINATION_FAULTS and not re.fullmatch(r"-?\d+", fault):
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS} or an integer code")
        if path is not None and not path.startswith("/"):
            path = "/" + path
        self._faults.extend([(path, fault)] * times)

    def hold(self, path: str, after: int) -> None:
        """Answer `after` more calls to `path` at once, then keep the next ones waiting until `release`."""
        self._holds[path] = (self.calls[path] + after, asyncio.Event())

    def release(self, path: str) -> None:
        _, event = self._holds.pop(path)
        event.set()

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def pending_faults(self) -> int:
        return len(self._faults)

    def _take_fault(self, path: str) -> str | None:
        for i, (p, fault) in enumerate(self._faults):
            if p is None or p == path:
                del self._faults[i]
                return fault
        return None

    def rotate_wbi_keys(self) -> None:
        """New img/sub keys: signatures made with cached old keys now get -352."""
        self.img_key, self.sub_key = secrets.token_hex(16), secrets.token_hex(16)

    def set_cover_size(self, nbytes: int | None, chunked: bool = False) -> None:
        self.cover_size, self.cover_chunked = nbytes, chunked

    # -- controls: catalogue -------------------------------------------------------------------
    def add_video(self, video: Video) -> Video:
        if video.bvid not in self.videos and video.in_popular:
            self.popular_order.append(video.bvid)
        self.videos[video.bvid] = video
        self._by_aid[video.aid] = video
        return video

    def set_unavailable(self, bvid: str, code: int = 62002) -> None:
        """view/tags answer `code` (62002/62004/62012/-404) for this video."""
        self.videos[bvid].unavailable_code = code

    def set_restricted(self, bvid: str, code: int | None = -403) -> None:
        """view, view/detail, tags and related answer `code` for this video, as bilibili does for a
        member-only or otherwise restricted one (-403 访问权限不足, -400 请求错误); None lifts it."""
        if code is None:
            self.restricted.pop(bvid, None)
        else:
            self.restricted[bvid] = code

    def set_state(self, bvid: str, state: int) -> None:
        self.videos[bvid].state = state

    def set_paywall(self, bvid: str, kind: str = "ugc_pay") -> None:
        """Make a video paid ("pay" / "ugc_pay" / "arc_pay": that rights flag, in every list and view) or
        members-only ("upower": view's is_upower_exclusive, which no list row carries); "" frees it."""
        if kind not in ("", "pay", "ugc_pay", "arc_pay", "upower"):
            raise ValueError(kind)
        self.videos[bvid].paywall = kind

    # -- controls: users -----------------------------------------------------------------------
    def add_user(
        self,
        mid: int,
        uname: str = "",
        history: list | None = None,
        favs: Any = None,
        coins: list | None = None,
        likes: list | None = None,
    ) -> User:
        """history: [(bvid, view_at[, progress])]; favs: [bvid | (bvid, fav_time)] for the default
        folder, or {folder title: [...]}; coins: [(bvid, coins, time)]; likes: [bvid] newest first."""
        user = self.users.get(mid) or User(mid=mid, uname=uname or f"user{mid}")
        self.users[mid] = user
        now = int(time.time())
        if not user.folders:
            user.folders.append(Folder(id=self._folder_id(mid, 0), fid=mid * 10 % 10**8, mid=mid, title="默认收藏夹"))
        for i, h in enumerate(history or []):
            bvid, view_at, progress = (h + (-1,))[:3] if isinstance(h, tuple) else (h, now - i * 600, -1)
            self._need(bvid)
            user.history[bvid] = Watch(bvid, int(view_at), int(progress))
        if favs:
            groups = favs if isinstance(favs, dict) else {"默认收藏夹": favs}
            for title, entries in groups.items():
                folder = self.add_folder(mid, title)
                for i, e in enumerate(entries):
                    bvid, t = (e[0], e[1]) if isinstance(e, tuple) else (e, now - i * 3600)
                    self._need(bvid)
                    folder.items.append(FavEntry(bvid, int(t), e[2] if isinstance(e, tuple) and len(e) > 2 else 0))
        for i, c in enumerate(coins or []):
            bvid, n, t = (
                (c + (now - i * 3600,))[:3]
                if isinstance(c, tuple) and len(c) == 2
                else (c if isinstance(c, tuple) else (c, 1, now - i * 3600))
            )
            self._need(bvid)
            user.coins.append((bvid, int(n), int(t)))
        for bvid in likes or []:
            self._need(bvid)
            user.likes.append(bvid)
        return user

    def add_folder(self, mid: int, title: str, private: bool = False) -> Folder:
        user = self.users[mid]
        for f in user.folders:
            if f.title == title:
                return f
        n = len(user.folders)
        folder = Folder(
            id=self._folder_id(mid, n), fid=mid * 10 % 10**8 + n, mid=mid, title=title, attr=(2 | (1 if private else 0))
        )
        user.folders.append(folder)
        return folder

    @staticmethod
    def _folder_id(mid: int, n: int) -> int:
        return ((mid * 10 % 10**8) + n) * 100 + mid % 100

    def _need(self, bvid: str) -> None:
        if bvid not in self.videos:
            raise KeyError(f"{bvid} is not in the double's catalogue")

    def add_watch(
        self,
        mid: int,
        bvid: str,
        view_at: int | None = None,
        progress: int = -1,
        *,
        like: bool = False,
        coins: int = 0,
        fav: bool = False,
    ) -> None:
        """Simulate new behaviour: a (re)watch moves the video to the top of the history."""
        self._need(bvid)
        user = self.users[mid]
        t = int(time.time()) if view_at is None else int(view_at)
        user.history[bvid] = Watch(bvid, t, progress)
        if like and bvid not in user.likes:
            user.likes.insert(0, bvid)
        if coins:
            user.coins.insert(0, (bvid, coins, t))
        if fav:
            user.folders[0].items.append(FavEntry(bvid, t))

    def add_generated_user(self, mid: int, seed: int, n_history: int = 200, uname: str | None = None) -> User:
        """Behaviour over the catalogue with a planted taste (3 liked tags, 5 liked uploaders).

        Videos matching the taste are watched 8x more often, finished more, and make up most
        likes / coins / favourites. `user.taste` holds the planted tags and owner mids.
        """
        rng = random.Random(seed)
        popular = [self.videos[b] for b in self.popular_order]
        tag_count = Counter(t for v in popular for t in v.tags)
        common = sorted(t for t, n in tag_count.items() if 8 <= n <= 60)
        liked_tags = set(rng.sample(common, 3))
        liked_owners = {v.owner_mid for v in rng.sample(popular, 5)}

        def liked(v: Video) -> bool:
            return bool(liked_tags & set(v.tags)) or v.owner_mid in liked_owners

        weights = [8.0 if liked(v) else 1.0 for v in popular]
        chosen: list[Video] = []
        pool = list(zip(popular, weights))
        for _ in range(min(n_history, len(pool))):
            total = sum(w for _, w in pool)
            x = rng.uniform(0, total)
            for i, (v, w) in enumerate(pool):
                x -= w
                if x <= 0:
                    chosen.append(v)
                    pool.pop(i)
                    break
        now = int(time.time())
        history, favs, coins, likes = [], [], [], []
        t = now - 60
        for v in chosen:  # newest first
            good = liked(v)
            progress = (
                -1 if (good and rng.random() < 0.8) or rng.random() < 0.2 else rng.randint(1, max(1, v.duration - 1))
            )
            history.append((v.bvid, t, progress))
            if good and rng.random() < 0.35 or rng.random() < 0.02:
                favs.append((v.bvid, t + 5))
            if good and rng.random() < 0.15:
                coins.append((v.bvid, rng.choice([1, 2]), t + 7))
            if good and rng.random() < 0.5 or rng.random() < 0.03:
                likes.append(v.bvid)
            t -= rng.randint(300, 7200)
        user = self.add_user(mid, uname or f"gen{mid}", history=history, favs=favs, coins=coins[:30], likes=likes[:20])
        if favs:  # one item deleted by its uploader, as real folders have
            user.folders[0].items.append(FavEntry(chosen[-1].bvid, t, attr=9))
        user.taste = {"tags": sorted(liked_tags), "owners": sorted(liked_owners)}
        return user

    def add_long_history_user(
        self, mid: int, uname: str = "history_user", watches: int | None = None, seed: int = 20240606
    ) -> User:
        """A heavy viewer (790 watches, or `watches`, of videos outside the popular list, which join the
        catalogue), synthesised from the catalogue with a fixed seed; see `synthesise_long_history`."""
        spec = history_spec(watches) if watches else None
        rows = synthesise_long_history([self.videos[b] for b in self.popular_order], seed=seed, spec=spec)
        for r in rows:
            if r.bvid not in self.videos:
                self.add_video(r.video)
        rows_new_first = sorted(rows, key=lambda r: r.view_at, reverse=True)
        return self.add_user(
            mid,
            uname,
            history=[(r.bvid, r.view_at, r.progress) for r in rows],
            favs=[(r.bvid, r.view_at) for r in rows_new_first if r.u_fav],
            coins=[(r.bvid, r.u_coin, r.view_at) for r in rows_new_first if r.u_coin],
            likes=[r.bvid for r in rows_new_first if r.u_like],
        )

    # -- controls: followed creators, their uploads, the home feed -----------------------------------
    def uploader_name(self, mid: int) -> str:
        if mid in self.users:
            return self.users[mid].uname
        if mid in self.uploaders:
            return self.uploaders[mid]
        return next((v.owner_name for v in self.videos.values() if v.owner_mid == mid), f"UP主{mid}")

    def follow(self, mid: int, uploader_mid: int, at: int | None = None, *, special: bool = False) -> None:
        """User `mid` follows `uploader_mid` (at unix time `at`, default now): the uploader joins the
        user's followings and their uploads, past and future, the user's video feed."""
        if mid not in self.users:
            self.add_user(mid)
        self.users[mid].follows[uploader_mid] = Follow(int(time.time()) if at is None else int(at), special)

    def blacklist(self, mid: int, uploader_mid: int, at: int | None = None) -> None:
        """User `mid` puts `uploader_mid` on their bilibili blacklist (拉黑)."""
        if mid not in self.users:
            self.add_user(mid)
        self.users[mid].blacks[uploader_mid] = int(time.time()) if at is None else int(at)

    def unfollow(self, mid: int, uploader_mid: int) -> None:
        self.users[mid].follows.pop(uploader_mid, None)

    def upload(
        self, uploader_mid: int, video: Video | None = None, at: int | None = None, *, name: str | None = None
    ) -> Video:
        """`uploader_mid` publishes `video` (one of theirs; None: a new one made up for them) at unix
        time `at` (default: the video's pubdate, or now): one new row on top of their followers' feeds."""
        if name:
            self.uploaders[uploader_mid] = name
        if video is None:
            video = self._new_upload(uploader_mid, int(time.time()) if at is None else int(at))
        elif video.owner_mid != uploader_mid:
            raise ValueError(f"{video.bvid} is {video.owner_mid}'s, not {uploader_mid}'s")
        if video.bvid not in self.videos:
            self.add_video(video)
        self._dynamic_id += 1 + stable_id(video.bvid, 4096, 65536)  # increasing, not evenly spaced
        pub_ts = int(at) if at is not None else video.pubdate
        self.dynamics.append(Dynamic(self._dynamic_id, uploader_mid, video.bvid, pub_ts))
        return video

    def _new_upload(self, uploader_mid: int, pub_ts: int) -> Video:
        n = len(self.dynamics)
        aid = 115_000_000_000_000 + stable_id(f"upload-{uploader_mid}-{n}", 0, 10**12)
        while aid in self._by_aid:
            aid += 1
        like = self.videos[self.popular_order[n % len(self.popular_order)]] if self.popular_order else None
        bvid = av2bv(aid)
        view = 500 + stable_id(bvid, 0, 200_000)
        return Video(
            aid=aid,
            bvid=bvid,
            title=f"{self.uploader_name(uploader_mid)}的新视频 第{n + 1}期",
            pic=f"http://i0.hdslb.com/bfs/archive/{hashlib.sha1(bvid.encode()).hexdigest()}.jpg",
            tid=like.tid if like else 17,
            tname=like.tname if like else "单机游戏",
            pubdate=pub_ts,
            duration=30 + aid % 1800,
            owner_mid=uploader_mid,
            owner_name=self.uploader_name(uploader_mid),
            view=view,
            danmaku=view // 50,
            reply=view // 80,
            favorite=view // 30,
            coin=view // 40,
            share=view // 200,
            like=view // 12,
            tags=list(like.tags) if like else [],
            in_popular=False,
        )

    def set_home_feed(self, mid: int, bvids: list[str]) -> None:
        """The videos bilibili's home page recommends to `mid`, in order (the pages cycle through them)."""
        for bvid in bvids:
            self._need(bvid)
        self.users[mid].home = list(bvids)

    def set_refresh_needed(self, mid: int, needed: bool = True) -> None:
        self.users[mid].refresh_needed = needed

    def login(self, mid: int) -> dict[str, str]:
        """A logged-in session without the QR dance: cookies + refresh_token (Credentials.from_dict)."""
        s = self._new_session(mid)
        d = self._cookie_values(s)
        d["refresh_token"] = s.refresh_token
        d["buvid3"], d["buvid4"] = self.buvid3, self.buvid4
        return d

    def session_alive(self, sessdata: str) -> bool:
        s = self.sessions.get(sessdata)
        return bool(s and s.alive)

    # -- controls: QR ----------------------------------------------------------------------------
    def pending_qr(self, key: str | None = None) -> Qr:
        """The QR state for `key` (None: the newest generated one)."""
        if key is None:
            key = next(reversed(self.qrs))
        return self.qrs[key]

    def scan(self, key: str) -> None:
        self.qrs[key].state = "scanned"

    def confirm(self, key: str, mid: int) -> None:
        if mid not in self.users:
            self.add_user(mid)
        qr = self.qrs[key]
        qr.state, qr.mid = "confirmed", mid

    def expire(self, key: str) -> None:
        self.qrs[key].state = "expired"

    # -- helpers -----------------------------------------------------------------------------------
    def _new_session(self, mid: int) -> Session:
        if mid not in self.users:
            self.add_user(mid)
        exp = int(time.time()) + 180 * 86400
        sessdata = f"{secrets.token_hex(4)}%2C{exp}%2C{secrets.token_hex(3)[:5]}%2A{secrets.randbelow(90) + 10}"
        sessdata += secrets.token_urlsafe(24).replace("-", "A").replace("_", "B")
        s = Session(
            sessdata=sessdata,
            bili_jct=secrets.token_hex(16),
            mid=mid,
            refresh_token=secrets.token_hex(16),
            ckmd5=secrets.token_hex(8),
            sid=secrets.token_hex(4),
        )
        self.sessions[sessdata] = s
        return s

    @staticmethod
    def _cookie_values(s: Session) -> dict[str, str]:
        return {
            "SESSDATA": s.sessdata,
            "bili_jct": s.bili_jct,
            "DedeUserID": str(s.mid),
            "DedeUserID__ckMd5": s.ckmd5,
            "sid": s.sid,
        }

    def _set_cookies(self, resp: web.StreamResponse, s: Session) -> None:
        expires = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 180 * 86400))
        for name, value in self._cookie_values(s).items():
            extra = "; HttpOnly; Secure" if name == "SESSDATA" else ""
            resp.headers.add("Set-Cookie", f"{name}={value}; Path=/; Domain=bilibili.com; Expires={expires}{extra}")

    @staticmethod
    def _raw_cookies(request: web.Request) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in request.headers.get("Cookie", "").split(";"):
            if "=" in part:
                k, v = part.strip().split("=", 1)
                out[k] = v
        return out

    def _session(self, request: web.Request) -> Session | None:
        s = self.sessions.get(self._raw_cookies(request).get("SESSDATA", ""))
        return s if s is not None and s.alive else None

    @staticmethod
    def _env(data: Any = None, code: int = 0, message: str = "0", status: int = 200, **extra: Any) -> web.Response:
        body = {"code": code, "message": message, "ttl": 1, **extra}
        if data is not None or code != 0 or "data_null" in extra:
            body["data"] = data
        body.pop("data_null", None)
        return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    def _ok(self, data: Any) -> web.Response:
        return self._env(data)

    def _code(self, code: int, message: str, data: Any = None) -> web.Response:
        return self._env(data, code=code, message=message)

    def _not_logged_in(self) -> web.Response:
        return self._code(-101, "账号未登录")

    def _video(self, request: web.Request) -> Video | None:
        bvid = request.query.get("bvid")
        if bvid:
            return self.videos.get(bvid)
        aid = request.query.get("aid", "")
        return self._by_aid.get(int(aid)) if aid.isdigit() else None

    @staticmethod
    def _route_key(path: str) -> str:
        if path.startswith(CORRESPOND + "/"):
            return CORRESPOND
        if path.startswith(IMAGES + "/"):
            return IMAGES
        if path.startswith(SHORT + "/"):
            return SHORT
        return path

    # -- middleware: counting, faults, WBI ---------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        key = self._route_key(request.path)
        self.calls[key] += 1
        self.requests.append(
            Request(request.method, key, dict(request.query), dict(request.headers), self._raw_cookies(request))
        )
        if key in self._holds and self.calls[key] > self._holds[key][0]:
            await self._holds[key][1].wait()
        fault = "412_json" if self.risk_mode else self._take_fault(key)
        if fault == "slow":
            await asyncio.sleep(self.slow_s)
        elif fault in PAGINATION_FAULTS:
            return await self._paginate_badly(request, handler, fault)
        elif fault is not None and fault not in _MUTATIONS:
            return self._fault_response(fault)
        if (
            key in SIGNED_PATHS
            and self.require_wbi
            and not _wbi_verify(dict(request.query), self.img_key, self.sub_key)
        ):
            resp = self._code(-352, "风控校验失败", {"v_voucher": f"voucher_{uuid.uuid4()}"})
            resp.headers["x-bili-gaia-vvoucher"] = "voucher_" + uuid.uuid4().hex
            return resp
        resp = await handler(request)
        if fault in _MUTATIONS and isinstance(resp, web.Response) and resp.content_type == "application/json":
            return self._mutated(resp, fault)
        return resp

    @staticmethod
    def _mutated(resp: web.Response, fault: str) -> web.Response:
        """The same envelope (status, headers, cookies) with wrong-typed data."""
        body = json.loads(resp.body)
        if body.get("code") == 0:
            if fault == "wrong_data":
                body["data"] = "x"
            else:
                _wrong_types(_first_item(body.get("data")))
        out = web.json_response(body, status=resp.status, dumps=lambda o: json.dumps(o, ensure_ascii=False))
        for name in resp.headers.getall("Set-Cookie", []):
            out.headers.add("Set-Cookie", name)
        return out

    async def _paginate_badly(self, request: web.Request, handler: Any, fault: str) -> web.StreamResponse:
        first_page = {k: v for k, v in request.query.items() if k not in ("pn", "max", "view_at", "business", "offset")}
        resp = await handler(request.clone(rel_url=request.rel_url.with_query(first_page)))
        body = json.loads(resp.body)
        data = body.get("data")
        if body.get("code") != 0 or not isinstance(data, dict):
            return resp
        if "medias" in data:  # favourite items
            data["has_more"] = True
            if fault == "endless":
                data["medias"] = None
        elif "items" in data:  # the followed creators' feed: its first page, or nothing, never the last
            data["has_more"] = True
            if fault == "endless":
                data["items"] = []
                data["offset"] = request.query.get("offset") or data["offset"] or "1"
        elif "total" in data:  # followings: the first page again (a full one says there is more)
            pass
        elif fault == "endless":  # history: only non-video rows (live), and the cursor asked for
            data["list"] = [dict(row, history=dict(row["history"], business="live")) for row in data["list"][:1]]
            data["cursor"] = {
                "max": int(request.query.get("max") or 1),
                "ps": data["cursor"].get("ps", 20),
                "view_at": int(request.query.get("view_at") or 1),
                "business": "live",
            }
        return web.json_response(body, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    def _fault_response(self, fault: str) -> web.Response:
        if fault == "412_html":
            return web.Response(status=412, text=_HTML_412, content_type="text/html")
        if fault == "412_json":
            return web.json_response(
                {"code": -412, "message": "请求被拦截", "ttl": 1, "data": None},
                status=412,
                dumps=lambda o: json.dumps(o, ensure_ascii=False),
            )
        if fault == "500":
            return web.Response(
                status=500, text="<html><body>500 Internal Server Error</body></html>", content_type="text/html"
            )
        if fault == "malformed":
            return web.Response(
                status=200,
                text='{"code":0,"message":"0","ttl":1,"data":{"list":[{"aid":',
                content_type="application/json",
            )
        if fault == "null_data":
            return web.json_response({"code": 0, "message": "0", "ttl": 1, "data": None})
        code = int(fault)
        messages = {
            -352: "风控校验失败",
            -101: "账号未登录",
            -799: "请求过于频繁，请稍后再试",
            -509: "超出限制",
            -403: "访问权限不足",
            -404: "啥都木有",
            53013: "用户隐私设置未公开",
            22115: "用户已设置隐私，无法查看",
        }
        data = {"v_voucher": f"voucher_{uuid.uuid4()}"} if code == -352 else None
        return self._code(code, messages.get(code, "error"), data)

    # -- device / nav ----------------------------------------------------------------------------
    async def _spi(self, request: web.Request) -> web.Response:
        return web.json_response({"code": 0, "data": {"b_3": self.buvid3, "b_4": self.buvid4}, "message": "ok"})

    def _wbi_img(self) -> dict:
        return {
            "img_url": f"https://i0.hdslb.com/bfs/wbi/{self.img_key}.png",
            "sub_url": f"https://i0.hdslb.com/bfs/wbi/{self.sub_key}.png",
        }

    async def _nav(self, request: web.Request) -> web.Response:
        s = self._session(request)
        if s is None:
            return self._code(-101, "账号未登录", {"isLogin": False, "wbi_img": self._wbi_img()})
        user = self.users[s.mid]
        return self._ok(
            {
                "isLogin": True,
                "mid": user.mid,
                "uname": user.uname,
                "face": user.face,
                "level_info": {"current_level": 5, "current_min": 10800, "current_exp": 12000, "next_exp": 28800},
                "money": 12.5,
                "vipStatus": 0,
                "vipType": 0,
                "wbi_img": self._wbi_img(),
            }
        )

    # -- QR login ----------------------------------------------------------------------------------
    async def _qr_generate(self, request: web.Request) -> web.Response:
        key = secrets.token_hex(16)
        self.qrs[key] = Qr(key=key, created=time.monotonic())
        url = f"https://passport.bilibili.com/h5-app/passport/login/scan?navhide=1&qrcode_key={key}&from="
        return self._ok({"url": url, "qrcode_key": key})

    async def _qr_poll(self, request: web.Request) -> web.Response:
        qr = self.qrs.get(request.query.get("qrcode_key", ""))
        if qr is not None and qr.state in ("waiting", "scanned") and time.monotonic() - qr.created > self.qr_ttl_s:
            qr.state = "expired"

        def state(code: int, message: str) -> web.Response:
            return self._ok({"url": "", "refresh_token": "", "timestamp": 0, "code": code, "message": message})

        if qr is None or qr.state in ("expired", "used"):
            return state(86038, "二维码已失效")
        if qr.state == "waiting":
            return state(86101, "未扫码")
        if qr.state == "scanned":
            return state(86090, "二维码已扫码未确认")
        assert qr.mid is not None
        qr.state = "used"
        s = self._new_session(qr.mid)
        c = self._cookie_values(s)
        url = (
            f"https://passport.biligame.com/crossDomain?DedeUserID={c['DedeUserID']}"
            f"&DedeUserID__ckMd5={c['DedeUserID__ckMd5']}&Expires={180 * 86400}&SESSDATA={c['SESSDATA']}"
            f"&bili_jct={c['bili_jct']}&gourl=https%3A%2F%2Fpassport.bilibili.com"
        )
        resp = self._ok(
            {
                "url": url,
                "refresh_token": s.refresh_token,
                "timestamp": int(time.time() * 1000),
                "code": 0,
                "message": "",
            }
        )
        if self.set_cookie_on_login:
            self._set_cookies(resp, s)
        return resp

    # -- cookie refresh ------------------------------------------------------------------------------
    async def _cookie_info(self, request: web.Request) -> web.Response:
        s = self._session(request)
        if s is None:
            return self._not_logged_in()
        return self._ok({"refresh": self.users[s.mid].refresh_needed, "timestamp": int(time.time() * 1000)})

    async def _correspond(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        if not re.fullmatch(r"[0-9a-f]{256}", path):
            raise web.HTTPNotFound()
        try:
            plain = self._key.decrypt(bytes.fromhex(path), _OAEP).decode()
        except ValueError:
            raise web.HTTPNotFound() from None
        m = re.fullmatch(r"refresh_(\d{13})", plain)
        if not m or abs(int(m.group(1)) - time.time() * 1000) > 20 * 60 * 1000:
            raise web.HTTPNotFound()
        s = self._session(request)
        token = ""
        if s is not None:
            s.refresh_csrf = secrets.token_hex(16)
            token = f'<div id="1-name">{s.refresh_csrf}</div>'
        html = (
            '<!DOCTYPE html><html><head><meta charset="utf-8"><title>bilibili</title></head><body>'
            f'<div id="app"></div>{token}<div id="2-name"></div>'
            "<script>window.__INITIAL_STATE__={}</script></body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    async def _cookie_refresh(self, request: web.Request) -> web.Response:
        s = self._session(request)
        form = await request.post()
        if s is None:
            return self._not_logged_in()
        if form.get("csrf") != s.bili_jct:
            return self._code(-111, "csrf 校验失败")
        if (
            not s.refresh_csrf
            or form.get("refresh_csrf") != s.refresh_csrf
            or form.get("refresh_token") != s.refresh_token
        ):
            return self._code(86095, "refresh_csrf 错误或 refresh_token 与 cookie 不匹配")
        s.refresh_csrf = None
        new = self._new_session(s.mid)
        new.prev, new.prev_token = s, s.refresh_token
        self.refreshes[s.mid] += 1
        resp = self._ok({"status": 0, "message": "", "refresh_token": new.refresh_token})
        self._set_cookies(resp, new)
        return resp

    async def _confirm_refresh(self, request: web.Request) -> web.Response:
        s = self._session(request)
        form = await request.post()
        if s is None:
            return self._not_logged_in()
        if form.get("csrf") != s.bili_jct:
            return self._code(-111, "csrf 校验失败")
        if s.prev is None or form.get("refresh_token") != s.prev_token:
            return self._code(-400, "请求错误")
        s.prev.alive = False
        s.prev = None
        self.users[s.mid].refresh_needed = False
        return web.json_response({"code": 0, "message": "0", "ttl": 1})

    # -- behaviour ---------------------------------------------------------------------------------
    async def _history(self, request: web.Request) -> web.Response:
        s = self._session(request)
        if s is None:
            return self._not_logged_in()
        q = request.query
        ps = min(max(int(q.get("ps") or 20), 1), 30)
        cur_max, cur_at = int(q.get("max") or 0), int(q.get("view_at") or 0)
        user = self.users[s.mid]
        faved = {e.bvid for f in user.folders for e in f.items if e.attr == 0} | user.faved_elsewhere
        rows = sorted(
            ((w.view_at, self.videos[w.bvid].aid, w) for w in user.history.values()),
            reverse=True,
            key=lambda t: (t[0], t[1]),
        )
        if cur_max or cur_at:
            bound = (cur_at or 2**62, cur_max or 2**62)
            rows = [r for r in rows if (r[0], r[1]) < bound]
        page = rows[:ps]
        out = []
        for view_at, _aid, w in page:
            v = self.videos[w.bvid]
            out.append(
                {
                    "title": v.title,
                    "long_title": "",
                    "cover": v.pic,
                    "covers": None,
                    "uri": "",
                    "history": {
                        "oid": v.aid,
                        "epid": 0,
                        "bvid": v.bvid,
                        "page": 1,
                        "cid": v.cid,
                        "part": v.title,
                        "business": "archive",
                        "dt": 2,
                    },
                    "videos": v.videos,
                    "author_name": v.owner_name,
                    "author_face": v.owner_face,
                    "author_mid": v.owner_mid,
                    "view_at": view_at,
                    "progress": w.progress,
                    "badge": "",
                    "show_title": "",
                    "duration": v.duration,
                    "current": "",
                    "total": 0,
                    "new_desc": "",
                    "is_finish": 1 if w.progress == -1 else 0,
                    "is_fav": int(w.bvid in faved),
                    "kid": v.aid,
                    "tag_name": v.tname,
                    "live_status": 0,
                }
            )
        cursor = (
            {"max": page[-1][1], "view_at": page[-1][0], "business": "archive", "ps": ps}
            if page
            else {"max": 0, "view_at": 0, "business": "", "ps": ps}
        )
        return self._ok(
            {
                "cursor": cursor,
                "tab": [
                    {"type": "archive", "name": "视频"},
                    {"type": "live", "name": "直播"},
                    {"type": "article", "name": "专栏"},
                ],
                "list": out,
            }
        )

    async def _fav_folders(self, request: web.Request) -> web.Response:
        s = self._session(request)
        if s is None:
            return self._not_logged_in()
        mid = int(request.query.get("up_mid") or 0)
        user = self.users.get(mid)
        if user is None or (user.hide_favs and s.mid != mid):
            return self._env(None, data_null=True)
        folders = [f for f in user.folders if s.mid == mid or not f.attr & 1]
        return self._ok(
            {
                "count": len(folders),
                "season": None,
                "list": [
                    {
                        "id": f.id,
                        "fid": f.fid,
                        "mid": f.mid,
                        "attr": f.attr,
                        "title": f.title,
                        "fav_state": 0,
                        "media_count": len(f.items),
                    }
                    for f in folders
                ],
            }
        )

    def _find_folder(self, media_id: int) -> Folder | None:
        for user in self.users.values():
            for f in user.folders:
                if f.id == media_id:
                    return f
        return None

    async def _fav_items(self, request: web.Request) -> web.Response:
        s = self._session(request)
        if s is None:
            return self._not_logged_in()
        q = request.query
        try:
            media_id, pn, ps = int(q["media_id"]), int(q.get("pn") or 1), int(q["ps"])
        except (KeyError, ValueError):
            return self._code(-400, "请求错误")
        if not 1 <= ps <= 20 or pn < 1:
            return self._code(-400, "请求错误")
        folder = self._find_folder(media_id)
        if folder is None:
            return self._code(11010, "您访问的内容不存在")
        if folder.attr & 1 and folder.mid != s.mid:
            return self._code(-403, "访问权限不足")
        items = sorted(folder.items, key=lambda e: e.fav_time, reverse=True)
        page = items[(pn - 1) * ps : pn * ps]
        owner = self.users[folder.mid]
        medias = []
        for e in page:
            v = self.videos[e.bvid]
            dead = e.attr != 0
            medias.append(
                {
                    "id": v.aid,
                    "type": 2,
                    "title": "已失效视频" if dead else v.title,
                    "cover": "http://i0.hdslb.com/bfs/archive/be27fd62c99036dce67efface486fb0a88ca41ba.jpg"
                    if dead
                    else v.pic,
                    "intro": v.desc,
                    "page": v.videos,
                    "duration": v.duration,
                    "upper": {"mid": v.owner_mid, "name": v.owner_name, "face": v.owner_face},
                    "attr": e.attr,
                    "cnt_info": {"collect": v.favorite, "play": v.view, "danmaku": v.danmaku},
                    "link": f"bilibili://video/{v.aid}",
                    "ctime": v.pubdate,
                    "pubtime": v.pubdate,
                    "fav_time": e.fav_time,
                    "bv_id": v.bvid,
                    "bvid": v.bvid,
                    "season": None,
                }
            )
        info = {
            "id": folder.id,
            "fid": folder.fid,
            "mid": folder.mid,
            "attr": folder.attr,
            "title": folder.title,
            "media_count": len(items),
            "upper": {"mid": owner.mid, "name": owner.uname, "face": owner.face},
            "cnt_info": {"collect": 0, "play": 0, "thumb_up": 0, "share": 0},
        }
        return self._ok(
            {"info": info, "medias": medias or None, "has_more": pn * ps < len(items), "ttl": int(time.time())}
        )

    async def _coin(self, request: web.Request) -> web.Response:
        s = self._session(request)
        if s is None:
            return self._not_logged_in()
        mid = int(request.query.get("vmid") or 0)
        user = self.users.get(mid)
        if user is None:
            return self._code(-404, "啥都木有")
        if user.hide_coins and s.mid != mid:
            return self._code(53013, "用户隐私设置未公开")
        out = []
        for bvid, n, t in sorted(user.coins, key=lambda c: c[2], reverse=True):
            out.append({**self.videos[bvid].archive(), "coins": n, "time": t, "ip": "", "inter_video": False})
        return self._ok(out)

    async def _like(self, request: web.Request) -> web.Response:
        s = self._session(request)
        if s is None:
            return self._not_logged_in()
        mid = int(request.query.get("vmid") or 0)
        user = self.users.get(mid)
        if user is None:
            return self._code(-404, "啥都木有")
        if user.hide_likes and s.mid != mid:
            return self._code(53013, "用户隐私设置未公开")
        return self._ok({"list": [self.videos[b].archive() for b in user.likes[:20]]})

    # -- candidates --------------------------------------------------------------------------------
    async def _popular(self, request: web.Request) -> web.Response:
        pn = max(int(request.query.get("pn") or 1), 1)
        ps = min(max(int(request.query.get("ps") or 20), 1), 50)
        page = self.popular_order[(pn - 1) * ps : pn * ps]
        items = [{**self.videos[b].archive(), "rcmd_reason": self._popular_reason(self.videos[b])} for b in page]
        return self._ok({"list": items, "no_more": pn * ps >= len(self.popular_order)})

    @staticmethod
    def _popular_reason(v: Video) -> dict:
        """popular's badge, as recorded ({"content": "百万播放", "corner_mark": 0}); "" for most rows."""
        if v.view >= 1_000_000:
            return {"content": "百万播放", "corner_mark": 0}
        if v.like >= 10_000:
            return {"content": f"{v.like // 10_000}万点赞", "corner_mark": 0}
        return {"content": "", "corner_mark": 0}

    @staticmethod
    def weekly_blurb(v: Video) -> str:
        """A weekly issue's `rcmd_reason`: the editors' sentence about the video."""
        return f"{v.owner_name}的{v.tname}新作：{v.title[:16]}，本周不可错过！"

    WEEKLY_FIRST = 300
    WEEKLY_ISSUES = 12
    WEEKLY_SIZE = 30

    def _weekly(self) -> dict[int, list[str]]:
        by_date = sorted(self.popular_order, key=lambda b: (self.videos[b].pubdate, b))
        issues = {}
        for i in range(self.WEEKLY_ISSUES):
            chunk = by_date[i * self.WEEKLY_SIZE : (i + 1) * self.WEEKLY_SIZE]
            if chunk:
                issues[self.WEEKLY_FIRST + i] = chunk
        return issues

    async def _series_list(self, request: web.Request) -> web.Response:
        issues = self._weekly()
        return self._ok(
            {
                "list": [
                    {"number": n, "subject": self.videos[b[0]].title[:12], "status": 2, "name": f"2025第{n}期"}
                    for n, b in sorted(issues.items(), reverse=True)
                ]
            }
        )

    async def _series_one(self, request: web.Request) -> web.Response:
        number = int(request.query.get("number") or 0)
        issue = self._weekly().get(number)
        if issue is None:
            return self._code(-404, "啥都木有")
        first = self.videos[issue[0]]
        return self._ok(
            {
                "config": {
                    "id": number,
                    "type": "weekly_selected",
                    "number": number,
                    "subject": first.title[:12],
                    "stime": first.pubdate,
                    "etime": first.pubdate + 7 * 86400 - 1,
                    "status": 2,
                    "name": f"2025第{number}期",
                    "label": f"第{number}期",
                    "media_id": 448239988,
                },
                "reminder": "每周五晚18:00更新",
                "list": [{**self.videos[b].archive(), "rcmd_reason": self.weekly_blurb(self.videos[b])} for b in issue],
            }
        )

    @staticmethod
    def v2_partition(video: Video) -> int:
        """The v2 main id ranking/v2 lists this video under (0: none, it ranks only site-wide)."""
        return V2_MAIN_OF_LEGACY_MAIN.get(LEGACY_MAIN_OF_SUB.get(video.tid, video.tid), 0)

    async def _ranking(self, request: web.Request) -> web.Response:
        """rid 0: site-wide; a v2 main id: that partition; a legacy main tid: the month-old list (only
        videos published a month before the newest one: the list stopped updating); else -400."""
        try:
            rid = int(request.query.get("rid") or 0)
        except ValueError:
            return self._code(-400, "请求错误")
        pool = [self.videos[b] for b in self.popular_order]
        if rid in V2_MAIN_OF_LEGACY_MAIN.values():
            vids = [v for v in pool if self.v2_partition(v) == rid]
        elif rid in LEGACY_SUBS:
            newest = max((v.pubdate for v in pool), default=0)
            vids = [v for v in pool if LEGACY_MAIN_OF_SUB.get(v.tid) == rid and v.pubdate <= newest - STALE_RANKING_S]
        elif rid == 0:
            vids = pool
        else:
            return self._code(-400, "请求错误")
        vids.sort(key=lambda v: (v.like + 10 * v.coin + 5 * v.favorite, v.aid), reverse=True)
        return self._ok(
            {
                "note": "根据稿件内容质量、近期的数据综合展示，动态更新",
                "list": [{**v.archive(), "score": 0} for v in vids[:100]],
            }
        )

    # -- search ------------------------------------------------------------------------------------
    @staticmethod
    def _highlight(text: str, keyword: str) -> str:
        """The title as search answers it: HTML-escaped, each match wrapped in <em class="keyword">."""
        if not keyword:
            return html.escape(text, quote=False)
        parts = re.split(f"({re.escape(keyword)})", text, flags=re.IGNORECASE)
        return "".join(
            f'<em class="keyword">{html.escape(p, quote=False)}</em>' if i % 2 else html.escape(p, quote=False)
            for i, p in enumerate(parts)
        )

    @staticmethod
    def _search_row(v: Video, keyword: str) -> dict:
        """A video as search/type answers it: `typeid` a string, `pic` without scheme, `duration` "m:s"
        (seconds not zero-padded, as recorded: "4:1"), `play`/`video_review`/`favorites`, tags joined."""
        return {
            "type": "video",
            "id": v.aid,
            "author": v.owner_name,
            "mid": v.owner_mid,
            "typeid": str(v.tid),
            "typename": v.tname,
            "arcurl": f"http://www.bilibili.com/video/av{v.aid}",
            "aid": v.aid,
            "bvid": v.bvid,
            "title": BilibiliDouble._highlight(v.title, keyword),
            "description": html.escape(v.desc, quote=False),
            "arcrank": "0",
            "pic": re.sub(r"^https?:", "", v.pic),
            "play": v.view,
            "video_review": v.danmaku,
            "favorites": v.favorite,
            "tag": ",".join(v.tags),
            "review": v.reply,
            "pubdate": v.pubdate,
            "senddate": v.pubdate + 1,
            "duration": f"{v.duration // 60}:{v.duration % 60}",
            "badgepay": False,
            "hit_columns": ["title"],
            "view_type": "",
            "is_pay": int(v.paywall in ("pay", "ugc_pay", "arc_pay")),
            "is_union_video": int(bool(v.co_creators())),
            "is_charging_arc": v.paywall == "upower",
            "rec_tags": None,
            "new_rec_tags": [],
            "rank_score": v.view,
        }

    def search_bvids(self, keyword: str) -> list[str]:
        """What a video search for `keyword` finds in the catalogue (title, tags or uploader, any case),
        most played first: bilibili's default order ranks by relevance, close enough for a double."""
        k = keyword.casefold()
        found = [
            v
            for v in self.videos.values()
            if k in v.title.casefold() or k in v.owner_name.casefold() or any(k in t.casefold() for t in v.tags)
        ]
        return [v.bvid for v in sorted(found, key=lambda v: (-v.view, v.aid))]

    async def _search(self, request: web.Request) -> web.Response:
        """wbi/search/type: refused with -412 without the device cookie buvid3 (since 2022-08);
        video search only; 20 a page, at most 50 pages / 1000 results; no hits: no `result` key."""
        if not self._raw_cookies(request).get("buvid3"):
            return self._code(-412, "搜索被拦截")
        q = request.query
        keyword = q.get("keyword", "").strip()
        try:
            page = int(q.get("page") or 1)
        except ValueError:
            return self._code(-400, "请求错误")
        if q.get("search_type") != "video" or not keyword or page < 1:
            return self._code(-400, "请求错误")
        found = self.search_bvids(keyword)[:1000]
        num_pages = min(-(-len(found) // SEARCH_PAGE_SIZE), 50)
        rows = [
            self._search_row(self.videos[b], keyword)
            for b in found[(page - 1) * SEARCH_PAGE_SIZE : page * SEARCH_PAGE_SIZE]
        ]
        data: dict[str, Any] = {
            "seid": str(stable_id(keyword + str(page), 10**18, 9 * 10**18)),
            "page": page,
            "pagesize": SEARCH_PAGE_SIZE,
            "numResults": len(found),
            "numPages": num_pages,
            "suggest_keyword": "",
            "rqt_type": "search",
            "cost_time": {"params_check": "0.000300", "as_request": "0.072525", "total": "0.077996"},
            "exp_list": {"5520": True},
            "egg_hit": 0,
            "show_column": 0,
        }
        if rows:
            data["result"] = rows
        return self._ok(data)

    async def _related(self, request: web.Request) -> web.Response:
        v = self._video(request)
        if v is None:
            return self._code(-404, "啥都木有")
        if (refused := self._restricted(v)) is not None:
            return refused
        return self._ok(self._related_rows(v))

    def _related_rows(self, v: Video) -> list[dict]:
        """archive/related rows as recorded in 2025: the v2 partition as `tidv2`/`tnamev2`, an empty rcmd_reason."""
        rows = [
            {
                **(o := self.videos[b]).archive(),
                "tidv2": o.tid_v2,
                "tnamev2": o.tname_v2,
                "pid_v2": self.v2_partition(o),
                "rcmd_reason": "",
            }
            for b in self.related_bvids(v.bvid)
        ]
        if self.related_without_bvid:
            rows = [{**row, "bvid": ""} for row in rows]
        return rows

    def _restricted(self, v: Video) -> web.Response | None:
        code = self.restricted.get(v.bvid)
        if code is None:
            return None
        return self._code(code, {-403: "访问权限不足", -400: "请求错误"}.get(code, "error"))

    def related_bvids(self, bvid: str) -> list[str]:
        """Deterministic related graph: shared tags, same partition, same uploader (max 40);
        `related_override[bvid]` when set (e.g. [] for a video bilibili lists nothing beside)."""
        if bvid in self.related_override:
            return list(self.related_override[bvid])
        v = self.videos[bvid]
        tags = set(v.tags)
        scored = []
        for o in self.videos.values():
            if o.bvid == bvid or not o.in_popular:
                continue
            score = 3 * len(tags & set(o.tags)) + 2 * (o.tid == v.tid) + 5 * (o.owner_mid == v.owner_mid)
            if score:
                scored.append((-score, -o.view, o.aid, o.bvid))
        return [b for *_, b in sorted(scored)[:40]]

    def _unavailable(self, v: Video | None) -> web.Response | None:
        if v is None or v.unavailable_code == -404:
            return self._code(-404, "啥都木有")
        if v.unavailable_code:
            return self._code(v.unavailable_code, "稿件不可见")
        return self._restricted(v)

    def _view_data(self, v: Video) -> dict:
        """view's data: the archive with the 2025 partition, the pages, the honours, the co-creators
        (a joint upload only: `staff` is absent otherwise) and the members-only flag."""
        pages = [
            {
                "cid": v.cid,
                "page": 1,
                "from": "vupload",
                "part": v.title,
                "duration": v.duration,
                "dimension": v.dimension(),
            }
        ]
        data = {
            **v.archive(),
            "tid_v2": v.tid_v2,
            "tname_v2": v.tname_v2,
            "pages": pages,
            "honor_reply": self._honor_reply(v),
            "is_upower_exclusive": v.paywall == "upower",
            "is_upower_play": False,
            "is_upower_preview": False,
        }
        if co := v.co_creators():
            data["staff"] = [
                {
                    "mid": v.owner_mid,
                    "title": "UP主",
                    "name": v.owner_name,
                    "face": v.owner_face,
                    "follower": 1000 + v.owner_mid % 97_000,
                    "label_style": 0,
                }
            ] + [
                {
                    "mid": mid,
                    "title": "参演",
                    "name": self.uploader_name(mid),
                    "face": "",
                    "follower": 1000 + mid % 97_000,
                    "label_style": 0,
                }
                for mid in co
            ]
        return data

    def _honor_reply(self, v: Video) -> dict:
        """honor_reply as recorded: 2 第N期每周必看, 3 全站排行榜最高第N名, 4 热门; {} for a video with none."""
        honors = [
            {"aid": v.aid, "type": 2, "desc": f"第{n}期每周必看", "weekly_recommend_num": n}
            for n, issue in self._weekly().items()
            if v.bvid in issue
        ]
        if place := v.rank_reached():
            honors.append({"aid": v.aid, "type": 3, "desc": f"全站排行榜最高第{place}名", "weekly_recommend_num": 0})
        if v.in_popular:
            honors.append({"aid": v.aid, "type": 4, "desc": "热门", "weekly_recommend_num": 0})
        return {"honor": honors} if honors else {}

    @staticmethod
    def participle(title: str) -> list[str]:
        """view/detail's `participle`: the title's words, lower-cased (runs of letters/digits, CJK pairs)."""
        words = []
        for run in re.findall(r"[A-Za-z0-9]+|[\u4e00-\u9fff]+", title):
            words += [run.lower()] if run.isascii() else [run[i : i + 2] for i in range(0, len(run), 2)]
        return list(dict.fromkeys(w for w in words if len(w) > 1))[:12]

    @staticmethod
    def _tag_list(v: Video) -> list[dict]:
        out = []
        if v.aid % 2 == 0:  # many videos carry a BGM "tag"
            out.append(
                {
                    "tag_id": 0,
                    "tag_name": f"发现《{v.title[:6]}》",
                    "music_id": f"MA{v.aid}",
                    "tag_type": "bgm",
                    "jump_url": "https://music.bilibili.com/h5/music-detail?music_id=MA1",
                }
            )
        for t in v.tags:
            out.append({"tag_id": tag_id(t), "tag_name": t, "music_id": "", "tag_type": "old_channel", "jump_url": ""})
        if v.aid % 3 == 0:
            out.append(
                {
                    "tag_id": stable_id("topic" + v.bvid),
                    "tag_name": f"#{v.tname}挑战赛#",
                    "music_id": "",
                    "tag_type": "topic",
                    "jump_url": "https://www.bilibili.com/v/topic/detail/?topic_id=1",
                }
            )
        return out

    async def _view(self, request: web.Request) -> web.Response:
        v = self._video(request)
        return self._unavailable(v) or self._ok(self._view_data(v))

    async def _tags(self, request: web.Request) -> web.Response:
        v = self._video(request)
        if v is None or v.unavailable_code == -404:
            return self._code(-404, "啥都木有")
        return self._restricted(v) or self._ok(self._tag_list(v))

    async def _view_detail(self, request: web.Request) -> web.Response:
        """view + the uploader card + tags + related in one answer (capitalised keys, card mid a string)."""
        v = self._video(request)
        if (refused := self._unavailable(v)) is not None:
            return refused
        card = {
            "card": {
                "mid": str(v.owner_mid),
                "name": v.owner_name,
                "fans": 1000 + v.owner_mid % 97_000,
                "level_info": {"current_level": 6},
            },
            "following": False,
            "archive_count": 40,
            "follower": 1000 + v.owner_mid % 97_000,
            "like_num": 10_000,
        }
        return self._ok(
            {
                "View": self._view_data(v),
                "Card": card,
                "Tags": self._tag_list(v),
                "Reply": {"page": None, "replies": []},
                "Related": self._related_rows(v),
                "participle": self.participle(v.title),
                "emergency": {"no_like": False, "no_coin": False, "no_fav": False, "no_share": False},
            }
        )

    # -- watch later (稍后再看) -------------------------------------------------------------------
    async def _toview_add(self, request: web.Request) -> web.Response:
        """toview/add as bilibili answers it (form body `aid` or `bvid`, `csrf`): -101 without a live
        session, -111 on a wrong csrf, -400 without a video id, 90003 for a deleted (or unknown) video,
        90001 when the list is full; a video already listed stays where it is, code 0."""
        s = self._session(request)
        form = await request.post()
        if s is None:
            return self._not_logged_in()
        if form.get("csrf") != s.bili_jct:
            return self._code(-111, "csrf 校验失败")
        bvid, aid = str(form.get("bvid") or ""), str(form.get("aid") or "")
        if not bvid and not aid.isdigit():
            return self._code(-400, "请求错误")
        video = self.videos.get(bvid) if bvid else self._by_aid.get(int(aid))
        if video is None or video.unavailable_code or video.state < 0:
            return self._code(90003, "稿件已经被删除")
        toview = self.users[s.mid].toview
        if video.bvid not in toview and len(toview) >= self.toview_cap:
            return self._code(90001, "稍后再看列表已满")
        toview.setdefault(video.bvid, int(time.time()))
        return web.json_response({"code": 0, "message": "0", "ttl": 1})

    # -- b23.tv short links ----------------------------------------------------------------------
    def add_short_link(self, code: str, target: str) -> str:
        """b23.tv/<code> redirects (302) to `target`, e.g. a video page with share parameters; the code."""
        self.short_links[code] = target
        return code

    def short_link_to(self, bvid: str) -> str:
        """A fresh short code for a video, as the app's share button makes one."""
        code = f"{stable_id('short' + bvid) % 36**7:07x}"[:7]
        return self.add_short_link(code, f"https://www.bilibili.com/video/{bvid}?share_source=copy_web&vd_source=abc")

    async def _short_link(self, request: web.Request) -> web.Response:
        """As b23.tv answers: a 302 to the long link, or 404 for a code it does not know."""
        target = self.short_links.get(request.match_info["code"])
        if target is None:
            return web.Response(status=404, text="<html><body>404 Not Found</body></html>", content_type="text/html")
        return web.Response(status=302, headers={"Location": target}, text="")

    # -- per-user candidate sources: followings, the followed creators' feed, the home feed -------
    async def _blacks(self, request: web.Request) -> web.Response:
        """relation/blacks (bilibili-API-collect docs/user/relation.md): the logged-in user's own
        blacklist, newest first, `ps` (default 50) a page; relation objects with attribute 128."""
        s = self._session(request)
        if s is None:
            return self._not_logged_in()
        try:
            pn, ps = int(request.query.get("pn") or 1), int(request.query.get("ps") or 50)
        except ValueError:
            return self._code(-400, "请求错误")
        if pn < 1 or ps < 1:
            return self._code(-400, "请求错误")
        ps = min(ps, 50)
        blacks = sorted(self.users[s.mid].blacks.items(), key=lambda kv: (-kv[1], kv[0])) if s.mid in self.users else []
        rows = [
            {
                "mid": mid,
                "attribute": 128,
                "mtime": at,
                "tag": None,
                "special": 0,
                "contract_info": {},
                "uname": self.uploader_name(mid),
                "face": "",
                "sign": "",
                "face_nft": 0,
                "official_verify": {"type": -1, "desc": ""},
                "vip": {"vipType": 0, "vipStatus": 0},
                "nft_icon": "",
                "rec_reason": "",
                "track_id": "",
            }
            for mid, at in blacks[(pn - 1) * ps : pn * ps]
        ]
        return self._ok({"list": rows, "re_version": 0, "total": len(blacks)})

    async def _followings(self, request: web.Request) -> web.Response:
        """relation/followings: newest follow first; one's own list in full, of others the first 100."""
        s = self._session(request)
        if s is None:
            return self._not_logged_in()
        q = request.query
        try:
            vmid, pn, ps = int(q["vmid"]), int(q.get("pn") or 1), int(q.get("ps") or 50)
        except (KeyError, ValueError):
            return self._code(-400, "请求错误")
        if pn < 1 or ps < 1:
            return self._code(-400, "请求错误")
        ps = min(ps, 50)
        user = self.users.get(vmid)
        if user is not None and user.hide_follows and s.mid != vmid:
            return self._code(22115, "用户已设置隐私，无法查看")
        follows = sorted((user.follows if user else {}).items(), key=lambda kv: (-kv[1].mtime, kv[0]))
        start = (pn - 1) * ps
        end = start + ps if s.mid == vmid else min(start + ps, 100)
        page = follows[start:end]
        referer = urllib.parse.urlsplit(request.headers.get("Referer", "")).hostname or ""
        if (
            not (referer == "bilibili.com" or referer.endswith(".bilibili.com"))
            or "python" in request.headers.get("User-Agent", "").lower()
        ):
            page = []  # what bilibili shows a script: nobody
        rows = []
        for up_mid, f in page:
            up = self.users.get(up_mid)
            mutual = up is not None and vmid in up.follows
            rows.append(
                {
                    "mid": up_mid,
                    "attribute": 6 if mutual else 2,
                    "mtime": f.mtime,
                    "tag": None,
                    "special": int(f.special),
                    "contract_info": {},
                    "uname": self.uploader_name(up_mid),
                    "face": f"https://i0.hdslb.com/bfs/face/{hashlib.sha1(str(up_mid).encode()).hexdigest()}.jpg",
                    "sign": "",
                    "face_nft": 0,
                    "official_verify": {"type": -1, "desc": ""},
                    "vip": {
                        "vipType": 0,
                        "vipDueDate": 0,
                        "dueRemark": "",
                        "accessStatus": 0,
                        "vipStatus": 0,
                        "vipStatusWarn": "",
                        "themeType": 0,
                        "label": {"path": ""},
                        "avatar_subscript": 0,
                        "nickname_color": "",
                        "avatar_subscript_url": "",
                    },
                    "name_render": {},
                    "nft_icon": "",
                    "rec_reason": "",
                    "track_id": "",
                    "follow_time": "",
                }
            )
        return self._ok({"list": rows, "re_version": 0, "total": len(follows)})

    def _feed_rows(self, mid: int, kind: str) -> list[Dynamic]:
        """The rows of `mid`'s feed, newest first: their followed uploaders' uploads (videos are all
        this double posts, so `type` video and all read the same; other types read nothing)."""
        follows = self.users[mid].follows
        if kind not in ("all", "video"):
            return []
        return sorted((d for d in self.dynamics if d.uploader_mid in follows), key=lambda d: d.id, reverse=True)

    @staticmethod
    def _display_count(n: int) -> str:
        """A count as the feed shows it: 3364, 1.4万, 2.1亿."""
        if n < 10_000:
            return str(n)
        if n < 100_000_000:
            return f"{n / 10_000:.1f}万"
        return f"{n / 100_000_000:.1f}亿"

    def _dynamic_item(self, d: Dynamic) -> dict:
        """One feed row shaped as recorded from the real feed (an upload: DYNAMIC_TYPE_AV)."""
        v = self.videos[d.bvid]
        minutes, seconds = divmod(v.duration, 60)
        duration = (
            f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}" if minutes >= 60 else f"{minutes:02d}:{seconds:02d}"
        )
        bvid = "" if FEED in self.rows_without_bvid else v.bvid
        face = f"https://i0.hdslb.com/bfs/face/{hashlib.sha1(str(d.uploader_mid).encode()).hexdigest()}.jpg"
        return {
            "basic": {
                "comment_id_str": str(v.aid),
                "comment_type": 1,
                "like_icon": {"action_url": "", "end_url": "", "id": 0, "start_url": ""},
                "rid_str": str(v.aid),
            },
            "id_str": str(d.id),
            "modules": {
                "module_author": {
                    "face": face,
                    "face_nft": False,
                    "following": True,
                    "jump_url": f"//space.bilibili.com/{d.uploader_mid}/dynamic",
                    "label": "",
                    "mid": d.uploader_mid,
                    "name": self.uploader_name(d.uploader_mid),
                    "official_verify": {"desc": "", "type": -1},
                    "pub_action": "投稿了视频",
                    "pub_location_text": "",
                    "pub_time": time.strftime("%m-%d", time.gmtime(d.pub_ts)),
                    "pub_ts": d.pub_ts,
                    "type": "AUTHOR_TYPE_NORMAL",
                },
                "module_dynamic": {
                    "additional": None,
                    "desc": None,
                    "topic": None,
                    "major": {
                        "type": "MAJOR_TYPE_ARCHIVE",
                        "archive": {
                            "aid": str(v.aid),  # a string, as the real feed sends it
                            "badge": {"bg_color": "#FB7299", "color": "#FFFFFF", "icon_url": None, "text": "投稿视频"},
                            "bvid": bvid,
                            "cover": v.pic,
                            "desc": v.desc,
                            "disable_preview": 0,
                            "duration_text": duration,
                            "jump_url": f"//www.bilibili.com/video/{v.bvid}/",
                            "stat": {"danmaku": self._display_count(v.danmaku), "play": self._display_count(v.view)},
                            "title": v.title,
                            "type": 1,
                        },
                    },
                },
                "module_more": {
                    "three_point_items": [
                        {"label": "取消关注", "type": "THREE_POINT_FOLLOWING"},
                        {"label": "举报", "type": "THREE_POINT_REPORT"},
                    ]
                },
                "module_stat": {
                    "comment": {"count": v.reply, "forbidden": False},
                    "forward": {"count": v.share, "forbidden": False},
                    "like": {"count": v.like, "forbidden": False, "status": False},
                },
            },
            "type": "DYNAMIC_TYPE_AV",
            "visible": True,
        }

    async def _feed(self, request: web.Request) -> web.Response:
        """web-dynamic feed/all: `offset` (the last row's id) pages on; `update_baseline` counts newer rows."""
        s = self._session(request)
        if s is None:
            return self._not_logged_in()
        q = request.query
        offset, baseline = q.get("offset", ""), q.get("update_baseline", "")
        if offset and not offset.isdigit():
            return self._code(-400, "请求错误")
        rows = self._feed_rows(s.mid, q.get("type") or "all")
        update_num = sum(d.id > int(baseline) for d in rows) if baseline.isdigit() else 0
        if offset:
            rows = [d for d in rows if d.id < int(offset)]
        page = rows[: self.feed_page_size]
        return self._ok(
            {
                "has_more": len(rows) > len(page),
                "items": [self._dynamic_item(d) for d in page],
                "offset": str(page[-1].id) if page else "",
                "update_baseline": str(page[0].id) if page else "",
                "update_num": update_num,
            }
        )

    async def _feed_update(self, request: web.Request) -> web.Response:
        s = self._session(request)
        if s is None:
            return self._not_logged_in()
        baseline = request.query.get("update_baseline", "")
        if not baseline.isdigit():
            return self._code(-400, "请求错误")
        rows = self._feed_rows(s.mid, request.query.get("type") or "all")
        return self._ok({"update_num": sum(d.id > int(baseline) for d in rows)})

    def _home_card(self, v: Video, viewer: User | None, ad: bool = False) -> dict:
        """One home-feed card shaped as recorded (an ad: a video card with its `business_info`)."""
        followed = viewer is not None and v.owner_mid in viewer.follows
        card = {
            "id": v.aid,
            "bvid": "" if HOME_FEED in self.rows_without_bvid else v.bvid,
            "cid": v.cid,
            "goto": "av",
            "uri": f"https://www.bilibili.com/video/{v.bvid}",
            "pic": v.pic,
            "pic_4_3": v.pic,
            "title": v.title,
            "duration": v.duration,
            "pubdate": v.pubdate,
            "owner": {"mid": v.owner_mid, "name": v.owner_name, "face": v.owner_face},
            "stat": {"view": v.view, "like": v.like, "danmaku": v.danmaku, "vt": 0},
            "av_feature": None,
            "is_followed": int(followed),
            "rcmd_reason": {"content": "已关注", "reason_type": 1} if followed else {"reason_type": 0},
            "show_info": 1,
            "track_id": "web_pegasus_4.router-web-pegasus.1",
            "pos": 0,
            "room_info": None,
            "ogv_info": None,
            "business_info": None,
            "is_stock": 0,
            "enable_vt": 0,
            "vt_display": "",
            "dislike_switch": 1,
            "dislike_switch_pc": 0,
        }
        if ad:
            card["is_stock"] = 1
            card["business_info"] = {
                "id": 0,
                "contract_id": "",
                "res_id": v.aid,
                "asg_id": 0,
                "pos_num": 0,
                "name": "",
                "pic": "",
                "litpic": "",
                "url": "",
                "style": 0,
                "agency": "",
                "label": "",
                "intro": "",
                "creative_type": 0,
                "request_id": uuid.uuid4().hex,
                "src_id": 5637,
                "area": 0,
                "is_ad_loc": True,
                "ad_cb": "",
                "title": "",
                "server_type": 0,
                "cm_mark": 0,
                "stime": 0,
                "mid": "",
                "activity_type": 0,
                "epid": 0,
                "sub_title": "",
                "ad_desc": "",
                "adver_name": "",
                "null_frame": False,
                "pic_main_color": "",
                "card_type": 0,
                "business_mark": None,
                "operater": "",
                "jump_target": 0,
                "show_urls": None,
                "click_urls": None,
            }
        return card

    @staticmethod
    def _live_card(room_id: int, owner_mid: int, owner_name: str) -> dict:
        return {
            "id": room_id,
            "bvid": "",
            "cid": 0,
            "goto": "live",
            "uri": f"https://live.bilibili.com/{room_id}",
            "pic": "http://i0.hdslb.com/bfs/live/new_room_cover/f1787ef2ce4a2a031fb4a6a63b62d15493268d71.jpg",
            "pic_4_3": "",
            "title": "【直播】今天也在",
            "duration": 0,
            "pubdate": 0,
            "owner": {"mid": owner_mid, "name": owner_name, "face": ""},
            "stat": None,
            "av_feature": None,
            "is_followed": 0,
            "rcmd_reason": None,
            "show_info": 0,
            "track_id": "",
            "pos": 0,
            "room_info": {
                "room_id": room_id,
                "uid": owner_mid,
                "live_status": 1,
                "show": {"short_id": 0, "title": "【直播】今天也在", "popularity_count": 8539},
            },
            "ogv_info": None,
            "business_info": None,
            "is_stock": 0,
            "enable_vt": 0,
            "vt_display": "",
            "dislike_switch": 1,
            "dislike_switch_pc": 0,
        }

    async def _home_feed(self, request: web.Request) -> web.Response:
        """index/top/feed/rcmd: `ps` cards for page `fresh_idx` of the viewer's home feed. A visitor (no
        or a dead session) gets the generic feed and `mid` 0, with code 0, as bilibili does."""
        s = self._session(request)
        q = request.query
        try:
            ps, fresh_idx = int(q.get("ps") or 12), int(q.get("fresh_idx") or 1)
        except ValueError:
            return self._code(-400, "请求错误")
        if not 1 <= ps <= 30 or fresh_idx < 1:
            return self._code(-400, "请求错误")
        viewer = self.users[s.mid] if s is not None else None
        pool = (viewer.home if viewer is not None else []) or self._default_home(s.mid if s else 0)
        slots = {2: "ad", 5: "live"} if self.home_ads else {}
        n_videos = ps - sum(1 for i in slots if i < ps)
        start = (fresh_idx - 1) * n_videos
        picks = [pool[(start + i) % len(pool)] for i in range(min(n_videos, len(pool)))] if pool else []
        cards, videos = [], iter(picks)
        for i in range(ps):
            kind = slots.get(i)
            if kind == "ad":
                ad = next((b for b in reversed(self.popular_order) if b not in picks), None)
                if ad is not None:
                    cards.append(self._home_card(self.videos[ad], viewer, ad=True))
            elif kind == "live":
                cards.append(self._live_card(1_763_571_437 + fresh_idx, 3_546_712_666_802_274, "伊柒璇儿_鹤熙冠"))
            else:
                bvid = next(videos, None)
                if bvid is not None:
                    cards.append(self._home_card(self.videos[bvid], viewer))
        return self._ok(
            {
                "item": cards,
                "side_bar_column": [],
                "business_card": None,
                "floor_info": None,
                "user_feature": None,
                "preload_expose_pct": 0.5,
                "preload_floor_expose_pct": 0.5,
                "mid": s.mid if s is not None else 0,
            }
        )

    def _default_home(self, mid: int) -> list[str]:
        """A home feed nobody set: the popular list, turned by the viewer's mid (a visitor: as it is)."""
        order = self.popular_order
        if not order:
            return []
        k = mid % len(order)
        return order[k:] + order[:k]

    # -- images ------------------------------------------------------------------------------------
    async def _image(self, request: web.Request) -> web.StreamResponse:
        body = _cover_png()
        if self.cover_size is not None and self.cover_size > len(body):
            body = body + b"\0" * (self.cover_size - len(body))
        ctype = "image/png"
        if not self.cover_chunked:
            return web.Response(body=body, content_type=ctype)
        resp = web.StreamResponse(headers={"Content-Type": ctype})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            for i in range(0, len(body), 16384):
                await resp.write(body[i : i + 16384])
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp
