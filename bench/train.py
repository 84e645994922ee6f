"""Training speed of the batched per-user models: ms per user at 16, 128 and 1024 users x 300 samples.

python bench/train.py [--sizes 16 128 1024] [--catalogue 20000]
(last line: ms_per_user=<value at the largest size> rank_700_shared_ms=... rank_catalogue_shared_ms=...)
A plain loop (one user per pass) is timed at 16 users for comparison; held-out AUC shows the
batched pass learns the same thing. Ranking is timed for one loaded model over 700 candidates
without and with the shared signals (item-kNN + EASE, both fused), and over a recalled catalogue of
`--catalogue` videos with them."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender import SharedSignals, TrainConfig, UserData, build_from_choices, rank, train_users  # noqa: E402
from recommender.data import synthetic  # noqa: E402
from recommender.features import encode_videos  # noqa: E402
from recommender.metrics import auc  # noqa: E402
from recommender.types import Video  # noqa: E402


def world(users: int, seed: int = 0):
    s = synthetic(n_users=users, n_videos=1000, samples=375, seed=seed)  # 300 train + 75 held-out shown
    data, tests = {}, {}
    for u, evs in s.events.items():
        shown = [e for e in evs if e.kind == "shown"]
        cut = shown[300].at
        liked = {e.bvid for e in evs if e.kind == "like"}
        data[u] = UserData([e for e in evs if e.at < cut])
        tests[u] = [(e.bvid, e.bvid in liked) for e in shown if e.at >= cut]
    return s, data, tests


def timed(data, s, cfg: TrainConfig) -> tuple[float, dict]:
    t0 = time.perf_counter()
    models = train_users(data, s.videos, None, s.now, cfg)
    return 1000 * (time.perf_counter() - t0) / len(data), models


def mean_auc(models, s, tests) -> float:
    out = []
    for u, m in models.items():
        b = [x for x, _ in tests[u]]
        out.append(
            auc([label for _, label in tests[u]], m.logits(encode_videos([s.videos[x] for x in b], m.cfg, s.now)))
        )
    return float(np.nanmean(out))


def rank_ms(model, cands: list, now: int, shared: SharedSignals | None = None, repeats: int = 20) -> float:
    """Median wall time of rank() over the candidates with an already loaded model (the median CPU
    time of the calling thread is printed too: on a shared machine it is the steadier figure)."""
    rank(model, cands, k=10, exclude=(), now=now, shared=shared)  # warm: module built, hash cache filled
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.thread_time()
        rank(model, cands, k=10, exclude=(), now=now, shared=shared)
        times.append(1000 * (time.perf_counter() - t0))
        cpu.append(1000 * (time.thread_time() - c0))
    print(f"  ({len(cands)} candidates: median cpu {np.median(cpu):.1f} ms, wall {np.median(times):.1f} ms)")
    return float(np.median(times))


def recalled_catalogue(
    s, size: int, users: int = 2000, per_user: int = 100, seed: int = 0
) -> tuple[list[Video], SharedSignals]:
    """`size` videos (the world's and synthetic others) and shared signals built over them from
    `users` users' choices, popularity-skewed: kNN and EASE at their production sizes."""
    extra = synthetic(n_users=1, n_videos=max(size - len(s.videos), 1), samples=1, seed=seed + 1).videos
    catalogue = list(s.videos.values()) + [replace(v, bvid=f"BX{v.bvid[2:]}") for v in extra.values()]
    catalogue = catalogue[:size]
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(catalogue) + 1) ** 0.8
    p /= p.sum()
    order = rng.permutation(len(catalogue))
    choices = {
        f"c{u}": [catalogue[order[i]].bvid for i in rng.choice(len(catalogue), per_user, replace=False, p=p)]
        for u in range(users)
    }
    choices |= {u: [e.bvid for e in evs if e.kind == "like"] for u, evs in s.events.items()}
    return catalogue, build_from_choices(choices, {})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 128, 1024])
    p.add_argument("--catalogue", type=int, default=20000, help="videos in the recalled catalogue ranked")
    args = p.parse_args()
    cfg = TrainConfig()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, chunk_users {cfg.chunk_users}")
    s, data, tests = world(16)
    ms, models = timed(data, s, replace(cfg, chunk_users=1))
    print(f"loop     users=16    ms_per_user={ms:7.1f}  auc={mean_auc(models, s, tests):.3f}")
    last = float("nan")
    for n in args.sizes:
        s, data, tests = world(n)
        last, models = timed(data, s, cfg)
        print(f"batched  users={n:<5} ms_per_user={last:7.1f}  auc={mean_auc(models, s, tests):.3f}")
    model = next(iter(models.values()))
    cands = list(s.videos.values())[:700]
    print(f"rank 700 candidates (cached model): {rank_ms(model, cands, s.now):.1f} ms")
    t0 = time.perf_counter()
    catalogue, shared = recalled_catalogue(s, args.catalogue)
    print(
        f"shared signals over {len(catalogue)} videos: kNN {len(shared.bvids)} items, "
        f"EASE {len(shared.ease_index)} items (lambda={shared.ease_l2:g}), built in {time.perf_counter() - t0:.1f} s"
    )
    fused = replace(model, fusion=1.0, ease_fusion=0.5)  # both signals scored and fused, as a trained user's
    with_shared = rank_ms(fused, cands, s.now, shared)
    print(f"rank 700 candidates with shared signals (kNN + EASE): {with_shared:.1f} ms")
    whole = rank_ms(fused, catalogue, s.now, shared, repeats=5)
    print(f"rank {len(catalogue)} candidates (recalled catalogue) with shared signals: {whole:.1f} ms")
    print(f"ms_per_user={last:.2f} rank_700_shared_ms={with_shared:.2f} rank_catalogue_shared_ms={whole:.2f}")


if __name__ == "__main__":
    main()
