"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"): an item-item baseline.

Closed form: with G = XᵀX over the binary user x item matrix X and P = (G + λI)⁻¹,
B = I - P·diagMat(1/diag(P)), i.e. B_ij = -P_ij / P_jj and diag(B) = 0; a user's scores are x_u B.
Data in (each user's items), scores out; numpy only."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .metrics import ndcg_at_k

# The ridge strengths tried on the validation split (kept here only: choose_l2's default).
L2_GRID: tuple[float, ...] = (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)


@dataclass(frozen=True)
class Ease:
    """A fitted EASE model: the items it knows and their item-item weights."""

    items: list[str]
    weights: np.ndarray  # B [I, I], zero diagonal
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {b: i for i, b in enumerate(self.items)})

    def scores(self, history: Collection[str], candidates: Sequence[str]) -> np.ndarray:
        """x_u B for the candidates (0 for items the model never saw)."""
        rows = [self.index[b] for b in dict.fromkeys(history) if b in self.index]  # ordered: same sum every run
        row = self.weights[rows].sum(0) if rows else np.zeros(len(self.items))
        return np.array([row[self.index[c]] if c in self.index else 0.0 for c in candidates])


def fit_ease(interactions: Mapping[str, Collection[str]], l2: float, items: Sequence[str] = ()) -> Ease:
    """interactions: user -> the items they chose (repeats count once). items: also score these
    (an item nobody chose scores 0)."""
    catalogue = sorted({b for chosen in interactions.values() for b in chosen} | set(items))
    x = _matrix(interactions.values(), catalogue)
    return Ease(catalogue, _weights(x.T @ x, l2))


def _weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """B = I - P·diagMat(1/diag(P)), P = (G + λI)⁻¹: off the diagonal B_ij = -P_ij / P_jj, diag(B) = 0."""
    p = np.linalg.inv(gram + l2 * np.eye(len(gram)))
    weights = p / -np.diag(p)  # column j divided by -P_jj
    weights[np.diag_indices_from(weights)] = 0.0
    return weights


def _matrix(rows: Iterable[Collection[str]], items: Sequence[str]) -> np.ndarray:
    """Binary [len(rows), len(items)] matrix: 1 where the row chose the item."""
    at = {b: i for i, b in enumerate(items)}
    rows = list(rows)
    x = np.zeros((len(rows), len(items)))
    for u, chosen in enumerate(rows):
        x[u, [at[b] for b in set(chosen) if b in at]] = 1.0
    return x


def choose_l2(
    sequences: Mapping[str, Sequence[str]], grid: Sequence[float] = L2_GRID, val_fraction: float = 0.2, k: int = 10
) -> tuple[float, dict[float, float]]:
    """The λ with the best mean NDCG@k when each user's last `val_fraction` of items (in the given
    order, oldest first) is held out and all items the user has not chosen before are ranked.
    Returns (best λ, mean NDCG per λ)."""
    fit: dict[str, list[str]] = {}
    val: dict[str, set[str]] = {}
    for u, seq in sequences.items():
        items = list(dict.fromkeys(seq))
        n_fit = len(items) - int(len(items) * val_fraction)
        fit[u], val[u] = items[:n_fit], set(items[n_fit:])
    catalogue = sorted({b for seq in sequences.values() for b in seq})
    judged = [u for u in sequences if val[u] and fit[u]]
    seen = _matrix([fit[u] for u in judged], catalogue)
    x = _matrix(fit.values(), catalogue)
    gram = x.T @ x
    results: dict[float, float] = {}
    for l2 in grid:
        scores = seen @ _weights(gram, l2)
        scores[seen > 0] = -np.inf  # rank only what the user has not chosen before
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        ndcg = [ndcg_at_k([catalogue[i] for i in t], val[u], k) for u, t in zip(judged, top)]
        results[l2] = float(np.mean(ndcg)) if ndcg else 0.0
    return max(results, key=lambda l2: results[l2]), results
