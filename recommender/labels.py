"""Events -> (video, soft label, weight, time) samples for one user."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from .types import Event, TrainConfig, Video

EXPLICIT = frozenset({"like", "favorite", "coin"})


class Sample(NamedTuple):  # a tuple: hundreds of thousands are built per training run
    bvid: str
    label: float  # soft target in [0, 1]
    weight: float
    at: int  # when it happened (pool negatives: now)
    kind: str  # "explicit", "thumb_up", "thumb_down", "later", "blocked", "watch", "shown", "pool"


def watch_ratio(e: Event) -> float | None:
    if e.progress is None or not e.duration:
        return None
    return 1.0 if e.progress < 0 else min(e.progress / e.duration, 1.0)


def _expected_ratio(watches: list[tuple[int, float]]) -> dict[int, float]:
    """Mean watch ratio per log-duration bucket, shrunk to the user's mean: short videos get
    finished, so only the ratio above what a video of that length usually gets says anything."""
    if not watches:
        return {}
    overall = float(np.mean([r for _, r in watches]))
    groups: dict[int, list[float]] = defaultdict(list)
    for d, r in watches:
        groups[_dur_bucket(d)].append(r)
    return {b: (sum(rs) + 5 * overall) / (len(rs) + 5) for b, rs in groups.items()}


def _dur_bucket(duration: int) -> int:
    return int(math.log2(max(duration, 1) / 30 + 1))


def make_samples(
    events: Sequence[Event], pool: Sequence[str], videos: Mapping[str, Video], now: int, cfg: TrainConfig
) -> tuple[list[Sample], float]:
    """The user's samples (recency-weighted) and the class weight for the positive label mass."""
    kinds: dict[str, set[str]] = {}  # per video: everything the user did with it
    last: dict[str, int] = {}
    best_watch: dict[str, tuple[float, int]] = {}  # per video: (highest watch ratio, its duration)
    watches: list[tuple[int, float]] = []  # every view: (duration, ratio)
    counts: dict[str, dict[str, int]] = defaultdict(dict)  # per video: coins given, times watched
    for e in events:
        video = videos.get(e.bvid)
        if video is None:
            continue
        b = e.bvid
        if b in kinds:
            kinds[b].add(e.kind)
            last[b] = max(last[b], e.at)
        else:
            kinds[b], last[b] = {e.kind}, e.at
        if e.kind == "coin":
            counts[b]["coins"] = max(counts[b].get("coins", 0), e.coins or 1)
        if e.kind == "watch":
            counts[b]["views"] = max(counts[b].get("views", 0), e.views or 1)
        if e.kind == "watch" and (r := watch_ratio(e)) is not None:
            d = e.duration or video.duration
            watches.append((d, r))
            if b not in best_watch or r > best_watch[b][0]:
                best_watch[b] = (r, d)
    expected = _expected_ratio(watches)
    decay_per_s = math.log(0.5) / (86400 * cfg.half_life_days)
    samples = []
    for b, ks in kinds.items():
        if (lab := _label(ks, counts.get(b, {}), best_watch.get(b), expected, cfg)) is not None:
            recency = max(cfg.min_recency, math.exp(decay_per_s * max(now - last[b], 0)))
            samples.append(Sample(b, lab[0], lab[1] * recency, last[b], lab[2]))
    # pool negatives are kept at weight 0 past the threshold: still the user's rating reference
    own_negatives = sum(s.label < 0.5 for s in samples)
    w_pool = cfg.w_pool if own_negatives < cfg.pool_below_own_negatives else 0.0
    samples += [Sample(b, 0.0, w_pool, now, "pool") for b in dict.fromkeys(pool) if b in videos and b not in kinds]
    pos = sum(s.weight * s.label for s in samples)
    neg = sum(s.weight * (1 - s.label) for s in samples)
    # the class weight balances positive and negative label mass (capped)
    return samples, (min(max(neg / pos, 1.0), cfg.max_class_weight) if pos > 0 else 1.0)


def _label(
    kinds: set[str],
    counts: Mapping[str, int],
    best_watch: tuple[float, int] | None,
    expected: dict[int, float],
    cfg: TrainConfig,
) -> tuple[float, float, str] | None:
    """(soft label, weight before recency, kind) from everything the user did with one video."""
    if "blocked" in kinds:  # the user said "never" of its uploader or a tag: over any past liking
        return 0.0, cfg.w_blocked, "blocked"
    if "thumb_down" in kinds:  # strongest signal: the user told us
        return 0.0, cfg.w_thumb_down, "thumb_down"
    if "thumb_up" in kinds:
        return 1.0, cfg.w_thumb_up, "thumb_up"
    if kinds & EXPLICIT:
        return 1.0, explicit_weight(kinds, counts.get("coins", 1), cfg), "explicit"
    if "later" in kinds:
        return cfg.later_label, cfg.w_later, "later"
    if "watch" in kinds:
        return watch_label(best_watch, counts.get("views", 1), expected, cfg), cfg.w_watch, "watch"
    if "shown" in kinds:
        return 0.0, cfg.w_shown, "shown"
    return None


def explicit_weight(kinds: set[str], coins: int, cfg: TrainConfig) -> float:
    """The strongest of like / favourite / coin (a second coin adds second_coin_gain to the coin's
    weight), plus a quarter for each further kind: with every weight 1 and one coin this is the
    weighting the history's AUC was measured with before the search."""
    strongest = max(
        cfg.w_like * ("like" in kinds),
        cfg.w_favorite * ("favorite" in kinds),
        cfg.w_coin * (1 + cfg.second_coin_gain * (min(max(coins, 1), 2) - 1)) * ("coin" in kinds),
    )
    return cfg.w_explicit * strongest * (1 + 0.25 * (len(kinds & EXPLICIT) - 1))


def watch_label(
    best_watch: tuple[float, int] | None, views: int, expected: dict[int, float], cfg: TrainConfig
) -> float:
    """Clicked but not engaged: around 0.25, up or down by the duration-debiased watch ratio (at most
    0.5), plus repeat_gain for each repeat watch (at most two counted)."""
    label = 0.25
    if best_watch is not None:
        r, d = best_watch
        resid = r - expected.get(_dur_bucket(d), r)
        label = min(max(0.25 + cfg.completion_gain * resid, 0.0), 0.5)
    return min(label + cfg.repeat_gain * min(max(views - 1, 0), 2), 1.0)
