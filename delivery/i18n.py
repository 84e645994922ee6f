"""Strings live in locales/<lang>.json; the user's Telegram language_code picks the catalogue."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

LANGUAGES = ("en", "zh")
_LOCALES = Path(__file__).with_name("locales")


def language_for(language_code: str | None) -> str:
    """zh* → Chinese, anything else → English."""
    return "zh" if (language_code or "").lower().startswith("zh") else "en"


@cache
def _catalogue(lang: str) -> dict[str, str]:
    return json.loads((_LOCALES / f"{lang}.json").read_text(encoding="utf-8"))


def t(lang: str, key: str, **values: object) -> str:
    text = _catalogue(lang if lang in LANGUAGES else "en")[key]
    return text.format(**values) if values else text
