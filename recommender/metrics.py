"""Ranking metrics used by training (validation), evaluation and tests."""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Sequence

import numpy as np


def auc(labels: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """ROC AUC with tied scores counted as half (Mann-Whitney); nan if one class is missing."""
    y = np.asarray(labels) > 0.5
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def ndcg_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, b in enumerate(ranked[:k]) if b in relevant)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    return sum(b in relevant for b in ranked[:k]) / len(relevant) if relevant else 0.0


def hit_at_k(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    return float(any(b in relevant for b in ranked[:k]))


def ndcg_of_scores(labels: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray, k: int = 10) -> float:
    """NDCG@k of the positives (label >= 0.5) when the samples are ranked by score, ties in sample order."""
    order = np.argsort(-np.asarray(scores), kind="stable")[:k].tolist()
    return ndcg_at_k(order, set(np.flatnonzero(np.asarray(labels) >= 0.5).tolist()), k)
