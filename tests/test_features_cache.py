"""Ranking gathers each candidate's encoded row from a store kept per Video object: what it gathers
must be what encoding the videos afresh gives, including for a video whose stats changed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from recommender.data import synthetic
from recommender.features import encode_candidates, encode_videos
from recommender.types import TrainConfig


def _same(a, b) -> None:
    assert a.bvids == b.bvids
    for name in ("tags", "uploader", "partition", "cross", "tokens", "owner_mid"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.allclose(a.numeric, b.numeric, atol=1e-6)


def test_gathered_rows_equal_fresh_encoding_and_follow_changed_videos():
    s = synthetic(n_users=2, seed=3)
    videos = list(s.videos.values())[:300]
    cfg = TrainConfig()
    _same(encode_candidates(videos, cfg, s.now), encode_videos(videos, cfg, s.now))
    _same(encode_candidates(videos, cfg, s.now + 86400 * 30), encode_videos(videos, cfg, s.now + 86400 * 30))
    # A re-read row is a new Video object: its new stats are encoded, not the stored row's.
    changed = [replace(v, view=v.view * 10 + 1, tags=("新标签",)) if i % 2 else v for i, v in enumerate(videos)]
    _same(encode_candidates(changed, cfg, s.now), encode_videos(changed, cfg, s.now))
