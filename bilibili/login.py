"""QR-login helpers: poll-state mapping and verbatim cookie extraction (never URL-decode)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .models import Credentials

QR_WAITING = 86101
QR_SCANNED = 86090
QR_EXPIRED = 86038
QR_SUCCESS = 0

POLL_STATES = {QR_WAITING: "waiting", QR_SCANNED: "scanned", QR_EXPIRED: "expired", QR_SUCCESS: "success"}

# data.url query fields that are not cookies
_URL_NON_COOKIES = {"Expires", "gourl", "first_domain"}


def parse_set_cookies(headers: Iterable[str]) -> dict[str, str]:
    """`Set-Cookie` header values -> {name: value}, values byte-for-byte as sent."""
    out: dict[str, str] = {}
    for header in headers:
        pair = header.split(";", 1)[0].strip()
        if "=" not in pair:
            continue
        name, value = pair.split("=", 1)
        name = name.strip()
        if name:
            out[name] = value.strip()
    return out


def cookies_from_url(url: str) -> dict[str, str]:
    """Split the success `data.url` query on `&` and `=` WITHOUT decoding (SESSDATA keeps `%2C`)."""
    query = url.split("?", 1)[1] if "?" in url else ""
    out: dict[str, str] = {}
    for part in query.split("&"):
        if "=" not in part:
            continue
        name, value = part.split("=", 1)
        if name and name not in _URL_NON_COOKIES:
            out[name] = value
    return out


def credentials_from_cookies(
    cookies: Mapping[str, str],
    refresh_token: str,
    device: Mapping[str, str] | None = None,
    base: Credentials | None = None,
) -> Credentials:
    """Build Credentials from a cookie dict; `base` supplies anything the new cookies lack."""
    merged: dict[str, Any] = {}
    if base is not None:
        merged.update(base.to_dict())
    if device:
        for k, v in device.items():
            if v and not merged.get(k):
                merged[k] = v
    merged.update(cookies)
    merged["refresh_token"] = refresh_token
    return Credentials.from_dict(merged)
