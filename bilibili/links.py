"""What a user may paste to name a bilibili video: a BV id, an av id, a video link, or a b23.tv short
link (resolved by `BilibiliClient.resolve_short_link`). Pure parsing: no HTTP here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from .models import MAX_AID, av_to_bv, is_bvid

# bilibili's own web and mobile hosts: a link elsewhere names no bilibili video.
_BILIBILI_HOSTS = re.compile(r"^(?:[a-z0-9-]+\.)*bilibili\.com$")
_SHORT_HOSTS = frozenset({"b23.tv", "www.b23.tv", "bili2233.cn", "www.bili2233.cn"})
# A link in running text (a share text from the app: "【title】 https://b23.tv/abc123").
_URL = re.compile(r"(?:https?://)?(?:[a-z0-9-]+\.)*(?:bilibili\.com|b23\.tv|bili2233\.cn)(?:/[^\s<>\"'，。】]*)?", re.I)
# Loose on purpose: "BV1" (how every BV id starts) + some id characters, so a mistyped id is told apart.
_BV_LIKE = re.compile(r"(?<![A-Za-z0-9])BV1[0-9A-Za-z]{3,15}(?![A-Za-z0-9])", re.I)  # every BV id starts BV1
_AV_LIKE = re.compile(r"(?<![A-Za-z0-9])av(\d{1,20})(?![0-9])", re.I)
_SHORT_CODE = re.compile(r"^[0-9A-Za-z]{4,16}$")
_VIDEO_PATH = re.compile(r"^/(?:s/)?video/([^/?#]+)")

Kind = Literal["video", "short", "malformed", "not_video"]


@dataclass(frozen=True)
class VideoRef:
    """What a piece of text names: a video (its BV id), a short link's code to resolve, an id that
    cannot be one (malformed: `text` as typed), or a bilibili link to something else (not_video)."""

    kind: Kind
    value: str  # the BV id, the short code, or the text that was not understood


def _from_id(token: str) -> VideoRef:
    if token[:2].upper() == "AV" and token[2:].isdigit():
        aid = int(token[2:]) if len(token) <= 22 else 0
        return VideoRef("video", av_to_bv(aid)) if 0 < aid < MAX_AID else VideoRef("malformed", token)
    if is_bvid(token):
        return VideoRef("video", token)
    if token[:2].upper() == "BV" and is_bvid("BV" + token[2:]):  # "bv1…" typed in lower case
        return VideoRef("video", "BV" + token[2:])
    return VideoRef("malformed", token)


def parse_video_url(url: str) -> VideoRef:
    """A bilibili URL: the video it names, a short code to resolve, or not_video."""
    parts = urlsplit(url if "://" in url else "https://" + url)
    host = (parts.hostname or "").lower()
    if host in _SHORT_HOSTS:
        code = parts.path.strip("/").split("/")[0]
        if is_bvid(code) or re.fullmatch(r"av\d+", code, re.I):  # b23.tv/BV1…: the id is in the link
            return _from_id(code)
        return VideoRef("short", code) if _SHORT_CODE.fullmatch(code) else VideoRef("not_video", url)
    if not _BILIBILI_HOSTS.fullmatch(host):
        return VideoRef("not_video", url)
    match = _VIDEO_PATH.match(parts.path)
    if match is None:  # a bangumi, a live room, a space page, an article…
        return VideoRef("not_video", url)
    return _from_id(match.group(1))


def find_video_ref(text: str) -> VideoRef | None:
    """The first video named in `text` (a link first, then a bare BV or av id); None when it names none."""
    if match := _URL.search(text):
        return parse_video_url(match.group(0))
    if match := _BV_LIKE.search(text):
        return _from_id(match.group(0))
    if match := _AV_LIKE.search(text):
        return _from_id("av" + match.group(1))
    return None


def parse_redirect(location: str) -> VideoRef:
    """Where a short link sends to: only a bilibili video page counts (never another short link)."""
    ref = parse_video_url(location) if location.startswith(("http://", "https://")) else VideoRef("not_video", location)
    return ref if ref.kind in ("video", "malformed") else VideoRef("not_video", location)
