"""Plain data passed in and out of the recommender: no Telegram, HTTP or database types here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Video:
    bvid: str
    title: str
    owner_mid: int
    owner_name: str
    tags: tuple[str, ...]
    tid: int
    tname: str
    duration: int
    pubdate: int  # unix s
    view: int
    like: int
    favorite: int
    coin: int
    share: int
    danmaku: int
    reply: int
    # The title's words (recommender.text.title_tokens), stored when the metadata was saved; empty:
    # not stored, the title is tokenised when encoded. Named as the catalogue's column.
    title_tokens: tuple[str, ...] = ()


# "blocked": a video of an uploader or with a tag the user blocked ("never show me this");
# "later": saved to bilibili's watch later from a pick's button
EventKind = Literal["watch", "like", "favorite", "coin", "thumb_up", "thumb_down", "shown", "later", "blocked"]


@dataclass(frozen=True)
class Event:
    """One thing a user did (or was shown) with one video."""

    bvid: str
    kind: EventKind
    at: int  # unix s
    progress: int | None = None  # watch: seconds watched, -1 = to the end
    duration: int | None = None  # watch: length in seconds
    coins: int | None = None  # coin: how many (1 or 2)
    views: int | None = None  # watch: how many times the user watched it (repeat watches)


@dataclass(frozen=True)
class Reason:
    """Structured so the bot can word it in zh or en."""

    kind: Literal["tag", "uploader", "similar", "popular", "explore", "followed"]
    detail: str  # the tag name, uploader name (also of a followed one), or liked video's title


@dataclass(frozen=True)
class Pick:
    bvid: str
    score: float
    rating: int  # 0..100: percentile of the score among popular videos this user never clicked
    reason: Reason
    explore: bool = False


@dataclass(frozen=True)
class TasteProfile:
    tags: list[tuple[str, float]]
    uploaders: list[tuple[str, float]]
    partitions: list[tuple[str, float]]


@dataclass(frozen=True)
class UserData:
    """Everything needed to train one user's model."""

    events: Sequence[Event]
    negatives_pool: Sequence[str] = ()  # popular bvids the user never clicked
    followed: frozenset[int] = frozenset()  # mids of the uploaders the user follows


@dataclass(frozen=True)
class TrainConfig:
    # vocabulary sizes (bucket 0 is padding, never a real id)
    tag_buckets: int = 512
    uploader_buckets: int = 256
    partition_buckets: int = 64
    cross_buckets: int = 256
    max_tags: int = 8
    # title tokens (recommender.text): hashed like tags; 0 max_tokens turns the title off
    token_buckets: int = 1024
    max_tokens: int = 12
    embed_dim: int = 8
    hidden: tuple[int, int] = (16, 8)
    # labels: a weight per kind of feedback, chosen on validation by `python -m recommender.tune_weights`
    # (the search and its results: recommender/weights.py)
    w_explicit: float = 1.0  # scales like/favourite/coin below (labels.explicit_weight)
    w_like: float = 1.0
    w_favorite: float = 1.0
    w_coin: float = 1.0
    second_coin_gain: float = 0.0  # a second coin: the coin weight x (1 + gain); 0.5 cost the history 0.002 AUC
    w_thumb_up: float = 2.0
    w_thumb_down: float = 3.0
    w_blocked: float = 3.0  # as strong as 👎: the user said "never", of the uploader or tag
    w_later: float = 1.0  # saved for later: a positive, softer than a like
    later_label: float = 0.75
    w_watch: float = 0.5  # weak, duration-debiased soft label
    completion_gain: float = 0.5  # watch label: 0.25 + gain x (watch ratio - usual ratio at that length)
    repeat_gain: float = 0.25  # watch label: + gain per repeat watch (at most 2 counted)
    w_shown: float = 1.0  # shown and ignored
    w_pool: float = 0.1  # popular, never clicked
    # pool negatives only for users with fewer own negatives (shown, or watched and left) than this:
    # they cost the one real history 0.08 AUC (0.75 vs 0.83) but are all a positives-only user has
    pool_below_own_negatives: int = 20
    max_class_weight: float = 10.0
    half_life_days: float = 30.0
    min_recency: float = 0.2
    # optimisation
    # at most 14 steps at lr 0.15, each user's best step (>= min_steps) chosen on its validation split:
    # held-out AUC/NDCG equal to 30 steps (bench/train.py 0.811 vs 0.810; evaluate: bilibili-history
    # 0.8328 vs 0.8323, ml-100k 0.2061 vs 0.2065), ~2x faster. Patience stops users earlier in longer runs.
    lr: float = 0.15
    max_steps: int = 14
    default_steps: int = 13  # users with too little data to validate on
    patience: int = 6
    min_steps: int = 10
    l2_pull: float = 1e-2  # pull toward the shared initialisation (warm start)
    ensemble: int = 1  # members per user, from different initial weights; scores are averaged
    l2_grid: tuple[float, ...] = ()  # if set, each user picks its pull strength on validation
    val_fraction: float = 0.2
    min_val_positives: int = 2
    min_val_negatives: int = 5
    refit: bool = True  # retrain on train+val for the per-user number of steps found on val
    chunk_users: int = 256
    seed: int = 0
    # late fusion with the collaborative score, weight chosen per user on its validation split
    fusion_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
    ease_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)  # the EASE weight, chosen with the kNN one
    fusion_metric: Literal["auc", "ndcg"] = "auc"  # what the validation split optimises
    # the prior each user's weights shrink toward: the (kNN, EASE) weights that validate best over
    # all users of the pass; these only when no user of the pass can validate
    fusion_prior: float = 1.0
    ease_prior: float = 0.5
    fusion_shrink: float = 5.0  # pseudo-count of validation positives behind the prior
    history_cap: int = 500
