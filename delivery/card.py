"""The one typed record of a pick, from ranking to the chat and back after a restart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from recommender import Pick, Reason
from storage.catalogue import video_tags
from storage.picks import ShownPick

REASON_KINDS = ("tag", "uploader", "similar", "popular", "explore", "followed")


class CardVideo(Protocol):
    bvid: str
    title: str
    owner_name: str
    cover: str
    # Also read when present (catalogue rows have them): duration, view, pubdate, tags.


@dataclass(frozen=True)
class PickCard:
    """What a pick message shows: the video (plain fields, no database row), its rating and reason."""

    bvid: str
    title: str
    owner_name: str
    cover: str
    rating: int
    reason: Reason
    duration: int = 0  # seconds; 0 unknown
    views: int = 0  # 0 unknown
    pubdate: int = 0  # unix s; 0 unknown
    tags: tuple[str, ...] = ()  # in the catalogue's order: "bt:<shown>:<index>" indexes this

    @classmethod
    def of(cls, video: CardVideo, rating: int, reason: Reason) -> PickCard:
        return cls(
            video.bvid,
            video.title,
            video.owner_name,
            video.cover or "",
            rating,
            reason,
            duration=int(getattr(video, "duration", 0) or 0),
            views=int(getattr(video, "view", 0) or 0),
            pubdate=int(getattr(video, "pubdate", 0) or 0),
            tags=_tags_of(video),
        )

    @classmethod
    def ranked(cls, pick: Pick, video: CardVideo) -> PickCard:
        return cls.of(video, pick.rating, pick.reason)

    def shown(self) -> ShownPick:
        """The row recorded before sending (the reason kept as text, see `decode_reason`)."""
        return ShownPick(self.bvid, self.rating, encode_reason(self.reason))


def encode_reason(reason: Reason) -> str:
    return f"{reason.kind}\t{reason.detail}"


def decode_reason(stored: str) -> Reason:
    kind, _, detail = stored.partition("\t")
    return Reason(kind=kind if kind in REASON_KINDS else "popular", detail=detail)


def _tags_of(video: CardVideo) -> tuple[str, ...]:
    """A catalogue row keeps its tags as JSON text; a recommender Video as a tuple."""
    tags = getattr(video, "tags", ())
    return video_tags(video) if isinstance(tags, str) else tuple(tags or ())
