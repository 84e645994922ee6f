"""Title text and followed uploaders as model inputs (issue 17): a title is read, odd titles break
nothing, a video nobody has seen is ranked by its content, a followed uploader counts, and titles are
segmented once, when their metadata is stored."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from jobs.convert import to_rec_video
from recommender import Event, ModelStore, UserData, Video, rank, train_users
from recommender.features import encode_videos
from recommender.text import content_neighbours, content_vector, title_tokens
from storage import catalogue
from storage.db import Database
from tests.dbfixtures import any_db, postgres_url, sqlite_db  # noqa: F401
from tests.test_storage import FakeVideo

NOW = 1_750_000_000
EMOJI_ONLY = "😂😂🔥🔥👍🏻✨"
LONG_TITLE = "原神新角色实机演示" * 400


def _video(bvid: str, title: str, up: int, tags: tuple[str, ...] = (), tid: int = 17, view: int = 50_000) -> Video:
    return Video(
        bvid,
        title,
        up,
        f"up{up}",
        tags,
        tid,
        f"part{tid}",
        300,
        NOW - 5 * 86400,
        view,
        view // 20,
        view // 60,
        view // 100,
        view // 400,
        view // 50,
        view // 200,
    )


# A user who likes cooking videos and skips car videos; each from its own uploader, so the title and
# tags are all that tell them apart.
_COOKING = [
    "红烧肉的家常做法",
    "教你做正宗麻婆豆腐",
    "十分钟学会番茄炒蛋",
    "糖醋排骨最简单的做法",
    "家常红烧鱼做法",
    "宫保鸡丁的正宗做法",
    "可乐鸡翅家常做法",
    "麻婆豆腐和回锅肉",
    "番茄牛腩的家常做法",
    "红烧茄子做法分享",
]
_CARS = [
    "新款轿车试驾体验",
    "越野车山路测评",
    "电动汽车续航实测",
    "跑车赛道圈速测试",
    "二手车选购指南",
    "SUV油耗对比测评",
    "新能源汽车充电测试",
    "轿车底盘深度解析",
    "豪华轿车内饰评测",
    "越野车涉水测试",
]


def _cooking_user(followed: frozenset[int] = frozenset()) -> tuple[dict[str, Video], UserData]:
    videos: dict[str, Video] = {}
    events: list[Event] = []
    for i in range(60):
        cooking = i % 2 == 0
        title = (_COOKING if cooking else _CARS)[(i // 2) % 10] + f" 第{i}期"
        v = _video(
            f"BV{i:04d}", title, 1000 + i, ("美食",) if cooking and i % 4 == 0 else ("汽车",) if not cooking else ()
        )
        videos[v.bvid] = v
        at = NOW - (60 - i) * 3600
        events.append(Event(v.bvid, "watch", at, 280 if cooking else 20, 300))
        if cooking:
            events.append(Event(v.bvid, "like", at + 1))
    return videos, UserData(events, followed=followed)


ODD_TITLES = [EMOJI_ONLY, "", "   ", LONG_TITLE, "【】！？…——", "a b c 1 2 3"]


def test_odd_titles_train_encode_and_rank():
    assert title_tokens(EMOJI_ONLY) == () and title_tokens("") == () and title_tokens("【】！？…——") == ()
    assert 0 < len(title_tokens(LONG_TITLE)) < 50, "a long title is read, and bounded"
    videos, data = _cooking_user()
    odd = [_video(f"BVodd{i}", t, 5 + i) for i, t in enumerate(ODD_TITLES)]
    videos |= {v.bvid: v for v in odd}
    data = UserData([*data.events, *(Event(v.bvid, "like", NOW - 10 - i) for i, v in enumerate(odd))])
    model = train_users({"u": data}, videos, None, NOW)["u"]
    table = encode_videos(odd, model.cfg, NOW)
    assert table.tokens.shape == (len(odd), model.cfg.max_tokens)
    assert np.isfinite(model.logits(table)).all()
    picks = rank(model, odd, k=len(odd), exclude=(), now=NOW)
    assert {p.bvid for p in picks} == {v.bvid for v in odd}
    # an emoji-only title still has its uploader and partition to be compared by
    assert abs(float(np.linalg.norm(content_vector(odd[0]))) - 1.0) < 1e-5
    assert all(0 < s <= 1.0 + 1e-6 for _, s in content_neighbours(odd[0], odd, k=3))


def test_a_video_nobody_has_seen_is_ranked_by_its_title():
    videos, data = _cooking_user()
    model = train_users({"u": data}, videos, None, NOW)["u"]
    # two videos nobody watched, by uploaders the user never met, no tags: only the titles differ
    cooking = _video("BVnew1", "超下饭的红烧肉家常做法", 9001, view=40_000)
    cars = _video("BVnew2", "新款越野车试驾测评", 9002, view=40_000)
    picks = rank(model, [cars, cooking], k=2, exclude=(), now=NOW)
    assert [p.bvid for p in picks] == ["BVnew1", "BVnew2"]


def test_content_neighbours_share_title_words_tags_or_uploader():
    cooking = _video("BVa", "家常红烧肉做法", 1, ("美食",))
    others = [
        _video("BVb", "新款轿车试驾", 2, ("汽车",)),
        _video("BVc", "红烧肉的正宗做法", 3, ("美食",)),
        _video("BVd", EMOJI_ONLY, 4, (), tid=99),
        cooking,
    ]
    neighbours = content_neighbours(cooking, others, k=3)
    assert neighbours[0][0] == "BVc"
    assert "BVa" not in [b for b, _ in neighbours], "not its own neighbour"
    assert all(0 < s <= 1.0 + 1e-6 for _, s in neighbours)
    assert content_neighbours(cooking, [], k=3) == []


def test_a_followed_uploader_counts_for_their_video_the_user_never_saw():
    # The user follows the uploaders of the cooking videos they liked, and one they never watched.
    liked_ups = frozenset(1000 + i for i in range(0, 60, 2))
    videos, data = _cooking_user(followed=liked_ups | {9001})
    model = train_users({"u": data}, videos, None, NOW)["u"]
    same = "一期普通的日常视频"
    followed, stranger = _video("BVf", same, 9001), _video("BVs", same, 9002)
    picks = rank(model, [stranger, followed], k=2, exclude=(), now=NOW, followed={9001})
    assert [p.bvid for p in picks] == ["BVf", "BVs"]
    assert picks[0].reason.kind == "followed"


def test_a_model_saved_before_titles_and_follows_loads_and_scores_as_before(tmp_path):
    videos, data = _cooking_user()
    model = train_users({"u": data}, videos, None, NOW)["u"]
    old = {k: v for k, v in model.state.items() if not k.startswith(("wide.token", "wide.follow", "deep.tokens"))}
    d_in = old["deep.l1.weight"].shape[1] - model.cfg.embed_dim - 1  # before: tags, uploader, numerics
    old["deep.l1.weight"] = old["deep.l1.weight"][:, :d_in].clone()
    store = ModelStore(tmp_path)
    store.save("old", replace(model, state=old, _module=None))
    loaded = store.load("old")
    table = encode_videos(list(videos.values()), model.cfg, NOW)
    expected = replace(model, state={k: (v if k in old else v * 0) for k, v in model.state.items()}, _module=None)
    expected.state["deep.l1.weight"][:, :d_in] = old["deep.l1.weight"]
    np.testing.assert_allclose(loaded.logits(table), expected.logits(table), rtol=1e-5, atol=1e-5)


def test_titles_are_segmented_when_stored(any_db: Database):
    catalogue.use_title_tokeniser(title_tokens)
    try:
        catalogue.save_videos(any_db, [FakeVideo("BV1", ("美食",), title="家常红烧肉做法")], now=100)
        catalogue.add_partial_videos(any_db, [FakeVideo("BV2", None, title=EMOJI_ONLY)])
        rows = catalogue.get_videos(any_db, ["BV1", "BV2"])
        assert catalogue.video_title_tokens(rows["BV1"]) == title_tokens("家常红烧肉做法") != ()
        assert to_rec_video(rows["BV1"]).title_tokens == title_tokens("家常红烧肉做法")
        assert catalogue.video_title_tokens(rows["BV2"]) == ()
    finally:
        catalogue.use_title_tokeniser(None)
