"""The bilibili double's catalogue: real public video metadata bundled in tests/fixtures, and users
synthesised from it with fixed seeds.

No person's watch history is read or copied here: the long-history user is generated
(`synthesise_long_history`), shaped only by aggregate counts.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from bilibili.partitions import v2_sub_of_legacy

POPULAR_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "popular_videos.jsonl.gz"

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
    # What view and the lists carry beyond the basics. None: derived from the aid, so the catalogue
    # has some of each (reposts, portrait videos, joint uploads, honours) without a fixture change.
    paywall: str = ""  # "" free; "pay" / "ugc_pay" / "arc_pay": that rights flag set; "upower": 充电专属
    copyright: int | None = None  # 1 original, 2 repost
    vertical: bool | None = None
    staff: list[int] | None = None  # co-creators' mids (the uploader is added first, as bilibili lists it)
    top_rank: int | None = None  # best site-wide ranking place (honor type 3), 0: none

    @property
    def cid(self) -> int:
        return self.aid % 2_000_000_000 + 1

    @property
    def tid_v2(self) -> int:
        """The finer 2025 partition: the first v2 sub of the legacy tid's main partition (0: unknown)."""
        return v2_sub_of_legacy(self.tid) if self.tid else 0

    @property
    def tname_v2(self) -> str:
        return self.tname

    def is_repost(self) -> bool:
        return self.copyright == 2 if self.copyright is not None else self.aid % 5 == 0

    def is_vertical(self) -> bool:
        return self.vertical if self.vertical is not None else self.aid % 7 == 0

    def co_creators(self) -> list[int]:
        return (
            self.staff if self.staff is not None else ([stable_id(f"staff-{self.aid}")] if self.aid % 13 == 0 else [])
        )

    def rank_reached(self) -> int:
        return self.top_rank if self.top_rank is not None else (1 + self.aid % 97 if self.aid % 11 == 0 else 0)

    def rights(self) -> dict:
        """As the real archive objects carry them (pay: a paid PGC title, ugc_pay / arc_pay: a paid upload)."""
        flags = {k: int(self.paywall == k) for k in ("pay", "ugc_pay", "arc_pay")}
        return {
            "bp": 0,
            "elec": 0,
            "download": 1,
            "movie": 0,
            "pay": flags["pay"],
            "hd5": 0,
            "no_reprint": 1,
            "autoplay": 1,
            "ugc_pay": flags["ugc_pay"],
            "is_cooperation": int(bool(self.co_creators())),
            "ugc_pay_preview": 0,
            "no_background": 0,
            "arc_pay": flags["arc_pay"],
            "pay_free_watch": 0,
        }

    def dimension(self) -> dict:
        return (
            {"width": 1080, "height": 1920, "rotate": 0}
            if self.is_vertical()
            else {"width": 1920, "height": 1080, "rotate": 0}
        )

    def stat(self) -> dict:
        return {
            "aid": self.aid,
            "view": self.view,
            "danmaku": self.danmaku,
            "reply": self.reply,
            "favorite": self.favorite,
            "coin": self.coin,
            "share": self.share,
            "now_rank": 0,
            "his_rank": self.rank_reached(),
            "like": self.like,
            "dislike": 0,
            "vt": 0,
            "vv": self.view,
        }

    def archive(self) -> dict:
        """The archive object as the list endpoints and view return it (no tags)."""
        return {
            "aid": self.aid,
            "bvid": self.bvid,
            "videos": self.videos,
            "tid": self.tid,
            "tname": self.tname,
            "copyright": 2 if self.is_repost() else 1,
            "pic": self.pic,
            "title": self.title,
            "pubdate": self.pubdate,
            "ctime": self.pubdate,
            "desc": self.desc,
            "state": self.state,
            "duration": self.duration,
            "rights": self.rights(),
            "owner": {"mid": self.owner_mid, "name": self.owner_name, "face": self.owner_face},
            "stat": self.stat(),
            "dynamic": "",
            "cid": self.cid,
            "dimension": self.dimension(),
            "short_link_v2": f"https://b23.tv/{self.bvid}",
        }


@lru_cache(maxsize=1)
def _popular_records() -> tuple[dict, ...]:
    with gzip.open(POPULAR_FIXTURE, "rt", encoding="utf-8") as f:
        return tuple(json.loads(line) for line in f)


def load_popular() -> list[Video]:
    """The 708 real popular videos (public metadata, bundled), in list order; fresh objects every call."""
    return [Video(**{**r, "tags": list(r["tags"])}) for r in _popular_records()]


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


# The long-history user is shaped like a real heavy viewer's export (counts, not rows): 790 distinct
# videos over ~17 days, about a third liked, 103 favourites, 5 coined, a third watched to the end.
LONG_HISTORY = {"watches": 790, "likes": 252, "favourites": 103, "coins": (2, 2, 2, 1, 1), "days": 17.4}
_LONG_HISTORY_END = 1_717_636_722  # newest view time; fixed so runs are reproducible


def av2bv(aid: int) -> str:
    """bilibili's public AV -> BV conversion (inverse of `bv2av`)."""
    n = (aid | (_MASK + 1)) ^ _XOR
    chars = ["B", "V", "1"] + ["1"] * 9
    for i in range(11, 2, -1):
        chars[i] = _ALPHABET[n % 58]
        n //= 58
    chars[3], chars[9] = chars[9], chars[3]
    chars[4], chars[7] = chars[7], chars[4]
    return "".join(chars)


def history_spec(watches: int) -> dict:
    """LONG_HISTORY's proportions for a history of `watches` views (bench/onboarding.py's heavy users)."""
    k = watches / LONG_HISTORY["watches"]
    return {
        "watches": watches,
        "likes": max(1, round(LONG_HISTORY["likes"] * k)),
        "favourites": max(1, round(LONG_HISTORY["favourites"] * k)),
        "coins": LONG_HISTORY["coins"],
        "days": LONG_HISTORY["days"] * k,
    }


def synthesise_long_history(popular: list[Video], seed: int = 20240606, spec: dict | None = None) -> list[HistoryRow]:
    """A heavy viewer's history (oldest first) of videos outside the popular list, with a planted taste.

    Titles, tags and partitions are drawn from the public catalogue; whether a video is liked, faved
    or coined follows its tags and uploader (as in real histories), so models have something to learn.
    """
    rng = random.Random(seed)
    spec = spec or LONG_HISTORY
    tag_pool = sorted({t for v in popular for t in v.tags})
    partitions = sorted({(v.tid, v.tname) for v in popular if v.tname})
    liked_tags = set(rng.sample(tag_pool, 12))
    uploaders = [(stable_id(f"long-history-up-{i}"), f"UP主{i:03d}") for i in range(537)]
    favourite_ups = set(rng.sample(range(len(uploaders)), 40))
    taken_aids = {v.aid for v in popular}
    n = spec["watches"]
    # every uploader at least once, the rest mostly favourites: a heavy viewer returns to theirs
    up_sequence = list(range(len(uploaders))) + [
        rng.choice(sorted(favourite_ups)) if rng.random() < 0.8 else rng.randrange(len(uploaders))
        for _ in range(n - len(uploaders))
    ]
    rng.shuffle(up_sequence)
    step = spec["days"] * 86400 / n
    rows: list[tuple[float, HistoryRow]] = []
    for i in range(n):
        aid = rng.randrange(10**14, 2 * 10**14)
        while aid in taken_aids:
            aid = rng.randrange(10**14, 2 * 10**14)
        taken_aids.add(aid)
        bvid = av2bv(aid)
        tags = rng.sample(sorted(liked_tags), rng.randint(0, 2)) + rng.sample(tag_pool, rng.randint(2, 6))
        tags = list(dict.fromkeys(tags))
        up = up_sequence[i]
        tid, tname = rng.choice(partitions)
        duration = int(rng.lognormvariate(5.5, 1.0)) + 15
        view = int(rng.lognormvariate(11.5, 1.6)) + 100
        rate = rng.betavariate(2, 25)
        view_at = int(_LONG_HISTORY_END - (n - 1 - i) * step - rng.randrange(int(step)))
        affinity = len(liked_tags & set(tags)) + 1.5 * (up in favourite_ups) + 0.2 * rate * 25
        progress = -1 if rng.random() < 0.35 else (0 if rng.random() < 0.03 else rng.randint(1, duration - 1))
        video = Video(
            aid=aid,
            bvid=bvid,
            title=f"【{tags[0]}】{rng.choice(tag_pool)}·第{rng.randint(1, 300)}期",
            pic=f"http://i0.hdslb.com/bfs/archive/{hashlib.sha1(bvid.encode()).hexdigest()}.jpg",
            tid=tid,
            tname=tname,
            pubdate=view_at - rng.randrange(3600, 90 * 86400),
            duration=duration,
            owner_mid=uploaders[up][0],
            owner_name=uploaders[up][1],
            view=view,
            danmaku=int(view * rate / 8),
            reply=int(view * rate / 12),
            favorite=int(view * rate / 3),
            coin=int(view * rate / 5),
            share=int(view * rate / 20),
            like=int(view * rate),
            tags=tags,
            in_popular=False,
        )
        rows.append((affinity + rng.random(), HistoryRow(bvid, progress, duration, view_at, 0, 0, 0, video)))
    # The user's strongest affinities become their likes, favourites and coins (exact counts).
    by_affinity = [r for _, r in sorted(rows, key=lambda x: -x[0])]
    liked = {r.bvid for r in by_affinity[: spec["likes"]]}
    faved = {r.bvid for r in rng.sample(by_affinity[: 2 * spec["favourites"]], spec["favourites"])}
    coined = dict(zip((r.bvid for r in by_affinity[: len(spec["coins"])]), spec["coins"]))
    out = [
        HistoryRow(
            r.bvid,
            r.progress,
            r.duration,
            r.view_at,
            int(r.bvid in liked),
            coined.get(r.bvid, 0),
            int(r.bvid in faved),
            r.video,
        )
        for _, r in rows
    ]
    return sorted(out, key=lambda r: r.view_at)
