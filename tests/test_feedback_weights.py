"""Graded feedback weights (recommender/labels.py, weights chosen by recommender/weights.py): coin
counts and repeat watches reach the labels from storage, and each kind weighs as configured."""

from __future__ import annotations

from dataclasses import replace

from jobs.convert import user_events
from recommender.labels import make_samples
from recommender.types import Event, TrainConfig, Video
from recommender.weights import coordinate_search
from storage import behaviour, users
from storage.behaviour import BehaviourRow
from storage.db import Database
from tests.dbfixtures import any_db, postgres_url, sqlite_db  # noqa: F401

CFG = TrainConfig()


def _video(bvid: str, duration: int = 600) -> Video:
    return Video(bvid, bvid, 1, "up", ("t",), 1, "p", duration, 0, 100, 10, 1, 1, 0, 0, 0)


def _samples(events: list[Event], pool: tuple[str, ...] = (), cfg: TrainConfig = CFG):
    videos = {e.bvid: _video(e.bvid) for e in events} | {b: _video(b) for b in pool}
    return {s.bvid: s for s in make_samples(events, pool, videos, 10_000, cfg)[0]}


def test_coin_count_and_repeat_watches_survive_storage_to_labels(any_db: Database) -> None:
    user = users.ensure_user(any_db, 1, 1, "en", now=1)
    behaviour.save_behaviours(
        any_db,
        user.id,
        [
            BehaviourRow("BVtwo", "coin", at=10, coins=2),
            BehaviourRow("BVone", "coin", at=10, coins=1),
            BehaviourRow("BVagain", "watch", at=10, progress=100, duration=600),
            BehaviourRow("BVonce", "watch", at=10, progress=100, duration=600),
        ],
    )
    # the same history page read again: no new view; then a newer view of BVagain, twice over
    behaviour.save_behaviours(any_db, user.id, [BehaviourRow("BVagain", "watch", at=10, progress=100, duration=600)])
    behaviour.save_behaviours(any_db, user.id, [BehaviourRow("BVagain", "watch", at=20, progress=100, duration=600)])
    behaviour.save_behaviours(any_db, user.id, [BehaviourRow("BVagain", "watch", at=30, progress=100, duration=600)])
    events = {(e.bvid, e.kind): e for e in user_events(any_db, user.id)}
    assert events[("BVtwo", "coin")].coins == 2
    assert events[("BVagain", "watch")].views == 3 and events[("BVonce", "watch")].views == 1
    samples = _samples(list(events.values()), cfg=replace(CFG, second_coin_gain=0.5))
    assert samples["BVtwo"].weight > samples["BVone"].weight  # two coins say more than one
    assert samples["BVagain"].label > samples["BVonce"].label  # watched three times: more than once


def test_each_kind_weighs_as_configured() -> None:
    events = [
        Event("BVlike", "like", 10_000),
        Event("BVall", "like", 10_000),
        Event("BVall", "favorite", 10_000),
        Event("BVall", "coin", 10_000, coins=2),
        Event("BVlater", "later", 10_000),
        Event("BVup", "thumb_up", 10_000),
        Event("BVdown", "thumb_down", 10_000),
        Event("BVdown", "like", 10_000),
    ]
    s = _samples(events)
    assert s["BVlike"].weight == CFG.w_explicit * CFG.w_like
    assert (
        s["BVall"].weight
        == CFG.w_explicit * max(CFG.w_like, CFG.w_favorite, CFG.w_coin * (1 + CFG.second_coin_gain)) * 1.5
    )
    assert (s["BVlater"].label, s["BVlater"].weight, s["BVlater"].kind) == (CFG.later_label, CFG.w_later, "later")
    assert (s["BVup"].label, s["BVup"].weight) == (1.0, CFG.w_thumb_up)
    assert (s["BVdown"].label, s["BVdown"].weight) == (0.0, CFG.w_thumb_down)  # 👎 overrides a like


def test_popular_never_clicked_negatives_only_weigh_for_users_short_of_their_own() -> None:
    pool = tuple(f"BVpop{i}" for i in range(5))
    few = [Event("BVliked", "like", 10_000)]
    many = few + [Event(f"BVshown{i}", "shown", 10_000) for i in range(CFG.pool_below_own_negatives)]
    assert {_samples(few, pool)[b].weight for b in pool} == {CFG.w_pool}
    # kept at weight 0: still the rating reference, no longer a training negative
    assert {_samples(many, pool)[b].weight for b in pool} == {0.0}


def test_the_search_keeps_the_best_value_of_each_weight() -> None:
    target = {"w_like": 2.0, "w_watch": 0.25}
    objective = lambda c: -abs(c.w_like - target["w_like"]) - abs(c.w_watch - target["w_watch"])  # noqa: E731
    cfg, best = coordinate_search(
        objective, CFG, {"w_like": (0.5, 1.0, 2.0), "w_watch": (0.25, 0.5)}, log=lambda _: None
    )
    assert (cfg.w_like, cfg.w_watch, best) == (2.0, 0.25, 0.0)
    assert replace(cfg, w_like=CFG.w_like, w_watch=CFG.w_watch) == CFG  # nothing else moved
