"""Collaborative item signal shared by all users: item-kNN over everyone's behaviour + related graph."""
from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Mapping, Sequence

import numpy as np
from safetensors.numpy import load_file, save_file

from .types import Event

# kinds that say "this user chose this video" (shown and thumb_down do not)
INTERACTION_KINDS = frozenset({"watch", "like", "favorite", "coin", "thumb_up"})


@dataclass
class SharedSignals:
    """Top-K neighbours per item: score(j | history H) = sum over h in H of sim(h -> j)."""

    bvids: list[str]
    nbr_idx: np.ndarray  # int64 [I, K], -1 = none
    nbr_sim: np.ndarray  # float32 [I, K]

    def __post_init__(self) -> None:
        self.index = {b: i for i, b in enumerate(self.bvids)}

    def scores(self, history: Collection[str], bvids: Sequence[str]) -> np.ndarray:
        """kNN score of each bvid given a user's history (0 for unknown items)."""
        acc = np.zeros(len(self.bvids) + 1, dtype=np.float32)  # last slot swallows -1 padding
        rows = [self.index[h] for h in history if h in self.index]
        if rows:
            idx = self.nbr_idx[rows].ravel()
            np.add.at(acc, idx, self.nbr_sim[rows].ravel())
        out = np.array([acc[self.index[b]] if b in self.index else 0.0 for b in bvids], dtype=np.float32)
        return out

    def most_similar(self, history: Collection[str], bvid: str) -> tuple[str, float] | None:
        """The history item that contributes most to bvid's score (for a 'similar' reason)."""
        j = self.index.get(bvid)
        if j is None:
            return None
        best: tuple[str, float] | None = None
        for h in history:
            i = self.index.get(h)
            if i is None:
                continue
            hit = np.nonzero(self.nbr_idx[i] == j)[0]
            if hit.size and (best is None or self.nbr_sim[i, hit[0]] > best[1]):
                best = (h, float(self.nbr_sim[i, hit[0]]))
        return best

    def save(self, path: Path) -> None:
        """safetensors + the bvid list in its metadata; atomic replace, never pickled."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        save_file({"nbr_idx": self.nbr_idx, "nbr_sim": self.nbr_sim}, tmp,
                  metadata={"bvids": json.dumps(self.bvids)})
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "SharedSignals":
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            bvids = json.loads(f.metadata()["bvids"])
        t = load_file(str(path))
        return cls(bvids, t["nbr_idx"], t["nbr_sim"])


def build_shared_signals(
    events_by_user: Mapping[str, Sequence[Event]],
    related: Mapping[str, Sequence[str]],
    *,
    k: int = 100,
    related_weight: float = 0.5,
) -> SharedSignals:
    """Cosine item-item similarity on the binary user x item matrix, top-k per item,
    plus bilibili's related-video edges (weight decaying with the related list position)."""
    users = [sorted({e.bvid for e in evs if e.kind in INTERACTION_KINDS}) for evs in events_by_user.values()]
    vocab = sorted({b for u in users for b in u} | set(related) | {b for r in related.values() for b in r})
    index = {b: i for i, b in enumerate(vocab)}
    edges = [
        (index[src], index[dst], related_weight / (1.0 + 0.1 * pos))
        for src, dsts in related.items()
        for pos, dst in enumerate(dsts)
        if src != dst
    ]
    if len(vocab) <= 5000:  # dense is exact and fast at this size
        nbr_idx, nbr_sim = _dense_topk(users, index, edges, k)
    else:
        nbr_idx, nbr_sim = _sparse_topk(users, index, edges, k)
    return SharedSignals(vocab, nbr_idx, nbr_sim)


def _dense_topk(users: list[list[str]], index: dict[str, int], edges: list[tuple[int, int, float]],
                k: int) -> tuple[np.ndarray, np.ndarray]:
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


def _sparse_topk(users: list[list[str]], index: dict[str, int], edges: list[tuple[int, int, float]],
                 k: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(index)
    counts: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    deg = np.zeros(n, dtype=np.float64)
    for items in users:
        ids = [index[b] for b in items]
        deg[ids] += 1
        for a in ids:
            for b in ids:
                if a != b:
                    counts[a][b] += 1.0
    rows = {i: {j: c / np.sqrt(deg[i] * deg[j]) for j, c in row.items()} for i, row in counts.items()}
    for i, j, w in edges:
        rows.setdefault(i, {})[j] = rows.get(i, {}).get(j, 0.0) + w
        rows.setdefault(j, {})[i] = rows.get(j, {}).get(i, 0.0) + w
    nbr_idx = np.full((n, k), -1, dtype=np.int64)
    nbr_sim = np.zeros((n, k), dtype=np.float32)
    for i, row in rows.items():
        top = sorted(row.items(), key=lambda t: -t[1])[:k]
        nbr_idx[i, : len(top)] = [j for j, _ in top]
        nbr_sim[i, : len(top)] = [s for _, s in top]
    return nbr_idx, nbr_sim
