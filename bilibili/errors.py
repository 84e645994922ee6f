"""Typed errors of the bilibili client. Messages carry endpoint paths and codes, never cookies."""

from __future__ import annotations


class BilibiliError(Exception):
    """Base of every error raised by `bilibili.client`."""

    def __init__(self, message: str = "", *, code: int | None = None, path: str = "") -> None:
        super().__init__(message or self.__class__.__name__)
        self.code = code
        self.path = path


class NotLoggedIn(BilibiliError):
    """-101: SESSDATA missing or invalid. Run `refresh_if_needed`; if that raises SessionExpired, re-login."""


class RiskControl(BilibiliError):
    """-412 (HTTP 412), -352, -799, -509. All traffic is paused; the caller should retry later.

    `retry_in_s`: how long the global pause still runs (0 when unknown).
    """

    def __init__(self, message: str = "", *, code: int | None = None, path: str = "", retry_in_s: float = 0.0) -> None:
        super().__init__(message, code=code, path=path)
        self.retry_in_s = retry_in_s


class RiskPaused(RiskControl):
    """A fail-fast call (a user is waiting, or a queued job inside `refusing_pauses()`) refused during
    the global pause; nothing was sent. Other background work never sees it: it waits the pause out.
    """


class ApiError(BilibiliError):
    """Any other non-zero `code`."""


class TransportError(BilibiliError):
    """Connection error, timeout or HTTP 5xx, after the configured retries."""


class MalformedResponse(BilibiliError):
    """Body is not JSON or not the documented shape (after the configured retries)."""


class EmptyData(BilibiliError):
    """`code: 0` with `data: null` where data is required."""


class SessionExpired(BilibiliError):
    """The login cannot be refreshed (86095, or -101 during refresh): the user must scan a new QR."""


class VideoUnavailable(BilibiliError):
    """-404 / 62002 / 62004 / 62012 or `state < 0`: skip this video."""


class VideoRestricted(VideoUnavailable):
    """-403 / -400 on one video's view, tags or related list (member-only, region-locked, refused):
    skip this video and look again later; the other videos and the sync go on."""


class WatchLaterFull(ApiError):
    """90001: the user's watch later (稍后再看) list is full (bilibili's cap, whatever the count)."""


class CoverTooLarge(BilibiliError):
    """Cover image bigger than `cover_max_bytes`."""


RISK_CODES = frozenset({-412, -352, -799, -509})
UNAVAILABLE_CODES = frozenset({-404, 62002, 62004, 62012})
# Only on the per-video endpoints (view, tags, related): elsewhere -403/-400 keep their own meaning.
RESTRICTED_CODES = frozenset({-403, -400})
WATCH_LATER_FULL = 90001
WATCH_LATER_DELETED = 90003  # toview/add: the video was deleted
