"""Hostile bilibili input (issue 11 §3): every parser of bilibili's answers, fed any JSON shape, missing
fields, wrong types, huge numbers and odd unicode, either returns storable values or raises
MalformedResponse (a BilibiliError) — nothing else escapes to crash a sync or a handler."""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bilibili import BilibiliError, MalformedResponse, models
from bilibili.login import cookies_from_url, parse_set_cookies
from bilibili.refresh import parse_refresh_csrf
from bilibili.transport import Throttle, Transport, _Transient

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ODD_TEXT = [
    "",
    "\x00",
    "\ud800",
    "\u202e\u2066RTL",
    "١٢",
    "１２",
    "1_000",
    "1e400",
    "NaN",
    "-0",
    " 7 ",
    "9" * 5000,
    "😀" * 50,
    "<b>&amp;</b>",
    "None",
    "true",
    "1.5",
]
HUGE = [2**63, -(2**63) - 1, 10**40, float("inf"), float("-inf"), float("nan"), 1e308, -0.0, 1.5]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(HUGE)
    | st.sampled_from(ODD_TEXT)
    | st.text(st.characters(exclude_categories=()), max_size=12)  # surrogates, controls, RTL marks
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=12,
)


def shaped_like(template: Any) -> st.SearchStrategy[Any]:
    """The documented shape with each field kept, dropped, or replaced by anything (recursively)."""
    if isinstance(template, dict):
        fields = {k: shaped_like(v) for k, v in template.items()}

        @st.composite
        def mutated(draw: Callable) -> dict:
            out = {}
            for key, field in fields.items():
                choice = draw(st.integers(0, 5))
                if choice == 0:
                    continue  # missing
                out[key] = draw(json_values) if choice == 1 else draw(field)
            return out

        return mutated()
    if isinstance(template, list):
        return st.lists(shaped_like(template[0]) if template else json_values, max_size=4) | json_values
    return st.just(template) | scalars


ARCHIVE = {
    "aid": 114586338463891,
    "bvid": "BV1FYjBzAE8h",
    "tid": 22,
    "tname": "鬼畜调教",
    "title": "大夫",
    "pic": "http://i1.hdslb.com/bfs/archive/74ff.jpg",
    "pubdate": 1748750400,
    "duration": 121,
    "state": 0,
    "owner": {"mid": 16054375, "name": "WZ"},
    "stat": {
        "view": 684033,
        "danmaku": 437,
        "reply": 2060,
        "favorite": 21095,
        "coin": 8003,
        "share": 6254,
        "like": 72719,
        "his_rank": 3,
    },
    "copyright": 1,
    "tidv2": 2059,
    "tnamev2": "鬼畜调教",
    "rights": {"pay": 0, "ugc_pay": 1, "arc_pay": 0},
    "dimension": {"width": 1080, "height": 1920, "rotate": 0},
    "rcmd_reason": {"content": "百万播放", "corner_mark": 0},
}
VIEW = {
    **ARCHIVE,
    "tid_v2": 2059,
    "tname_v2": "鬼畜调教",
    "is_upower_exclusive": True,
    "staff": [{"mid": 16054375, "title": "UP主"}, {"mid": 53456, "title": "曲绘"}],
    "honor_reply": {
        "honor": [{"aid": 1, "type": 2, "desc": "第45期每周必看"}, {"type": 3, "desc": "全站排行榜最高第5名"}]
    },
}
HISTORY_ROW = {
    "title": "t",
    "cover": "//i0.hdslb.com/a.jpg",
    "author_name": "a",
    "author_mid": 1,
    "view_at": 1700000000,
    "progress": -1,
    "duration": 60,
    "kid": 5,
    "tag_name": "游戏",
    "is_fav": 1,
    "history": {"oid": 5, "bvid": "BV1xx411c7mD", "business": "archive"},
}
FAV_MEDIA = {
    "id": 5,
    "type": 2,
    "title": "t",
    "cover": "http://i0.hdslb.com/a.jpg",
    "duration": 60,
    "attr": 0,
    "upper": {"mid": 1, "name": "u"},
    "cnt_info": {"collect": 1, "play": 2, "danmaku": 3},
    "pubtime": 1700000000,
    "fav_time": 1700000001,
    "bvid": "BV1xx411c7mD",
}
SEARCH_ROW = {
    "type": "video",
    "id": 97387124,
    "author": "元气少女",
    "mid": 324914635,
    "typeid": "31",
    "typename": "翻唱",
    "aid": 97387124,
    "bvid": "BV1B7411R7a8",
    "title": '来自<em class="keyword">少年</em>的 &amp; 歌',
    "pic": "//i1.hdslb.com/bfs/archive/85.jpg",
    "play": 1953494,
    "video_review": 5934,
    "favorites": 50883,
    "tag": "翻唱,少年",
    "pubdate": 1584581433,
    "duration": "4:1",
}

FOLLOWING = {
    "mid": 420831218,
    "attribute": 2,
    "mtime": 1584208169,
    "tag": [207542],
    "special": 0,
    "uname": "up",
    "face": "https://i2.hdslb.com/bfs/face/a.jpg",
    "sign": "s",
    "official_verify": {"type": 1, "desc": "d"},
}
FEED_ROW = {
    "id_str": "966873782060843027",
    "type": "DYNAMIC_TYPE_AV",
    "visible": True,
    "modules": {
        "module_author": {"mid": 266765166, "name": "up", "pub_ts": 1723956245},
        "module_dynamic": {
            "major": {
                "type": "MAJOR_TYPE_ARCHIVE",
                "archive": {
                    "aid": "1756441068",
                    "bvid": "BV1d4421Z7nW",
                    "title": "t",
                    "cover": "http://i1.hdslb.com/bfs/a.jpg",
                    "duration_text": "14:25",
                    "stat": {"play": "1.4万", "danmaku": "217"},
                },
            }
        },
    },
}
HOME_CARD = {
    "id": 1354614895,
    "bvid": "BV1Dz42117GZ",
    "goto": "av",
    "pic": "http://i1.hdslb.com/bfs/a.jpg",
    "title": "t",
    "duration": 882,
    "pubdate": 1715946937,
    "owner": {"mid": 374484802, "name": "up"},
    "stat": {"view": 48250, "like": 2959, "danmaku": 433},
    "business_info": None,
}

# every parser in bilibili/models.py, with the shape of what it is given
PARSERS: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "VideoInfo.from_archive": (models.VideoInfo.from_archive, ARCHIVE),
    "VideoInfo.from_history_row": (models.VideoInfo.from_history_row, HISTORY_ROW),
    "VideoInfo.from_fav_media": (models.VideoInfo.from_fav_media, FAV_MEDIA),
    "parse_archives": (models.parse_archives, [ARCHIVE]),
    "parse_archive_page": (lambda d: models.parse_archive_page(d, "ranking"), {"list": [ARCHIVE]}),
    "parse_device": (models.parse_device, {"b_3": "B3-infoc", "b_4": "B4"}),
    "parse_wbi_keys": (
        models.parse_wbi_keys,
        {
            "wbi_img": {
                "img_url": "https://i0.hdslb.com/bfs/wbi/7cd084941338484aae1ad9425b84077c.png",
                "sub_url": "https://i0.hdslb.com/bfs/wbi/4932caff0ff746eab6f01bf08b70ac45.png",
            }
        },
    ),
    "parse_nav": (models.parse_nav, {"isLogin": True, "mid": 1, "uname": "u"}),
    "parse_qr": (models.parse_qr, {"url": "https://passport.bilibili.com/x", "qrcode_key": "k"}),
    "parse_poll": (models.parse_poll, {"url": "https://x/?SESSDATA=a", "refresh_token": "r", "code": 0}),
    "parse_cookie_info": (models.parse_cookie_info, {"refresh": True, "timestamp": 1}),
    "parse_refresh_token": (models.parse_refresh_token, {"refresh_token": "r", "status": 0}),
    "parse_history_page": (
        models.parse_history_page,
        {"cursor": {"max": 5, "view_at": 1700000000, "business": "archive"}, "list": [HISTORY_ROW]},
    ),
    "parse_fav_folders": (models.parse_fav_folders, {"list": [{"id": 1, "title": "默认", "media_count": 3}]}),
    "parse_fav_items": (models.parse_fav_items, {"medias": [FAV_MEDIA], "has_more": True}),
    "parse_coins": (models.parse_coins, [{**ARCHIVE, "coins": 2, "time": 1700000000}]),
    "parse_likes": (models.parse_likes, {"list": [ARCHIVE]}),
    "parse_popular": (models.parse_popular, {"list": [ARCHIVE], "no_more": False}),
    "parse_weekly_numbers": (models.parse_weekly_numbers, {"list": [{"number": 300, "name": "第300期"}]}),
    "parse_view": (models.parse_view, VIEW),
    "parse_tags": (models.parse_tags, [{"tag_name": "游戏", "tag_type": "old_channel"}]),
    "parse_search_page": (
        models.parse_search_page,
        {"page": 1, "numPages": 50, "numResults": 1000, "result": [SEARCH_ROW]},
    ),
    "parse_view_detail": (
        models.parse_view_detail,
        {
            "View": VIEW,
            "Card": {"card": {"mid": "122541", "name": "up"}, "follower": 1},
            "Tags": [{"tag_name": "游戏", "tag_type": "old_channel"}],
            "Related": [ARCHIVE],
            "participle": ["大夫", "wz"],
        },
    ),
    "parse_followings": (models.parse_followings, {"list": [FOLLOWING], "re_version": 0, "total": 1028}),
    "parse_video_feed": (
        models.parse_video_feed,
        {
            "has_more": True,
            "offset": "966281785469042740",
            "update_baseline": "966888011247648768",
            "update_num": 5,
            "items": [FEED_ROW],
        },
    ),
    "parse_feed_update": (models.parse_feed_update, {"update_num": 9}),
    "parse_home_feed": (models.parse_home_feed, {"item": [HOME_CARD], "mid": 645769214}),
}


def test_every_parser_is_covered():
    in_models = {f"VideoInfo.{n}" for n in ("from_archive", "from_history_row", "from_fav_media")}
    in_models |= {n for n, f in inspect.getmembers(models, inspect.isfunction) if n.startswith("parse_")}
    assert in_models == set(PARSERS)


def assert_storable(value: Any) -> None:
    """What a parser returns can be stored and sent: UTF-8 text without NUL, 64-bit integers."""
    if isinstance(value, str):
        value.encode("utf-8")
        assert "\x00" not in value
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        assert -(2**63) <= value < 2**63
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            assert_storable(getattr(value, f.name))
    elif isinstance(value, list | tuple):
        for v in value:
            assert_storable(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            assert_storable(k)
            assert_storable(v)
    else:
        raise AssertionError(f"unexpected {type(value).__name__} in a parser's result")


def check(parse: Callable[[Any], Any], data: Any) -> None:
    try:
        result = parse(data)
    except MalformedResponse:
        return
    assert_storable(result)


@pytest.mark.parametrize("name", sorted(PARSERS))
@FAST
@given(data=st.data())
def test_parser_survives_its_shape_spoilt(name, data):
    parse, template = PARSERS[name]
    check(parse, data.draw(shaped_like(template)))


@pytest.mark.parametrize("name", sorted(PARSERS))
@FAST
@given(value=json_values)
def test_parser_survives_any_json(name, value):
    check(PARSERS[name][0], value)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_parser_reads_the_documented_shape(name):
    """The templates themselves parse: the properties above are not vacuous."""
    parse, template = PARSERS[name]
    result = parse(template)
    assert result not in (None, [], ()), name
    assert_storable(result)


@FAST
@given(text=st.text(st.characters(exclude_categories=()), max_size=40) | st.sampled_from(ODD_TEXT), number=json_values)
def test_search_durations_and_titles_never_raise(text, number):
    """The search row's display strings: any text is a duration of 0..INT32_MAX seconds and a storable
    title; a non-text duration is seconds or a MalformedResponse."""
    assert 0 <= models.clock_seconds(text) <= models.INT32_MAX
    assert_storable(models.strip_highlight(text))
    try:
        seconds = models.clock_seconds(number)
    except MalformedResponse:
        return
    assert 0 <= seconds <= models.INT32_MAX


@FAST
@given(
    body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()),
    status=st.sampled_from([200, 400, 404, 412, 500, 503]),
)
def test_an_envelope_of_any_bytes_is_typed(body, status):
    transport = Transport.__new__(Transport)  # classification only: no session, no network
    transport.throttle = Throttle(0, 0.0, 0.0)
    try:
        reply = transport._classify("/x/any", status, body, [], raw=False)
    except _Transient as t:
        assert isinstance(t.error, BilibiliError)
        return
    except BilibiliError:
        return
    assert isinstance(reply.payload, dict) and isinstance(reply.payload["code"], int)


@FAST
@given(
    headers=st.lists(st.text(st.characters(exclude_categories=()), max_size=40), max_size=5),
    url=st.text(st.characters(exclude_categories=()), max_size=80),
    html=st.text(st.characters(exclude_categories=()), max_size=200),
)
def test_cookie_and_csrf_text_parsers_never_raise(headers, url, html):
    assert isinstance(parse_set_cookies(headers), dict)
    assert isinstance(cookies_from_url(url), dict)
    assert parse_refresh_csrf(html) is None or isinstance(parse_refresh_csrf(html), str)


def every_scalar(template: Any, value: Any) -> Any:
    if isinstance(template, dict):
        return {k: every_scalar(v, value) for k, v in template.items()}
    if isinstance(template, list):
        return [every_scalar(v, value) for v in template]
    return value


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_parser_survives_a_5000_digit_number_everywhere(name):
    """Too long for hypothesis to print, too long for str(): every field of the shape holds one."""
    parse, template = PARSERS[name]
    check(parse, every_scalar(template, 10**5000))
