"""Shared fixtures: a fixed seed and tiny real data (the scikit-learn digits)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moby_al_plugin import load_digits_dataset


@pytest.fixture(autouse=True)
def _seed_everything():
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def digits():
    """The digits split: 1,347 training and 450 test images of 8x8, in [0, 1]."""
    return load_digits_dataset()


@pytest.fixture(scope="session")
def tiny_digits(digits):
    """120 labelled images (all ten classes), 200 pool images and 150 test images."""
    return {
        "X": digits.X_train[:120],
        "y": digits.y_train[:120],
        "X_pool": digits.X_train[120:320],
        "y_pool": digits.y_train[120:320],
        "X_test": digits.X_test[:150],
        "y_test": digits.y_test[:150],
    }


def small_net(**params):
    """A MoBYClassifier small and short enough for unit tests."""
    from moby_al_plugin import MoBYClassifier

    defaults = dict(
        backbone="small_cnn",
        max_epochs=2,
        batch_size=32,
        queue_size=64,
        views="digits",
        random_state=0,
        projection_dim=32,
        min_samples_per_epoch=None,
        # the converged rule trains tens of thousands of samples: tests pick their own
        train_samples=None,
        lr=0.01,
        lr_schedule="step",
    )
    defaults.update(params)
    return MoBYClassifier(**defaults)


def small_encoder(**params):
    """A MoBYEncoder small and short enough for unit tests."""
    from moby_al_plugin import MoBYEncoder

    defaults = dict(
        backbone="small_cnn",
        max_epochs=2,
        batch_size=64,
        queue_size=64,
        projection_dim=16,
        views="digits",
        random_state=0,
    )
    defaults.update(params)
    return MoBYEncoder(**defaults)


@pytest.fixture(scope="session")
def digit_image_folder(tmp_path_factory, digits):
    """240 digits written as PNG files (a third in a sub-folder), and each file's true class.

    Returns ``(folder, truth)`` with ``truth`` mapping the relative POSIX
    path to the digit's name ("0" to "9").
    """
    from PIL import Image

    folder = tmp_path_factory.mktemp("digit-images")
    (folder / "more").mkdir()
    truth = {}
    for i in range(240):
        name = f"{'more/' if i % 3 == 0 else ''}digit-{i:03d}.png"
        pixels = (digits.X_train[i].reshape(8, 8) * 255).round().astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / name)
        truth[name] = str(int(digits.y_train[i]))
    return folder, truth


DIGIT_CLASSES = ",".join(str(d) for d in range(10))


def label_init(work, folder, classes: str, *extra: str) -> int:
    """``moby-al label init`` of ``folder`` into ``work`` with ``classes``; its status."""
    from moby_al_plugin.cli import main

    command = ["label", "init", "--workdir", str(work), "--images", str(folder)]
    return main([*command, "--classes", classes, *extra])
