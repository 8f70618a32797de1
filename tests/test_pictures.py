"""Teaching pictures: each figure holds what it promises; bad input is a clear error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from moby_al_plugin.experiments import (
    ExperimentConfig,
    ExperimentError,
    FeatureProjection,
    PickHistory,
    plot_class_histogram,
    plot_feature_map,
    plot_gallery,
    run_experiment,
)
from moby_al_plugin.experiments.features_store import (
    features_enabled,
    features_path,
    load_cycle_features,
)
from moby_al_plugin.experiments.pictures import _class_colors, features_key, save_figure

ROOT = Path(__file__).resolve().parents[1]
N_POOL = 60


@pytest.fixture()
def pool():
    rng = np.random.default_rng(0)
    images = rng.random((N_POOL, 8, 8)).astype(np.float32)
    labels = np.arange(N_POOL) % 5
    features = rng.normal(size=(N_POOL, 16)).astype(np.float32)
    history = PickHistory(
        {
            "random": [[0, 1, 2, 3], [10, 11, 12], [20, 21, 22]],
            "typiclust": [[0, 1, 2, 3], [30, 31, 32], [40]],
        },
        n_pool=N_POOL,
    )
    return images, labels, features, history


def _shown(fig):
    """(axes label, displayed pixels) of every gallery image."""
    return [(ax.get_label(), ax.images[0].get_array()) for ax in fig.get_axes() if ax.images]


def test_gallery_holds_exactly_the_picks(pool):
    images, labels, _, history = pool
    fig = plot_gallery(history, images, 1, labels=labels)
    assert isinstance(fig, Figure)
    shown = _shown(fig)
    assert [name for name, _ in shown] == ["random:10", "random:11", "random:12"] + [
        "typiclust:30",
        "typiclust:31",
        "typiclust:32",
    ]
    for name, pixels in shown:
        assert np.array_equal(np.asarray(pixels), images[int(name.split(":")[1])])
    titles = [ax.get_title() for ax in fig.get_axes() if ax.images]
    assert titles == [str(labels[i]) for i in (10, 11, 12, 30, 31, 32)]


def test_gallery_of_one_strategy_on_a_given_figure_with_names_and_rgb():
    rgb = np.random.default_rng(1).integers(0, 256, (20, 6, 6, 3), dtype=np.uint8)
    history = PickHistory({"coreset": [[4, 5]]}, n_pool=20)
    fig = Figure()
    out = plot_gallery(
        history, rgb, 0, labels=np.zeros(20, int), class_names=["cat"], fig=fig, max_images=1
    )
    assert out is fig
    (name, pixels), *rest = _shown(fig)
    assert name == "coreset:4" and not rest
    assert np.allclose(np.asarray(pixels), rgb[4] / 255.0)
    assert [ax.get_title() for ax in fig.get_axes() if ax.images] == ["cat"]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda h, im, y: plot_gallery(h, im, 3), "no cycle 3"),
        (lambda h, im, y: plot_gallery(h, im, 0, strategies=["margin"]), "no strategy 'margin'"),
        (lambda h, im, y: plot_gallery(h, im[:30], 1), "30 images but the pool has 60"),
        (lambda h, im, y: plot_gallery(h, im, 1, labels=y[:5]), "5 entries"),
        (lambda h, im, y: plot_gallery(h, im.reshape(N_POOL, -1), 1), "cannot show"),
        (lambda h, im, y: plot_gallery(h, im[:, None].repeat(2, 1), 1), "cannot show"),
        (lambda h, im, y: plot_gallery(h, im * 3, 1), r"\[0, 1\]"),
        (lambda h, im, y: plot_class_histogram(h, y[:-1]), "59 entries"),
    ],
)
def test_bad_input_names_the_problem(pool, call, message):
    images, labels, _, history = pool
    with pytest.raises(ExperimentError, match=message):
        call(history, images, labels)


@pytest.mark.parametrize(
    "picks, message",
    [
        ({"random": [[0, 60]]}, "index 60, outside the pool"),
        ({"random": [[0, -1]]}, "index -1"),
        ({"random": [[0, 1], [1]]}, "twice"),
        ({"random": [[0.5]]}, "integer"),
        ({"random": []}, "no cycles"),
        ({}, "at least one strategy"),
    ],
)
def test_bad_pick_histories(picks, message):
    with pytest.raises(ExperimentError, match=message):
        PickHistory(picks, n_pool=N_POOL)


def test_history_from_records():
    records = [
        {"strategy": "random", "trial": 0, "cycle": 0, "n_labeled": 2, "queried": [5, 6]},
        {"strategy": "random", "trial": 0, "cycle": 1, "n_labeled": 4, "queried": [1, 2]},
        {"strategy": "random", "trial": 1, "cycle": 0, "n_labeled": 1, "queried": [7]},
    ]
    history = PickHistory.from_records(records, n_pool=10)
    assert history.strategies == ("random",) and history.n_cycles("random") == 2
    assert history.labeled_after("random", 1).tolist() == [5, 6, 1, 2]
    with pytest.raises(ExperimentError, match="no trial 2"):
        PickHistory.from_records(records, trial=2)
    # older runs recorded no initial set at cycle 0
    old = [dict(records[0], queried=[])]
    with pytest.raises(ExperimentError, match="does not hold the initial set"):
        PickHistory.from_records(old)


def _offsets(ax, gid):
    (collection,) = [c for c in ax.collections if c.get_gid() == gid]
    return collection


def test_map_marks_the_picks_and_colours_the_labelled(pool):
    _, labels, features, history = pool
    projection = FeatureProjection().fit(features)
    fig = plot_feature_map(history, projection, 2, labels=labels)
    coords = projection.coordinates()
    colors = _class_colors(5)
    (ax_random, ax_typi) = [ax for ax in fig.get_axes() if ax.collections]
    assert ax_random.get_label() == "random" and ax_typi.get_label() == "typiclust"
    labeled = _offsets(ax_random, "labeled")
    before = [0, 1, 2, 3, 10, 11, 12]
    assert np.allclose(labeled.get_offsets(), coords[before])
    assert np.allclose(labeled.get_facecolors(), colors[labels[before]])
    picked = _offsets(ax_random, "picked")
    assert np.allclose(picked.get_offsets(), coords[[20, 21, 22]])
    assert np.allclose(picked.get_edgecolors(), to_rgba("black"))
    pool_points = _offsets(ax_random, "pool").get_offsets()
    assert len(pool_points) == N_POOL - 10
    assert "PCA of 16-d features" in " ".join(t.get_text() for t in fig.texts)
    assert np.allclose(_offsets(ax_typi, "picked").get_offsets(), coords[[40]])
    with pytest.raises(ExperimentError, match="no cycle 3 for 'typiclust'"):
        plot_feature_map(history, projection, 3, labels=labels, strategies=["typiclust"])


def test_one_projection_for_every_cycle_and_strategy_with_a_sample(pool):
    _, labels, features, history = pool
    sets = {(s, c): features + c for s in history.strategies for c in range(3)}
    projection = FeatureProjection(max_points=20, random_state=3).fit(
        sets, include=history.all_labeled()
    )
    assert len(projection.sample_) == 20
    assert set(history.all_labeled()) <= set(projection.sample_)
    assert "20 of 60 pool images drawn at random (seed 3)" in projection.caption_
    fig = plot_feature_map(history, projection, 1, labels=labels)
    ax = [a for a in fig.get_axes() if a.collections][0]
    rows = np.searchsorted(projection.sample_, [10, 11, 12])
    # cycle 1's map draws cycle 0's features: what the strategy queried with
    assert features_key("random", 1) == ("random", 0)
    expected = projection.coordinates(("random", 0))[rows]
    assert np.allclose(_offsets(ax, "picked").get_offsets(), expected)
    assert len(_offsets(ax, "pool").get_offsets()) == 20 - 7
    # without include= the labelled images may fall outside the sample
    bare = FeatureProjection(max_points=20, random_state=3).fit(features)
    assert not set(history.labeled_after("random", 1)) <= set(bare.sample_)
    with pytest.raises(ExperimentError, match="not on the map"):
        plot_feature_map(history, bare, 1, labels=labels)


def test_tsne_projection(pool):
    _, labels, features, history = pool
    projection = FeatureProjection("tsne", random_state=0).fit(features)
    assert projection.coordinates().shape == (N_POOL, 2)
    assert "t-SNE" in projection.caption_
    with pytest.raises(ExperimentError, match="unknown projection"):
        FeatureProjection("umap").fit(features)
    with pytest.raises(ExperimentError, match="not fitted"):
        plot_feature_map(history, FeatureProjection(), 0, labels=labels)
    with pytest.raises(ExperimentError, match="no features for"):
        FeatureProjection().fit({("random", 0): features}).coordinates(("random", 5))


def test_histogram_bars_sum_to_the_batch(pool):
    _, labels, _, history = pool
    fig = plot_class_histogram(history, labels)
    axes = {ax.get_label(): ax for ax in fig.get_axes() if ax.containers}
    assert set(axes) == {f"{s}:{c}" for s in ("random", "typiclust") for c in range(3)}
    for name, ax in axes.items():
        strategy, cycle = name.split(":")
        picked = history.picked(strategy, int(cycle))
        before = history.labeled_before(strategy, int(cycle))
        faint, solid = ax.containers
        heights = [bar.get_height() for bar in solid]
        assert sum(heights) == len(picked)
        assert heights == np.bincount(labels[picked], minlength=5).tolist()
        assert [bar.get_height() for bar in faint] == np.bincount(
            labels[before], minlength=5
        ).tolist()


def test_save_figure_is_atomic(tmp_path, pool):
    images, labels, _, history = pool
    fig = plot_gallery(history, images, 0, labels=labels)
    path = save_figure(fig, tmp_path / "g.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        save_figure(fig, tmp_path / "g.nosuchformat")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png"]


def test_pictures_leave_the_backend_and_pyplot_alone(pool):
    import matplotlib
    import matplotlib.pyplot as plt

    images, labels, features, history = pool
    backend, figures = matplotlib.get_backend(), plt.get_fignums()
    plot_gallery(history, images, 1)
    plot_feature_map(history, FeatureProjection().fit(features), 1, labels=labels)
    plot_class_histogram(history, labels)
    assert matplotlib.get_backend() == backend and plt.get_fignums() == figures


def test_features_auto_rule():
    assert features_enabled(None, 20_000) and not features_enabled(None, 20_001)
    assert features_enabled(True, 10**6) and not features_enabled(False, 10)


def test_plot_pictures_of_a_real_run(tmp_path):
    config = ExperimentConfig(
        dataset="digits",
        strategies=("mobyv2al", "random"),
        initial_size=20,
        query_size=10,
        cycles=2,
        epochs=1,
        batch_size=32,
        queue_size=64,
        subset_size=100,
        pool_size=200,
        test_size=60,
        min_samples_per_epoch=64,
        train_samples=None,
    )
    out = tmp_path / "run"
    records = run_experiment(config, out, progress=False, log=None, plot=False)
    first = [r for r in records if r["cycle"] == 0]
    assert all(len(r["queried"]) == 20 for r in first)
    assert first[0]["queried"] == first[1]["queried"]
    for strategy in config.strategies:
        for cycle in range(3):
            feats = load_cycle_features(out, strategy, 0, cycle, n_pool=200)
            assert feats.shape[0] == 200 and feats.shape[1] > 1
            assert np.load(features_path(out, strategy, 0, cycle)).dtype == np.float16
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "moby_al_plugin", "plot", str(out), "--pictures"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (out / "pictures").iterdir())
    assert names == sorted(
        ["class_histogram.png"]
        + [f"gallery-cycle{c}.png" for c in range(3)]
        + [f"map-cycle{c}.png" for c in range(3)]
    )
    for name in names:
        assert mpimg.imread(out / "pictures" / name).ndim == 3
    result = subprocess.run(
        [sys.executable, "-m", "moby_al_plugin", "plot", str(tmp_path), "--pictures"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 2 and "config.json is missing" in result.stderr


def test_save_features_option():
    from moby_al_plugin.cli import _config_from, build_parser

    parser = build_parser()
    assert _config_from(parser.parse_args(["run"])).save_features is None
    assert _config_from(parser.parse_args(["run", "--save-features"])).save_features is True
    assert _config_from(parser.parse_args(["run", "--no-save-features"])).save_features is False
    plot = parser.parse_args(["plot", "runs/a", "--pictures", "--projection", "tsne"])
    assert plot.pictures and plot.projection == "tsne" and plot.pictures_dir is None
