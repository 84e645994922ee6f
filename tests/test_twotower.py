"""The shared two-tower recall model (issue 17 item 4) and the MMR re-rank of the page: stored through
both model stores as safetensors (nothing unpickled), recall of unseen catalogue videos that match a
user's history, and a page that keeps the uploader cap and the explore slot."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from recommender import Event, ModelStore, TwoTower, UserData, Video, rank, train_two_tower, train_users
from recommender.blobstore import BlobModelStore
from recommender.diversity import mmr_page
from storage.db import Database
from storage.model_blobs import DatabaseBlobs
from tests.dbfixtures import any_db, postgres_url  # noqa: F401

NOW = 1_750_000_000
NICHES = ("cooking", "chess", "rally")


def _video(bvid: str, niche: str, up: int, view: int = 50_000) -> Video:
    """A video of one niche: its tags, a partition and uploaders of that niche."""
    return Video(
        bvid,
        f"{niche} {bvid}",
        up,
        f"up{up}",
        (niche, f"{niche}-tips", f"{niche}-{up % 3}"),
        NICHES.index(niche) + 1,
        niche,
        600,
        NOW - 86400,
        view,
        view // 20,
        view // 50,
        view // 80,
        view // 200,
        view // 30,
        view // 100,
    )


@pytest.fixture(scope="module")
def world():
    """Three niches, each with 5 uploaders; 30 users who each choose 20 videos of one niche. Each niche
    also holds 20 videos nobody chose (new uploads by the niche's uploaders): recall must find those."""
    rng = np.random.default_rng(3)
    videos: dict[str, Video] = {}
    by_niche: dict[str, list[str]] = {n: [] for n in NICHES}
    unseen: dict[str, list[str]] = {n: [] for n in NICHES}
    for n_i, niche in enumerate(NICHES):
        for j in range(60):
            v = _video(f"BV{n_i}{j:04d}", niche, 100 * n_i + j % 5, int(rng.integers(1_000, 1_000_000)))
            videos[v.bvid] = v
            (by_niche if j < 40 else unseen)[niche].append(v.bvid)
    choices = {}
    for u in range(30):
        niche = NICHES[u % 3]
        choices[str(u)] = list(rng.choice(by_niche[niche], 20, replace=False))
    tower = train_two_tower(choices, videos, list(videos), built_at=NOW)
    return videos, choices, unseen, tower


def _never_unpickle(monkeypatch) -> None:
    def refuse(*_a, **_k):
        raise AssertionError("a model store unpickled something")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)


def _same(a: TwoTower, b: TwoTower, history: list[str]) -> None:
    assert a.bvids == b.bvids and a.members == b.members and a.built_at == b.built_at
    np.testing.assert_allclose(a.vectors, b.vectors)
    assert a.recall(history, 30) == b.recall(history, 30)


def test_the_two_tower_model_saves_and_loads_as_safetensors_through_the_files(world, tmp_path: Path, monkeypatch):
    _, choices, _, tower = world
    store = ModelStore(tmp_path)
    assert store.load_twotower() is None
    assert store.save_twotower(tower, store.twotower_generation)
    raw = (tmp_path / "twotower.safetensors").read_bytes()
    assert raw[8:9] == b"{" and int.from_bytes(raw[:8], "little") < len(raw)  # u64 length + JSON header
    _never_unpickle(monkeypatch)
    _same(ModelStore(tmp_path).load_twotower(), tower, choices["0"])  # another process reads the file


@pytest.mark.postgres
def test_the_two_tower_model_saves_and_loads_through_the_database_blobs(world, any_db: Database, monkeypatch):
    _, choices, _, tower = world
    worker, front = BlobModelStore(DatabaseBlobs(any_db)), BlobModelStore(DatabaseBlobs(Database(any_db.url)))
    assert front.load_twotower() is None
    before = worker.twotower_generation  # a worker's build reads everyone's behaviour...
    front.drop_twotower()  # ...someone uses /forget on the front...
    assert worker.save_twotower(tower, before) is False  # ...so that build is not kept
    assert worker.save_twotower(tower, worker.twotower_generation)
    _never_unpickle(monkeypatch)
    _same(front.load_twotower(), tower, choices["0"])
    front.drop_twotower()
    assert worker.load_twotower() is None


def test_recall_returns_unseen_catalogue_videos_of_the_users_niche(world):
    videos, choices, unseen, tower = world
    for user in ("0", "1", "2"):
        niche = NICHES[int(user) % 3]
        history = choices[user]
        recalled = tower.recall(history, 20)
        assert not set(recalled) & set(history), "what the user chose is not recalled"
        mine = [b for b in recalled if videos[b].tname == niche]
        assert len(mine) >= 18, f"user {user} ({niche}): {Counter(videos[b].tname for b in recalled)}"
        fresh = [b for b in tower.recall(history, 200) if b in unseen[niche]]
        assert fresh, "videos nobody chose are recalled by their content"
        top_unseen = [b for b in tower.recall(history, 60, exclude=set().union(*map(set, choices.values())))]
        assert sum(b in unseen[niche] for b in top_unseen[:20]) >= 18


def test_recall_leaves_out_what_is_excluded_and_what_is_not_in_the_catalogue(world):
    videos, choices, unseen, _ = world
    catalogue = [b for b in videos if b not in unseen["cooking"][:10]]  # e.g. gone or without metadata
    tower = train_two_tower(choices, videos, catalogue, built_at=NOW)
    history = choices["0"]  # a cooking user
    excluded = set(unseen["cooking"][10:15])
    recalled = tower.recall(history, 500, exclude=excluded)
    assert not set(recalled) & (set(unseen["cooking"][:15]) | set(history))
    assert tower.recall([], 10) == [] and tower.recall(["BVunknown"], 10) == []


def test_an_optional_bag_of_title_tokens_moves_the_item_vector(world):
    """A video's title words (`title_tokens`, stored at save) reach the item tower."""
    videos, _, _, tower = world
    v = videos["BV00000"]
    fresh = [
        Video(**{**v.__dict__, "bvid": "BVnew", "title": "", "title_tokens": ()}),
        Video(**{**v.__dict__, "bvid": "BVnew2", "title": "", "title_tokens": ("红烧肉", "做法")}),
    ]
    plain, tokened = tower.item_vectors(fresh)
    assert np.isclose(np.linalg.norm(plain), 1) and np.isclose(np.linalg.norm(tokened), 1)
    assert not np.allclose(plain, tokened)


def _tower_for(videos: list[Video], vectors: np.ndarray) -> TwoTower:
    """A stand-in holding given item vectors (MMR reads only item_vectors)."""

    class Fixed:
        def item_vectors(self, vids):
            at = {v.bvid: i for i, v in enumerate(videos)}
            return vectors[[at[v.bvid] for v in vids]]

    return Fixed()  # type: ignore[return-value]


def test_mmr_lets_a_different_video_of_near_equal_score_in_before_a_near_duplicate():
    vids = [_video(f"BV{i}", "chess", i) for i in range(4)]
    vectors = np.array([[1, 0], [0.999, 0.045], [0, 1], [0.7, 0.7]], dtype=np.float32)
    scores = np.array([1.0, 0.98, 0.95, 0.0])
    order = list(np.argsort(-scores))
    page = mmr_page(order, scores, vids, _tower_for(vids, vectors).item_vectors, 2, (5, 5))
    assert page == [0, 2]  # score order would be [0, 1]: a near-duplicate of the first
    assert mmr_page(order, scores, vids, _tower_for(vids, vectors).item_vectors, 2, (5, 5), lam=1.0) == [0, 1]


def test_the_mmr_page_keeps_the_uploader_cap_and_the_explore_slot(world):
    """A model that loves one uploader: the page still holds at most k/5 of theirs, and one explore pick."""
    videos, _, _, tower = world

    loved = [b for b in videos if videos[b].owner_mid == 0]  # one cooking uploader
    events = [Event(b, "like", NOW - 3600 * i) for i, b in enumerate(loved[:8])]
    events += [Event(b, "shown", NOW - 3600 * i) for i, b in enumerate(list(videos)[100:160])]
    model = train_users({"me": UserData(events)}, videos, None, NOW)["me"]
    cands = list(videos.values())
    for k in (5, 10):
        picks = rank(model, cands, k=k, exclude={e.bvid for e in events}, now=NOW, tower=tower)
        assert len(picks) == k and len({p.bvid for p in picks}) == k
        ups = Counter(videos[p.bvid].owner_mid for p in picks)
        assert max(ups.values()) <= max(1, k // 5), ups
        assert sum(p.explore for p in picks) == 1 and picks[-1].explore
