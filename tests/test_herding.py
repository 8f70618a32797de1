"""MaxHerding: sparse kernel, greedy coverage, against a dense reference."""

from __future__ import annotations

import numpy as np
import pytest

from moby_al_plugin.exceptions import MoBYALError
from moby_al_plugin.selection.herding import knn_rbf_kernel, max_herding_select


def _check_greedy(kernel: np.ndarray, n_labeled: int, picks: np.ndarray) -> None:
    """Every pick has the largest coverage gain, each gain recomputed from scratch (dense)."""
    coverage = kernel[:n_labeled].max(axis=0) if n_labeled else np.zeros(len(kernel))
    chosen = list(range(n_labeled))
    for pick in picks + n_labeled:
        gains = np.maximum(kernel - coverage[None, :], 0.0).sum(axis=1)
        gains[chosen] = -np.inf
        assert gains[pick] == pytest.approx(gains.max(), rel=1e-9, abs=1e-12)
        chosen.append(pick)
        coverage = np.maximum(coverage, kernel[pick])


def test_kernel_is_symmetric_sparse_rbf():
    x = np.array([[0.0], [1.0], [3.0], [10.0]])
    k = knn_rbf_kernel(x, n_neighbors=1, bandwidth=1.0).toarray()
    np.testing.assert_allclose(k, k.T)
    np.testing.assert_allclose(np.diag(k), 1.0)
    # kNN(1): 0->1, 1->0, 3->1, 10->3; symmetrised
    assert k[0, 1] == pytest.approx(np.exp(-0.5))
    assert k[1, 2] == pytest.approx(np.exp(-2.0))
    assert k[2, 3] == pytest.approx(np.exp(-24.5))
    assert k[0, 2] == 0.0 and k[0, 3] == 0.0 and k[1, 3] == 0.0


@pytest.mark.parametrize("n_labeled", [0, 7])
def test_greedy_matches_dense_recomputation(n_labeled):
    x = np.random.default_rng(5).normal(size=(80, 3))
    kernel = knn_rbf_kernel(x, n_neighbors=6).toarray()
    picks = max_herding_select(x[:n_labeled], x[n_labeled:], 12, n_neighbors=6)
    assert len(set(picks.tolist())) == 12
    _check_greedy(kernel, n_labeled, picks)


def test_one_pick_per_cluster_never_the_outlier():
    rng = np.random.default_rng(0)
    centres = np.array([[10.0, 0.0], [0.0, 10.0], [-10.0, 0.0]])
    points = np.concatenate([c + 0.1 * rng.normal(size=(30, 2)) for c in centres])
    candidates = np.concatenate([points, [[50.0, 50.0]]])
    picks = max_herding_select(None, candidates, 3, n_neighbors=10)
    assert sorted((picks // 30).tolist()) == [0, 1, 2]
    # labels already in clusters 0 and 1: the next pick covers cluster 2
    picks = max_herding_select(points[[0, 30]], candidates, 1, n_neighbors=10)
    assert picks[0] // 30 == 2


def test_uniform_fallback_once_everything_is_covered():
    x = np.array([[0.0], [0.0], [0.0], [100.0], [100.0]])
    picks = max_herding_select(None, x, 5, n_neighbors=1, bandwidth=1.0, random_state=0)
    assert sorted(picks.tolist()) == [0, 1, 2, 3, 4]


def test_uniform_fallback_draws_the_rest_at_random_once_coverage_is_full():
    # two far groups of 20 identical points, each group a clique of the 19-NN graph:
    # one pick per group covers everything (k = 1 on a clique), and the other 8
    # picks come uniformly from the 38 unpicked candidates, seeded by random_state
    x = np.repeat([[0.0], [100.0]], 20, axis=0)
    group = np.arange(40) // 20
    counts = np.zeros(40, dtype=int)
    fallbacks, greedy = set(), set()
    for seed in range(40):
        picks = max_herding_select(None, x, 10, n_neighbors=19, random_state=seed)
        assert sorted(group[picks[:2]].tolist()) == [0, 1]  # greedy: one per group
        assert len(set(picks.tolist())) == 10
        greedy.add(tuple(picks[:2].tolist()))
        fallbacks.add(tuple(sorted(picks[2:].tolist())))
        counts[picks[2:]] += 1
        again = max_herding_select(None, x, 10, n_neighbors=19, random_state=seed)
        assert again.tolist() == picks.tolist()
    assert len(greedy) == 1  # the greedy part does not depend on the seed
    assert len(fallbacks) > 30  # the seed decides the rest, not the candidates' order
    # 320 uniform draws over 38 candidates: about 8 each, none left out, none favoured
    rest = np.setdiff1d(np.arange(40), list(greedy.pop()))
    assert (counts[rest] > 0).all() and counts[rest].max() < 25
    assert counts[:10].sum() < 0.5 * counts.sum()  # not the lowest indices first


def test_errors():
    x = np.zeros((4, 2))
    with pytest.raises(MoBYALError, match="Cannot pick 5 of 4"):
        max_herding_select(None, x, 5)
    with pytest.raises(MoBYALError, match="bandwidth"):
        max_herding_select(None, x, 1, bandwidth=0.0)
    with pytest.raises(MoBYALError, match="n_neighbors"):
        max_herding_select(None, x, 1, n_neighbors=0)
    with pytest.raises(MoBYALError, match="width"):
        max_herding_select(np.zeros((1, 3)), x, 1)
