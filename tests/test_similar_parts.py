"""The pieces behind /similar and /history: what a pasted text names, content similarity, and the
storage they read (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

import recommender as rec
from bilibili.links import VideoRef, find_video_ref, parse_redirect
from storage import catalogue, picks, users
from storage.picks import ShownPick
from tests.dbfixtures import any_db, postgres_url  # noqa: F401


# -- what a text names -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BV17x411w7KC", VideoRef("video", "BV17x411w7KC")),
        ("bv17x411w7KC", VideoRef("video", "BV17x411w7KC")),
        ("av170001", VideoRef("video", "BV17x411w7KC")),
        ("AV2", VideoRef("video", "BV1xx411c7mD")),
        (
            "看这个 https://www.bilibili.com/video/BV17x411w7KC/?p=2&share_source=copy 哈哈",
            VideoRef("video", "BV17x411w7KC"),
        ),
        ("https://m.bilibili.com/video/av2", VideoRef("video", "BV1xx411c7mD")),
        ("bilibili.com/video/BV17x411w7KC", VideoRef("video", "BV17x411w7KC")),
        ("【标题】 https://b23.tv/Xy12AbC", VideoRef("short", "Xy12AbC")),
        ("https://b23.tv/BV17x411w7KC", VideoRef("video", "BV17x411w7KC")),
        (
            "https://www.bilibili.com/bangumi/play/ep1",
            VideoRef("not_video", "https://www.bilibili.com/bangumi/play/ep1"),
        ),
        ("https://live.bilibili.com/22", VideoRef("not_video", "https://live.bilibili.com/22")),
        ("av0", VideoRef("malformed", "av0")),
        ("BV1234", VideoRef("malformed", "BV1234")),
        ("https://www.bilibili.com/video/BV0000", VideoRef("malformed", "BV0000")),
        ("av" + "9" * 20, VideoRef("malformed", "av" + "9" * 20)),
        ("hello", None),
        ("", None),
        ("BVB", None),
        ("Bvlgari", None),
        ("avocado 12", None),
    ],
)
def test_what_a_pasted_text_names(text, expected):
    assert find_video_ref(text) == expected


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        ("https://www.bilibili.com/video/BV17x411w7KC?share_source=copy_web", "video"),
        ("https://m.bilibili.com/video/BV17x411w7KC", "video"),
        ("https://evil.example/video/BV17x411w7KC", "not_video"),
        ("https://www.bilibili.com.evil.example/video/BV17x411w7KC", "not_video"),
        ("https://b23.tv/abcdefg", "not_video"),  # another short link: never followed on
        ("https://space.bilibili.com/2", "not_video"),
        ("/video/BV17x411w7KC", "not_video"),
        ("javascript:alert(1)", "not_video"),
    ],
)
def test_only_a_redirect_to_a_bilibili_video_page_counts(location, kind):
    assert parse_redirect(location).kind == kind


# -- content similarity ----------------------------------------------------------------------------
def video(bvid: str, tags=(), owner=1, tid=17, title="t") -> rec.Video:
    return rec.Video(bvid, title, owner, f"up{owner}", tuple(tags), tid, "单机游戏", 100, 0, 1000, 10, 1, 1, 1, 1, 1)


def test_content_similarity_counts_shared_tags_uploader_and_partition():
    a = video("BV1", ("原神", "游戏", "攻略"), owner=1, tid=17)
    same_tags = rec.content_similarity(a, video("BV2", ("原神", "游戏"), owner=2, tid=99))
    same_up = rec.content_similarity(a, video("BV3", ("美食",), owner=1, tid=99))
    nothing = rec.content_similarity(a, video("BV4", ("美食",), owner=3, tid=99))
    assert same_tags.shared_tags == ("原神", "游戏") and same_tags.score > same_up.score > nothing.score == 0
    assert same_up.same_uploader and not same_tags.same_uploader


def test_similar_videos_names_the_signal_that_lifted_each_one():
    query = video("BVq", ("原神", "游戏"), owner=1, tid=17)
    pool = [
        video("BVtags", ("原神", "游戏"), owner=2, tid=99),
        video("BVup", ("美食",), owner=1, tid=99),
        video("BVco", ("美食",), owner=3, tid=99),
        video("BVrel", (), owner=4, tid=98),
        video("BVnone", ("美食",), owner=5, tid=98),
        query,
    ]
    found = rec.similar_videos(query, pool, cowatch={"BVco": 0.9}, related=["BVrel"], k=10)
    by = {n.bvid: n.reason for n in found}
    assert "BVq" not in by and "BVnone" not in by
    assert by["BVtags"] == rec.SimilarReason("tags", ("原神", "游戏"))
    assert by["BVup"].kind == "uploader" and by["BVco"].kind == "cowatch" and by["BVrel"].kind == "related"


def test_similar_videos_keeps_at_most_two_of_one_uploader_and_blend_prefers_the_users_rating():
    query = video("BVq", ("a",), owner=1)
    pool = [video(f"BV{i}", ("a",), owner=9) for i in range(5)] + [video("BVx", ("a",), owner=8)]
    found = rec.similar_videos(query, pool, k=5)
    assert sum(1 for n in found if n.bvid != "BVx") == 2
    blended = rec.blend_personal(found, {"BVx": 100, "BV0": 0, "BV1": 0}, k=1)
    assert blended[0].bvid == "BVx"


# -- storage ---------------------------------------------------------------------------------------
def test_a_pick_is_found_by_its_chat_and_message_and_the_index_exists(any_db):
    user = users.ensure_user(any_db, 501, 501, "en", now=1)
    ids = picks.record_shown(
        any_db,
        user.id,
        [ShownPick("BV17x411w7KC", 80, "r"), ShownPick("BV1xx411c7mD", 70, "r")],
        "recommend",
        10,
        chat_id=501,
    )
    picks.set_shown_messages(any_db, {ids[0]: 41, ids[1]: 42})
    assert picks.shown_by_message(any_db, 501, 42).bvid == "BV1xx411c7mD"
    assert picks.shown_by_message(any_db, 501, 43) is None and picks.shown_by_message(any_db, 502, 42) is None
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(any_db.engine).get_indexes("shown")}
    assert indexes["ix_shown_chat_message"] == ["chat_id", "message_id"]


def test_history_pages_are_the_sent_picks_newest_first_with_their_taps(any_db):
    user = users.ensure_user(any_db, 601, 601, "en", now=1)
    bvids = [f"BV1xx411c7m{c}" for c in "ABCDEFGHJK"] + ["BV17x411w7KC"]
    for i, bvid in enumerate(bvids):
        [shown_id] = picks.record_shown(any_db, user.id, [ShownPick(bvid, 50 + i, "r")], "recommend", 100 + i, 601)
        if i != 3:  # the fourth was never delivered
            picks.set_shown_messages(any_db, {shown_id: 1000 + i})
    picks.set_feedback(any_db, user.id, bvids[-1], 1, 200)
    picks.set_feedback(any_db, user.id, bvids[-2], -1, 200)
    catalogue.add_partial_videos(any_db, [_Row(bvids[-1], "最新的")])
    assert picks.count_sent(any_db, user.id) == 10
    first = picks.sent_page(any_db, user.id, 0, 3)
    assert [r.bvid for r in first] == bvids[::-1][:3] and [r.label for r in first] == [1, -1, 0]
    assert first[0].title == "最新的" and first[1].title == "" and first[0].rating == 60
    rest = picks.sent_page(any_db, user.id, 3, 10)
    assert len(rest) == 7 and bvids[3] not in {r.bvid for r in rest}


def test_a_related_list_saved_again_replaces_the_old_one(any_db):
    catalogue.save_related(any_db, "BV17x411w7KC", ["BV1xx411c7mA", "BV1xx411c7mB", "BV17x411w7KC"], 10)
    catalogue.save_related(any_db, "BV17x411w7KC", ["BV1xx411c7mB", "BV1xx411c7mC"], 20)
    graph = catalogue.related_graph(any_db, ["BV17x411w7KC"])
    assert sorted(graph["BV17x411w7KC"]) == ["BV1xx411c7mB", "BV1xx411c7mC"]
    assert len(catalogue.related_graph(any_db, ["BV17x411w7KC"], per_video=1)["BV17x411w7KC"]) == 1


class _Row:
    """A catalogue row as list pages give it."""

    def __init__(self, bvid: str, title: str) -> None:
        self.bvid, self.title, self.tags = bvid, title, None
        self.aid = self.owner_mid = self.duration = self.tid = self.pubdate = 0
        self.view = self.danmaku = self.reply = self.favorite = self.coin = self.share = self.like = 0
        self.cover = self.owner_name = self.tname = ""


def test_title_words_alone_make_two_videos_alike():
    """Two videos with no tag, uploader or partition in common are still neighbours by their titles."""
    from recommender.similar import content_similarity
    from recommender.types import Video

    def video(bvid: str, title: str, mid: int) -> Video:
        return Video(
            bvid=bvid,
            title=title,
            owner_mid=mid,
            owner_name="",
            tags=(),
            tid=0,
            tname="",
            duration=60,
            pubdate=0,
            view=0,
            like=0,
            favorite=0,
            coin=0,
            share=0,
            danmaku=0,
            reply=0,
        )

    query = video("BV1aa", "原神 须弥 主线剧情 全流程", 1)
    alike, unlike = video("BV1bb", "原神须弥剧情解析", 2), video("BV1cc", "家常红烧肉做法", 3)
    assert content_similarity(query, alike).score > 0
    assert content_similarity(query, unlike).score == 0
