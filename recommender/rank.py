"""Candidates -> scores -> 0..100 rating -> diversity re-rank with one exploration slot -> reasons."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from .diversity import mmr_page
from .features import encode_candidates, hash_id, quality_score
from .shared import SharedSignals
from .twotower import TwoTower
from .types import Pick, Reason, Video
from .user_model import UserModel


def _caps(k: int) -> tuple[int, int]:
    """At most k/5 videos of one uploader and half the page sharing one tag."""
    return max(1, k // 5), max(2, (k + 1) // 2)


def diversify(order: Sequence[int], videos: Sequence[Video], k: int) -> list[int]:
    """Greedy in score order, skipping items that would break a cap; if the caps leave the page short,
    it is topped up in score order (a short page is worse than a repetitive one)."""
    max_up, max_tag = _caps(k)
    ups: Counter[int] = Counter()
    tags: Counter[str] = Counter()
    page: list[int] = []
    for i in order:
        v = videos[i]
        if ups[v.owner_mid] >= max_up or any(tags[t] >= max_tag for t in v.tags):
            continue
        page.append(i)
        ups[v.owner_mid] += 1
        tags.update(set(v.tags))
        if len(page) == k:
            return page
    chosen = set(page)
    return page + [i for i in order if i not in chosen][: k - len(page)]


def _candidates(candidates: Sequence[Video], exclude: Collection[str]) -> list[Video]:
    seen = set(exclude)
    out = []
    for v in candidates:
        if v.bvid not in seen:
            seen.add(v.bvid)
            out.append(v)
    return out


def rank_popular(
    candidates: Sequence[Video], *, k: int, exclude: Collection[str], now: int, followed: Collection[int] = ()
) -> list[Pick]:
    """Cold start: by quality, same diversity rule; the rating is the quality in percent."""
    vids = _candidates(candidates, exclude)
    q = np.array([quality_score(v) for v in vids])
    page = diversify(list(np.argsort(-q, kind="stable")), vids, k)
    return [
        Pick(
            vids[i].bvid,
            float(q[i]),
            int(round(100 * q[i])),
            _followed_or(vids[i], followed, Reason("popular", vids[i].tname)),
        )
        for i in page
    ]


def _followed_or(v: Video, followed: Collection[int], reason: Reason) -> Reason:
    """A video of an uploader the user follows says so ("new from X, whom you follow"): the one
    reason the user can check at a glance; otherwise `reason`."""
    return Reason("followed", v.owner_name) if v.owner_mid in followed else reason


@contextmanager
def _one_thread() -> Iterator[None]:
    """Score on the calling thread only. Ranking is ~1 ms of tiny ops; split across OpenMP threads, each
    op waits at a barrier for the other core, which on a busy machine can take a scheduler slice
    (measured on 2 cores, 657 candidates: median 1 ms single-threaded, 36 ms with 2 threads).
    torch's thread count is per thread once a thread has run an op; a thread running its very first
    op while this is active would start with 1 thread (slower, never wrong)."""
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def rank(
    model: UserModel,
    candidates: Sequence[Video],
    *,
    k: int,
    exclude: Collection[str],
    now: int,
    shared: SharedSignals | None = None,
    liked_titles: Mapping[str, str] | None = None,
    followed: Collection[int] = (),
    tower: TwoTower | None = None,
) -> list[Pick]:
    """`followed`: the mids of the uploaders the user follows (their picks get the `followed` reason).
    `tower`: the shared two-tower model; when given, the page is ordered by MMR over its item vectors."""
    vids = _candidates(candidates, exclude)
    if not vids or k <= 0:
        return []
    history = list(dict.fromkeys([*model.history, *(liked_titles or {})]))
    cf, ease = model.shared_scores(shared, history, [v.bvid for v in vids])
    with _one_thread():
        logits = model.logits(encode_candidates(vids, model.cfg, now), followed)
    scores = model.final_scores(logits, cf, ease)
    ratings = model.rating(scores)
    order = list(np.argsort(-scores, kind="stable"))
    explore_slot = len(vids) > k and k >= 3  # one slot for something outside the user's usual taste
    page = _page(order, scores, vids, k - 1 if explore_slot else k, tower)
    picks = [
        Pick(
            vids[i].bvid,
            float(scores[i]),
            int(ratings[i]),
            _followed_or(vids[i], followed, _reason(model, vids[i], shared, history, liked_titles or {})),
        )
        for i in page
    ]
    if explore_slot and (j := _explore(order, vids, page)) is not None:
        reason = _followed_or(vids[j], followed, Reason("explore", _top_tag(vids[j])))
        picks.append(Pick(vids[j].bvid, float(scores[j]), int(ratings[j]), reason, True))
    return picks


def _page(order: Sequence[int], scores: np.ndarray, vids: Sequence[Video], k: int, tower: TwoTower | None) -> list[int]:
    """MMR (recommender/diversity.py) when item vectors exist, else the score order; both within the caps."""
    if tower is None:
        return diversify(order, vids, k)
    with _one_thread():  # the item tower encodes the videos newer than its build
        return mmr_page(order, scores, vids, tower.item_vectors, k, _caps(k))


EXPLORE_SCAN = 1000  # candidates the exploration slot looks at (all of them up to 2,000 candidates)


def _explore(order: Sequence[int], vids: Sequence[Video], page: Sequence[int]) -> int | None:
    """The best-quality video from the lower half of the ranking whose uploader and tags are all
    new to the page: the model is least sure there, so feedback on it teaches the most."""
    on_page = set(page)
    tags = {t for i in page for t in vids[i].tags}
    ups = {vids[i].owner_mid for i in page}
    # the top of the lower half only: over a recalled catalogue of 20,000 the whole half cost ~10 ms
    lower = order[len(order) // 2 :][:EXPLORE_SCAN]
    rest = [i for i in lower if i not in on_page]
    fresh = [i for i in rest if vids[i].owner_mid not in ups and not tags & set(vids[i].tags)] or rest
    return max(fresh, key=lambda i: quality_score(vids[i])) if fresh else None


def _top_tag(v: Video) -> str:
    return v.tags[0] if v.tags else v.tname


def _reason(
    model: UserModel, v: Video, shared: SharedSignals | None, history: Sequence[str], liked_titles: Mapping[str, str]
) -> Reason:
    """Whichever learnt part lifts this video most: a tag, its uploader, or a similar liked video."""
    cfg = model.cfg
    tag_w, up_w = model.state["wide.tag"].mean(0), model.state["wide.uploader"].mean(0)
    options: list[tuple[float, Reason]] = []
    if v.tags:
        tag = max(v.tags[: cfg.max_tags], key=lambda t: float(tag_w[hash_id("tag", t, cfg.tag_buckets)]))
        options.append((float(tag_w[hash_id("tag", tag, cfg.tag_buckets)]), Reason("tag", tag)))
    options.append(
        (float(up_w[hash_id("up", str(v.owner_mid), cfg.uploader_buckets)]), Reason("uploader", v.owner_name))
    )
    if shared is not None and model.fusion > 0 and (sim := shared.most_similar(history, v.bvid)):
        title = liked_titles.get(sim[0], sim[0])
        options.append((model.fusion * sim[1] / model.cf_std, Reason("similar", title)))
    best_w, best = max(options, key=lambda t: t[0])
    return best if best_w > 0 else Reason("popular", v.tname)
