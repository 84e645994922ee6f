"""WBI signing (`wts` + `w_rid`), exactly as in reference §2."""

from __future__ import annotations

import hashlib
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

MIXIN_KEY_ENC_TAB = [
    46,
    47,
    18,
    2,
    53,
    8,
    23,
    32,
    15,
    50,
    10,
    31,
    58,
    3,
    45,
    35,
    27,
    43,
    5,
    49,
    33,
    9,
    42,
    19,
    29,
    28,
    14,
    39,
    12,
    38,
    41,
    13,
    37,
    48,
    7,
    16,
    24,
    55,
    40,
    61,
    26,
    17,
    0,
    1,
    60,
    51,
    30,
    4,
    22,
    25,
    54,
    21,
    56,
    59,
    6,
    63,
    57,
    62,
    11,
    36,
    20,
    34,
    44,
    52,
]

_STRIP = set("!'()*")


def key_from_url(url: str) -> str:
    """`https://i0.hdslb.com/bfs/wbi/7cd0...077c.png` -> `7cd0...077c`."""
    return url.rsplit("/", 1)[-1].split(".")[0]


def mixin_key(img_key: str, sub_key: str) -> str:
    raw = img_key + sub_key
    return "".join(raw[i] for i in MIXIN_KEY_ENC_TAB if i < len(raw))[:32]


def _clean(value: Any) -> str:
    if isinstance(value, bool):
        value = int(value)
    return "".join(c for c in str(value) if c not in _STRIP)


def canonical_query(params: Mapping[str, Any]) -> str:
    items = sorted((k, _clean(v)) for k, v in params.items() if v is not None)
    return urllib.parse.urlencode(items, quote_via=urllib.parse.quote)


def sign(params: Mapping[str, Any], mixin: str, wts: int | None = None) -> dict[str, str]:
    """Return the params to send: cleaned originals plus `wts` and `w_rid`."""
    p = {k: _clean(v) for k, v in params.items() if v is not None}
    p["wts"] = str(int(time.time()) if wts is None else wts)
    p["w_rid"] = hashlib.md5((canonical_query(p) + mixin).encode()).hexdigest()
    return p
