"""EASE (recommender/ease.py): the item-item baseline of the offline evaluation."""

from __future__ import annotations

import numpy as np

from recommender.ease import choose_l2, fit_ease

# "a" and "b" are always watched together; "c" is the most watched item but never with "a".
CO_WATCHED = {
    **{f"ab{i}": {"a", "b"} for i in range(3)},
    **{f"cd{i}": {"c", "d"} for i in range(5)},
    **{f"ce{i}": {"c", "e"} for i in range(2)},
}


def test_ease_ranks_the_co_watched_item_first_not_the_most_popular() -> None:
    model = fit_ease(CO_WATCHED, l2=1.0)
    cands = ["b", "c", "d", "e"]
    scores = model.scores({"a"}, cands)
    assert cands[int(np.argmax(scores))] == "b"
    assert scores[cands.index("b")] > 0


def test_ease_weights_solve_the_zero_diagonal_ridge_problem() -> None:
    """min ||X - XB||² + λ||B||² with diag(B) = 0: its stationarity condition says
    (XᵀX + λI)B - XᵀX is diagonal (the constraint's multipliers)."""
    rng = np.random.default_rng(0)
    users = {f"u{u}": {f"i{j}" for j in np.flatnonzero(rng.random(12) < 0.3)} | {"i0"} for u in range(40)}
    model = fit_ease(users, l2=5.0)
    x = np.array([[b in chosen for b in model.items] for chosen in users.values()], dtype=float)
    gram = x.T @ x
    b = model.weights
    assert np.allclose(np.diag(b), 0.0)
    residual = (gram + 5.0 * np.eye(len(gram))) @ b - gram
    assert np.allclose(residual - np.diag(np.diag(residual)), 0.0, atol=1e-9)


def test_ease_scores_unknown_items_and_empty_histories_as_zero() -> None:
    model = fit_ease(CO_WATCHED, l2=1.0, items=["z"])
    assert list(model.scores({"a"}, ["z", "never-seen"])) == [0.0, 0.0]
    assert list(model.scores(set(), ["a", "b"])) == [0.0, 0.0]


def test_ease_ridge_is_chosen_from_the_grid_on_held_out_items() -> None:
    """Pairs x{k}, x{k}b: most users chose both early; the others chose x{k}b last (held out)."""
    rng = np.random.default_rng(0)
    fillers = lambda n: [f"f{j}" for j in rng.choice(20, n, replace=False)]  # noqa: E731
    sequences = {f"early{u}": [f"x{u % 5}", f"x{u % 5}b", *fillers(3)] for u in range(40)}
    sequences |= {f"late{u}": [*fillers(4), f"x{u % 5}", f"x{u % 5}b"] for u in range(20)}
    best, by_l2 = choose_l2(sequences, grid=(1.0, 10.0, 100.0))
    assert set(by_l2) == {1.0, 10.0, 100.0}
    assert by_l2[best] == max(by_l2.values()) > 0.3  # the held-out partner comes near the top
