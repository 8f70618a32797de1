"""Tests of ``moby_al_plugin.data.loaders.image_folder``: one sub-folder per class.

Small PNG files are written in ``tmp_path``.
"""

from __future__ import annotations

import numpy as np
import pytest

from moby_al_plugin.data.loaders.image_folder import load_image_folder

from .fake_data import image_folder, save_png


def test_image_folder_grayscale(tmp_path):
    root = image_folder(tmp_path / "pets", mode="L")
    data = load_image_folder(root, test_fraction=0.5, random_state=0)
    assert data.X_train.shape == (4, 6, 5) and data.X_test.shape == (4, 6, 5)
    assert data.X_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert data.class_names == ("cat", "dog") and data.name == "pets"
    assert data.view_preset == "auto"
    # stratified: two of each class on both sides
    assert np.array_equal(np.bincount(data.y_train), [2, 2])
    assert np.array_equal(np.bincount(data.y_test), [2, 2])
    # pixel values survive unchanged and stay with their labels
    X = np.concatenate([data.X_train, data.X_test])
    y = np.concatenate([data.y_train, data.y_test])
    values = X[:, 0, 0].astype(int)
    assert sorted(values) == [0, 10, 20, 30, 100, 110, 120, 130]
    assert np.array_equal(values // 100, y)
    # seeded
    again = load_image_folder(root, test_fraction=0.5, random_state=0)
    assert np.array_equal(again.X_train, data.X_train)


def test_image_folder_rgb_and_modes(tmp_path):
    root = image_folder(tmp_path / "rgb", mode="RGB")
    data = load_image_folder(root)
    assert data.X_train.shape[1:] == (6, 5, 3) and data.X_train.dtype == np.uint8
    assert len(data.X_train) + len(data.X_test) == 8
    gray = load_image_folder(root, grayscale=True)
    assert gray.X_train.shape[1:] == (6, 5)
    # a mixed folder becomes RGB; grey images as three equal channels
    save_png(root / "cat" / "grey.PNG", 77, mode="L")
    mixed = load_image_folder(root, test_fraction=0.25)
    X = np.concatenate([mixed.X_train, mixed.X_test])
    assert X.shape == (9, 6, 5, 3)
    grey = X[(X[:, 0, 0] == 77).all(axis=-1)]
    assert len(grey) == 1
    # forcing RGB on an all-grey folder
    assert load_image_folder(image_folder(tmp_path / "g"), grayscale=False).X_train.ndim == 4


def test_image_folder_ignored_files(tmp_path):
    root = image_folder(tmp_path / "f", mode="L")
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / ".hidden.png").write_bytes(b"ignored: hidden")
    (root / ".cache").mkdir()
    (root / ".cache" / "0.png").write_bytes(b"ignored: a hidden folder is no class")
    (root / "loose.png").write_bytes(b"ignored: not inside a class folder")
    data = load_image_folder(root, test_fraction=0.25)
    assert len(data.y_train) + len(data.y_test) == 8 and data.class_names == ("cat", "dog")


def test_image_folder_resize(tmp_path):
    root = tmp_path / "sizes"
    save_png(root / "a" / "0.png", 10, size=(6, 5))
    save_png(root / "a" / "1.png", 20, size=(9, 4))
    save_png(root / "b" / "0.png", 30, size=(3, 3), mode="RGB")
    save_png(root / "b" / "1.png", 40, size=(8, 8), mode="RGB")
    data = load_image_folder(root, image_size=4, test_fraction=0.5)
    assert data.X_train.shape[1:] == (4, 4, 3)
    data = load_image_folder(root, image_size=(3, 7), grayscale=True, test_fraction=0.5)
    assert data.X_train.shape[1:] == (3, 7)
    # constant images stay constant under bilinear resizing
    X = np.concatenate([data.X_train, data.X_test])
    assert all(len(np.unique(img)) == 1 for img in X)
    with pytest.raises(ValueError, match="image_size"):
        load_image_folder(root, image_size=(0, 3))


def test_image_folder_size_mismatch(tmp_path):
    root = image_folder(tmp_path / "m")
    save_png(root / "dog" / "big.png", 5, size=(9, 4))
    with pytest.raises(ValueError, match=r"6x5.*big\.png is 9x4") as info:
        load_image_folder(root)
    assert "image_size" in str(info.value)


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        load_image_folder(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no class folders"):
        load_image_folder(empty)
    (empty / "cat").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        load_image_folder(empty)
    root = image_folder(tmp_path / "bad")
    broken = root / "cat" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ValueError, match="broken.png"):
        load_image_folder(root)
    # a truncated PNG fails only when its pixels are decoded
    broken.write_bytes((root / "cat" / "0.png").read_bytes()[:-30])
    with pytest.raises(ValueError, match="broken.png"):
        load_image_folder(root)
    file = tmp_path / "file.png"
    file.write_bytes(b"")
    with pytest.raises(ValueError, match="not a directory"):
        load_image_folder(file)


def test_image_folder_single_image_class_is_not_stratified(tmp_path):
    root = tmp_path / "odd"
    for i in range(5):
        save_png(root / "many" / f"{i}.png", i)
    save_png(root / "one" / "0.png", 200)
    data = load_image_folder(root, test_fraction=0.4, random_state=3)
    assert len(data.y_train) == 3 and len(data.y_test) == 3


def test_image_folder_reads_16_bit_and_transparent_images_by_their_range(tmp_path):
    from PIL import Image

    root = tmp_path / "deep"
    for label, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(2):
            # 16-bit grey: 257 * v is v in 8 bits; the old reading made every non-zero 255
            value = 257 * (10 * i + 100 * label + 1)
            Image.fromarray(np.full((3, 4), value, np.uint16)).save(root / name / f"{i}.png")
    data = load_image_folder(root, test_fraction=0.5)
    assert data.X_train.shape[1:] == (3, 4)  # I;16 counts as one channel
    X = np.concatenate([data.X_train, data.X_test])
    y = np.concatenate([data.y_train, data.y_test])
    assert sorted(X[:, 0, 0].tolist()) == [1, 11, 101, 111]
    assert np.array_equal(X[:, 0, 0] // 100, y)
    # a transparent RGBA image in the folder: composited on white, and the folder is RGB
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[0, 0] = (0, 100, 200, 51)  # 0.2 * c + 0.8 * 255
    Image.fromarray(rgba, "RGBA").save(root / "cat" / "cut-out.png")
    mixed = load_image_folder(root, test_fraction=0.4)
    X = np.concatenate([mixed.X_train, mixed.X_test])
    assert X.shape == (5, 3, 4, 3)
    cut_out = X[(X[:, 1, 1] == 255).all(axis=-1)]
    assert cut_out.tolist() == [[[[204, 224, 244]] + [[255] * 3] * 3] + [[[255] * 3] * 4] * 2]
