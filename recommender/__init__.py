"""BiliPick's recommender: plain dataclasses in, scores out (no Telegram, HTTP or databases)."""

from .features import quality_score
from .profile import TagTrend, render_profile_png, tag_trend, taste_profile
from .rank import rank, rank_popular
from .shared import SharedSignals, build_from_choices, build_shared_signals, linkable_items
from .similar import ContentWeights, Neighbour, SimilarReason, blend_personal, content_similarity, similar_videos
from .store import ModelStore
from .text import content_neighbours, content_vector, title_tokens
from .train import train_users
from .twotower import TowerConfig, TwoTower, train_two_tower
from .types import Event, EventKind, Pick, Reason, TasteProfile, TrainConfig, UserData, Video
from .user_model import UserModel

__all__ = [
    "Event",
    "EventKind",
    "ModelStore",
    "Pick",
    "Reason",
    "SharedSignals",
    "TasteProfile",
    "TrainConfig",
    "ContentWeights",
    "Neighbour",
    "SimilarReason",
    "TagTrend",
    "TowerConfig",
    "TwoTower",
    "UserData",
    "UserModel",
    "Video",
    "blend_personal",
    "build_from_choices",
    "build_shared_signals",
    "content_neighbours",
    "content_similarity",
    "content_vector",
    "linkable_items",
    "quality_score",
    "rank",
    "rank_popular",
    "render_profile_png",
    "similar_videos",
    "tag_trend",
    "taste_profile",
    "title_tokens",
    "train_two_tower",
    "train_users",
]
