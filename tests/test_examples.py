"""Every example runs (in its small mode), so none can rot."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FASHION = Path("/usr/share/datasets/fashion-mnist")


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_modal():
    accuracies = _load("quickstart_modal").main(["--cycles", "1", "--epochs", "1",
                                                 "--initial", "40", "--per-cycle", "20"])
    assert len(accuracies) == 2 and all(0 <= a <= 1 for a in accuracies)


@pytest.mark.skipif(not FASHION.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_modal_loop():
    accuracies = _load("fashion_mnist_modal_loop").main(["--tiny"])
    assert len(accuracies) == 4


def test_compare_strategies(tmp_path):
    summary = _load("compare_strategies").main(["--tiny", "--output", str(tmp_path / "c")])
    assert set(summary) == {"mobyv2al", "coreset", "margin", "random"}
    assert (tmp_path / "c" / "learning_curves.png").is_file()


def test_coreset_with_sklearn_pipeline():
    results = _load("coreset_with_sklearn_pipeline").main()
    assert len(results["coreset"]) == 6
    assert results["coreset"][-1] > 0.5  # PCA + logistic regression on 120 digits
