"""Events -> (video, soft label, weight, time) samples for one user."""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .types import Event, TrainConfig, Video

EXPLICIT = frozenset({"like", "favorite", "coin"})


@dataclass(frozen=True)
class Sample:
    bvid: str
    label: float  # soft target in [0, 1]
    weight: float
    at: int  # when it happened (pool negatives: now)
    kind: str  # "explicit", "thumb_up", "thumb_down", "watch", "shown", "pool"


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
    by_video: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e.bvid in videos:
            by_video[e.bvid].append(e)
    watches = [(e.duration or videos[e.bvid].duration, r) for evs in by_video.values() for e in evs
               if e.kind == "watch" and (r := watch_ratio(e)) is not None]
    expected = _expected_ratio(watches)
    decay_per_s = math.log(0.5) / (86400 * cfg.half_life_days)
    samples = []
    for b, evs in by_video.items():
        if (lab := _label(evs, videos[b].duration, expected, cfg)) is not None:
            at = max(e.at for e in evs)
            recency = max(cfg.min_recency, math.exp(decay_per_s * max(now - at, 0)))
            samples.append(Sample(b, lab[0], lab[1] * recency, at, lab[2]))
    samples += [Sample(b, 0.0, cfg.w_pool, now, "pool") for b in dict.fromkeys(pool) if b in videos and b not in by_video]
    pos = sum(s.weight * s.label for s in samples)
    neg = sum(s.weight * (1 - s.label) for s in samples)
    # the class weight balances positive and negative label mass (capped)
    return samples, (min(max(neg / pos, 1.0), cfg.max_class_weight) if pos > 0 else 1.0)


def _label(evs: list[Event], duration: int, expected: dict[int, float], cfg: TrainConfig) -> tuple[float, float, str] | None:
    """(soft label, weight before recency, kind) from everything the user did with one video."""
    kinds = {e.kind for e in evs}
    if "thumb_down" in kinds:  # strongest signal: the user told us
        return 0.0, cfg.w_thumb_down, "thumb_down"
    if "thumb_up" in kinds:
        return 1.0, cfg.w_thumb_up, "thumb_up"
    if explicit := kinds & EXPLICIT:
        return 1.0, cfg.w_explicit * (1 + 0.25 * (len(explicit) - 1)), "explicit"
    if "watch" in kinds:
        ratios = [(e.duration or duration, r) for e in evs if e.kind == "watch" and (r := watch_ratio(e)) is not None]
        if not ratios:
            return 0.25, cfg.w_watch, "watch"
        d, r = max(ratios, key=lambda t: t[1])
        resid = r - expected.get(_dur_bucket(d), r)
        # clicked but not engaged: below an explicit like, a little above or below 0.25 by debiased ratio
        return min(max(0.25 + 0.5 * resid, 0.0), 0.5), cfg.w_watch, "watch"
    if "shown" in kinds:
        return 0.0, cfg.w_shown, "shown"
    return None
