"""The system's ranking fuses the per-user W&D score with the shared signals (item-kNN, EASE): each
user's weights are chosen on their validation slice (recommender/fusion.py), EASE travels with the
shared signals through both model stores."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from recommender.blobstore import shared_from_bytes, shared_to_bytes
from recommender.ease import fit_ease
from recommender.fusion import ValidationSlice, choose_weights, weight_grid
from recommender.shared import SharedSignals, build_from_choices
from recommender.types import TrainConfig

CFG = replace(TrainConfig(), fusion_shrink=0.0)  # no shrinkage: the validation choice itself


def _slice(signal_that_ranks: int, n: int = 40, seed: int = 0) -> ValidationSlice:
    """Logits that are noise; one of the two signals puts the positives first."""
    rng = np.random.default_rng(seed)
    positive = np.arange(n) < 8
    signals = rng.normal(size=(2, n))
    signals[signal_that_ranks] += 3.0 * positive
    return ValidationSlice(rng.normal(size=n) * 0.1, signals, positive)


def test_each_user_gets_the_signal_that_ranks_their_validation_slice() -> None:
    grid = weight_grid(CFG, with_ease=True)
    knn_user, ease_user = choose_weights([_slice(0), _slice(1)], grid, CFG)
    assert knn_user[0] > 0 and knn_user[0] > knn_user[1]
    assert ease_user[1] > 0 and ease_user[1] > ease_user[0]


def test_few_validation_positives_stay_near_the_prior_and_no_slice_gets_the_prior() -> None:
    cfg = replace(TrainConfig(), fusion_shrink=1000.0)
    grid = weight_grid(cfg, with_ease=True)
    (knn, ease), none = choose_weights([_slice(1), None], grid, cfg)
    assert abs(knn - cfg.fusion_prior) < 0.01 and abs(ease - cfg.ease_prior) < 0.01
    assert none == (cfg.fusion_prior, cfg.ease_prior)


def test_signals_without_ease_give_ease_no_weight() -> None:
    grid = weight_grid(CFG, with_ease=False)
    assert set(grid[:, 1]) == {0.0}
    assert all(w[1] == 0.0 for w in choose_weights([_slice(1), None], grid, CFG))


CHOICES = {**{f"ab{i}": ["a", "b", f"x{i}"] for i in range(6)}, **{f"cd{i}": ["c", "d"] for i in range(8)}}


def test_shared_ease_scores_are_ease_and_survive_both_stores(tmp_path) -> None:
    shared = build_from_choices(CHOICES, {})
    assert shared.has_ease and shared.ease_l2 > 0
    reference = fit_ease(CHOICES, shared.ease_l2)
    cands = ["b", "c", "d", "x1", "unknown"]
    expected = reference.scores(["a"], cands)
    assert np.allclose(shared.ease_scores(["a"], cands), expected, atol=1e-5)
    assert cands[int(np.argmax(shared.ease_scores(["a"], cands)))] == "b"
    shared.save(tmp_path / "shared.safetensors")
    for loaded in (SharedSignals.load(tmp_path / "shared.safetensors"), shared_from_bytes(shared_to_bytes(shared))):
        assert loaded.ease_l2 == shared.ease_l2
        assert np.allclose(loaded.ease_scores(["a"], cands), expected, atol=1e-5)
        assert np.allclose(loaded.scores(["a"], cands), shared.scores(["a"], cands))


def test_signals_saved_before_ease_load_and_rank_with_knn_alone(tmp_path) -> None:
    old = build_from_choices(CHOICES, {}, ease=False)
    old.save(tmp_path / "old.safetensors")
    loaded = SharedSignals.load(tmp_path / "old.safetensors")
    assert not loaded.has_ease
    assert list(loaded.ease_scores(["a"], ["b"])) == [0.0]
    assert loaded.scores(["a"], ["b"])[0] > 0
