"""Datasets for evaluation and tests: bilibili CSVs, MovieLens-100k, planted-preference synthetic users."""

from __future__ import annotations

import ast
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .types import Event, Video

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
HISTORY_CSV = SHARED_DATA / "bilibili_watch_history.csv"
POPULAR_CSV = SHARED_DATA / "bilibili_popular_videos.csv"


def _int(x: object) -> int:
    try:
        f = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0
    return 0 if math.isnan(f) else int(f)


def load_popular(path: Path = POPULAR_CSV) -> dict[str, Video]:
    import pandas as pd

    df = pd.read_csv(path)
    out: dict[str, Video] = {}
    for r in df.itertuples(index=False):
        bvid = str(r.short_link_v2).rsplit("/", 1)[-1]
        tags = tuple(t for t in str(r.tags).split(",") if t and t != "nan")
        out[bvid] = Video(
            bvid,
            str(r.title),
            _int(r.owner_mid),
            str(r.owner_name),
            tags,
            _int(r.tid),
            str(r.tname),
            _int(r.duration),
            _int(r.pubdate),
            _int(r.stat_view),
            _int(r.stat_like),
            _int(r.stat_favorite),
            _int(r.stat_coin),
            _int(r.stat_share),
            _int(r.stat_danmaku),
            _int(r.stat_reply),
        )
    return out


def load_history(path: Path = HISTORY_CSV) -> tuple[dict[str, Video], list[Event]]:
    """One user's history -> videos and events (watch + like/favorite/coin), oldest first."""
    import pandas as pd

    df = pd.read_csv(path)
    videos: dict[str, Video] = {}
    events: list[Event] = []
    for r in df.itertuples(index=False):
        try:
            tags = tuple(str(t) for t in ast.literal_eval(r.tag))
        except (ValueError, SyntaxError):
            tags = ()
        up = str(r.up_name)
        videos[r.bv] = Video(
            r.bv,
            str(r.title),
            zlib.crc32(up.encode()),
            up,
            tags,
            _int(r.tid),
            str(_int(r.tid)),
            _int(r.duration),
            _int(r.time),
            _int(r.view),
            _int(r.like),
            _int(r.fav),
            _int(r.coin),
            _int(r.share),
            _int(r.dm),
            _int(r.reply),
        )
        at = _int(r.view_time)
        events.append(Event(r.bv, "watch", at, _int(r.progress), _int(r.duration)))
        for col, kind in (("u_like", "like"), ("u_fav", "favorite"), ("u_coin", "coin")):
            if (n := _int(getattr(r, col))) > 0:
                events.append(Event(r.bv, kind, at, coins=n if kind == "coin" else None))  # type: ignore[arg-type]
    return videos, events


def load_followed(path: Path = HISTORY_CSV) -> frozenset[int]:
    """The uploaders (load_history's mids) that the history's `up_follow` column marks as followed
    when the history was exported."""
    import pandas as pd

    df = pd.read_csv(path, usecols=["up_name", "up_follow"])
    return frozenset(zlib.crc32(str(r.up_name).encode()) for r in df.itertuples(index=False) if _int(r.up_follow) > 0)


@dataclass
class Synthetic:
    videos: dict[str, Video]
    events: dict[str, list[Event]]  # per user, oldest first
    pools: dict[str, list[str]]
    now: int


def synthetic(n_users: int = 16, n_videos: int = 400, samples: int = 300, seed: int = 0) -> Synthetic:
    """Users with planted tastes (liked tags/uploaders, one disliked tag) shown popular-ish videos.
    Likes depend on taste far more than on popularity, so a personal model must beat popularity."""
    rng = np.random.default_rng(seed)
    now = 1_750_000_000
    n_tags, n_ups = 24, 40
    videos: dict[str, Video] = {}
    for i in range(n_videos):
        view = int(rng.lognormal(11, 1.5)) + 10
        rate = rng.beta(2, 30)
        tags = tuple(f"tag{t}" for t in rng.choice(n_tags, rng.integers(2, 6), replace=False))
        up = int(rng.integers(n_ups))
        tid = int(rng.integers(12))
        videos[f"BV{i:06d}"] = Video(
            f"BV{i:06d}",
            f"video {i}",
            up,
            f"up{up}",
            tags,
            tid,
            f"part{tid}",
            int(rng.integers(30, 1800)),
            now - int(rng.integers(0, 90 * 86400)),
            view,
            int(view * rate),
            int(view * rate / 3),
            int(view * rate / 5),
            int(view * rate / 20),
            int(view * rate / 4),
            int(view * rate / 30),
        )
    bvids = list(videos)
    pop = np.array([math.log(videos[b].view) for b in bvids])
    p_show = np.exp(pop - pop.max())
    p_show /= p_show.sum()
    events: dict[str, list[Event]] = {}
    pools: dict[str, list[str]] = {}
    for u in range(n_users):
        liked = {f"tag{t}" for t in rng.choice(n_tags, 3, replace=False)}
        disliked = f"tag{int(rng.integers(n_tags))}"
        fav_ups = set(rng.choice(n_ups, 3, replace=False).tolist())
        shown = rng.choice(n_videos, min(samples, n_videos), replace=False, p=p_show)
        evs: list[Event] = []
        for j, i in enumerate(shown):
            v = videos[bvids[i]]
            at = now - (len(shown) - j) * 3600
            logit = (
                -3.5
                + 2.5 * len(liked & set(v.tags))
                + 2.5 * (v.owner_mid in fav_ups)
                - 3.0 * (disliked in v.tags)
                + 0.3 * (pop[i] - pop.mean())
            )
            like = rng.random() < 1 / (1 + math.exp(-logit))
            evs.append(Event(v.bvid, "shown", at))
            if like or rng.random() < 0.3:
                evs.append(Event(v.bvid, "watch", at + 1, int(rng.integers(10, v.duration)), v.duration))
            if like:
                evs.append(Event(v.bvid, "like", at + 2))
        events[f"u{u}"] = evs
        seen = {e.bvid for e in evs}
        pools[f"u{u}"] = [b for b in (bvids[i] for i in np.argsort(-pop)) if b not in seen][:100]
    return Synthetic(videos, events, pools, now)
