"""Late fusion of a user's W&D logits with the shared signals (item-kNN and EASE item weights).

final score = logit + a_knn * z(kNN) + a_ease * z(EASE), each z standardised over the user's own
samples. Each user's (a_knn, a_ease) is the grid point that ranks their validation slice best, shrunk
toward the prior (cfg.fusion_prior, cfg.ease_prior) by the number of validation positives (few
positives -> mostly the prior); a 0 weight drops a signal. The prior is fixed, not pooled over the
users being trained, so a user's model does not depend on who else is in the pass."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .metrics import auc, ndcg_of_scores
from .types import TrainConfig


@dataclass(frozen=True)
class ValidationSlice:
    """One user's validation samples: W&D logits, standardised shared scores [signals, N], labels."""

    logits: np.ndarray
    signals: np.ndarray
    positive: np.ndarray  # bool [N]


def standardise(scores: np.ndarray) -> tuple[float, float]:
    """(mean, std) of a user's scores over their own samples (std floored: a flat signal stays flat)."""
    return (float(scores.mean()), float(max(scores.std(), 1e-3))) if scores.size else (0.0, 1.0)


def weight_grid(cfg: TrainConfig, with_ease: bool) -> np.ndarray:
    """Every (kNN, EASE) weight pair tried [G, 2]; EASE stays 0 when the signals have none."""
    ease = cfg.ease_grid if with_ease else (0.0,)
    return np.array(list(itertools.product(cfg.fusion_grid, ease)), dtype=np.float64)


def grid_metric(vs: ValidationSlice, grid: np.ndarray, metric: str) -> np.ndarray:
    """The validation metric of every grid point [G]."""
    scores = vs.logits[None, :] + grid @ vs.signals
    score = auc if metric == "auc" else ndcg_of_scores
    return np.array([score(vs.positive, s) for s in scores])


def choose_weights(
    slices: Sequence[ValidationSlice | None], grid: np.ndarray, cfg: TrainConfig
) -> list[tuple[float, float]]:
    """Per user (None: no validation slice) the fused (kNN, EASE) weights."""
    prior = np.array([cfg.fusion_prior, cfg.ease_prior]) * (grid.max(0) > 0)  # a signal not built: weight 0
    out = []
    for vs in slices:
        m = grid_metric(vs, grid, cfg.fusion_metric) if vs is not None else None
        if vs is None or m is None or not np.isfinite(m).all():
            out.append((float(prior[0]), float(prior[1])))
            continue
        best = grid[int(np.argmax(m))]  # first of equals: the grid's smaller weights
        n_pos = int(vs.positive.sum())
        w = (n_pos * best + cfg.fusion_shrink * prior) / (n_pos + cfg.fusion_shrink)
        out.append((float(w[0]), float(w[1])))
    return out
