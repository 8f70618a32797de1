"""Every example runs (in its small mode), so none can rot."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from moby_al_plugin import load_digits_dataset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FASHION = Path("/usr/share/datasets/fashion-mnist")


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_modal():
    # the same seeded network with a learning rate of 0 stays at chance (below)
    quickstart = _load("quickstart_modal")
    accuracies = quickstart.main(
        ["--cycles", "1", "--initial", "100", "--per-cycle", "20", "--train-samples", "1000"]
    )
    assert len(accuracies) == 2 and accuracies[-1] > 0.3, accuracies
    data = load_digits_dataset()
    start = np.random.default_rng(0).permutation(len(data.X_train))[:100]
    untrained = quickstart.build_net(seed=0, train_samples=100).set_params(lr=0.0)
    untrained.fit(data.X_train[start], data.y_train[start])
    assert untrained.score(data.X_test, data.y_test) < 0.15


@pytest.mark.skipif(not FASHION.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_modal_loop(capsys):
    accuracies = _load("fashion_mnist_modal_loop").main(["--tiny"])
    assert len(accuracies) == 4
    lines = [line for line in capsys.readouterr().out.splitlines() if " labels: " in line]
    # every cycle queries 100 images and teaches them: the labelled set grows by 100
    assert [int(line.split()[0]) for line in lines] == [100, 200, 300, 400]
    # the printed accuracy is the returned one, a real test accuracy
    printed = [float(line.split("accuracy ")[1].split(",")[0]) for line in lines]
    assert printed == pytest.approx(accuracies, abs=5e-4)
    assert all(0.0 <= a <= 1.0 for a in accuracies)
    # the 100 taught labels of each cycle, by class (ten classes)
    for line in lines[1:]:
        counts = [int(c) for c in line.split("classes picked: [")[1].rstrip("]").split()]
        assert len(counts) == 10 and sum(counts) == 100
    # trained on 400 labels, the net is above chance (10 %) on the test images
    assert accuracies[-1] > 0.1


def test_compare_strategies(tmp_path):
    summary = _load("compare_strategies").main(["--tiny", "--output", str(tmp_path / "c")])
    assert set(summary) == {"mobyv2al", "coreset", "margin", "random"}
    assert (tmp_path / "c" / "learning_curves.png").is_file()


def test_coreset_with_sklearn_pipeline():
    results = _load("coreset_with_sklearn_pipeline").main()
    assert len(results["coreset"]) == 6
    assert results["coreset"][-1] > 0.5  # PCA + logistic regression on 120 digits


@pytest.mark.slow
def test_label_a_folder():
    history = _load("label_a_folder").main(["--tiny"])
    assert [row["labelled"] for row in history] == [10, 20]
    # a cold start has no model, so it suggests nothing
    assert history[0]["suggestions_right"] == 0 and history[1]["classes_seen"] >= 5
