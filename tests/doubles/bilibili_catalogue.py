"""Loads the real bilibili data (../shared/data beside the repo) for the bilibili double.

Never copies the data into the repository: files are read in place and parsed once per process.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT.parent / "shared" / "data"
POPULAR_CSV = DATA_DIR / "bilibili_popular_videos.csv"
HISTORY_CSV = DATA_DIR / "bilibili_watch_history.csv"

_XOR = 23442827791579
_MASK = 2251799813685247
_ALPHABET = "FcwAPNKTMug3GV5Lj7EJnHpWsx4tb8haYeviqBz6rkCy12mUSDQX9RdoZf"


def bv2av(bvid: str) -> int:
    """bilibili's public BV -> AV conversion (2024 scheme)."""
    chars = list(bvid)
    chars[3], chars[9] = chars[9], chars[3]
    chars[4], chars[7] = chars[7], chars[4]
    n = 0
    for c in chars[3:]:
        n = n * 58 + _ALPHABET.index(c)
    return (n & _MASK) ^ _XOR


def _num(v: str | None) -> int:
    try:
        return int(float(v)) if v not in (None, "") else 0
    except ValueError:
        return 0


def stable_id(text: str, lo: int = 10_000_000, span: int = 900_000_000) -> int:
    return lo + int(hashlib.md5(text.encode()).hexdigest()[:12], 16) % span


def tag_id(name: str) -> int:
    return 1000 + zlib.crc32(name.encode()) % 30_000_000


@dataclass
class Video:
    aid: int
    bvid: str
    title: str
    pic: str
    tid: int
    tname: str
    pubdate: int
    duration: int
    owner_mid: int
    owner_name: str
    owner_face: str = ""
    desc: str = ""
    videos: int = 1
    state: int = 0
    view: int = 0
    danmaku: int = 0
    reply: int = 0
    favorite: int = 0
    coin: int = 0
    share: int = 0
    like: int = 0
    tags: list[str] = field(default_factory=list)
    in_popular: bool = True
    unavailable_code: int = 0  # 62002/62004/62012/-404: view answers this code

    @property
    def cid(self) -> int:
        return self.aid % 2_000_000_000 + 1

    def stat(self) -> dict:
        return {"aid": self.aid, "view": self.view, "danmaku": self.danmaku, "reply": self.reply,
                "favorite": self.favorite, "coin": self.coin, "share": self.share, "now_rank": 0,
                "his_rank": 0, "like": self.like, "dislike": 0, "vt": 0, "vv": self.view}

    def archive(self) -> dict:
        """The archive object as the list endpoints and view return it (no tags)."""
        return {
            "aid": self.aid, "bvid": self.bvid, "videos": self.videos, "tid": self.tid, "tname": self.tname,
            "copyright": 1, "pic": self.pic, "title": self.title, "pubdate": self.pubdate,
            "ctime": self.pubdate, "desc": self.desc, "state": self.state, "duration": self.duration,
            "rights": {"download": 1, "no_reprint": 1, "is_cooperation": 0, "pay": 0, "ugc_pay": 0},
            "owner": {"mid": self.owner_mid, "name": self.owner_name, "face": self.owner_face},
            "stat": self.stat(), "dynamic": "", "cid": self.cid,
            "dimension": {"width": 1920, "height": 1080, "rotate": 0},
            "short_link_v2": f"https://b23.tv/{self.bvid}",
        }


@lru_cache(maxsize=1)
def _popular_rows() -> tuple[dict, ...]:
    with POPULAR_CSV.open(encoding="utf-8", newline="") as f:
        return tuple(csv.DictReader(f))


@lru_cache(maxsize=1)
def _history_rows() -> tuple[dict, ...]:
    with HISTORY_CSV.open(encoding="utf-8", newline="") as f:
        return tuple(csv.DictReader(f))


def load_popular() -> list[Video]:
    """The 708 real popular videos, in file order (fresh objects every call)."""
    out = []
    for r in _popular_rows():
        out.append(Video(
            aid=_num(r["aid"]), bvid=r["short_link_v2"].rstrip("/").rsplit("/", 1)[-1], title=r["title"],
            pic=r["pic"], tid=_num(r["tid"]), tname=r["tname"], pubdate=_num(r["pubdate"]),
            duration=_num(r["duration"]), owner_mid=_num(r["owner_mid"]), owner_name=r["owner_name"],
            owner_face=r["owner_face"], desc=r["desc"], videos=_num(r["videos"]) or 1, state=_num(r["state"]),
            view=_num(r["stat_view"]), danmaku=_num(r["stat_danmaku"]), reply=_num(r["stat_reply"]),
            favorite=_num(r["stat_favorite"]), coin=_num(r["stat_coin"]), share=_num(r["stat_share"]),
            like=_num(r["stat_like"]), tags=[t.strip() for t in r["tags"].split(",") if t.strip()],
        ))
    return out


@dataclass(frozen=True)
class HistoryRow:
    bvid: str
    progress: int
    duration: int
    view_at: int
    u_like: int
    u_coin: int
    u_fav: int
    video: Video


def load_history(tnames: dict[int, str] | None = None) -> list[HistoryRow]:
    """The real user's 790 history rows (oldest first), each with a Video built from its fields."""
    tnames = tnames or {}
    out = []
    for r in _history_rows():
        bvid = r["bv"]
        try:
            tags = [str(t) for t in ast.literal_eval(r["tag"] or "[]")]
        except (ValueError, SyntaxError):
            tags = []
        tid = _num(r["tid"])
        try:
            aid = bv2av(bvid)
        except ValueError:
            aid = stable_id(bvid)
        video = Video(
            aid=aid, bvid=bvid, title=r["title"],
            pic=f"http://i0.hdslb.com/bfs/archive/{hashlib.sha1(bvid.encode()).hexdigest()}.jpg",
            tid=tid, tname=tnames.get(tid, ""), pubdate=_num(r["time"]), duration=_num(r["duration"]),
            owner_mid=stable_id(r["up_name"]), owner_name=r["up_name"],
            view=_num(r["view"]), danmaku=_num(r["dm"]), reply=_num(r["reply"]), favorite=_num(r["fav"]),
            coin=_num(r["coin"]), share=_num(r["share"]), like=_num(r["like"]), tags=tags, in_popular=False,
        )
        out.append(HistoryRow(bvid=bvid, progress=_num(r["progress"]), duration=_num(r["duration"]),
                              view_at=_num(r["view_time"]), u_like=_num(r["u_like"]), u_coin=_num(r["u_coin"]),
                              u_fav=_num(r["u_fav"]), video=video))
    return out
