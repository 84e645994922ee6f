"""Recall@100 of the candidate set: today's sources alone against today's sources plus two-tower recall.

For each user, with a temporal split (train = older choices, test = the held-out ones):
- today's sources: the shared lists (popular, weekly, ranking, or the dataset's stand-in for them)
  plus the related lists of the user's 5 newest strong signals (COIN_SEED_LIMIT in jobs/sync.py);
- two-tower: RECALL_N videos recalled from the whole catalogue by the shared two-tower model;
- the union of both;
- a control: today's sources plus as many of the most popular other videos as two-tower recall adds
  (so a larger set alone does not pass for better recall).
Columns: `candidates` (mean set size, the user's train items left out), `coverage` (the share of the
held-out items anywhere in the set), `Recall@100` (the share of the held-out items in the 100 best of
the set as the system ranks it: the per-user W&D fused with item-kNN)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .shared import SharedSignals
from .twotower import TwoTower, train_two_tower
from .types import Video

RECALL_N = 300  # as jobs/picks.RECALL_CANDIDATES
RELATED_SEEDS = 5  # as jobs/sync.COIN_SEED_LIMIT
K = 100


def related_stand_in(shared: SharedSignals, n: int = 20) -> Callable[[str], list[str]]:
    """Where a dataset has no bilibili related lists: an item's n nearest item-kNN neighbours."""

    def related(bvid: str) -> list[str]:
        i = shared.index.get(bvid)
        if i is None:
            return []
        row = [(float(s), int(j)) for j, s in zip(shared.nbr_idx[i], shared.nbr_sim[i]) if j >= 0]
        return [shared.bvids[j] for _, j in sorted(row, reverse=True)[:n]]

    return related


def todays_sources(
    lists: Sequence[str], strong_newest_first: Sequence[str], related: Callable[[str], list[str]]
) -> list[str]:
    """The shared lists plus the related lists of the 5 newest strong signals."""
    out = list(lists)
    for seed in list(dict.fromkeys(strong_newest_first))[:RELATED_SEEDS]:
        out += related(seed)
    return list(dict.fromkeys(out))


def candidate_recall_table(
    train_choices: Mapping[str, Sequence[str]],  # user -> chosen bvids, newest first (the train part)
    tests: Mapping[str, set[str]],
    sources: Mapping[str, Sequence[str]],  # user -> today's candidates
    tower: TwoTower,
    score: Callable[[str, list[str]], np.ndarray],  # the system's ranking score of these bvids for the user
    popular: Sequence[str],  # the catalogue, most popular first (the control row)
) -> dict[str, dict[str, float]]:
    names = (
        "today's sources",
        "two-tower recall",
        "today's + as many popular (control)",
        "today's sources + two-tower recall",
    )
    rows: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    for u, test in tests.items():
        if not test:
            continue
        seen = set(train_choices.get(u, ()))
        today = [b for b in sources[u] if b not in seen]
        recalled = tower.recall(list(train_choices.get(u, ())), RECALL_N, exclude=seen)
        both = list(dict.fromkeys(today + recalled))
        have = set(today) | seen
        control = today + [b for b in popular if b not in have][: len(both) - len(today)]
        for name, cands in zip(names, (today, recalled, control, both)):
            if not cands:
                rows[name].append((0.0, 0.0, 0.0))
                continue
            s = score(u, cands)
            top = {cands[i] for i in np.argsort(-s, kind="stable")[:K]}
            rows[name].append((len(cands), len(test & set(cands)) / len(test), len(test & top) / len(test)))
    return {name: dict(zip(("candidates", "coverage", "Recall@100"), np.mean(r, axis=0))) for name, r in rows.items()}


def train_tower(train_choices: Mapping[str, Sequence[str]], videos: Mapping[str, Video]) -> TwoTower:
    """The two-tower model as the bot builds it: every user's choices, the whole catalogue recallable."""
    return train_two_tower(train_choices, videos, list(videos))


def mmr_sweep(
    train_choices: Mapping[str, Sequence[str]],
    tests: Mapping[str, set[str]],
    sources: Mapping[str, Sequence[str]],
    tower: TwoTower,
    score: Callable[[str, list[str]], np.ndarray],
    videos: Mapping[str, Video],
    lams: Sequence[float] = (1.0, 0.9, 0.75, 0.5, 0.25),
    k: int = 10,
) -> dict[str, dict[str, float]]:
    """The page of k from today's sources + two-tower recall, ordered by MMR at each λ (within the
    caps rank applies): the share of the page the user chose later (precision@k), the mean pairwise
    cosine of its item vectors (intra-list similarity), and how many distinct tags it shows."""
    from .diversity import mmr_page

    caps = (max(1, k // 5), max(2, (k + 1) // 2))  # rank._caps: per uploader, per tag
    rows: dict[str, list[tuple[float, float, float]]] = {f"λ = {lam:g}": [] for lam in lams}
    for u, test in tests.items():
        seen = set(train_choices.get(u, ()))
        cands = list(
            dict.fromkeys(
                [b for b in sources[u] if b not in seen]
                + tower.recall(list(train_choices.get(u, ())), RECALL_N, exclude=seen)
            )
        )
        if len(cands) < k:
            continue
        vids = [videos[b] for b in cands]
        s = score(u, cands)
        order = list(np.argsort(-s, kind="stable"))
        for lam in lams:
            page = mmr_page(order, s, vids, tower.item_vectors, k, caps, lam=lam)
            vec = tower.item_vectors([vids[i] for i in page])
            sim = vec @ vec.T
            ils = float((sim.sum() - np.trace(sim)) / (len(page) * (len(page) - 1)))
            tags = len({t for i in page for t in vids[i].tags})
            rows[f"λ = {lam:g}"].append((sum(cands[i] in test for i in page) / k, ils, tags))
    return {name: dict(zip((f"precision@{k}", "similarity", "tags"), np.mean(r, axis=0))) for name, r in rows.items()}
