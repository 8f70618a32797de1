"""Learning-curve figures are written as valid PNG and SVG files."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import matplotlib.image as mpimg
import pytest

from moby_al_plugin.experiments import plot_learning_curves

from .test_results import RECORDS


def test_png_and_svg_are_valid_images(tmp_path):
    files = plot_learning_curves(RECORDS, tmp_path / "curves", title="digits")
    assert [f.suffix for f in files] == [".png", ".svg"]
    png, svg = files
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert ET.parse(svg).getroot().tag.endswith("svg")
    assert "mobyv2al" in svg.read_text()
    assert not list(tmp_path.glob(".*tmp"))


def test_no_records_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="No results"):
        plot_learning_curves([], tmp_path / "curves")


def test_plotting_leaves_the_backend_and_pyplot_alone(tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    previous = matplotlib.get_backend()
    matplotlib.use("svg")  # a user's choice, as a notebook makes one
    try:
        figures = plt.get_fignums()
        plot_learning_curves(RECORDS, tmp_path / "curves")
        assert matplotlib.get_backend() == "svg"
        assert plt.get_fignums() == figures
    finally:
        matplotlib.use(previous)


def test_the_stopping_point_is_marked_and_named(tmp_path):
    # two trials: one stops at 40 labels, one at 60: the median is 50
    records = []
    for trial, stop_cycle in ((0, 1), (1, 2)):
        for cycle in range(4):
            records.append(
                dict(
                    strategy="margin",
                    trial=trial,
                    seed=trial,
                    cycle=cycle,
                    n_labeled=20 + 20 * cycle,
                    accuracy=0.5 + 0.1 * cycle,
                    train_seconds=1.0,
                    query_seconds=0.1,
                    stop_kappa=None if cycle == 0 else 1.0,
                    stop=cycle >= stop_cycle,
                )
            )
    _, svg = plot_learning_curves(records, tmp_path / "curves")
    text = svg.read_text()
    assert "stops at 50" in text
    without = [{k: v for k, v in r.items() if k not in ("stop", "stop_kappa")} for r in records]
    _, svg = plot_learning_curves(without, tmp_path / "plain")
    assert "stops at" not in svg.read_text()
