"""/similar: the videos most like one video, from three signals, each a plain input:

- co-watching (the shared item-item signal: `SharedSignals.neighbours`),
- bilibili's own related list of the video,
- content: shared tags, the same uploader, the same partition (`content_similarity`, a pure
  function of two videos, so a video nobody here has watched still gets neighbours; title words or
  other content features extend it in one place).

Every neighbour carries the reason that lifted it most, for the reply's "because" line.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from recommender import text

from .types import Video

ReasonKind = Literal["cowatch", "tags", "uploader", "related", "partition"]


@dataclass(frozen=True)
class SimilarReason:
    kind: ReasonKind
    detail: tuple[str, ...] = ()  # the shared tags ("tags"), the uploader ("uploader"), the partition


@dataclass(frozen=True)
class ContentWeights:
    """How much each shared trait counts; a content feature added later gets its weight here."""

    tags: float = 1.0  # all tags shared (cosine over the two tag sets); some shared: a part of it
    uploader: float = 0.6
    partition: float = 0.25
    title: float = 0.5  # title words shared (cosine over the two word sets, recommender.text)


@dataclass(frozen=True)
class ContentMatch:
    score: float
    shared_tags: tuple[str, ...] = ()
    same_uploader: bool = False
    same_partition: bool = False
    parts: Mapping[str, float] = field(default_factory=dict)  # feature -> its share of `score`


def content_similarity(a: Video, b: Video, weights: ContentWeights = ContentWeights()) -> ContentMatch:
    """How alike two videos are by what they are: tags and title words (cosine of the two sets),
    uploader, partition."""
    tags_a, tags_b = set(a.tags), set(b.tags)
    shared = tuple(t for t in a.tags if t in tags_b)
    tag_part = weights.tags * len(shared) / math.sqrt(len(tags_a) * len(tags_b)) if shared else 0.0
    words_a, words_b = set(text.video_tokens(a)), set(text.video_tokens(b))
    common = len(words_a & words_b)
    title_part = weights.title * common / math.sqrt(len(words_a) * len(words_b)) if common else 0.0
    same_up = a.owner_mid != 0 and a.owner_mid == b.owner_mid
    same_part = a.tid != 0 and a.tid == b.tid
    parts = {
        "tags": tag_part,
        "title": title_part,
        "uploader": weights.uploader * same_up,
        "partition": weights.partition * same_part,
    }
    return ContentMatch(sum(parts.values()), shared, same_up, same_part, parts)


@dataclass(frozen=True)
class SignalWeights:
    cowatch: float = 1.0  # times the neighbour's co-watch similarity, scaled so the strongest is 1
    related: float = 0.5  # bilibili's related list: the first place, decaying down the list
    content: ContentWeights = ContentWeights()


@dataclass(frozen=True)
class Neighbour:
    bvid: str
    score: float  # similarity to the video asked about (not a personal rating)
    reason: SimilarReason


def similar_videos(
    query: Video,
    pool: Sequence[Video],
    *,
    cowatch: Mapping[str, float] | None = None,
    related: Sequence[str] = (),
    k: int = 5,
    exclude: Collection[str] = (),
    per_uploader: int = 2,
    weights: SignalWeights = SignalWeights(),
) -> list[Neighbour]:
    """The `k` videos of `pool` most like `query`, best first, at most `per_uploader` of one uploader
    (a page of one uploader's videos says less than it shows). `cowatch`: bvid -> co-watch
    similarity to the query; `related`: bilibili's related list of the query, in its order."""
    cowatch = cowatch or {}
    top_cowatch = max(cowatch.values(), default=0.0) or 1.0
    related_at = {b: i for i, b in enumerate(dict.fromkeys(related))}
    skip = set(exclude) | {query.bvid}
    scored: list[Neighbour] = []
    seen: set[str] = set()
    for video in pool:
        if video.bvid in skip or video.bvid in seen:
            continue
        seen.add(video.bvid)
        match = content_similarity(query, video, weights.content)
        parts = {f"content:{name}": value for name, value in match.parts.items()}
        parts["cowatch"] = weights.cowatch * cowatch.get(video.bvid, 0.0) / top_cowatch
        if video.bvid in related_at:
            parts["related"] = weights.related / (1.0 + 0.1 * related_at[video.bvid])
        score = sum(parts.values())
        if score > 0:
            scored.append(Neighbour(video.bvid, score, _reason(query, video, match, parts)))
    scored.sort(key=lambda n: -n.score)
    return _cap_uploaders(scored, {v.bvid: v.owner_mid for v in pool}, k, per_uploader)


def _reason(query: Video, video: Video, match: ContentMatch, parts: Mapping[str, float]) -> SimilarReason:
    """The signal that lifted the neighbour most, in words a user can check."""
    best = max(parts, key=lambda name: parts[name])
    if best == "cowatch":
        return SimilarReason("cowatch")
    if best == "content:tags" or (best == "related" and match.shared_tags):
        return SimilarReason("tags", match.shared_tags[:3])
    if best == "content:uploader" or (best == "related" and match.same_uploader):
        return SimilarReason("uploader", (video.owner_name,))
    if best == "related":
        return SimilarReason("related")
    return SimilarReason("partition", (video.tname or query.tname,))


def _cap_uploaders(
    ordered: Sequence[Neighbour], uploader_of: Mapping[str, int], k: int, per_uploader: int
) -> list[Neighbour]:
    counts: Counter[int] = Counter()
    page: list[Neighbour] = []
    for n in ordered:
        up = uploader_of.get(n.bvid, 0)
        if up and counts[up] >= per_uploader:
            continue
        counts[up] += 1
        page.append(n)
        if len(page) == k:
            break
    return page


def blend_personal(
    neighbours: Sequence[Neighbour], ratings: Mapping[str, int], k: int, weight: float = 0.5
) -> list[Neighbour]:
    """The neighbours a user will like most among the most similar: similarity (scaled to the best)
    plus `weight` x their rating (0..100 scaled to 0..1). Without ratings, the similarity order."""
    if not neighbours:
        return []
    top = max(n.score for n in neighbours) or 1.0

    def blended(n: Neighbour) -> float:
        return n.score / top + weight * ratings.get(n.bvid, 0) / 100

    return sorted(neighbours, key=blended, reverse=True)[:k]
