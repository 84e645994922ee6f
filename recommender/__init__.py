"""BiliPick's recommender: plain dataclasses in, scores out (no Telegram, HTTP or databases)."""
from .features import quality_score
from .profile import render_profile_png, taste_profile
from .rank import rank, rank_popular
from .shared import SharedSignals, build_from_choices, build_shared_signals, linkable_items
from .store import ModelStore
from .text import content_neighbours, content_vector, title_tokens
from .train import train_users
from .user_model import UserModel
from .types import Event, EventKind, Pick, Reason, TasteProfile, TrainConfig, UserData, Video

__all__ = [
    "Event", "EventKind", "ModelStore", "Pick", "Reason", "SharedSignals", "TasteProfile", "TrainConfig",
    "UserData", "UserModel", "Video", "build_from_choices", "build_shared_signals", "content_neighbours", "content_vector", "linkable_items", "quality_score", "rank", "rank_popular",
    "render_profile_png", "taste_profile", "title_tokens", "train_users",
]
