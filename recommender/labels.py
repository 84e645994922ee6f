"""Events -> (video, soft label, weight, time) samples for one user."""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Mapping, NamedTuple, Sequence

import numpy as np

from .types import Event, TrainConfig, Video

EXPLICIT = frozenset({"like", "favorite", "coin"})


class Sample(NamedTuple):  # a tuple: hundreds of thousands are built per training run
    bvid: str
    label: float  # soft target in [0, 1]
    weight: float
    at: int  # when it happened (pool negatives: now)
    kind: str  # "explicit", "thumb_up", "thumb_down", "blocked", "watch", "shown", "pool"


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


def make_samples(events: Sequence[Event], pool: Sequence[str], videos: Mapping[str, Video],
                 now: int, cfg: TrainConfig) -> tuple[list[Sample], float]:
    """The user's samples (recency-weighted) and the class weight for the positive label mass."""
    kinds: dict[str, set[str]] = {}  # per video: everything the user did with it
    last: dict[str, int] = {}
    best_watch: dict[str, tuple[float, int]] = {}  # per video: (highest watch ratio, its duration)
    watches: list[tuple[int, float]] = []  # every view: (duration, ratio)
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
        if e.kind == "watch" and (r := watch_ratio(e)) is not None:
            d = e.duration or video.duration
            watches.append((d, r))
            if b not in best_watch or r > best_watch[b][0]:
                best_watch[b] = (r, d)
    expected = _expected_ratio(watches)
    decay_per_s = math.log(0.5) / (86400 * cfg.half_life_days)
    samples = []
    for b, ks in kinds.items():
        if (lab := _label(ks, best_watch.get(b), expected, cfg)) is not None:
            recency = max(cfg.min_recency, math.exp(decay_per_s * max(now - last[b], 0)))
            samples.append(Sample(b, lab[0], lab[1] * recency, last[b], lab[2]))
    samples += [Sample(b, 0.0, cfg.w_pool, now, "pool") for b in dict.fromkeys(pool) if b in videos and b not in kinds]
    pos = sum(s.weight * s.label for s in samples)
    neg = sum(s.weight * (1 - s.label) for s in samples)
    # the class weight balances positive and negative label mass (capped)
    return samples, (min(max(neg / pos, 1.0), cfg.max_class_weight) if pos > 0 else 1.0)


def _label(kinds: set[str], best_watch: tuple[float, int] | None, expected: dict[int, float],
           cfg: TrainConfig) -> tuple[float, float, str] | None:
    """(soft label, weight before recency, kind) from everything the user did with one video."""
    if "blocked" in kinds:  # the user said "never" of its uploader or a tag: over any past liking
        return 0.0, cfg.w_blocked, "blocked"
    if "thumb_down" in kinds:  # strongest signal: the user told us
        return 0.0, cfg.w_thumb_down, "thumb_down"
    if "thumb_up" in kinds:
        return 1.0, cfg.w_thumb_up, "thumb_up"
    if explicit := kinds & EXPLICIT:
        return 1.0, cfg.w_explicit * (1 + 0.25 * (len(explicit) - 1)), "explicit"
    if "watch" in kinds:
        if best_watch is None:
            return 0.25, cfg.w_watch, "watch"
        r, d = best_watch
        resid = r - expected.get(_dur_bucket(d), r)
        # clicked but not engaged: below an explicit like, a little above or below 0.25 by debiased ratio
        return min(max(0.25 + 0.5 * resid, 0.0), 0.5), cfg.w_watch, "watch"
    if "shown" in kinds:
        return 0.0, cfg.w_shown, "shown"
    return None
