"""The one typed record of a pick, from ranking to the chat and back after a restart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from recommender import Pick, Reason
from storage.picks import ShownPick

REASON_KINDS = ("tag", "uploader", "similar", "popular", "explore", "followed")


class CardVideo(Protocol):
    bvid: str
    title: str
    owner_name: str
    cover: str


@dataclass(frozen=True)
class PickCard:
    """What a pick message shows: the video (plain fields, no database row), its rating and reason."""

    bvid: str
    title: str
    owner_name: str
    cover: str
    rating: int
    reason: Reason

    @classmethod
    def of(cls, video: CardVideo, rating: int, reason: Reason) -> PickCard:
        return cls(video.bvid, video.title, video.owner_name, video.cover or "", rating, reason)

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
