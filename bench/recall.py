"""Recall@100 of the candidate set on the bilibili double's catalogue (tests/doubles): today's sources
(the lists a refresh reads: 5 popular pages, the latest weekly issue, the site-wide ranking; and the
related lists of each user's 5 newest likes/favourites/coins) against those plus two-tower recall.
Users are the double's generated users with planted tastes; each user's newest 20% of watches is held
out. See recommender/recall_eval.py for the columns. Also prints the two-tower build's cost.

    python bench/recall.py [--users 40] [--history 200]

Then a sweep of the MMR λ over the page of 10 (recommender/diversity.py).

Last line: recall@100_today=<x> recall@100_with_twotower=<y> twotower_build_s=<s>
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import recommender as rec  # noqa: E402
from recommender.evaluate import fusion_signals, model_scores, newest_first, print_recall, print_table  # noqa: E402
from recommender.recall_eval import mmr_sweep, todays_sources  # noqa: E402
from tests.doubles.bilibili import BilibiliDouble  # noqa: E402

POPULAR_PAGES, PAGE_SIZE = 5, 20  # jobs/sync.POPULAR_PAGES, bilibili/client.popular's ps


def rec_video(v) -> rec.Video:
    return rec.Video(
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


def shared_lists(double: BilibiliDouble) -> list[str]:
    """What refresh_candidates reads from the double: popular pages, the latest weekly issue, ranking."""
    popular = double.popular_order[: POPULAR_PAGES * PAGE_SIZE]
    weekly = double._weekly()
    latest = weekly[max(weekly)] if weekly else []
    pool = [double.videos[b] for b in double.popular_order]
    ranking = sorted(pool, key=lambda v: (v.like + 10 * v.coin + 5 * v.favorite, v.aid), reverse=True)[:100]
    return list(dict.fromkeys([*popular, *latest, *(v.bvid for v in ranking)]))


def user_events(double: BilibiliDouble, user) -> list[rec.Event]:
    """What a sync stores of a generated user: watches, likes (at the watch), coins, favourites."""
    events = []
    watched_at = {}
    for w in user.history.values():
        events.append(rec.Event(w.bvid, "watch", w.view_at, w.progress, double.videos[w.bvid].duration))
        watched_at[w.bvid] = w.view_at
    for b in user.likes:
        events.append(rec.Event(b, "like", watched_at.get(b, 0) + 1))
    for b, _n, t in user.coins:
        events.append(rec.Event(b, "coin", t))
    for item in user.folders[0].items:
        if item.bvid in watched_at and item.attr == 0:
            events.append(rec.Event(item.bvid, "favorite", item.fav_time))
    return events


def build_cost(n_users: int, per_user: int, n_catalogue: int) -> None:
    """The two-tower build at the bot's bounds (SHARED_SAMPLE_USERS x SHARED_ITEMS_PER_USER choices,
    a recall catalogue), on synthetic long-tailed videos: seconds, file bytes, one recall's ms."""
    import random
    import tempfile

    rnd = random.Random(0)
    videos = {}
    for i in range(n_catalogue):
        b = f"BV{i:08d}"
        videos[b] = rec.Video(
            b,
            b,
            rnd.randrange(n_catalogue // 20),
            "up",
            tuple(f"t{rnd.randrange(5000)}" for _ in range(4)),
            rnd.randrange(120),
            "p",
            300,
            0,
            rnd.randrange(10**6),
            1000,
            100,
            50,
            10,
            10,
            10,
        )
    ids = list(videos)
    choices = {str(u): rnd.sample(ids, per_user) for u in range(n_users)}
    tower = rec.train_two_tower(choices, videos, ids)
    with tempfile.TemporaryDirectory() as tmp:
        store = rec.ModelStore(Path(tmp))
        store.save_twotower(tower)
        size = (Path(tmp) / "twotower.safetensors").stat().st_size
    t0 = time.perf_counter()
    for u in list(choices)[:50]:
        tower.recall(choices[u], 300, exclude=set(choices[u]))
    recall_ms = (time.perf_counter() - t0) * 1000 / 50
    print(
        f"two-tower build: {n_users} users x {per_user} choices, {n_catalogue} catalogue videos: "
        f"{tower.seconds:.1f} s, file {size / 1e6:.1f} MB, recall of 300 {recall_ms:.2f} ms"
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--users", type=int, default=40)
    p.add_argument("--history", type=int, default=200)
    p.add_argument(
        "--build",
        type=int,
        nargs=3,
        metavar=("USERS", "PER_USER", "CATALOGUE"),
        default=None,
        help="also time a build at this size (e.g. 2000 300 100000: the bot's bounds)",
    )
    args = p.parse_args()
    if args.build:
        build_cost(*args.build)
    double = BilibiliDouble()
    videos = {b: rec_video(v) for b, v in double.videos.items()}
    lists = shared_lists(double)
    data, tests = {}, {}
    for i in range(args.users):
        user = double.add_generated_user(50_000 + i, seed=1000 + i, n_history=args.history)
        events = user_events(double, user)
        watches = sorted((e for e in events if e.kind == "watch"), key=lambda e: e.at)
        cut = watches[int(len(watches) * 0.8)].at
        data[str(i)] = rec.UserData([e for e in events if e.at < cut], [b for b in lists])
        tests[str(i)] = {e.bvid for e in watches if e.at >= cut}
    now = max(e.at for d in data.values() for e in d.events) + 60
    shared = rec.build_shared_signals({u: d.events for u, d in data.items()}, {})
    cfg = rec.TrainConfig()
    models = rec.train_users(data, videos, shared, now, cfg, fusion_shared=fusion_signals(data, videos, now, cfg))
    train_choices = {u: newest_first(d.events) for u, d in data.items()}
    sources = {
        u: todays_sources(lists, newest_first(d.events, ("like", "favorite", "coin")), double.related_bvids)
        for u, d in data.items()
    }
    print(
        f"double's catalogue: {len(videos)} videos, shared lists {len(lists)}, {len(data)} users, "
        f"{sum(map(len, tests.values())) / len(tests):.1f} held-out watches each"
    )

    def score(u: str, c: list[str]):
        return model_scores(models[u], [videos[b] for b in c], now, shared)

    table, tower = print_recall(
        "bilibili double: recall of the held-out watches by the candidate set",
        train_choices,
        tests,
        sources,
        videos,
        score,
    )
    print_table(
        "MMR λ on the double (page of 10 from today's sources + two-tower recall)",
        mmr_sweep(train_choices, tests, sources, tower, score, videos),
    )
    today = table["today's sources"]["Recall@100"]
    both = table["today's sources + two-tower recall"]["Recall@100"]
    print(f"recall@100_today={today:.4f} recall@100_with_twotower={both:.4f} twotower_build_s={tower.seconds:.1f}")


if __name__ == "__main__":
    main()
