"""Typed, frozen results of the bilibili client."""

from __future__ import annotations

import html
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from .errors import MalformedResponse

log = logging.getLogger("bilibili.models")
T = TypeVar("T")

# cookie name <-> Credentials field
_COOKIE_FIELDS = {
    "SESSDATA": "sessdata",
    "bili_jct": "bili_jct",
    "DedeUserID": "dedeuserid",
    "buvid3": "buvid3",
    "buvid4": "buvid4",
}
_FIELD_COOKIES = {v: k for k, v in _COOKIE_FIELDS.items()}


@dataclass(frozen=True, repr=False)
class Credentials:
    """One account's cookies, kept verbatim (SESSDATA holds `%2C`; never URL-decode) + refresh_token."""

    sessdata: str
    bili_jct: str
    dedeuserid: str
    refresh_token: str
    buvid3: str = ""
    buvid4: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)  # DedeUserID__ckMd5, sid, b_nut, ...

    def __repr__(self) -> str:  # never show secret values
        return f"Credentials(dedeuserid={self.dedeuserid!r})"

    __str__ = __repr__

    def __hash__(self) -> int:
        return hash((self.sessdata, self.dedeuserid))

    @property
    def mid(self) -> int:
        return int(self.dedeuserid) if self.dedeuserid.isdigit() else 0

    def cookies(self) -> dict[str, str]:
        """The cookies to send (no refresh_token; empty values dropped)."""
        out = {k: v for k, v in self.extra.items() if v}
        for name, attr in _COOKIE_FIELDS.items():
            value = getattr(self, attr)
            if value:
                out[name] = value
        return out

    def to_dict(self) -> dict[str, str]:
        """Cookie names as keys plus `refresh_token`; round-trips through `from_dict`."""
        out = dict(self.extra)
        for name, attr in _COOKIE_FIELDS.items():
            out[name] = getattr(self, attr)
        out["refresh_token"] = self.refresh_token
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, str]) -> Credentials:
        """Accepts cookie names (SESSDATA, bili_jct, DedeUserID...) or field names (sessdata...)."""
        values: dict[str, str] = {}
        extra: dict[str, str] = {}
        for key, value in d.items():
            if key == "extra" and isinstance(value, Mapping):
                extra.update({str(k): str(v) for k, v in value.items()})
            elif key in _COOKIE_FIELDS:
                values[_COOKIE_FIELDS[key]] = str(value)
            elif key in _FIELD_COOKIES or key == "refresh_token":
                values[key] = str(value)
            else:
                extra[key] = str(value)
        missing = [k for k in ("sessdata", "bili_jct", "dedeuserid") if not values.get(k)]
        if missing:
            raise ValueError(f"credentials lack {', '.join(missing)}")
        values.setdefault("refresh_token", "")
        return cls(**values, extra=extra)


def https(url: str) -> str:
    if url.startswith("//"):
        return "https:" + url
    if url.startswith("http://"):
        return "https://" + url[len("http://") :]
    return url


# -- strict field readers: a wrong-typed field is a MalformedResponse, never another exception --------
# Messages name the field and the type seen, never the value (values can carry cookies).
_INT_LIMIT = 2**63 - 1  # what the databases store; a larger number is not a real count or id
_WHOLE = re.compile(r"-?[0-9]{1,19}")  # ASCII digits only: int() also reads "١٢" and "1_0"


def _obj(v: Any, what: str) -> Mapping[str, Any]:
    """A JSON object; a missing one (null) reads as empty."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise MalformedResponse(f"{what} is {type(v).__name__}, not an object")
    return v


def _required_obj(v: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(v, dict):
        raise MalformedResponse(f"{what} is {type(v).__name__}, not an object")
    return v


def _list(v: Any, what: str) -> list[Any]:
    """A JSON array; a missing one (null) reads as empty."""
    if v is None:
        return []
    if not isinstance(v, list):
        raise MalformedResponse(f"{what} is {type(v).__name__}, not a list")
    return v


def _int(v: Any, what: str = "number") -> int:
    """An integer field; null/"" read as 0, digit strings are read, JSON floats truncated.

    Text that is not a whole number ("1.5", "abc") is a wrong-typed field, as are objects and lists.
    """
    if v is None or v == "":
        return 0
    if isinstance(v, bool | int):
        n = int(v)
    elif isinstance(v, float):
        if not math.isfinite(v):
            raise MalformedResponse(f"{what} is not a finite number")
        n = int(v)
    elif isinstance(v, str) and _WHOLE.fullmatch(v):
        n = int(v)
    else:
        raise MalformedResponse(f"{what} is {type(v).__name__}, not a whole number")
    if abs(n) > _INT_LIMIT:
        raise MalformedResponse(f"{what} is out of range")
    return n


# -- what the database columns hold (storage/models.py; tests/test_bilibili_columns.py keeps them equal) --
# Values outside these fail on PostgreSQL (SQLite stores anything), so they are fixed here, at the parser.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  # Integer columns: durations, partition ids, progress, coins
BVID_MAX_LEN = 16  # videos.bvid, behaviours.bvid ...: VARCHAR(16)
OWNER_NAME_MAX_LEN = 128  # videos.owner_name
TNAME_MAX_LEN = 64  # videos.tname, videos.tname_v2
RCMD_REASON_MAX_LEN = 200  # videos.rcmd_reason (TEXT; a weekly blurb is a sentence or two)
STAFF_MAX = 32  # co-creators kept per video (a joint upload names a handful)
PARTICIPLE_MAX = 32  # title segments kept per video
PARTICIPLE_MAX_LEN = 32  # characters per segment
UNAME_MAX_LEN = 128  # users.bili_uname
FAV_FOLDER_ID_MAX = 10**15 - 1  # sync_cursors.source "favorite:<id>" is VARCHAR(24)
_COUNT_DIGITS = re.compile(r"[0-9]{20,}")  # a count too big for 64 bits still reads (then is clamped)


def _small(v: Any, what: str) -> int:
    """A number stored in an Integer (32-bit) column, clamped into its range."""
    return min(max(_int(v, what), INT32_MIN), INT32_MAX)


def _count(v: Any, what: str) -> int:
    """A count (views, likes, ...) in a BIGINT column: a larger one is clamped, not refused (it only
    ranks; the row's other fields are good)."""
    if isinstance(v, str) and _COUNT_DIGITS.fullmatch(v):
        return _INT_LIMIT
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > _INT_LIMIT:
        return _INT_LIMIT if v > 0 else -_INT_LIMIT
    if isinstance(v, float) and math.isfinite(v) and abs(v) > _INT_LIMIT:
        return _INT_LIMIT if v > 0 else -_INT_LIMIT
    return _int(v, what)


def _short(v: Any, what: str, max_len: int) -> str:
    """A text field stored in a VARCHAR(max_len) column, cut to fit."""
    return _str(v, what)[:max_len]


# -- lenient readers for the optional fields (paywall, partitions v2, honours, staff ...): a field of an
# odd type reads as "not said" (None) instead of spoiling the row its required fields made good.
def _maybe(read: Callable[[Any], T], v: Any) -> T | None:
    if v is None:
        return None
    try:
        return read(v)
    except MalformedResponse:
        return None


def _opt_small(v: Any) -> int | None:
    return _maybe(lambda x: _small(x, "field"), v)


def _opt_flag(v: Any) -> bool | None:
    """0/1, true/false or their digit strings ("1"); anything else is not said."""
    return _maybe(lambda x: _small(x, "flag") != 0, v)


def _opt_text(v: Any, max_len: int) -> str | None:
    return _maybe(lambda x: _short(x, "text", max_len), v) if not isinstance(v, bool) else None


# -- video ids: bilibili's public av <-> BV conversion (the 2024 scheme, 51-bit avids) -----------------
_BV_ALPHABET = "FcwAPNKTMug3GV5Lj7EJnHpWsx4tb8haYeviqBz6rkCy12mUSDQX9RdoZf"
_BV_XOR = 23442827791579
_BV_MASK = 2251799813685247
MAX_AID = 1 << 51
_BV_SHAPE = re.compile(f"BV1[{_BV_ALPHABET}]{{9}}")


def _bv_swap(chars: list[str]) -> list[str]:
    chars[3], chars[9] = chars[9], chars[3]
    chars[4], chars[7] = chars[7], chars[4]
    return chars


def av_to_bv(aid: int) -> str:
    """The BV id of av `aid` (0 < aid < 2**51), e.g. 170001 -> BV17x411w7KC."""
    if not 0 < aid < MAX_AID:
        raise ValueError("aid out of range")
    n = (aid | MAX_AID) ^ _BV_XOR
    chars = ["B", "V", "1"] + ["1"] * 9
    for i in range(11, 2, -1):
        n, r = divmod(n, 58)
        chars[i] = _BV_ALPHABET[r]
    return "".join(_bv_swap(chars))


def bv_to_av(bvid: str) -> int:
    """The av id of a BV id (inverse of `av_to_bv`); ValueError when it is not BV-shaped."""
    if not is_bvid(bvid):
        raise ValueError("not a BV id")
    n = 0
    for c in _bv_swap(list(bvid))[3:]:
        n = n * 58 + _BV_ALPHABET.index(c)
    return (n & _BV_MASK) ^ _BV_XOR


def is_bvid(text: str) -> bool:
    """BV1 + nine base-58 digits: what every bilibili video id looks like (and fits its column)."""
    return bool(_BV_SHAPE.fullmatch(text))


def _with_ids(video: VideoInfo, what: str) -> VideoInfo | None:
    """A list row's video with both ids, or None (skipped) when it names no video.

    Rows recorded from the real API carry an aid and an empty bvid (archive/related): the BV id is
    derived from the aid. A bvid that is not BV-shaped (longer than its column, odd characters)
    is refused with a warning: storing it would fail the whole sync on PostgreSQL.
    """
    if not video.bvid:
        if not 0 < video.aid < MAX_AID:
            return None  # no id at all (deleted, an ad): skipped quietly, as before
        return replace(video, bvid=av_to_bv(video.aid))
    if not is_bvid(video.bvid):
        log.warning("skipping a %s row whose bvid is not a BV id (%d characters)", what, len(video.bvid))
        return None
    if video.aid <= 0:
        return replace(video, aid=bv_to_av(video.bvid))
    return video


def _clean(text: str) -> str:
    """Storable text: lone surrogates (unencodable) become '?', NULs go (Postgres refuses them)."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def _str(v: Any, what: str = "text") -> str:
    """A text field; null reads as "", numbers as their digits."""
    if v is None:
        return ""
    if isinstance(v, str):
        return _clean(v)
    if isinstance(v, float) or (isinstance(v, int) and not isinstance(v, bool) and abs(v) <= _INT_LIMIT):
        return str(v)
    raise MalformedResponse(f"{what} is {type(v).__name__}, not text")


def _flag(v: Any, what: str = "flag") -> bool:
    if v is None or isinstance(v, bool | int):
        return bool(v)
    raise MalformedResponse(f"{what} is {type(v).__name__}, not a boolean")


def _items(rows: Any, what: str, parse: Callable[[Any], T | None]) -> list[T]:
    """Parse each row of a list; a malformed row is logged and skipped, the good ones are kept."""
    out: list[T] = []
    for index, row in enumerate(_list(rows, what)):
        try:
            item = parse(row)
        except MalformedResponse as exc:
            log.info("skipping malformed %s item %d: %s", what, index, exc)
            continue
        if item is not None:
            out.append(item)
    return out


_PAY_RIGHTS = ("pay", "ugc_pay", "arc_pay")
_RANK_PLACE = re.compile(r"第([0-9]{1,9})名")  # honor 3: "全站排行榜最高第55名"


def _paid(rights: Any) -> bool | None:
    """rights.pay (a paid PGC title), ugc_pay (a paid upload), arc_pay (a paid archive): any set means
    the video must be bought; None when the answer carries no rights."""
    if not isinstance(rights, dict):
        return None
    flags = [_opt_flag(rights.get(k)) for k in _PAY_RIGHTS]
    if any(flags):
        return True
    return None if all(f is None for f in flags) else False  # unreadable flags say nothing


def _vertical(dimension: Any) -> bool | None:
    """Portrait (taller than wide once `rotate` swaps the sides): bilibili's short-form videos."""
    if not isinstance(dimension, dict):
        return None
    width, height = _opt_small(dimension.get("width")) or 0, _opt_small(dimension.get("height")) or 0
    if width <= 0 or height <= 0:
        return None  # old videos carry no resolution
    if _opt_flag(dimension.get("rotate")):
        width, height = height, width
    return height > width


def _honors(reply: Any) -> tuple[int, int] | None:
    """honor_reply.honor[] -> (bit t-1 set for each honour type t in 1..16, the best ranking place)."""
    if not isinstance(reply, dict):
        return None
    bits, place = 0, 0
    for honor in reply.get("honor") if isinstance(reply.get("honor"), list) else []:
        if not isinstance(honor, dict):
            continue
        kind = _opt_small(honor.get("type")) or 0
        if 1 <= kind <= 16:
            bits |= 1 << (kind - 1)
        desc = honor.get("desc")
        if kind == 3 and isinstance(desc, str) and (m := _RANK_PLACE.search(desc)):
            n = int(m.group(1))
            place = n if place == 0 else min(place, n)
    return bits, place


def _staff(rows: Any, owner_mid: int) -> tuple[int, ...] | None:
    """The co-creators' mids (a joint upload's `staff`, the uploader among them, left out here)."""
    if not isinstance(rows, list):
        return None
    mids = (_maybe(lambda v: _int(v, "staff.mid"), r.get("mid")) for r in rows if isinstance(r, dict))
    return tuple(dict.fromkeys(m for m in mids if m and 0 < m != owner_mid))[:STAFF_MAX]


def _rcmd_reason(v: Any) -> str | None:
    """popular: {content, corner_mark}; a weekly issue: the blurb itself; "" or anything else: not said."""
    if isinstance(v, dict):
        v = v.get("content")
    return _opt_text(v, RCMD_REASON_MAX_LEN) or None if isinstance(v, str) else None


def _participle(v: Any) -> tuple[str, ...] | None:
    """view/detail's `participle`: the title's words as bilibili segments them (lower-cased)."""
    if not isinstance(v, list):
        return None
    words = (_clean(w).strip()[:PARTICIPLE_MAX_LEN] for w in v if isinstance(w, str))
    return tuple(dict.fromkeys(w for w in words if w))[:PARTICIPLE_MAX]


@dataclass(frozen=True)
class VideoInfo:
    """One archive object, normalised (cover https; tags None when unknown; 0/"" for missing fields)."""

    bvid: str
    aid: int
    title: str
    cover: str
    owner_mid: int
    owner_name: str
    duration: int
    tid: int
    tname: str
    pubdate: int
    view: int
    danmaku: int
    reply: int
    favorite: int
    coin: int
    share: int
    like: int
    tags: tuple[str, ...] | None = None
    # What only some answers carry. None: this answer does not say (storage keeps what it knew).
    tid_v2: int | None = None  # the finer 2025 partition (view: tid_v2, related rows: tidv2)
    tname_v2: str | None = None
    copyright: int | None = None  # 1 original, 2 repost
    vertical: bool | None = None  # portrait first page (`dimension`): short-form
    paid: bool | None = None  # rights.pay / ugc_pay / arc_pay: bought, not free to play
    upower_exclusive: bool | None = None  # 充电专属: the uploader's paying supporters only (view only)
    honors: int | None = None  # honor_reply types as bits: 1 入站必刷, 2 每周必看, 4 ranking peak, 8 热门
    top_rank: int | None = None  # the best site-wide ranking place reached (honor 3), 0 none
    staff: tuple[int, ...] | None = None  # co-creators' mids (the uploader left out)
    participle: tuple[str, ...] | None = None  # bilibili's own segmentation of the title (view/detail)
    rcmd_reason: str | None = None  # why a list shows it: popular's badge, a weekly issue's blurb

    @property
    def url(self) -> str:
        return f"https://www.bilibili.com/video/{self.bvid}"

    @classmethod
    def from_archive(cls, d: Any, tags: tuple[str, ...] | None = None) -> VideoInfo:
        """From a view / popular / ranking / related / coin / like archive object."""
        d = _required_obj(d, "archive")
        owner = _obj(d.get("owner"), "owner")
        stat = _obj(d.get("stat"), "stat")
        owner_mid = _int(owner.get("mid"), "owner.mid")
        honors = _honors(d.get("honor_reply"))
        return cls(
            bvid=_str(d.get("bvid"), "bvid"),
            aid=_int(d.get("aid"), "aid"),
            title=_str(d.get("title"), "title"),
            cover=https(_str(d.get("pic"), "pic")),
            owner_mid=owner_mid,
            owner_name=_short(owner.get("name"), "owner.name", OWNER_NAME_MAX_LEN),
            duration=_small(d.get("duration"), "duration"),
            tid=_small(d.get("tid"), "tid"),
            tname=_short(d.get("tname"), "tname", TNAME_MAX_LEN),
            pubdate=_int(d.get("pubdate"), "pubdate"),
            view=_count(stat.get("view"), "stat.view"),
            danmaku=_count(stat.get("danmaku"), "stat.danmaku"),
            reply=_count(stat.get("reply"), "stat.reply"),
            favorite=_count(stat.get("favorite", stat.get("fav")), "stat.favorite"),
            coin=_count(stat.get("coin"), "stat.coin"),
            share=_count(stat.get("share"), "stat.share"),
            like=_count(stat.get("like"), "stat.like"),
            tags=tags,
            tid_v2=_opt_small(d.get("tid_v2", d.get("tidv2"))) or None,
            tname_v2=_opt_text(d.get("tname_v2", d.get("tnamev2")), TNAME_MAX_LEN) or None,
            copyright=_opt_small(d.get("copyright")),
            vertical=_vertical(d.get("dimension")),
            paid=_paid(d.get("rights")),
            upower_exclusive=_opt_flag(d.get("is_upower_exclusive")),
            honors=honors[0] if honors else None,
            top_rank=honors[1] if honors else None,
            staff=_staff(d.get("staff"), owner_mid),
            rcmd_reason=_rcmd_reason(d.get("rcmd_reason")),
        )

    @classmethod
    def from_history_row(cls, row: Any) -> VideoInfo:
        """Partial: history rows carry no stats, tid or pubdate (tname comes from `tag_name`)."""
        row = _required_obj(row, "history row")
        h = _obj(row.get("history"), "history")
        return cls(
            bvid=_str(h.get("bvid") or row.get("bvid"), "bvid"),
            aid=_int(h.get("oid") or row.get("kid"), "oid"),
            title=_str(row.get("title"), "title"),
            cover=https(_str(row.get("cover"), "cover")),
            owner_mid=_int(row.get("author_mid"), "author_mid"),
            owner_name=_short(row.get("author_name"), "author_name", OWNER_NAME_MAX_LEN),
            duration=_small(row.get("duration"), "duration"),
            tid=0,
            tname=_short(row.get("tag_name"), "tag_name", TNAME_MAX_LEN),
            pubdate=0,
            view=0,
            danmaku=0,
            reply=0,
            favorite=0,
            coin=0,
            share=0,
            like=0,
        )

    @classmethod
    def from_fav_media(cls, m: Any) -> VideoInfo:
        """Partial: fav medias carry cnt_info{play,collect,danmaku}, no tid."""
        m = _required_obj(m, "fav media")
        upper = _obj(m.get("upper"), "upper")
        cnt = _obj(m.get("cnt_info"), "cnt_info")
        return cls(
            bvid=_str(m.get("bvid") or m.get("bv_id"), "bvid"),
            aid=_int(m.get("id"), "id"),
            title=_str(m.get("title"), "title"),
            cover=https(_str(m.get("cover"), "cover")),
            owner_mid=_int(upper.get("mid"), "upper.mid"),
            owner_name=_short(upper.get("name"), "upper.name", OWNER_NAME_MAX_LEN),
            duration=_small(m.get("duration"), "duration"),
            tid=0,
            tname="",
            pubdate=_int(m.get("pubtime"), "pubtime"),
            view=_count(cnt.get("play"), "cnt_info.play"),
            danmaku=_count(cnt.get("danmaku"), "cnt_info.danmaku"),
            reply=0,
            favorite=_count(cnt.get("collect"), "cnt_info.collect"),
            coin=0,
            share=0,
            like=0,
        )


@dataclass(frozen=True)
class SearchHit:
    """One video of a search answer (wbi/search/type): title without highlight markup, cover https,
    duration in seconds (0 when unreadable)."""

    bvid: str
    aid: int
    title: str
    owner_mid: int
    owner_name: str
    duration: int
    view: int
    pubdate: int
    cover: str
    paid: bool = False  # is_pay: bought, not free to play
    upower_exclusive: bool = False  # is_charging_arc: the uploader's paying supporters only

    @property
    def url(self) -> str:
        return f"https://www.bilibili.com/video/{self.bvid}"


@dataclass(frozen=True)
class SearchPage:
    """One page (20 hits) of a video search; `num_pages`/`num_results` as bilibili counts them
    (at most 50 pages / 1000 results)."""

    hits: list[SearchHit]
    page: int
    num_pages: int
    num_results: int


@dataclass(frozen=True)
class HistoryItem:
    video: VideoInfo  # partial, from the history row
    progress: int  # seconds; -1 = watched to the end
    duration: int
    view_at: int
    is_fav: bool = False  # the row says the user has it in a favourite folder


@dataclass(frozen=True)
class HistoryCursor:
    max: int
    view_at: int
    business: str


@dataclass(frozen=True)
class HistoryPage:
    items: list[HistoryItem]
    next_cursor: HistoryCursor | None  # None when the list is empty (= end)


@dataclass(frozen=True)
class FavFolder:
    id: int
    title: str
    media_count: int


@dataclass(frozen=True)
class FavItem:
    video: VideoInfo
    fav_time: int


@dataclass(frozen=True)
class VideoDetail:
    """wbi/view/detail: the video with its tags, and its related videos, from one call."""

    video: VideoInfo
    state: int  # < 0: unavailable
    related: list[VideoInfo]


@dataclass(frozen=True)
class CoinItem:
    video: VideoInfo
    coins: int
    time: int


@dataclass(frozen=True)
class Following:
    """One uploader the user follows (relation/followings)."""

    mid: int
    uname: str
    mtime: int  # when the user followed them (unix s; refreshed when the follow turns mutual)
    special: bool  # a special follow (特别关注)


@dataclass(frozen=True)
class FollowingsPage:
    items: list[Following]  # newest follow first
    total: int  # how many the user follows (of another user's list only the first 100 are readable)
    has_more: bool  # ask for the next pn


@dataclass(frozen=True)
class FeedItem:
    """One new upload in the followed creators' video feed."""

    dynamic_id: str  # the feed's own id (digits; newer is larger): stop paging at one already seen
    video: VideoInfo  # partial: no tid/tname; view and danmaku read from display text ("1.4万")


@dataclass(frozen=True)
class FeedPage:
    items: list[FeedItem]  # newest first
    offset: str  # give it to the next `video_feed` call; "" when there is nothing more
    has_more: bool
    update_baseline: str  # the newest row's id: `feed_update(baseline)` counts what came after it
    update_num: int  # rows newer than the `update_baseline` asked with (0 when none was given)


@dataclass(frozen=True)
class Account:
    mid: int
    uname: str


@dataclass(frozen=True)
class QrCode:
    url: str
    key: str


@dataclass(frozen=True)
class LoginEvent:
    state: Literal["waiting", "scanned", "expired", "success"]
    credentials: Credentials | None = None
    account: Account | None = None


@dataclass(frozen=True)
class PollReply:
    """One QR poll answer: `code` is the login state (86101 waiting ... 0 success)."""

    code: int
    url: str
    refresh_token: str


# -- parsers: one per endpoint; each takes the envelope's `data` and raises only MalformedResponse --------
def _archive_or_skip(d: Any, what: str = "archives") -> VideoInfo | None:
    """Archive rows naming no video (deleted, ads) are skipped quietly, a bad bvid with a warning;
    a row with only its aid gets its BV id; wrong-typed ones raise."""
    return _with_ids(VideoInfo.from_archive(d), what)


def parse_archives(items: Any, what: str = "archives") -> list[VideoInfo]:
    """popular / weekly / ranking / related / like lists."""
    return _items(items, what, lambda d: _archive_or_skip(d, what))


def parse_device(data: Any) -> dict[str, str]:
    """spi: {b_3, b_4} -> buvid3 / buvid4 cookies."""
    data = _required_obj(data, "spi data")
    out = {}
    for cookie, key in (("buvid3", "b_3"), ("buvid4", "b_4")):
        value = _str(data.get(key), key)
        if value:
            out[cookie] = value
    return out


_WBI_KEY = re.compile(r"[0-9A-Za-z]{8,128}")


def parse_wbi_keys(data: Any) -> tuple[str, str] | None:
    """nav's wbi_img -> (img_key, sub_key); None when absent or unusable (never raises)."""
    from .wbi import key_from_url

    img = data.get("wbi_img") if isinstance(data, dict) else None
    if not isinstance(img, dict):
        return None
    urls = img.get("img_url"), img.get("sub_url")
    if not all(isinstance(u, str) for u in urls):
        return None
    keys = key_from_url(urls[0]), key_from_url(urls[1])
    if not all(_WBI_KEY.fullmatch(k) for k in keys):
        return None
    return keys


def parse_nav(data: Any) -> Account | None:
    """Who am I; None when not logged in."""
    data = _required_obj(data, "nav data")
    if not _flag(data.get("isLogin"), "isLogin"):
        return None
    return Account(mid=_int(data.get("mid"), "mid"), uname=_short(data.get("uname"), "uname", UNAME_MAX_LEN))


def parse_qr(data: Any) -> QrCode:
    data = _required_obj(data, "qrcode data")
    url, key = _str(data.get("url"), "url"), _str(data.get("qrcode_key"), "qrcode_key")
    if not url or not key:
        raise MalformedResponse("no url/qrcode_key")
    return QrCode(url=url, key=key)


def parse_poll(data: Any) -> PollReply:
    data = _required_obj(data, "poll data")
    if data.get("code") is None:
        raise MalformedResponse("poll data has no code")
    return PollReply(
        code=_int(data.get("code"), "code"),
        url=_str(data.get("url"), "url"),
        refresh_token=_str(data.get("refresh_token"), "refresh_token"),
    )


def parse_cookie_info(data: Any) -> bool:
    """cookie/info -> does the cookie need a refresh."""
    return _flag(_required_obj(data, "cookie info").get("refresh"), "refresh")


def parse_refresh_token(data: Any) -> str:
    """cookie/refresh -> the new refresh_token ("" when missing)."""
    return _str(_required_obj(data, "refresh data").get("refresh_token"), "refresh_token")


def _history_item(row: Any) -> HistoryItem | None:
    row = _required_obj(row, "history row")
    business = _str(_obj(row.get("history"), "history").get("business"), "business") or "archive"
    video = VideoInfo.from_history_row(row)
    item = HistoryItem(
        video=video,
        progress=_small(row.get("progress"), "progress"),
        duration=_small(row.get("duration"), "duration"),
        view_at=_int(row.get("view_at"), "view_at"),
        is_fav=bool(_opt_flag(row.get("is_fav"))),
    )
    if business != "archive":
        return None
    video = _with_ids(video, "history")
    return replace(item, video=video) if video is not None else None


def parse_history_page(data: Any) -> HistoryPage:
    data = _required_obj(data, "history data")
    rows = _list(data.get("list"), "history list")
    items = _items(rows, "history", _history_item)
    c = _obj(data.get("cursor"), "cursor")
    next_cursor = None
    if rows and c:
        next_cursor = HistoryCursor(
            max=_int(c.get("max"), "cursor.max"),
            view_at=_int(c.get("view_at"), "cursor.view_at"),
            business=_str(c.get("business"), "cursor.business"),
        )
    return HistoryPage(items=items, next_cursor=next_cursor)


def _fav_folder(f: Any) -> FavFolder | None:
    f = _required_obj(f, "folder")
    folder_id = _int(f.get("id"), "id")
    if not folder_id:
        return None
    if not 0 < folder_id <= FAV_FOLDER_ID_MAX:
        log.warning("skipping a favourite folder whose id does not fit its cursor (%d digits)", len(str(folder_id)))
        return None
    return FavFolder(
        id=folder_id, title=_str(f.get("title"), "title"), media_count=_int(f.get("media_count"), "media_count")
    )


def parse_fav_folders(data: Any) -> list[FavFolder]:
    """null data (hidden folders) reads as no folders."""
    return _items(_obj(data, "folders data").get("list"), "fav folders", _fav_folder)


def _fav_item(m: Any) -> FavItem | None:
    video = VideoInfo.from_fav_media(m)
    item = FavItem(video=video, fav_time=_int(m.get("fav_time"), "fav_time"))
    if _int(m.get("attr"), "attr") != 0 or _int(m.get("type", 2), "type") != 2:
        return None  # deleted by the uploader, or not a video
    video = _with_ids(video, "fav items")
    return replace(item, video=video) if video is not None else None


def parse_fav_items(data: Any) -> tuple[list[FavItem], bool]:
    data = _required_obj(data, "fav items data")
    return _items(data.get("medias"), "fav items", _fav_item), _flag(data.get("has_more"), "has_more")


def _coin_item(it: Any) -> CoinItem | None:
    video = _archive_or_skip(it, "coins")
    if video is None:
        return None
    return CoinItem(video=video, coins=_small(it.get("coins"), "coins"), time=_int(it.get("time"), "time"))


def parse_coins(data: Any) -> list[CoinItem]:
    return _items(data, "coins", _coin_item)


def parse_likes(data: Any) -> list[VideoInfo]:
    """A list, or {list: [...]}."""
    if isinstance(data, dict):
        data = data.get("list")
    return parse_archives(data, "likes")


def parse_popular(data: Any) -> tuple[list[VideoInfo], bool]:
    data = _required_obj(data, "popular data")
    return parse_archives(data.get("list"), "popular"), _flag(data.get("no_more"), "no_more")


def parse_archive_page(data: Any, what: str) -> list[VideoInfo]:
    """weekly issue / ranking: {list: [...]}."""
    return parse_archives(_required_obj(data, f"{what} data").get("list"), what)


def _weekly_number(item: Any) -> int | None:
    item = _required_obj(item, "weekly issue")
    return _int(item["number"], "number") if "number" in item else None


def parse_weekly_numbers(data: Any) -> list[int]:
    return _items(_required_obj(data, "weekly data").get("list"), "weekly numbers", _weekly_number)


def parse_view(data: Any) -> tuple[VideoInfo, int]:
    """view -> (the video, its state: < 0 means unavailable)."""
    data = _required_obj(data, "view data")
    video = _with_ids(VideoInfo.from_archive(data), "view")
    if video is None:
        raise MalformedResponse("view names no valid video id")
    return video, _int(data.get("state"), "state")


_NOT_TAGS = ("bgm", "topic")


def _tag(t: Any) -> str | None:
    t = _required_obj(t, "tag")
    name = _str(t.get("tag_name"), "tag_name")
    return name if name and _str(t.get("tag_type"), "tag_type") not in _NOT_TAGS else None


def parse_tags(data: Any) -> tuple[str, ...]:
    return tuple(_items(data, "tags", _tag))


def parse_view_detail(data: Any) -> VideoDetail:
    """wbi/view/detail: `View` as in view, `Tags` as in view/detail/tag, `Related` as in archive/related."""
    data = _required_obj(data, "view detail data")
    video, state = parse_view(data.get("View"))
    tags = parse_tags(data.get("Tags"))
    related = parse_archives(data.get("Related"), "related") if data.get("Related") is not None else []
    return VideoDetail(
        video=replace(video, tags=tags, participle=_participle(data.get("participle"))), state=state, related=related
    )


# -- search ---------------------------------------------------------------------------------------
_TAG = re.compile(r"<[^<>]*>")
_CLOCK = re.compile(r"[0-9]{1,9}(?::[0-9]{1,9}){0,2}")  # "4:18", "58:6", "1:02:03" (ASCII digits only)


def strip_highlight(text: str) -> str:
    """A search title as shown on the site: `<em class="keyword">…</em>` (any tag) removed, then
    the HTML entities (`&amp;`, `&lt;`) read, so an escaped `<` in a title stays text."""
    return _clean(html.unescape(_TAG.sub("", text)))


def clock_seconds(v: Any, what: str = "duration") -> int:
    """A display duration ("m:ss", "m:s", "h:mm:ss") in seconds; a plain number is seconds already.
    Text that is no clock reads as 0 (unknown), a wrong type raises; at most INT32_MAX, never < 0."""
    if isinstance(v, str):
        text = v.strip()
        if not _CLOCK.fullmatch(text):
            return 0
        seconds = 0
        for part in text.split(":"):
            seconds = seconds * 60 + int(part)
        return min(seconds, INT32_MAX)
    return max(_small(v, what), 0)


def _search_hit(row: Any) -> SearchHit | None:
    row = _required_obj(row, "search result")
    if _str(row.get("type", "video"), "type") != "video":
        return None  # another kind of result (a course, a live room) mixed into the list
    bvid, aid = _str(row.get("bvid"), "bvid"), _int(row.get("aid") or row.get("id"), "aid")
    if not bvid:
        if not 0 < aid < MAX_AID:
            return None
        bvid = av_to_bv(aid)
    elif not is_bvid(bvid):
        log.warning("skipping a search row whose bvid is not a BV id (%d characters)", len(bvid))
        return None
    elif aid <= 0:
        aid = bv_to_av(bvid)
    return SearchHit(
        bvid=bvid,
        aid=aid,
        title=strip_highlight(_str(row.get("title"), "title")),
        owner_mid=_int(row.get("mid"), "mid"),
        owner_name=_short(row.get("author"), "author", OWNER_NAME_MAX_LEN),
        duration=clock_seconds(row.get("duration")),
        view=_count(row.get("play"), "play"),
        pubdate=_int(row.get("pubdate"), "pubdate"),
        cover=https(_str(row.get("pic"), "pic")),
        paid=bool(_opt_flag(row.get("is_pay"))),
        upower_exclusive=bool(_opt_flag(row.get("is_charging_arc"))),
    )


def parse_search_page(data: Any) -> SearchPage:
    """wbi/search/type?search_type=video: {page, numPages, numResults, result: [...]}; no `result`
    (or an empty one) is an empty page."""
    data = _required_obj(data, "search data")
    return SearchPage(
        hits=_items(data.get("result"), "search results", _search_hit),
        page=_int(data.get("page"), "page"),
        num_pages=_small(data.get("numPages"), "numPages"),
        num_results=_small(data.get("numResults"), "numResults"),
    )


# -- per-user candidate sources: followings, the followed creators' video feed, the home feed ----------
def _following(row: Any) -> Following | None:
    row = _required_obj(row, "following")
    mid = _int(row.get("mid"), "mid")
    following = Following(
        mid=mid,
        uname=_short(row.get("uname"), "uname", OWNER_NAME_MAX_LEN),
        mtime=_int(row.get("mtime"), "mtime"),
        special=_int(row.get("special"), "special") == 1,
    )
    return following if mid > 0 else None


def parse_followings(data: Any, pn: int = 1, ps: int = 50) -> FollowingsPage:
    """relation/followings page `pn` of `ps`: more while the pages so far fall short of `total` (a
    page bilibili trimmed does not end the list), or, without a total, while pages come full.

    Another user's list past its first 100 answers an empty page (code 0): an empty page ends it.
    """
    data = _required_obj(data, "followings data")
    rows = _list(data.get("list"), "followings list")
    total = _int(data.get("total"), "total")
    more = bool(rows) and (pn * ps < total if total > 0 else len(rows) >= ps)
    return FollowingsPage(items=_items(rows, "followings", _following), total=max(total, 0), has_more=more)


_FEED_ID = re.compile(r"[0-9]{1,32}")
_DISPLAY_COUNT = re.compile(r"([0-9]{1,15})(?:\.([0-9]{1,4}))?(万|亿)?")
_DISPLAY_UNITS = {None: 1, "万": 10**4, "亿": 10**8}


def _feed_id(v: Any, what: str) -> str:
    """A dynamic id / offset / baseline: digits (sent as text or a number); anything else reads as ""."""
    if isinstance(v, int) and not isinstance(v, bool):
        v = str(v) if 0 <= v <= _INT_LIMIT else ""  # str() of a 5000-digit number raises
    text = _str(v, what)
    return text if _FEED_ID.fullmatch(text) else ""


def _display_count(v: Any, what: str) -> int:
    """A count shown as text: "3364", "1.4万" (x 10^4), "2.1亿" (x 10^8); other text ("-") is unknown (0)."""
    if not isinstance(v, str) or v.isascii() and v.isdigit():
        return _count(v, what)
    m = _DISPLAY_COUNT.fullmatch(v.strip())
    if m is None:
        return 0
    whole, fraction, unit = m.groups()
    scale = _DISPLAY_UNITS[unit]
    fraction = fraction or ""
    return min(int(whole) * scale + int(fraction or 0) * scale // 10 ** len(fraction), _INT_LIMIT)


def _feed_item(row: Any) -> FeedItem | None:
    """A feed row: only a video upload (DYNAMIC_TYPE_AV carrying MAJOR_TYPE_ARCHIVE) is kept; reposts,
    image posts, articles and live notices are skipped quietly."""
    row = _required_obj(row, "feed item")
    if _str(row.get("type"), "type") != "DYNAMIC_TYPE_AV":
        return None
    modules = _obj(row.get("modules"), "modules")
    author = _obj(modules.get("module_author"), "module_author")
    major = _obj(_obj(modules.get("module_dynamic"), "module_dynamic").get("major"), "major")
    if _str(major.get("type"), "major.type") != "MAJOR_TYPE_ARCHIVE":
        return None
    archive = _required_obj(major.get("archive"), "archive")
    stat = _obj(archive.get("stat"), "archive.stat")
    video = VideoInfo(
        bvid=_str(archive.get("bvid"), "bvid"),
        aid=_int(archive.get("aid"), "aid"),  # a string in the real answer
        title=_str(archive.get("title"), "title"),
        cover=https(_str(archive.get("cover"), "cover")),
        owner_mid=_int(author.get("mid"), "module_author.mid"),
        owner_name=_short(author.get("name"), "module_author.name", OWNER_NAME_MAX_LEN),
        duration=clock_seconds(archive.get("duration_text"), "duration_text"),
        tid=0,
        tname="",
        pubdate=_int(author.get("pub_ts"), "pub_ts"),
        view=_display_count(stat.get("play"), "stat.play"),
        danmaku=_display_count(stat.get("danmaku"), "stat.danmaku"),
        reply=0,
        favorite=0,
        coin=0,
        share=0,
        like=0,
    )
    item = FeedItem(dynamic_id=_feed_id(row.get("id_str"), "id_str"), video=video)
    video = _with_ids(video, "video feed")
    return replace(item, video=video) if video is not None else None


def parse_video_feed(data: Any) -> FeedPage:
    """web-dynamic feed/all?type=video: the uploads, and where the next page starts.

    An offset that is not an id ends the paging (asking with it again could only loop)."""
    data = _required_obj(data, "feed data")
    items = _items(data.get("items"), "video feed", _feed_item)
    offset = _feed_id(data.get("offset"), "offset")
    return FeedPage(
        items=items,
        offset=offset,
        has_more=_flag(data.get("has_more"), "has_more") and bool(offset),
        update_baseline=_feed_id(data.get("update_baseline"), "update_baseline"),
        update_num=max(_int(data.get("update_num"), "update_num"), 0),
    )


def parse_feed_update(data: Any) -> int:
    """feed/all/update: how many rows came after the baseline."""
    return max(_int(_required_obj(data, "feed update data").get("update_num"), "update_num"), 0)


def _home_item(d: Any) -> VideoInfo | None:
    """A home-feed card: videos only (`goto` "av"); ads (a `business_info`), live rooms, and bangumi skipped."""
    d = _required_obj(d, "home feed item")
    if _str(d.get("goto"), "goto") != "av" or d.get("business_info") is not None:
        return None
    # `id` is the aid; the card's rcmd_reason speaks to this viewer ("已关注"): not the shared catalogue's
    return _with_ids(VideoInfo.from_archive({**d, "aid": d.get("id"), "rcmd_reason": None}), "home feed")


def parse_home_feed(data: Any) -> tuple[list[VideoInfo], int | None]:
    """index/top/feed/rcmd -> (the videos, whom bilibili recommended them to: `data.mid`, 0 when it
    took the caller for a visitor, None when the answer does not say)."""
    data = _required_obj(data, "home feed data")
    viewer = _int(data.get("mid"), "mid") if "mid" in data else None
    return _items(data.get("item"), "home feed", _home_item), viewer
