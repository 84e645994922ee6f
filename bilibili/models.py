"""Typed, frozen results of the bilibili client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

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
        return "https://" + url[len("http://"):]
    return url


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        try:
            return int(float(v))
        except (TypeError, ValueError):
            return 0


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

    @property
    def url(self) -> str:
        return f"https://www.bilibili.com/video/{self.bvid}"

    @classmethod
    def from_archive(cls, d: Mapping[str, Any], tags: tuple[str, ...] | None = None) -> VideoInfo:
        """From a view / popular / ranking / related / coin / like archive object."""
        owner = d.get("owner") or {}
        stat = d.get("stat") or {}
        return cls(
            bvid=str(d.get("bvid") or ""),
            aid=_int(d.get("aid")),
            title=str(d.get("title") or ""),
            cover=https(str(d.get("pic") or "")),
            owner_mid=_int(owner.get("mid")),
            owner_name=str(owner.get("name") or ""),
            duration=_int(d.get("duration")),
            tid=_int(d.get("tid")),
            tname=str(d.get("tname") or ""),
            pubdate=_int(d.get("pubdate")),
            view=_int(stat.get("view")),
            danmaku=_int(stat.get("danmaku")),
            reply=_int(stat.get("reply")),
            favorite=_int(stat.get("favorite", stat.get("fav"))),
            coin=_int(stat.get("coin")),
            share=_int(stat.get("share")),
            like=_int(stat.get("like")),
            tags=tags,
        )

    @classmethod
    def from_history_row(cls, row: Mapping[str, Any]) -> VideoInfo:
        """Partial: history rows carry no stats, tid or pubdate (tname comes from `tag_name`)."""
        h = row.get("history") or {}
        return cls(
            bvid=str(h.get("bvid") or row.get("bvid") or ""),
            aid=_int(h.get("oid") or row.get("kid")),
            title=str(row.get("title") or ""),
            cover=https(str(row.get("cover") or "")),
            owner_mid=_int(row.get("author_mid")),
            owner_name=str(row.get("author_name") or ""),
            duration=_int(row.get("duration")),
            tid=0,
            tname=str(row.get("tag_name") or ""),
            pubdate=0,
            view=0, danmaku=0, reply=0, favorite=0, coin=0, share=0, like=0,
        )  # fmt: skip

    @classmethod
    def from_fav_media(cls, m: Mapping[str, Any]) -> VideoInfo:
        """Partial: fav medias carry cnt_info{play,collect,danmaku}, no tid."""
        upper = m.get("upper") or {}
        cnt = m.get("cnt_info") or {}
        return cls(
            bvid=str(m.get("bvid") or m.get("bv_id") or ""),
            aid=_int(m.get("id")),
            title=str(m.get("title") or ""),
            cover=https(str(m.get("cover") or "")),
            owner_mid=_int(upper.get("mid")),
            owner_name=str(upper.get("name") or ""),
            duration=_int(m.get("duration")),
            tid=0,
            tname="",
            pubdate=_int(m.get("pubtime")),
            view=_int(cnt.get("play")),
            danmaku=_int(cnt.get("danmaku")),
            reply=0,
            favorite=_int(cnt.get("collect")),
            coin=0, share=0, like=0,
        )  # fmt: skip


@dataclass(frozen=True)
class HistoryItem:
    video: VideoInfo  # partial, from the history row
    progress: int  # seconds; -1 = watched to the end
    duration: int
    view_at: int


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
class CoinItem:
    video: VideoInfo
    coins: int
    time: int


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
