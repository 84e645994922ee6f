"""Telegram's HTML parse mode, as strictly as the Bot API applies it.

``parse_html(text)`` returns ``(plain_text, entities)`` exactly as Telegram would store them
(entity offsets/lengths in UTF-16 code units), or raises :class:`EntityParseError` whose message
is the part after ``"Bad Request: can't parse entities: "``.

Rules (core.telegram.org/bots/api#html-style):
* only b/strong, i/em, u/ins, s/strike/del, span class="tg-spoiler", tg-spoiler, a href, code,
  pre (with an optional inner ``code class="language-x"``), blockquote [expandable], tg-emoji;
* tags must nest properly; every ``<``, ``>`` and ``&`` outside a tag or entity is an error;
* only the named entities ``&lt; &gt; &amp; &quot;`` plus all numeric ones.
"""

from __future__ import annotations

import re

__all__ = ["EntityParseError", "parse_html", "utf16_len"]

TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}

_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,7})|([A-Za-z][A-Za-z0-9]*));")
_TAG_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_ATTR_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_:.-]*)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'=<>`]+)))?")


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML; str(exc) is Telegram's explanation."""


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def _byte_offset(s: str, i: int) -> int:
    return len(s[:i].encode("utf-8"))


def _unescape(s: str, base: int, full: str) -> str:
    """Resolve entities inside an attribute value (same rules as in text)."""
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "&":
            m = _ENTITY_RE.match(s, i)
            if not m:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(full, base + i)}"
                )
            out.append(_entity_value(m, full, base + i))
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _entity_value(m: re.Match[str], full: str, pos: int) -> str:
    dec, hexa, name = m.groups()
    if name is not None:
        if name not in NAMED_ENTITIES:
            raise EntityParseError(f'Unsupported HTML entity "&{name};" at byte offset {_byte_offset(full, pos)}')
        return NAMED_ENTITIES[name]
    code = int(dec) if dec is not None else int(hexa, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise EntityParseError(f"Invalid HTML entity code at byte offset {_byte_offset(full, pos)}")
    return chr(code)


def _find_tag_end(s: str, i: int) -> int:
    """Index of the ``>`` closing the tag that starts at ``s[i] == '<'``; quotes respected."""
    quote = None
    j = i + 1
    n = len(s)
    while j < n:
        c = s[j]
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == ">":
            return j
        elif c == "<":
            return -1
        j += 1
    return -1


def _parse_attrs(raw: str, base: int, full: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    pos = 0
    raw_stripped_end = len(raw.rstrip().rstrip("/").rstrip())
    while pos < raw_stripped_end:
        m = _ATTR_RE.match(raw, pos)
        if not m or m.end() == pos:
            raise EntityParseError(
                f"Expected equal sign in declaration of an attribute of a start tag at byte "
                f"offset {_byte_offset(full, base)}"
            )
        name = m.group(1).lower()
        value = next((g for g in m.groups()[1:] if g is not None), "")
        attrs[name] = _unescape(value, base + m.start(), full)
        pos = m.end()
    return attrs


class _Open:
    __slots__ = ("attrs", "language", "name", "pos", "start")

    def __init__(self, name: str, start: int, attrs: dict[str, str], pos: int) -> None:
        self.name = name
        self.start = start
        self.attrs = attrs
        self.pos = pos
        self.language: str | None = None


def parse_html(text: str) -> tuple[str, list[dict]]:
    out: list[str] = []
    length16 = 0
    stack: list[_Open] = []
    entities: list[dict] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "<":
            j = _find_tag_end(text, i)
            if j < 0:
                raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, i)}")
            inner = text[i + 1 : j]
            if inner.startswith("/"):
                name = inner[1:].strip().lower()
                if not stack:
                    raise EntityParseError(f'Unexpected end tag "</{name}>" at byte offset {_byte_offset(text, i)}')
                top = stack[-1]
                if name != top.name:
                    raise EntityParseError(
                        f"Unmatched end tag at byte offset {_byte_offset(text, i)}, "
                        f'expected "</{top.name}>", found "</{name}>"'
                    )
                stack.pop()
                _close(top, length16, stack, entities)
            else:
                m = _TAG_NAME_RE.match(inner)
                name = m.group(0).lower() if m else ""
                if name not in TAG_TYPES:
                    raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, i)}')
                attrs = _parse_attrs(inner[m.end() :], i + 1 + m.end(), text) if m else {}
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise EntityParseError(
                        f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(text, i)}'
                    )
                if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
                    raise EntityParseError(
                        f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {_byte_offset(text, i)}'
                    )
                stack.append(_Open(name, length16, attrs, i))
            i = j + 1
        elif c == "&":
            m = _ENTITY_RE.match(text, i)
            if not m:
                raise EntityParseError(f"Can't find end of the entity starting at byte offset {_byte_offset(text, i)}")
            value = _entity_value(m, text, i)
            out.append(value)
            length16 += utf16_len(value)
            i = m.end()
        elif c == ">":
            raise EntityParseError(
                f"Character '>' is reserved and must be escaped as \"&gt;\" at byte offset {_byte_offset(text, i)}"
            )
        else:
            # copy the run of ordinary characters in one go
            j = i
            while j < n and text[j] not in "<>&":
                j += 1
            chunk = text[i:j]
            out.append(chunk)
            length16 += utf16_len(chunk)
            i = j
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _close(top: _Open, end16: int, stack: list[_Open], entities: list[dict]) -> None:
    length = end16 - top.start
    kind = TAG_TYPES[top.name]
    if top.name == "code" and stack and stack[-1].name == "pre":
        cls = top.attrs.get("class", "")
        if cls.startswith("language-"):
            stack[-1].language = cls[len("language-") :]
        return  # <pre><code> is one pre entity
    if length <= 0:
        return
    entity: dict = {"type": kind, "offset": top.start, "length": length}
    if top.name == "a":
        href = top.attrs.get("href")
        if not href:
            return
        entity["url"] = href
    elif top.name == "pre" and top.language:
        entity["language"] = top.language
    elif top.name == "blockquote" and "expandable" in top.attrs:
        entity["type"] = "expandable_blockquote"
    elif top.name == "tg-emoji":
        entity["custom_emoji_id"] = top.attrs["emoji-id"]
    entities.append(entity)
