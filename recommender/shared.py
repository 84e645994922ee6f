"""Collaborative item signals shared by all users: item-kNN over everyone's behaviour + related graph,
and EASE item-item weights (recommender/ease.py) over the most chosen videos."""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from .ease import choose_l2, fit_ease
from .types import Event

# kinds that say "this user chose this video" (shown and thumb_down do not)
INTERACTION_KINDS = frozenset({"watch", "like", "favorite", "coin", "thumb_up"})


@dataclass
class SharedSignals:
    """Top-K neighbours per item: score(j | history H) = sum over h in H of sim(h -> j)."""

    bvids: list[str]
    nbr_idx: np.ndarray  # int [I, K], -1 = none
    nbr_sim: np.ndarray  # float32 [I, K]
    # Whose behaviour the build read (user keys): a /forget drops the signals only for a member.
    members: frozenset[str] = frozenset()
    built_at: int = 0
    # EASE over the most chosen videos: their rows in `bvids` and the dense item-item weights B
    # (exact: truncating B to top-K per item cost ML-100k 0.003-0.02 NDCG@10). None: not built.
    ease_rows: np.ndarray | None = None  # int [E]
    ease_weights: np.ndarray | None = None  # float32 [E, E], zero diagonal
    ease_l2: float = 0.0  # the ridge chosen on validation

    def __post_init__(self) -> None:
        self.index = {b: i for i, b in enumerate(self.bvids)}
        rows = self.ease_rows if self.ease_rows is not None else ()
        self.ease_index = {self.bvids[int(r)]: i for i, r in enumerate(rows)}

    @property
    def has_ease(self) -> bool:
        return self.ease_weights is not None and len(self.ease_index) > 0

    def ease_scores(self, history: Collection[str], bvids: Sequence[str]) -> np.ndarray:
        """EASE score x_u B of each bvid given a user's history (0 outside the EASE items)."""
        out = np.zeros(len(bvids), dtype=np.float32)
        if not self.has_ease:
            return out
        rows = [self.ease_index[h] for h in dict.fromkeys(history) if h in self.ease_index]
        if not rows:
            return out
        acc = np.append(self.ease_weights[rows].sum(0), np.float32(0.0))  # last slot: unknown bvids
        at = np.fromiter((self.ease_index.get(b, -1) for b in bvids), dtype=np.int64, count=len(bvids))
        return acc[at].astype(np.float32)

    def scores(self, history: Collection[str], bvids: Sequence[str]) -> np.ndarray:
        """kNN score of each bvid given a user's history (0 for unknown items)."""
        acc = np.zeros(len(self.bvids) + 1, dtype=np.float32)  # last slot swallows -1 padding
        rows = [self.index[h] for h in history if h in self.index]
        if rows:
            idx = self.nbr_idx[rows].ravel()
            np.add.at(acc, idx, self.nbr_sim[rows].ravel())
        at = np.fromiter((self.index.get(b, -1) for b in bvids), dtype=np.int64, count=len(bvids))
        acc[-1] = 0.0  # unknown bvids (and -1 padding) score 0
        return acc[at]

    def neighbours(self, bvid: str) -> dict[str, float]:
        """The videos most often chosen with `bvid` (and its related-list links): bvid -> similarity."""
        i = self.index.get(bvid)
        if i is None:
            return {}
        return {self.bvids[j]: float(s) for j, s in zip(self.nbr_idx[i], self.nbr_sim[i]) if j >= 0 and s > 0}

    def most_similar(self, history: Collection[str], bvid: str) -> tuple[str, float] | None:
        """The history item that contributes most to bvid's score (for a 'similar' reason)."""
        j = self.index.get(bvid)
        if j is None:
            return None
        known = [h for h in history if h in self.index]
        if not known:
            return None
        rows = [self.index[h] for h in known]
        best = np.where(self.nbr_idx[rows] == j, self.nbr_sim[rows], 0.0).max(1)
        at = int(np.argmax(best))  # first of equals: history order, as before
        return (known[at], float(best[at])) if best[at] > 0 else None

    def save(self, path: Path) -> None:
        """safetensors + the bvid list in its metadata; atomic replace, never pickled."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        save_file(self.tensors(), tmp, metadata=self.metadata())
        os.replace(tmp, path)

    def tensors(self) -> dict[str, np.ndarray]:
        """The arrays both model stores save (the EASE ones only when built)."""
        out = {"nbr_idx": self.nbr_idx, "nbr_sim": self.nbr_sim}
        if self.ease_rows is not None and self.ease_weights is not None:
            out |= {
                "ease_rows": np.ascontiguousarray(self.ease_rows, dtype=np.int64),
                "ease_weights": np.ascontiguousarray(self.ease_weights, dtype=np.float32),
            }
        return out

    def metadata(self) -> dict[str, str]:
        """What travels beside the tensors (safetensors metadata: strings only, never code)."""
        return {
            "bvids": json.dumps(self.bvids),
            "members": json.dumps(sorted(self.members)),
            "built_at": str(self.built_at),
            "ease_l2": str(self.ease_l2),
        }

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> SharedSignals:
        """Signals saved before EASE existed load without it (fused as kNN alone)."""
        return cls(
            json.loads(metadata["bvids"]),
            tensors["nbr_idx"],
            tensors["nbr_sim"],
            frozenset(json.loads(metadata.get("members", "[]"))),
            int(metadata.get("built_at", "0")),
            tensors.get("ease_rows"),
            tensors.get("ease_weights"),
            float(metadata.get("ease_l2", "0")),
        )

    @classmethod
    def load(cls, path: Path) -> SharedSignals:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata()
        return cls.from_tensors(load_file(str(path)), metadata)


def build_shared_signals(
    events_by_user: Mapping[str, Sequence[Event]],
    related: Mapping[str, Sequence[str]],
    *,
    k: int = 100,
    related_weight: float = 0.5,
    built_at: int = 0,
    ease: bool = True,
) -> SharedSignals:
    """Cosine item-item similarity on the binary user x item matrix, top-k per item,
    plus bilibili's related-video edges (weight decaying with the related list position), and EASE."""
    choices = {
        u: list(dict.fromkeys(e.bvid for e in sorted(evs, key=lambda e: e.at) if e.kind in INTERACTION_KINDS))
        for u, evs in events_by_user.items()
    }
    return build_from_choices(choices, related, k=k, related_weight=related_weight, built_at=built_at, ease=ease)


def build_from_choices(
    choices: Mapping[str, Sequence[str]],
    related: Mapping[str, Sequence[str]],
    *,
    k: int = 100,
    related_weight: float = 0.5,
    built_at: int = 0,
    ease: bool = True,
) -> SharedSignals:
    """The signals from each user's chosen videos (user key -> bvids, oldest first: EASE's ridge is
    chosen on each user's newest choices).

    Up to DENSE_MAX_ITEMS videos the similarity is exact and dense. Past that (a long-tailed
    catalogue) a video chosen by one user alone has no co-watch evidence: only videos chosen by at
    least two users (or named by a related list) enter, and the co-occurrence is computed in sparse
    blocks, so time grows with the sum of squared history lengths and memory with one block."""
    users = [sorted(set(items)) for items in choices.values()]
    members = frozenset(u for u, items in zip(choices, users) if items)
    linked = set(related) | {b for r in related.values() for b in r}
    everything = {b for u in users for b in u} | linked
    if len(everything) <= DENSE_MAX_ITEMS:
        vocab = sorted(everything)
        index = {b: i for i, b in enumerate(vocab)}
        nbr_idx, nbr_sim = _dense_topk(users, index, _edges(related, index, related_weight), k)
    else:
        support = Counter(b for u in users for b in u)
        vocab = sorted({b for b, n in support.items() if n >= 2} | linked)
        index = {b: i for i, b in enumerate(vocab)}
        nbr_idx, nbr_sim = _sparse_topk(users, index, _edges(related, index, related_weight), min(k, SPARSE_NEIGHBOURS))
    shared = SharedSignals(vocab, nbr_idx, nbr_sim, members, built_at)
    return _with_ease(shared, choices, index) if ease else shared


def _with_ease(shared: SharedSignals, choices: Mapping[str, Sequence[str]], index: Mapping[str, int]) -> SharedSignals:
    """EASE over the EASE_MAX_ITEMS most chosen videos of the kNN vocabulary, its ridge chosen on
    validation (each user's newest fifth held out, ease.choose_l2)."""
    support = Counter(b for items in choices.values() for b in set(items) if b in index)
    top = sorted(support, key=lambda b: (-support[b], b))[:EASE_MAX_ITEMS]
    if len(top) < 2:
        return shared
    keep = set(top)
    seqs = {u: [b for b in dict.fromkeys(items) if b in keep] for u, items in choices.items()}
    seqs = {u: s for u, s in seqs.items() if s}
    l2, _ = choose_l2(seqs)
    model = fit_ease(seqs, l2, items=top)
    return replace(
        shared,
        ease_rows=np.array([index[b] for b in model.items], dtype=np.int64),
        ease_weights=model.weights.astype(np.float32),
        ease_l2=l2,
    )


def linkable_items(choices: Mapping[str, Collection[str]]) -> set[str]:
    """The videos that enter a build by co-watching (whose related lists are worth reading)."""
    support = Counter(b for items in choices.values() for b in set(items))
    if len(support) <= DENSE_MAX_ITEMS:
        return set(support)
    return {b for b, n in support.items() if n >= 2}


# EASE inverts an items x items matrix once per ridge tried and every ranking process holds its
# dense weights (3000^2 float32: 36 MB): the most chosen videos only.
EASE_MAX_ITEMS = 3000
DENSE_MAX_ITEMS = 5000  # a dense item x item matrix of this size is 100 MB and exact
# Neighbours kept per video past DENSE_MAX_ITEMS: every process that ranks holds the signals, and
# co-watch evidence past the 50th neighbour of a long-tailed video is thin.
SPARSE_NEIGHBOURS = 50
_BLOCK_ROWS = 2048  # items per sparse block: bounds the memory of one co-occurrence block


def _edges(
    related: Mapping[str, Sequence[str]], index: Mapping[str, int], weight: float
) -> list[tuple[int, int, float]]:
    return [
        (index[src], index[dst], weight / (1.0 + 0.1 * pos))
        for src, dsts in related.items()
        for pos, dst in enumerate(dsts)
        if src != dst and src in index and dst in index
    ]


def _dense_topk(
    users: list[list[str]], index: dict[str, int], edges: list[tuple[int, int, float]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    n = len(index)
    m = np.zeros((len(users), n), dtype=np.float32)
    for u, items in enumerate(users):
        m[u, [index[b] for b in items]] = 1.0
    co = m.T @ m
    norm = np.sqrt(np.diag(co)).clip(min=1e-9)
    sim = co / norm[:, None] / norm[None, :]
    np.fill_diagonal(sim, 0.0)
    for i, j, w in edges:  # related graph: symmetric extra similarity
        sim[i, j] += w
        sim[j, i] += w
    kk = max(1, min(k, n - 1))
    nbr_idx = np.argpartition(-sim, kk - 1, axis=1)[:, :kk] if n > 1 else np.zeros((n, 1), dtype=np.int64)
    nbr_sim = np.take_along_axis(sim, nbr_idx, axis=1).astype(np.float32)
    nbr_idx = np.where(nbr_sim > 0, nbr_idx, -1).astype(np.int64)
    return nbr_idx, np.where(nbr_sim > 0, nbr_sim, 0.0).astype(np.float32)


def _sparse_topk(
    users: list[list[str]], index: dict[str, int], edges: list[tuple[int, int, float]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k cosine neighbours block by block: C[block] = X[:, block]^T X over the users x items matrix."""
    from scipy import sparse  # only large builds need it

    n = len(index)
    rows, cols = [], []
    for u, items in enumerate(users):
        ids = [index[b] for b in items if b in index]
        rows.extend([u] * len(ids))
        cols.extend(ids)
    x = sparse.csc_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(users), n))
    x_rows = x.tocsr()
    degree = np.asarray(x.sum(axis=0)).ravel()
    inv_norm = 1.0 / np.sqrt(degree.clip(min=1.0))
    if edges:
        src, dst, w = (np.array(v) for v in zip(*edges))
        links = sparse.coo_matrix((w.astype(np.float32), (src, dst)), shape=(n, n)).tocsr()
        links = (links + links.T).tocsr()
    else:
        links = sparse.csr_matrix((n, n), dtype=np.float32)
    nbr_idx = np.full((n, k), -1, dtype=np.int32)
    nbr_sim = np.zeros((n, k), dtype=np.float32)
    for start in range(0, n, _BLOCK_ROWS):
        stop = min(n, start + _BLOCK_ROWS)
        co = (x[:, start:stop].T.tocsr() @ x_rows).tocsr()  # [block, n] co-occurrence counts
        co = sparse.diags(inv_norm[start:stop]) @ co @ sparse.diags(inv_norm)
        block = (co + links[start:stop]).tocsr()
        block.setdiag(0.0, k=start)  # an item is not its own neighbour
        block.eliminate_zeros()
        _top_rows(block, start, nbr_idx, nbr_sim)
    return nbr_idx, nbr_sim


def _top_rows(block, start: int, nbr_idx: np.ndarray, nbr_sim: np.ndarray) -> None:
    """Each row's k largest entries into nbr_idx/nbr_sim at row start + r."""
    k = nbr_idx.shape[1]
    for r in range(block.shape[0]):
        lo, hi = block.indptr[r], block.indptr[r + 1]
        if lo == hi:
            continue
        vals, cols = block.data[lo:hi], block.indices[lo:hi]
        if hi - lo > k:
            top = np.argpartition(-vals, k - 1)[:k]
            vals, cols = vals[top], cols[top]
        order = np.argsort(-vals, kind="stable")
        nbr_idx[start + r, : len(order)] = cols[order]
        nbr_sim[start + r, : len(order)] = vals[order]
