"""bilibili web API client: the only code in BiliPick that talks HTTP to bilibili."""

from .client import BilibiliClient, Throttle
from .transport import SharedPace
from .errors import (
    ApiError,
    BilibiliError,
    CoverTooLarge,
    EmptyData,
    MalformedResponse,
    NotLoggedIn,
    RiskControl,
    RiskPaused,
    SessionExpired,
    TransportError,
    VideoRestricted,
    VideoUnavailable,
    WatchLaterFull,
)
from .partitions import PARTITIONS, Partition
from .models import (
    Account,
    CoinItem,
    Credentials,
    FavFolder,
    FavItem,
    FeedItem,
    FeedPage,
    Following,
    FollowingsPage,
    HistoryCursor,
    HistoryItem,
    HistoryPage,
    LoginEvent,
    QrCode,
    SearchHit,
    SearchPage,
    VideoDetail,
    VideoInfo,
)

__all__ = [
    "Account", "ApiError", "BilibiliClient", "BilibiliError", "CoinItem", "CoverTooLarge", "Credentials",
    "EmptyData", "FavFolder", "FavItem", "FeedItem", "FeedPage", "Following", "FollowingsPage", "HistoryCursor",
    "HistoryItem", "HistoryPage", "LoginEvent", "MalformedResponse", "NotLoggedIn", "PARTITIONS", "Partition",
    "QrCode", "RiskControl", "RiskPaused", "SearchHit", "SearchPage", "SessionExpired", "SharedPace", "Throttle",
    "TransportError", "VideoDetail", "VideoInfo", "VideoRestricted", "VideoUnavailable", "WatchLaterFull",
]
