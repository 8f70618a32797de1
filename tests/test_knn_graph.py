"""The neighbour search and the kNN graph, against hand-worked cases."""

import pickle
import sys

import numpy as np
import pytest

from moby_al_plugin.exceptions import MoBYALError
from moby_al_plugin.semi_supervised.knn_graph import NeighborIndex, knn_graph


def _on_circle(angles):
    """Unit vectors at these angles: cosine similarity orders them by angle."""
    angles = np.asarray(angles, dtype=float)
    return np.c_[np.cos(angles), np.sin(angles)].astype(np.float32)


def test_one_neighbour_graph_by_hand():
    # angles 0, 0.1, 0.3, 0.7: nearest of each is 0.1, 0, 0.1, 0.3
    # -> links 0-1, 1-2, 2-3 once made symmetric
    graph = knn_graph(NeighborIndex(_on_circle([0, 0.1, 0.3, 0.7])), 1).toarray()
    expected = np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], float)
    np.testing.assert_array_equal(graph, expected)


def test_graph_is_symmetric_without_self_loops():
    features = np.random.RandomState(0).normal(size=(60, 5))
    graph = knn_graph(NeighborIndex(features), 4)
    assert (graph != graph.T).nnz == 0
    assert graph.diagonal().sum() == 0
    assert np.asarray(graph.sum(axis=1)).min() >= 4  # its own 4, plus who chose it


def test_search_returns_cosine_similarities_in_order():
    index = NeighborIndex(3.0 * _on_circle([0, 0.2, 1.0]))  # scale does not matter
    similarities, indices = index.search(_on_circle([0.05]), 3)
    np.testing.assert_array_equal(indices[0], [0, 1, 2])
    np.testing.assert_allclose(similarities[0], np.cos([0.05, 0.15, 0.95]), atol=1e-5)


def test_faiss_finds_the_exact_neighbours_of_a_small_set():
    pytest.importorskip("faiss")
    features = np.random.RandomState(1).normal(size=(300, 16))
    exact = NeighborIndex(features, "exact")
    approximate = NeighborIndex(features, "faiss")
    assert approximate.method == "faiss"
    _, a = exact.search(features[:50], 5)
    _, b = approximate.search(features[:50], 5)
    # HNSW is approximate; on 300 points with these settings it finds them all
    assert np.mean([len(set(x) & set(z)) / 5 for x, z in zip(a, b)]) >= 0.98
    graph_a = knn_graph(exact, 5)
    graph_b = knn_graph(approximate, 5)
    assert abs(graph_a - graph_b).sum() <= 0.02 * graph_a.sum()


def test_auto_is_exact_for_small_sets():
    assert NeighborIndex(np.eye(3), "auto").method == "exact"


def test_pickled_index_searches_again():
    index = NeighborIndex(np.random.RandomState(2).normal(size=(40, 3)))
    before = index.search(index.features[:5], 3)
    restored = pickle.loads(pickle.dumps(index))
    after = restored.search(restored.features[:5], 3)
    np.testing.assert_array_equal(before[1], after[1])


def test_bad_values_are_named():
    with pytest.raises(MoBYALError, match="unknown neighbors method 'annoy'"):
        NeighborIndex(np.eye(3), "annoy")
    with pytest.raises(MoBYALError, match="n_neighbors=3 must be .* smaller than the 3 images"):
        knn_graph(NeighborIndex(np.eye(3)), 3)
    with pytest.raises(MoBYALError, match="k=4 neighbours"):
        NeighborIndex(np.eye(3)).search(np.eye(3), 4)


def test_missing_faiss_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss -> ImportError
    with pytest.raises(MoBYALError, match="pip install faiss-cpu"):
        NeighborIndex(np.eye(3), "faiss")
