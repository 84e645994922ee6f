"""Recommender behaviour on synthetic users with planted preferences (fast; no downloads)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recommender import (
    Event,
    ModelStore,
    SharedSignals,
    TrainConfig,
    UserData,
    Video,
    build_shared_signals,
    quality_score,
    rank,
    rank_popular,
    render_profile_png,
    taste_profile,
    train_users,
)
from recommender.data import synthetic
from recommender.features import encode_videos
from recommender.labels import make_samples
from recommender.metrics import auc
from recommender.train import validation_holdout
from tests.doubles.bilibili_catalogue import load_popular


def _split(s, frac: float = 0.8):
    """Per user: events before the cut train; held-out = shown videos after it, label = liked."""
    data, tests = {}, {}
    for u, evs in s.events.items():
        shown = [e for e in evs if e.kind == "shown"]
        cut = shown[int(len(shown) * frac)].at
        liked = {e.bvid for e in evs if e.kind == "like"}
        data[u] = UserData([e for e in evs if e.at < cut], s.pools[u])
        tests[u] = [(e.bvid, e.bvid in liked) for e in shown if e.at >= cut]
    return data, tests


@pytest.fixture(scope="module")
def world():
    s = synthetic(n_users=16, seed=1)
    data, tests = _split(s)
    shared = build_shared_signals({u: d.events for u, d in data.items()}, {})
    held = {u: validation_holdout(d.events, s.videos, s.now) for u, d in data.items()}
    fusion_shared = build_shared_signals(
        {u: [e for e in d.events if e.bvid not in held[u]] for u, d in data.items()}, {}
    )
    models = train_users(data, s.videos, shared, s.now, fusion_shared=fusion_shared)
    return s, data, tests, shared, models


def _scores(model, s, bvids, shared=None):
    logits = model.logits(encode_videos([s.videos[b] for b in bvids], model.cfg, s.now))
    cf = shared.scores(model.history, bvids) if shared is not None else None
    return model.final_scores(logits, cf)


def test_planted_preferences_beat_popularity(world):
    s, _, tests, shared, models = world
    ours, pop = [], []
    for u, model in models.items():
        bvids = [b for b, _ in tests[u]]
        y = [label for _, label in tests[u]]
        ours.append(auc(y, _scores(model, s, bvids, shared)))
        pop.append(auc(y, [s.videos[b].view for b in bvids]))
    assert np.nanmean(ours) >= 0.75
    assert np.nanmean(ours) >= np.nanmean(pop) + 0.10


def test_ratings_rise_with_held_out_like_rate(world):
    s, _, tests, shared, models = world
    ratings, likes = [], []
    for u, model in models.items():
        bvids = [b for b, _ in tests[u]]
        ratings += list(model.rating(_scores(model, s, bvids, shared)))
        likes += [label for _, label in tests[u]]
    r, y = np.array(ratings), np.array(likes, dtype=float)
    assert r.min() >= 0 and r.max() <= 100
    bands = [y[(r >= lo) & (r < hi)].mean() for lo, hi in ((0, 40), (40, 80), (80, 101))]
    assert bands[0] < bands[1] < bands[2], bands


def test_batched_equals_one_user_at_a_time():
    s = synthetic(n_users=5, samples=120, seed=2)
    data = {u: UserData(evs, s.pools[u]) for u, evs in s.events.items()}
    shared = build_shared_signals(s.events, {})
    cfg = TrainConfig(max_steps=50, min_steps=10, patience=5, ensemble=2, l2_grid=(3e-3, 3e-2))
    batched = train_users(data, s.videos, shared, s.now, cfg)
    bvids = list(s.videos)[:200]
    steps_differ = set()
    for u in data:
        alone = train_users({u: data[u]}, s.videos, shared, s.now, cfg)[u]
        np.testing.assert_allclose(
            _scores(batched[u], s, bvids, shared), _scores(alone, s, bvids, shared), atol=1e-4, rtol=1e-4
        )
        assert batched[u].fusion == pytest.approx(alone.fusion)
        np.testing.assert_allclose(batched[u].ref_scores, alone.ref_scores, atol=1e-4, rtol=1e-4)
        steps_differ.add(round(float(batched[u].state["wide.bias"].sum()), 4))
    assert len(steps_differ) > 1  # users really got different models


def test_quality_feature_spreads_on_synthetic():
    s = synthetic(n_users=1)
    q = np.array([quality_score(v) for v in s.videos.values()])
    assert ((0 <= q) & (q <= 1)).all()
    assert q.std() > 0.05


def test_quality_feature_spreads_on_real_videos_where_seed_formula_saturates():
    videos = [
        Video(
            v.bvid,
            v.title,
            v.owner_mid,
            v.owner_name,
            tuple(v.tags),
            v.tid,
            v.tname,
            v.duration,
            v.pubdate,
            v.view,
            v.like,
            v.favorite,
            v.coin,
            v.share,
            v.danmaku,
            v.reply,
        )
        for v in load_popular()
    ]  # the bundled public catalogue
    q = np.array([quality_score(v) for v in videos])
    seed = np.array(
        [
            min(
                max(
                    0.4 * v.like / math.log(v.view + 1)
                    + 0.3 * v.favorite / math.log(v.view + 1)
                    + 0.3 * math.log(v.view + 1) / 20,
                    0,
                ),
                1,
            )
            for v in videos
        ]
    )
    assert (seed >= 0.999).mean() > 0.9  # why the formula was replaced
    assert q.std() > 0.1 and (q >= 0.999).mean() < 0.01
    assert np.percentile(q, 90) - np.percentile(q, 10) > 0.3


def test_padding_never_collides_with_real_ids():
    s = synthetic(n_users=1)
    cfg = TrainConfig(tag_buckets=2, uploader_buckets=2, partition_buckets=2, cross_buckets=2)
    t = encode_videos(list(s.videos.values()), cfg, s.now)
    n_tags = np.array([min(len(v.tags), cfg.max_tags) for v in s.videos.values()])
    assert ((t.tags > 0).sum(1) == n_tags).all()
    assert (t.uploader > 0).all() and (t.partition > 0).all() and (t.cross > 0).all()


def test_labels_explicit_thumbs_and_debiased_watch():
    s = synthetic(n_users=1)
    v = list(s.videos.values())
    now = s.now
    events = [
        Event(v[0].bvid, "like", now),
        Event(v[1].bvid, "thumb_down", now),
        Event(v[1].bvid, "watch", now, -1, 60),
        Event(v[2].bvid, "shown", now),
        Event(v[3].bvid, "thumb_up", now),
    ]
    samples, cw = make_samples(events, [v[4].bvid, v[0].bvid], s.videos, now, TrainConfig())
    by = {x.bvid: x for x in samples}
    assert by[v[0].bvid].label == 1 and by[v[3].bvid].label == 1
    assert by[v[1].bvid].label == 0 and by[v[1].bvid].weight > by[v[2].bvid].weight  # 👎 beats "watched"
    assert by[v[2].bvid].kind == "shown" and by[v[4].bvid].kind == "pool"
    assert by[v[4].bvid].weight < by[v[2].bvid].weight
    assert sum(x.bvid == v[0].bvid for x in samples) == 1  # a liked video is never also a pool negative
    # two full watches: the one finished despite being long counts more than the short one
    long_v = replace(v[5], duration=3000)
    short_v = replace(v[6], duration=30)
    vids = {**s.videos, long_v.bvid: long_v, short_v.bvid: short_v}
    watches = [Event(long_v.bvid, "watch", now, -1, 3000), Event(short_v.bvid, "watch", now, -1, 30)]
    watches += [Event(b.bvid, "watch", now, 5, 30) for b in v[10:20] if b.bvid != short_v.bvid]
    watches += [Event(b.bvid, "watch", now, 3000, 3000) for b in v[20:24]]
    sm = {
        x.bvid: x
        for x in make_samples(
            watches,
            [],
            {
                **vids,
                **{b.bvid: replace(b, duration=30) for b in v[10:20]},
                **{b.bvid: replace(b, duration=3000) for b in v[20:24]},
            },
            now,
            TrainConfig(),
        )[0]
    }
    assert all(x.label < 1 for x in sm.values())
    # finishing a 30 s video when other 30 s videos are abandoned says more than finishing a long one
    # when long ones are always finished: the label follows the ratio above the duration's norm
    assert sm[short_v.bvid].label > sm[long_v.bvid].label


def test_rank_is_diverse_excludes_and_explains(world):
    s, data, _, shared, models = world
    model = models["u0"]
    cands = list(s.videos.values())
    exclude = {e.bvid for e in data["u0"].events}
    picks = rank(model, cands, k=10, exclude=exclude, now=s.now, shared=shared)
    assert len(picks) == 10 and len({p.bvid for p in picks}) == 10
    assert not exclude & {p.bvid for p in picks}
    assert sum(p.explore for p in picks) == 1
    by = {v.bvid: v for v in cands}
    ups = [by[p.bvid].owner_mid for p in picks]
    assert max(ups.count(u) for u in ups) <= 2
    tags = [t for p in picks for t in set(by[p.bvid].tags)]
    assert max(tags.count(t) for t in tags) <= 5
    assert all(0 <= p.rating <= 100 and p.reason.detail is not None for p in picks)
    assert {p.reason.kind for p in picks} <= {"tag", "uploader", "similar", "popular", "explore"}
    pop = rank_popular(cands, k=10, exclude=exclude, now=s.now)
    assert len(pop) == 10 and all(p.reason.kind == "popular" for p in pop)
    pups = [by[p.bvid].owner_mid for p in pop]
    assert max(pups.count(u) for u in pups) <= 2


def test_picks_of_a_followed_uploader_say_so_and_the_ranking_does_not_move(world):
    """`followed` changes the words only: the same picks in the same order, with the reason `followed`
    (and the uploader's name) on exactly the picks of the uploaders followed."""
    s, data, _, shared, models = world
    cands = list(s.videos.values())
    by = {v.bvid: v for v in cands}
    exclude = {e.bvid for e in data["u0"].events}
    plain = rank(models["u0"], cands, k=10, exclude=exclude, now=s.now, shared=shared)
    followed = {by[plain[0].bvid].owner_mid, by[plain[-1].bvid].owner_mid}
    said = rank(models["u0"], cands, k=10, exclude=exclude, now=s.now, shared=shared, followed=followed)
    assert [p.bvid for p in said] == [p.bvid for p in plain]
    for p in said:
        video = by[p.bvid]
        assert (p.reason.kind == "followed") == (video.owner_mid in followed)
        if video.owner_mid in followed:
            assert p.reason.detail == video.owner_name
    cold = rank_popular(cands, k=10, exclude=exclude, now=s.now, followed=followed)
    assert {p.reason.kind for p in cold if by[p.bvid].owner_mid in followed} <= {"followed"}


def test_rank_without_shared_signals_and_small_candidate_sets(world):
    s, _, _, _, models = world
    cands = list(s.videos.values())[:3]
    picks = rank(models["u1"], cands, k=10, exclude=(), now=s.now)
    assert sorted(p.bvid for p in picks) == sorted(v.bvid for v in cands)
    assert rank(models["u1"], cands, k=10, exclude={v.bvid for v in cands}, now=s.now) == []


def test_store_roundtrip_versions_prune_invalidate_delete(world, tmp_path: Path):
    s, _, tests, _, models = world
    a, b = ModelStore(tmp_path), ModelStore(tmp_path)
    assert a.load("42") is None and a.latest_version("42") is None
    assert a.save("42", models["u0"]) == 1
    bvids = [x for x, _ in tests["u0"]]
    loaded = b.load("42")
    np.testing.assert_allclose(_scores(loaded, s, bvids), _scores(models["u0"], s, bvids), atol=1e-6)
    assert loaded.profile == models["u0"].profile and loaded.history == models["u0"].history
    assert b.save("42", models["u1"]) == 2 and b.save("42", models["u1"]) == 3
    # a's cached v1 is replaced because a newer file appeared
    np.testing.assert_allclose(_scores(a.load("42"), s, bvids), _scores(models["u1"], s, bvids), atol=1e-6)
    files = sorted(p.name for p in (tmp_path / "42").iterdir())
    assert files == ["v00000002.safetensors", "v00000003.safetensors"]  # pruned, no temp files
    weird = "../../etc/passwd"
    a.save(weird, models["u0"])
    assert all(p.resolve().is_relative_to(tmp_path.resolve()) for p in tmp_path.rglob("*"))
    a.delete("42")
    assert a.load("42") is None and b.load("42") is None and not (tmp_path / "42").exists()


def test_store_files_are_safetensors_not_pickle(world, tmp_path: Path):
    _, _, _, _, models = world
    store = ModelStore(tmp_path)
    store.save("u", models["u0"])
    raw = next((tmp_path / "u").iterdir()).read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    assert raw[8:9] == b"{" and header_len < len(raw)  # safetensors: u64 length + JSON header
    assert b"\x80\x04" not in raw[:2]  # not a pickle stream


def test_shared_signals_cooccurrence_related_and_roundtrip(tmp_path: Path):
    ev = lambda *bs: [Event(b, "watch", 0) for b in bs]  # noqa: E731
    users = {"a": ev("x", "y"), "b": ev("x", "y"), "c": ev("x", "z"), "d": ev("w")}
    shared = build_shared_signals(users, {"w": ["q"]})
    s = shared.scores(["x"], ["y", "z", "w", "unknown"])
    assert s[0] > s[1] > 0 and s[2] == 0 and s[3] == 0
    assert shared.scores(["w"], ["q"])[0] > 0  # related-video edge
    assert shared.most_similar(["x", "w"], "y") == ("x", pytest.approx(float(s[0])))
    shared.save(tmp_path / "s.safetensors")
    back = SharedSignals.load(tmp_path / "s.safetensors")
    np.testing.assert_allclose(back.scores(["x"], ["y", "z"]), s[:2])


def test_taste_profile_and_png(world):
    _, _, _, _, models = world
    prof = taste_profile(models["u0"], top=5)
    assert 0 < len(prof.tags) <= 5 and prof.uploaders
    assert [w for _, w in prof.tags] == sorted((w for _, w in prof.tags), reverse=True)
    png = render_profile_png(prof, {"tags": "标签", "uploaders": "UP主", "partitions": "分区", "title": "口味"})
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_users_without_data_or_with_unknown_videos_still_get_a_model():
    s = synthetic(n_users=2, samples=80, seed=3)
    data = {
        "u0": UserData(s.events["u0"], s.pools["u0"]),
        "empty": UserData([]),
        "ghost": UserData([Event("BVunknown", "like", s.now)]),
    }
    models = train_users(data, s.videos, None, s.now)
    cands = list(s.videos.values())[:50]
    for key in data:
        picks = rank(models[key], cands, k=5, exclude=(), now=s.now)
        assert len(picks) == 5 and all(0 <= p.rating <= 100 for p in picks)


def test_shared_signals_round_trip_through_the_model_store(tmp_path):
    from recommender import ModelStore, build_shared_signals
    from recommender.types import Event

    events = {
        "a": [Event("BV1", "like", 1), Event("BV2", "like", 2)],
        "b": [Event("BV2", "favorite", 3), Event("BV3", "like", 4)],
    }
    shared = build_shared_signals(events, {"BV3": ["BV4"]})
    store = ModelStore(tmp_path)
    assert store.load_shared() is None
    store.save_shared(shared)
    loaded = ModelStore(tmp_path).load_shared()  # a fresh process reads the file
    assert loaded.bvids == shared.bvids
    assert (loaded.scores(["BV2"], loaded.bvids) == shared.scores(["BV2"], shared.bvids)).all()
    assert loaded.scores(["BV2"], ["BV1"])[0] > 0, "co-liked items are neighbours"


def test_dropped_shared_signals_are_not_brought_back_by_a_pass_that_read_before_the_drop(tmp_path):
    shared = build_shared_signals({"a": [Event("BV1", "like", 1), Event("BV2", "like", 2)]}, {})
    store = ModelStore(tmp_path)
    before_drop = store.shared_generation  # a training pass reads everyone's behaviour here...
    store.drop_shared()  # ...someone uses /forget...
    assert store.load_shared() is None and not (tmp_path / "shared.safetensors").exists()
    assert store.save_shared(shared, before_drop) is False  # ...and the pass ends: its signals are void
    assert ModelStore(tmp_path).load_shared() is None
    assert store.save_shared(shared, store.shared_generation)  # a rebuild after the drop is kept
    assert ModelStore(tmp_path).load_shared().bvids == shared.bvids


def test_the_model_cache_is_bounded_and_evicts_the_least_recently_used(world, tmp_path: Path):
    s, _, tests, _, models = world
    writer, reader = ModelStore(tmp_path), ModelStore(tmp_path, max_cached=2)
    for key in ("a", "b", "c"):
        writer.save(key, models["u0"])
    first = reader.load("a")
    reader.load("b")
    assert reader.load("a") is first  # a recent hit stays in memory
    reader.load("c")  # evicts b, the least recently used
    assert reader.cached == 2
    assert reader.load("a") is first
    bvids = [x for x, _ in tests["u0"]]
    again = reader.load("b")  # evicted: read from disk again, same model
    np.testing.assert_allclose(_scores(again, s, bvids), _scores(models["u0"], s, bvids), atol=1e-6)
    assert reader.cached == 2


def test_a_damaged_newest_model_file_falls_back_to_the_previous_version(world, tmp_path: Path):
    s, _, tests, _, models = world
    ModelStore(tmp_path).save("7", models["u0"])
    ModelStore(tmp_path).save("7", models["u1"])
    newest = tmp_path / "7" / "v00000002.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])  # cut short (e.g. power loss before the data reached disk)
    bvids = [x for x, _ in tests["u0"]]
    loaded = ModelStore(tmp_path).load("7")
    np.testing.assert_allclose(_scores(loaded, s, bvids), _scores(models["u0"], s, bvids), atol=1e-6)


_KILLED_MID_SAVE = """
import os, signal, sys
import safetensors.torch
import recommender.store as store

def half_then_die(tensors, path, metadata=None):
    with open(path, "wb") as fh:
        fh.write(b"\\x00" * 4096)  # part of the file is written ...
        fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)  # ... and the process is killed -9

store.save_file = half_then_die
s = store.ModelStore(sys.argv[1])
s.save("7", s.load("7"))
"""


def test_a_kill_during_a_model_save_leaves_the_previous_model_loadable(world, tmp_path: Path):
    import os
    import signal
    import subprocess
    import sys

    s, _, tests, _, models = world
    ModelStore(tmp_path).save("7", models["u0"])
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_SAVE, str(tmp_path)],
        cwd=Path(__file__).parents[1],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL
    assert list((tmp_path / "7").glob("*.tmp")), "the killed save left its temp file behind"
    bvids = [x for x, _ in tests["u0"]]
    store = ModelStore(tmp_path)
    np.testing.assert_allclose(_scores(store.load("7"), s, bvids), _scores(models["u0"], s, bvids), atol=1e-6)
    assert store.save("7", models["u1"]) == 2  # the next save is not confused by the leftover
    np.testing.assert_allclose(
        _scores(ModelStore(tmp_path).load("7"), s, bvids), _scores(models["u1"], s, bvids), atol=1e-6
    )
