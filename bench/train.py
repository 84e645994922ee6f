"""Training speed of the batched per-user models: ms per user at 16, 128 and 1024 users x 300 samples.

python bench/train.py [--sizes 16 128 1024]   (last line: ms_per_user=<value at the largest size>)
A plain loop (one user per pass) is timed at 16 users for comparison; held-out AUC shows the
batched pass learns the same thing."""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender import TrainConfig, UserData, rank, train_users  # noqa: E402
from recommender.data import synthetic  # noqa: E402
from recommender.features import encode_videos  # noqa: E402
from recommender.metrics import auc  # noqa: E402


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
        out.append(auc([l for _, l in tests[u]], m.logits(encode_videos([s.videos[x] for x in b], m.cfg, s.now))))
    return float(np.nanmean(out))


def rank_ms(models, s, repeats: int = 20) -> float:
    """Median time of rank() over 700 candidates with an already loaded model."""
    model = next(iter(models.values()))
    cands = list(s.videos.values())[:700]
    rank(model, cands, k=10, exclude=(), now=s.now)  # warm: module built, hash cache filled
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        rank(model, cands, k=10, exclude=(), now=s.now)
        times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 128, 1024])
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
    print(f"rank 700 candidates (cached model): {rank_ms(models, s):.1f} ms")
    print(f"ms_per_user={last:.2f}")


if __name__ == "__main__":
    main()
