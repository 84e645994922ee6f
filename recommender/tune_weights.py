"""python -m recommender.tune_weights: choose the feedback weights on validation (recommender/weights.py).

Prints each step of the search, the chosen values as TrainConfig fields, and ends with one line
`val_auc=<before> -> <after>`. Copy the chosen values into TrainConfig's defaults."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .data import HISTORY_CSV
from .types import TrainConfig
from .weights import SEARCH, combined_objective, coordinate_search, history_objective, synthetic_objective


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--history", type=Path, default=HISTORY_CSV)
    p.add_argument("--users", type=int, default=16, help="synthetic users")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    objectives = [synthetic_objective(args.users)]
    if args.history.exists():
        objectives.insert(0, history_objective(args.history))
    else:
        print(f"no watch history at {args.history}: synthetic users only")
    start = TrainConfig()
    cfg, best = coordinate_search(combined_objective(objectives), start, rounds=args.rounds)
    print("chosen: " + ", ".join(f"{n}={getattr(cfg, n)}" for n in SEARCH))
    before = combined_objective(objectives)(start)
    print(f"val_auc={before:.4f} -> {best:.4f}")


if __name__ == "__main__":
    main()
