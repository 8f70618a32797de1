"""TypiClust on hand-built point sets whose right picks are known."""

from __future__ import annotations

import numpy as np
import pytest

from moby_al_plugin.exceptions import MoBYALError
from moby_al_plugin.selection.typicality import kmeans_labels, typicality, typiclust_select


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
    import moby_al_plugin.selection.typicality as typ

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


# ------------------------------------------------------------ the sampled algorithm
# options that make the sampled algorithm sample on a pool of a few hundred points
SAMPLED = {"scale": "sampled", "kmeans_sample_size": 100, "cluster_sample_size": 50}
FOUR_CENTRES = np.concatenate([CENTRES, [[-10.0, 0.0, 0.0]]])


def _closeness(points, which, picks, centres):
    """Share of its blob closer to the blob's centre than each pick."""
    out = []
    for p in picks:
        b = which[p]
        to_centre = np.linalg.norm(points[which == b] - centres[b], axis=1)
        out.append(np.mean(to_centre < np.linalg.norm(points[p] - centres[b])))
    return np.asarray(out)


def test_sampled_one_pick_per_blob_near_its_centre_like_exact():
    # wide blobs of 400, 300 and 200 points: k-means fits on 100 of the 900 points,
    # and typicality in each blob is measured against 50 of its members
    points, which = _blobs([400, 300, 200], CENTRES, spread=1.0)
    for options in (SAMPLED, {"scale": "exact"}):
        picks = typiclust_select(None, points, 3, random_state=0, **options)
        assert sorted(which[picks].tolist()) == [0, 1, 2], options
        # a dense point: in the third of its blob nearest the centre
        assert (_closeness(points, which, picks, CENTRES) < 0.3).all(), options


def test_sampled_without_sampling_is_the_exact_algorithm():
    # float32 features, a fit sample of every point and every cluster measured whole
    points, _ = _blobs([60, 50, 40, 30], FOUR_CENTRES, spread=1.0, seed=2)
    points = points.astype(np.float32)
    for labelled, n in [(None, 4), (points[:2], 3), (points[:5], 10)]:
        exact = typiclust_select(labelled, points, n, scale="exact", random_state=1)
        whole = typiclust_select(
            labelled,
            points,
            n,
            scale="sampled",
            kmeans_sample_size=10**6,
            cluster_sample_size=10**6,
            random_state=1,
        )
        assert whole.tolist() == exact.tolist()


def test_sampled_is_deterministic_for_a_seed():
    x = np.random.default_rng(3).normal(size=(600, 4))
    a = typiclust_select(x[:10], x[10:], 15, random_state=1, **SAMPLED)
    b = typiclust_select(x[:10], x[10:], 15, random_state=1, **SAMPLED)
    c = typiclust_select(x[:10], x[10:], 15, random_state=np.random.RandomState(1), **SAMPLED)
    assert a.tolist() == b.tolist() == c.tolist()
    assert len(set(a.tolist())) == 15


def test_sampled_reads_a_float16_memmap(tmp_path):
    points, which = _blobs([400, 300, 200], CENTRES, spread=1.0)
    path = tmp_path / "features.f16"
    stored = np.memmap(path, dtype=np.float16, mode="w+", shape=points.shape)
    stored[:] = points
    stored.flush()
    del stored
    features = np.memmap(path, dtype=np.float16, mode="r", shape=points.shape)
    picks = typiclust_select(None, features, 3, random_state=0, **SAMPLED)
    # the same picks as from the same float16 values in memory, one per blob
    in_memory = typiclust_select(None, np.array(features), 3, random_state=0, **SAMPLED)
    assert picks.tolist() == in_memory.tolist()
    assert sorted(which[picks].tolist()) == [0, 1, 2]
    assert (_closeness(points, which, picks, CENTRES) < 0.3).all()


def test_sampled_avoids_the_clusters_that_hold_labels():
    points, which = _blobs([250, 250, 200, 150], FOUR_CENTRES, spread=1.0)
    # one label in each of the two largest blobs: 4 clusters, picks in the other two
    labelled = FOUR_CENTRES[:2] + 0.1
    picks = typiclust_select(labelled, points, 2, random_state=0, **SAMPLED)
    assert which[picks].tolist() == [2, 3]  # unlabelled blobs, the larger first


def test_sampled_goes_round_the_clusters_again():
    points, which = _blobs([300, 200], CENTRES[:2], spread=1.0)
    picks = typiclust_select(None, points, 6, max_clusters=2, random_state=0, **SAMPLED)
    assert len(set(picks.tolist())) == 6
    assert which[picks].tolist() == [0, 1, 0, 1, 0, 1]


@pytest.mark.parametrize(
    "n_points, sampled_above, same_as", [(300, 300, "exact"), (300, 299, "sampled")]
)
def test_auto_is_exact_up_to_the_threshold(n_points, sampled_above, same_as):
    x = np.random.default_rng(5).normal(size=(n_points, 3))
    options = {"kmeans_sample_size": 100, "cluster_sample_size": 20, "random_state": 2}
    auto = typiclust_select(
        x[:10], x[10:], 12, scale="auto", sampled_above=sampled_above, **options
    )
    expected = typiclust_select(x[:10], x[10:], 12, scale=same_as, **options)
    assert auto.tolist() == expected.tolist()
    # below the threshold the default is the exact algorithm, whatever the sample options
    if same_as == "exact":
        default = typiclust_select(x[:10], x[10:], 12, random_state=2)
        assert auto.tolist() == default.tolist()


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"scale": "fast"}, MoBYALError, "scale must be one of 'auto', 'exact', 'sampled'"),
        ({"scale": None}, MoBYALError, "scale must be one of"),
        ({"sampled_above": 0}, MoBYALError, "sampled_above"),
        ({"sampled_above": 1.5}, TypeError, "sampled_above"),
        ({"kmeans_sample_size": 0}, MoBYALError, "kmeans_sample_size"),
        ({"kmeans_sample_size": True}, TypeError, "kmeans_sample_size"),
        ({"cluster_sample_size": 1}, MoBYALError, "cluster_sample_size"),
        ({"cluster_sample_size": "2000"}, TypeError, "cluster_sample_size"),
        # 10 + 5 clusters cannot be fitted on 12 points
        ({"scale": "sampled", "kmeans_sample_size": 12}, MoBYALError, "kmeans_sample_size=12"),
    ],
)
def test_sampled_options_are_checked(options, error, match):
    x = np.random.default_rng(6).normal(size=(60, 2))
    # checked on the exact path too: an error does not depend on the pool's size
    with pytest.raises(error, match=match):
        typiclust_select(x[:10], x[10:], 5, **options)


def test_typiclust_sampling_passes_the_options_on():
    import inspect

    from moby_al_plugin.selection import typicality as typ
    from moby_al_plugin.selection.features import l2_normalize
    from moby_al_plugin.selection.strategies import typiclust_sampling

    from .mock import FakeLearner, FeatureEstimator

    defaults = inspect.signature(typiclust_sampling).parameters
    assert defaults["scale"].default == "auto"
    assert defaults["sampled_above"].default == typ.SAMPLED_ABOVE
    assert defaults["kmeans_sample_size"].default == typ.KMEANS_SAMPLE_SIZE
    assert defaults["cluster_sample_size"].default == typ.CLUSTER_SAMPLE_SIZE

    points, _ = _blobs([250, 250, 200, 150], FOUR_CENTRES, spread=1.0)
    learner = FakeLearner(FeatureEstimator(points), None)
    pool = np.arange(len(points)).reshape(-1, 1)
    idx, _ = typiclust_sampling(learner, pool, 4, subset_size=None, random_state=0, **SAMPLED)
    expected = typiclust_select(
        None, l2_normalize(points), 4, random_state=np.random.RandomState(0), **SAMPLED
    )
    assert idx.tolist() == expected.tolist()
    with pytest.raises(MoBYALError, match="cluster_sample_size"):
        typiclust_sampling(learner, pool, 4, cluster_sample_size=0)
    with pytest.raises(MoBYALError, match="scale"):
        typiclust_sampling(learner, pool, 4, scale="approximate")


def test_sampled_fits_kmeans_on_every_label_and_a_sample(monkeypatch):
    import moby_al_plugin.selection.typicality as typ

    fitted = []
    real = typ._fit_kmeans

    def spy(features, *args, **kwargs):
        fitted.append(np.array(features))
        return real(features, *args, **kwargs)

    monkeypatch.setattr(typ, "_fit_kmeans", spy)
    x = np.random.default_rng(7).normal(size=(500, 3)).astype(np.float32)
    typiclust_select(x[:30], x[30:], 5, random_state=0, **SAMPLED)
    (sample,) = fitted
    assert sample.shape == (100, 3) and sample.dtype == np.float32
    np.testing.assert_array_equal(sample[:30], x[:30])  # the labelled rows first, all of them
    # the rest: distinct candidates
    rest = {tuple(row) for row in sample[30:]}
    assert len(rest) == 70 and rest <= {tuple(row) for row in x[30:]}


def test_a_cluster_of_exactly_min_cluster_size_points_is_skipped():
    # two far blobs of 5 and 6 points and two picks, so two clusters: with
    # min_cluster_size=5 the blob of 5 is too small while the other has candidates
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0.0, 0.1, (5, 2)), rng.normal(10.0, 0.1, (6, 2))])
    small = set(range(5))
    picks = typiclust_select(None, X, 2, min_cluster_size=5, n_neighbors=2, random_state=0)
    assert not small & set(picks.tolist())
    picks = typiclust_select(None, X, 2, min_cluster_size=4, n_neighbors=2, random_state=0)
    assert len(small & set(picks.tolist())) == 1
