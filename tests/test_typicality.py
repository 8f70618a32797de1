"""TypiClust on hand-built point sets whose right picks are known."""

from __future__ import annotations

import numpy as np
import pytest

from moby_al_plugin.exceptions import MoBYALError
from moby_al_plugin.typicality import kmeans_labels, typicality, typiclust_select


def _blobs(sizes, centres, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    points = [c + spread * rng.normal(size=(s, len(c))) for s, c in zip(sizes, centres)]
    which = np.repeat(np.arange(len(sizes)), sizes)
    return np.concatenate(points), which


CENTRES = np.array([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]])


def test_typicality_hand_computed():
    # 1-D points 0, 1, 3 with K = 1: nearest other at 1, 1 and 2
    t = typicality(np.array([[0.0], [1.0], [3.0]]), n_neighbors=1)
    np.testing.assert_allclose(t, 1.0 / (np.array([1.0, 1.0, 2.0]) + 1e-5))
    # K is capped at half the set: 4 points, n_neighbors=20 -> K = 2
    t = typicality(np.array([[0.0], [1.0], [2.0], [10.0]]), n_neighbors=20)
    np.testing.assert_allclose(t, 1.0 / (np.array([1.5, 1.0, 1.5, 8.5]) + 1e-5))
    assert typicality(np.zeros((1, 2))).tolist() == [0.0]


@pytest.mark.parametrize("n", [3, 4])
def test_one_pick_per_tight_cluster_never_the_outlier(n):
    points, which = _blobs([30, 30, 30], CENTRES)
    outlier = np.array([[-10.0, -10.0, -10.0]])
    candidates = np.concatenate([points, outlier])
    picks = typiclust_select(None, candidates, n, random_state=0)
    assert len(set(picks.tolist())) == n
    assert 90 not in picks
    assert set(which[picks[:3]].tolist()) == {0, 1, 2}


def test_the_pick_is_the_densest_point_of_its_cluster():
    # one cluster: a dense core at 0 and a sparse tail; the core's centre wins
    core = np.array([-0.3, -0.1, -0.03, 0.0, 0.03, 0.1, 0.3])
    tail = np.array([2.0, 3.0, 4.5, 6.0])
    x = np.concatenate([core, tail])[:, None]
    # K = 4: mean distance 0.065 at 0, 0.0725 at +-0.03, larger elsewhere
    picks = typiclust_select(None, x, 1, n_neighbors=4)
    assert picks.tolist() == [3]


def test_clusters_with_fewest_labels_first_then_largest():
    points, which = _blobs([40, 30, 20], CENTRES)
    labelled = CENTRES[:1] + 0.01  # one label in the 40-point cluster
    picks = typiclust_select(labelled, points, 2, random_state=0)
    # three clusters (1 label + 2 picks): the unlabelled ones, larger (30) first
    assert which[picks].tolist() == [1, 2]


def test_more_picks_than_clusters_go_round_again():
    points, which = _blobs([30, 20], CENTRES[:2])
    picks = typiclust_select(None, points, 5, max_clusters=2, random_state=0)
    assert len(set(picks.tolist())) == 5
    assert which[picks].tolist() == [0, 1, 0, 1, 0]


def test_small_pool_uses_small_clusters():
    x = np.arange(8.0)[:, None]
    picks = typiclust_select(None, x, 6, min_cluster_size=5, random_state=0)
    assert len(set(picks.tolist())) == 6  # every cluster holds <= 5 points


def test_seeded_and_deterministic():
    x = np.random.default_rng(3).normal(size=(200, 4))
    a = typiclust_select(x[:10], x[10:], 15, random_state=1)
    b = typiclust_select(x[:10], x[10:], 15, random_state=1)
    assert a.tolist() == b.tolist()


def test_minibatch_above_fifty_clusters():
    x = np.random.default_rng(4).normal(size=(400, 3))
    picks = typiclust_select(x[:60], x[60:], 10, random_state=0)  # 70 clusters
    assert len(set(picks.tolist())) == 10


def _spy_on_kmeans(monkeypatch):
    """Count the fits of both k-means classes that kmeans_labels may use."""
    import moby_al_plugin.typicality as typ

    fits = {"KMeans": 0, "MiniBatchKMeans": 0}
    for name in fits:
        real = getattr(typ, name)

        class Spy(real):
            def fit_predict(self, *args, _name=name, **kwargs):
                fits[_name] += 1
                return super().fit_predict(*args, **kwargs)

        monkeypatch.setattr(typ, name, Spy)
    return fits


@pytest.mark.parametrize(
    "n_clusters, expected", [(50, "KMeans"), (51, "MiniBatchKMeans"), (60, "MiniBatchKMeans")]
)
def test_minibatch_kmeans_exactly_above_fifty_clusters(monkeypatch, n_clusters, expected):
    fits = _spy_on_kmeans(monkeypatch)
    # 60 tight, far apart blobs of 6 points on a line
    centres = 100.0 * np.arange(60, dtype=float)[:, None]
    points, which = _blobs([6] * 60, centres, spread=0.1)
    labels = kmeans_labels(points, n_clusters, random_state=0)
    assert fits == {
        "KMeans": int(expected == "KMeans"),
        "MiniBatchKMeans": int(expected == "MiniBatchKMeans"),
    }
    assert len(np.unique(labels)) == n_clusters
    # sensible clusters: intervals of the line (one run each along it), and whole
    # blobs but for a rare split of one by a single k-means++ start
    runs = 1 + np.count_nonzero(np.diff(labels[np.argsort(points[:, 0])]))
    assert runs == n_clusters
    assert sum(len(np.unique(labels[which == b])) > 1 for b in range(60)) <= 2


def test_typiclust_above_fifty_clusters_takes_minibatch_and_one_pick_per_blob(monkeypatch):
    fits = _spy_on_kmeans(monkeypatch)
    centres = 100.0 * np.arange(60, dtype=float)[:, None]
    points, which = _blobs([6] * 60, centres, spread=0.1)
    # 10 labels in blobs 0..9, 45 picks: 55 clusters, so MiniBatchKMeans
    labelled = centres[:10] + 0.01
    picks = typiclust_select(labelled, points, 45, min_cluster_size=5, random_state=0)
    assert fits == {"KMeans": 0, "MiniBatchKMeans": 1}
    # every pick from its own blob, none in a labelled one, five blobs left alone
    assert len(set(which[picks].tolist())) == 45
    assert not set(which[picks].tolist()) & set(range(10))


def test_errors():
    x = np.zeros((5, 2))
    with pytest.raises(MoBYALError, match="fewer candidates than clusters"):
        kmeans_labels(x, 6)
    with pytest.raises(MoBYALError, match="Cannot pick 6 of 5"):
        typiclust_select(None, x, 6)
    with pytest.raises(MoBYALError, match="width"):
        typiclust_select(np.zeros((2, 3)), x, 1)
    with pytest.raises(MoBYALError, match="max_clusters"):
        typiclust_select(None, x, 1, max_clusters=0)
    with pytest.raises(TypeError, match="n_neighbors"):
        typiclust_select(None, x, 1, n_neighbors=2.5)
