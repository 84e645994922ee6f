"""Both catalogues say the same things: every key in both, the same placeholders in each string (a
missing key raises KeyError in front of the user; a mismatched placeholder raises in str.format)."""

from __future__ import annotations

import json
from string import Formatter

from delivery.i18n import _LOCALES, LANGUAGES


def catalogue(lang: str) -> dict[str, str]:
    return json.loads((_LOCALES / f"{lang}.json").read_text(encoding="utf-8"))


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in Formatter().parse(text) if field is not None}


def test_every_message_exists_in_every_language():
    keys = {lang: set(catalogue(lang)) for lang in LANGUAGES}
    for lang in LANGUAGES:
        missing = set().union(*keys.values()) - keys[lang]
        assert not missing, f"{lang}.json lacks {sorted(missing)}"


def test_every_message_has_the_same_placeholders_in_every_language():
    en = catalogue("en")
    for lang in LANGUAGES:
        other = catalogue(lang)
        wrong = {
            k: (placeholders(en[k]), placeholders(other[k]))
            for k in en.keys() & other.keys()
            if placeholders(en[k]) != placeholders(other[k])
        }
        assert not wrong, f"{lang}.json placeholders differ from en.json: {wrong}"


def test_the_checks_catch_a_missing_key_and_a_renamed_placeholder():
    assert placeholders("a {x} b {y!r:>3}") == {"x", "y"}
    assert placeholders("{{literal}} only") == set()
    assert placeholders("{minutes} min") != placeholders("{minute} 分钟")
