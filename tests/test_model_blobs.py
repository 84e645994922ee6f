"""Distributed mode's model store: the same models through database blobs, seen by every process."""

from __future__ import annotations

import numpy as np
import pytest

from recommender import Event, build_shared_signals, train_users
from recommender.blobstore import BlobModelStore
from recommender.data import synthetic
from recommender.features import encode_videos
from storage.db import Database
from storage.model_blobs import DatabaseBlobs
from tests.dbfixtures import any_db, postgres_url  # noqa: F401

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def trained():
    s = synthetic(n_users=3, seed=2)
    from recommender import UserData

    data = {u: UserData(evs, s.pools[u]) for u, evs in s.events.items()}
    return s, train_users(data, s.videos, None, s.now)


def _scores(model, s):
    bvids = sorted(s.videos)[:40]
    return model.logits(encode_videos([s.videos[b] for b in bvids], model.cfg, s.now))


def test_a_model_saved_by_one_process_is_loaded_by_another_and_replaced_by_version(trained, any_db: Database):
    s, models = trained
    worker, front = BlobModelStore(DatabaseBlobs(any_db)), BlobModelStore(DatabaseBlobs(Database(any_db.url)))
    assert front.load("7") is None
    assert worker.save("7", models["u0"]) == 1
    np.testing.assert_allclose(_scores(front.load("7"), s), _scores(models["u0"], s), atol=1e-6)
    assert worker.save("7", models["u1"]) == 2 and worker.save("7", models["u1"]) == 3
    # The front's cached v1 is stale: the newer version in the database replaces it.
    np.testing.assert_allclose(_scores(front.load("7"), s), _scores(models["u1"], s), atol=1e-6)
    assert front.latest_version("7") == 3
    worker.delete("7")
    assert front.load("7") is None
    # A model trained after the delete starts at version 1 again: the stamp keeps the cache honest.
    worker.save("7", models["u2"])
    np.testing.assert_allclose(_scores(front.load("7"), s), _scores(models["u2"], s), atol=1e-6)


def test_the_cache_is_bounded(trained, any_db: Database):
    _, models = trained
    store = BlobModelStore(DatabaseBlobs(any_db), cache_size=2)
    for key in ("a", "b", "c"):
        store.save(key, models["u0"])
        store.load(key)
    assert len(store._cache) == 2 and "a" not in store._cache


def test_a_drop_on_the_front_voids_the_shared_signals_of_a_pass_on_a_worker(any_db: Database):
    shared = build_shared_signals({"a": [Event("BV1", "like", 1), Event("BV2", "like", 2)]}, {})
    worker, front = BlobModelStore(DatabaseBlobs(any_db)), BlobModelStore(DatabaseBlobs(any_db))
    before = worker.shared_generation  # the worker's pass reads everyone's behaviour...
    front.drop_shared()  # ...someone uses /forget on the front...
    assert worker.save_shared(shared, before) is False and front.load_shared() is None
    assert worker.save_shared(shared, worker.shared_generation)
    loaded = front.load_shared()
    assert loaded.bvids == shared.bvids
    assert (loaded.scores(["BV2"], loaded.bvids) == shared.scores(["BV2"], shared.bvids)).all()
