"""Tests of the data set loaders and pool helpers in ``moby_al_plugin.datasets``.

Everything runs offline: small IDX, PNG, .npz, pickle and .mat files are
written in ``tmp_path``; the only real data used are scikit-learn's bundled
digits and, when installed, Debian's Fashion-MNIST files.
"""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from moby_al_plugin import MoBYALError
from moby_al_plugin import datasets as ds
from moby_al_plugin.datasets import (
    DATASETS,
    DEFAULT_FASHION_MNIST_ROOT,
    FASHION_MNIST_CLASSES,
    ImageDataset,
    available_datasets,
    initial_labeled_indices,
    load_dataset,
    load_digits_dataset,
    load_fashion_mnist,
    load_image_folder,
    load_npz,
    load_torchvision_dataset,
    subsample_indices,
)

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
FASHION_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


# ------------------------------------------------------------------ helpers
def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    """An IDX file: big-endian magic, big-endian uint32 dims, then the uint8 data."""
    dims = np.asarray(arr.shape, dtype=">u4").tobytes()
    return magic.to_bytes(4, "big") + dims + np.ascontiguousarray(arr, dtype=np.uint8).tobytes()


def write_idx(path: Path, arr: np.ndarray, magic: int) -> Path:
    data = idx_bytes(arr, magic)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def fake_fashion(folder: Path, gz: bool, n_train: int = 20, n_test: int = 10, hw=(4, 5)):
    """Four small IDX files; returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, *hw), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, *hw), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }
    for base, arr in arrays.items():
        magic = IMAGES_MAGIC if "images" in base else LABELS_MAGIC
        write_idx(folder / (base + (".gz" if gz else "")), arr, magic)
    return arrays


def save_png(path: Path, value: int, size=(6, 5), mode: str = "L") -> None:
    """A constant image of ``size`` (H, W); RGB gets (value, 255 - value, 7)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = size
    if mode == "L":
        arr = np.full((h, w), value, dtype=np.uint8)
    else:
        arr = np.empty((h, w, 3), dtype=np.uint8)
        arr[...] = (value, 255 - value, 7)
    Image.fromarray(arr, mode=mode).save(path)


def image_folder(root: Path, mode: str = "L", per_class: int = 4, size=(6, 5)) -> Path:
    """Two classes 'cat' and 'dog'; pixel value 10 * i (+100 for dogs) identifies each image."""
    for label, name in enumerate(("cat", "dog")):
        for i in range(per_class):
            save_png(root / name / f"{i}.png", 100 * label + 10 * i, size=size, mode=mode)
    return root


# ------------------------------------------------------------------ digits
def test_digits_unchanged():
    data = load_digits_dataset()
    assert data.X_train.shape == (1347, 8, 8)
    assert data.X_test.shape == (450, 8, 8)
    assert data.X_train.dtype == np.float32
    assert 0.0 <= data.X_train.min() and data.X_train.max() <= 1.0
    assert data.y_train.dtype == np.int64
    assert data.name == "digits" and data.view_preset == "digits"
    assert data.class_names == ()


def test_image_dataset_positional_fields_unchanged():
    a = np.zeros((2, 3, 3), np.uint8)
    y = np.zeros(2, np.int64)
    data = ImageDataset(a, y, a, y, "x")
    assert data.view_preset == "auto" and data.class_names == ()


def test_image_datasets_compare_by_identity():
    a = np.zeros((2, 3, 3), np.uint8)
    y = np.zeros(2, np.int64)
    data, same_values = ImageDataset(a, y, a, y, "x"), ImageDataset(a, y, a, y, "x")
    assert data == data and data != same_values  # no "truth value of an array" error
    assert len({data, same_values}) == 2


# ------------------------------------------------------------------ Fashion-MNIST
@pytest.fixture(scope="module")
def real_fashion():
    if not Path(DEFAULT_FASHION_MNIST_ROOT).is_dir():
        pytest.skip(
            f"{DEFAULT_FASHION_MNIST_ROOT} is absent (apt-get install dataset-fashion-mnist)"
        )
    return load_fashion_mnist()


def test_fashion_mnist_real_files(real_fashion):
    data = real_fashion
    assert data.X_train.shape == (60000, 28, 28) and data.X_train.dtype == np.uint8
    assert data.X_test.shape == (10000, 28, 28) and data.X_test.dtype == np.uint8
    assert data.y_train.dtype == np.int64 and data.y_test.dtype == np.int64
    assert np.array_equal(np.bincount(data.y_train), np.full(10, 6000))
    assert set(np.unique(data.y_test)) == set(range(10))
    assert data.view_preset == "fashion_mnist" and data.name == "fashion-mnist"
    assert data.class_names == FASHION_MNIST_CLASSES and len(data.class_names) == 10
    assert data.X_train.max() > 0


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    arrays = fake_fashion(tmp_path, gz=gz)
    data = load_fashion_mnist(tmp_path)
    assert np.array_equal(data.X_train, arrays["train-images-idx3-ubyte"])
    assert np.array_equal(data.y_train, arrays["train-labels-idx1-ubyte"])
    assert np.array_equal(data.X_test, arrays["t10k-images-idx3-ubyte"])
    assert np.array_equal(data.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert data.X_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert data.X_train.flags.writeable


def test_idx_plain_file_preferred_over_gz(tmp_path):
    fake_fashion(tmp_path, gz=True)
    plain = np.full((20, 4, 5), 42, np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", plain, IMAGES_MAGIC)
    assert (load_fashion_mnist(str(tmp_path)).X_train == 42).all()


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_file(tmp_path, gz):
    fake_fashion(tmp_path, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    path = tmp_path / name
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ValueError, match=name) as info:
        load_fashion_mnist(tmp_path)
    assert ("gzip" if gz else "truncated") in str(info.value)


def test_idx_truncated_header_and_trailing_bytes(tmp_path):
    fake_fashion(tmp_path, gz=False)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00\x00")
    with pytest.raises(ValueError, match="trailing"):
        load_fashion_mnist(tmp_path)
    path.write_bytes(b"\x00\x00\x08")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.*header"):
        load_fashion_mnist(tmp_path)


def test_idx_wrong_magic(tmp_path):
    fake_fashion(tmp_path, gz=False)
    # a labels file written with the images magic number
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros((20, 1, 1), np.uint8), IMAGES_MAGIC)
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.*magic.*0x00000801"):
        load_fashion_mnist(tmp_path)


def test_idx_label_checks(tmp_path):
    fake_fashion(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(19, np.uint8), LABELS_MAGIC)
    with pytest.raises(ValueError, match="19 labels.*20 images"):
        load_fashion_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(20, 10, np.uint8), LABELS_MAGIC)
    with pytest.raises(ValueError, match=r"0\.\.9"):
        load_fashion_mnist(tmp_path)


def test_fashion_missing_folder_and_file(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist") as info:
        load_fashion_mnist(missing)
    assert str(missing) in str(info.value) and "root=" in str(info.value)
    fake_fashion(tmp_path, gz=True)
    os.remove(tmp_path / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        load_fashion_mnist(tmp_path)


# ------------------------------------------------------------------ image folder
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


def test_read_image_orientation_mode_and_size(tmp_path):
    from moby_al_plugin import read_image

    arr = np.zeros((4, 6, 3), np.uint8)
    arr[0, :, 0] = 255  # a red top row
    image = Image.fromarray(arr)
    exif = image.getexif()
    exif[0x0112] = 6  # orientation: the viewer turns the image 90 degrees clockwise
    image.save(tmp_path / "turned.png", exif=exif)
    turned = read_image(tmp_path / "turned.png")
    assert turned.shape == (6, 4, 3) and turned.dtype == np.uint8
    assert (turned[:, -1, 0] == 255).all() and (turned[:, :-1, 0] == 0).all()  # red on the right
    assert read_image(tmp_path / "turned.png", mode="L", size=3).shape == (3, 3)
    assert read_image(tmp_path / "turned.png", size=(2, 5)).shape == (2, 5, 3)
    with pytest.raises(ValueError, match="mode"):
        read_image(tmp_path / "turned.png", mode="CMYK")
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(MoBYALError, match="bad.png"):
        read_image(tmp_path / "bad.png")


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


# ------------------------------------------------------------------ npz
def test_npz_xy_layout(tmp_path):
    X = np.arange(20 * 4 * 4, dtype=np.int64).reshape(20, 4, 4) % 256
    y = np.repeat([0, 1], 10)
    path = tmp_path / "toy.npz"
    np.savez(path, X=X, y=y, class_names=np.array(["a", "b"]))
    data = load_npz(path, test_fraction=0.3, random_state=1)
    assert data.X_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert data.X_train.shape == (14, 4, 4) and data.X_test.shape == (6, 4, 4)
    assert np.array_equal(np.bincount(data.y_test), [3, 3])
    assert data.name == "toy" and data.class_names == ("a", "b")
    again = load_npz(str(path), test_fraction=0.3, random_state=1)
    assert np.array_equal(again.y_train, data.y_train)


def test_npz_split_layout(tmp_path):
    rng = np.random.default_rng(0)
    parts = {
        "X_train": rng.random((8, 5, 5, 3)).astype(np.float64),
        "y_train": np.arange(8) % 2,
        "X_test": rng.random((4, 5, 5, 3)).astype(np.float64),
        "y_test": np.array([0.0, 1.0, 1.0, 0.0]),
        # the explicit split wins when X / y are there too
        "X": np.zeros((3, 2, 2), np.uint8),
        "y": np.zeros(3),
    }
    path = tmp_path / "split.npz"
    np.savez_compressed(path, **parts)
    data = load_npz(path)
    assert data.X_train.dtype == np.float32 and data.X_train.shape == (8, 5, 5, 3)
    assert np.allclose(data.X_train, parts["X_train"])
    assert np.array_equal(data.y_test, [0, 1, 1, 0]) and data.y_test.dtype == np.int64
    assert data.class_names == ()


def test_npz_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_npz(tmp_path / "nope.npz")
    path = tmp_path / "keys.npz"
    np.savez(path, images=np.zeros((2, 3, 3)), labels=np.zeros(2))
    with pytest.raises(ValueError, match=r"found keys \[images, labels\].*X and y.*X_train"):
        load_npz(path)
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"this is not a zip archive at all")
    with pytest.raises(ValueError, match="corrupt.npz"):
        load_npz(corrupt)
    good = tmp_path / "good.npz"
    np.savez(good, X=np.zeros((10, 3, 3), np.uint8), y=np.arange(10) % 2)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="cut.npz"):
        load_npz(cut)
    npy = tmp_path / "single.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(ValueError, match="single.npz.*not an .npz"):
        load_npz(npy)


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.zeros((4, 9)), np.zeros(4), "rank 3"),
        (np.full((4, 2, 2), 2.0), np.zeros(4), r"\[0, 1\]"),
        (np.full((4, 2, 2), 300), np.zeros(4), "0..255"),
        (np.zeros((4, 2, 2)), np.zeros(3), "4 images.*3 labels"),
        (np.zeros((4, 2, 2)), np.array([0, 1, -1, 0]), ">= 0"),
        (np.zeros((4, 2, 2)), np.array([0, 0.5, 1, 0]), "whole numbers"),
    ],
)
def test_npz_content_checks(tmp_path, X, y, match):
    path = tmp_path / "bad.npz"
    np.savez(path, X=X, y=y)
    with pytest.raises(ValueError, match=match):
        load_npz(path)


# ------------------------------------------------------------------ registry
def test_registry_names():
    names = [
        "digits",
        "fashion-mnist",
        "cifar10",
        "cifar100",
        "svhn",
        "torchvision-fashion-mnist",
        "image-folder",
        "npz",
    ]
    assert available_datasets() == names
    assert list(DATASETS) == names
    with pytest.raises(TypeError):
        DATASETS["mine"] = load_npz  # read-only mapping


@pytest.mark.parametrize(
    "name", ["fashion-mnist", "Fashion-MNIST", "fashion_mnist", "fashionmnist", " FashionMNIST "]
)
def test_registry_fashion_aliases(tmp_path, monkeypatch, name):
    arrays = fake_fashion(tmp_path, gz=True)
    # the default root is read at call time, so point it at the fake files
    monkeypatch.setattr(ds, "DEFAULT_FASHION_MNIST_ROOT", str(tmp_path))
    data = load_dataset(name)
    assert np.array_equal(data.X_test, arrays["t10k-images-idx3-ubyte"])
    assert load_dataset(name, root=tmp_path).name == "fashion-mnist"


def test_registry_dispatch(tmp_path):
    assert load_dataset("DIGITS", root="/ignored/anyway").X_train.shape == (1347, 8, 8)
    assert load_dataset("digits", test_size=0.5).X_test.shape == (899, 8, 8)
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((10, 3, 3), np.uint8), y=np.arange(10) % 2)
    assert load_dataset("npz", root=path, test_fraction=0.5).X_test.shape == (5, 3, 3)
    root = image_folder(tmp_path / "imgs")
    assert load_dataset("image_folder", root, image_size=3).X_train.shape[1:] == (3, 3)


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown data set 'mnist'") as info:
        load_dataset("mnist")
    for name in available_datasets():
        assert name in str(info.value)
    for name in ("cifar10", "cifar100", "svhn", "torchvision-fashion-mnist", "image-folder", "npz"):
        with pytest.raises(ValueError, match="--data-root"):
            load_dataset(name)
    with pytest.raises(TypeError):
        load_dataset(3)


# ------------------------------------------------------------------ torchvision
@pytest.mark.parametrize(
    "name, expected",
    [
        ("cifar10", "cifar-10-batches-py/data_batch_1"),
        ("cifar100", "cifar-100-python/train"),
        ("svhn", "train_32x32.mat"),
        ("torchvision-fashion-mnist", "FashionMNIST/raw/train-images-idx3-ubyte"),
    ],
)
def test_torchvision_missing_files(tmp_path, name, expected):
    with pytest.raises(FileNotFoundError, match="download=True") as info:
        load_dataset(name, root=tmp_path)
    assert expected in str(info.value) and str(tmp_path) in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing was downloaded or created
    with pytest.raises(FileNotFoundError, match="folder not found"):
        load_torchvision_dataset(name, tmp_path / "absent")


def test_torchvision_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="cifar10, cifar100, svhn"):
        load_torchvision_dataset("imagenet", tmp_path)


def test_torchvision_fashion_mnist_fake_files(tmp_path):
    # torchvision only checks that the raw IDX files exist, so tiny ones work
    arrays = fake_fashion(tmp_path / "FashionMNIST" / "raw", gz=False)
    data = load_dataset("torchvision-fashion-mnist", root=tmp_path)
    assert data.X_train.dtype == np.uint8 and data.X_train.shape == (20, 4, 5)
    assert np.array_equal(data.X_train, arrays["train-images-idx3-ubyte"])
    assert np.array_equal(data.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert data.y_test.dtype == np.int64
    assert data.view_preset == "fashion_mnist"
    assert data.class_names == FASHION_MNIST_CLASSES


def write_cifar(root: Path, hundred: bool, n: int = 4) -> np.ndarray:
    """CIFAR python batches with pixel rows (N, 3 * 32 * 32), channels first."""
    rng = np.random.default_rng(1)
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    key = "fine_labels" if hundred else "labels"
    batches = (
        ["train", "test"] if hundred else [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    )
    rows = rng.integers(0, 256, (len(batches), n, 3 * 32 * 32), dtype=np.uint8)
    for i, batch in enumerate(batches):
        entry = {"data": rows[i], key: [int(v) for v in (np.arange(n) + i) % 3]}
        (folder / batch).write_bytes(pickle.dumps(entry))
    meta_key = "fine_label_names" if hundred else "label_names"
    meta = folder / ("meta" if hundred else "batches.meta")
    meta.write_bytes(pickle.dumps({meta_key: ["x", "y", "z"]}))
    return rows


@pytest.mark.parametrize("hundred", [False, True])
def test_torchvision_cifar_fake_files(tmp_path, monkeypatch, hundred):
    import torchvision.datasets.cifar as cifar

    rows = write_cifar(tmp_path, hundred)
    name = "cifar100" if hundred else "cifar10"
    # without the real files' MD5 sums torchvision calls them corrupted
    with pytest.raises(ValueError, match="checksum"):
        load_dataset(name, root=tmp_path)
    monkeypatch.setattr(cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
    data = load_dataset(name, root=tmp_path)
    n_train = 4 if hundred else 20
    assert data.X_train.shape == (n_train, 32, 32, 3) and data.X_train.dtype == np.uint8
    assert data.X_test.shape == (4, 32, 32, 3)
    expected = rows[-1][0].reshape(3, 32, 32).transpose(1, 2, 0)
    assert np.array_equal(data.X_test[0], expected)
    assert data.y_train.dtype == np.int64 and set(data.y_train) <= {0, 1, 2}
    assert data.view_preset == "natural" and data.class_names == ("x", "y", "z")


def test_torchvision_svhn_fake_files(tmp_path, monkeypatch):
    import scipy.io
    import torchvision.datasets.svhn as svhn

    rng = np.random.default_rng(2)
    images = {}
    for split, n in (("train", 5), ("test", 3)):
        X = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)  # SVHN's (H, W, C, N)
        y = np.arange(1, n + 1, dtype=np.uint8).reshape(-1, 1)
        y[0] = 10  # SVHN's label for the digit 0
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", {"X": X, "y": y})
        images[split] = X
    monkeypatch.setattr(svhn, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
    data = load_dataset("svhn", root=tmp_path)
    assert data.X_train.shape == (5, 32, 32, 3) and data.X_train.dtype == np.uint8
    assert np.array_equal(data.X_train[2], images["train"][..., 2])
    assert np.array_equal(data.y_train, [0, 2, 3, 4, 5])
    assert data.view_preset == "digits" and data.class_names == tuple("0123456789")


def test_torchvision_conversion_helper():
    nchw = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    X, y = ds._torchvision_arrays(SimpleNamespace(data=nchw, labels=np.array([1, 0])), "svhn")
    assert X.shape == (2, 4, 5, 3) and X.flags.c_contiguous
    assert np.array_equal(X[1, 2, 3], nchw[1, :, 2, 3])
    fm = SimpleNamespace(
        data=torch.zeros(3, 6, 6, dtype=torch.uint8), targets=torch.tensor([1, 2, 9])
    )
    X, y = ds._torchvision_arrays(fm, "torchvision-fashion-mnist")
    assert X.shape == (3, 6, 6) and X.dtype == np.uint8 and y.dtype == np.int64
    cifar = SimpleNamespace(data=np.zeros((2, 8, 8, 3), np.uint8), targets=[0, 1])
    X, y = ds._torchvision_arrays(cifar, "cifar10")
    assert X.shape == (2, 8, 8, 3) and list(y) == [0, 1]
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        ds._torchvision_arrays(SimpleNamespace(data=nchw, targets=[0, 1]), "cifar10")
    with pytest.raises(ValueError, match="2 images but y holds 3 labels"):
        ds._torchvision_arrays(SimpleNamespace(data=cifar.data, targets=[0, 1, 2]), "cifar10")


# ------------------------------------------------------------------ pool helpers
def class_counts(y, idx, n_classes):
    return np.bincount(np.asarray(y)[idx], minlength=n_classes)


def test_subsample_stratified_proportions():
    y = np.repeat([0, 1, 2], [50, 30, 20])
    idx = subsample_indices(y, 10, random_state=0)
    assert np.array_equal(class_counts(y, idx, 3), [5, 3, 2])
    y = np.repeat([0, 1, 2], [700, 200, 100])
    idx = subsample_indices(y, 100, random_state=4)
    assert np.array_equal(class_counts(y, idx, 3), [70, 20, 10])
    assert len(np.unique(idx)) == 100 and np.all(np.diff(idx) > 0)


def test_subsample_leftover_goes_to_largest_remainder():
    # quotas 3, 1.5, 0.5: class 0 gets exactly 3, the last index is a tie of 1 and 2
    y = np.repeat([0, 1, 2], [6, 3, 1])
    seen = set()
    for seed in range(20):
        counts = class_counts(y, subsample_indices(y, 5, random_state=seed), 3)
        assert counts[0] == 3 and counts.sum() == 5 and counts[1] in (1, 2)
        seen.add(tuple(counts))
    assert seen == {(3, 2, 0), (3, 1, 1)}
    # fewer indices than classes still works
    assert len(subsample_indices(np.arange(10), 3, random_state=0)) == 3


def test_subsample_edges_and_determinism():
    y = np.arange(60) % 4
    assert np.array_equal(subsample_indices(y, 60), np.arange(60))
    assert subsample_indices(y, 0).shape == (0,)
    for stratified in (True, False):
        a = subsample_indices(y, 17, random_state=3, stratified=stratified)
        b = subsample_indices(y, 17, random_state=3, stratified=stratified)
        c = subsample_indices(y, 17, random_state=4, stratified=stratified)
        assert np.array_equal(a, b) and not np.array_equal(a, c)
        assert len(np.unique(a)) == 17 and a.dtype == np.int64 and a.max() < 60
    rng = np.random.RandomState(0)
    assert len(subsample_indices(y, 5, random_state=rng)) == 5
    with pytest.raises(ValueError, match="larger than y"):
        subsample_indices(y, 61)
    with pytest.raises(ValueError, match="at least 0"):
        subsample_indices(y, -1)
    with pytest.raises(TypeError):
        subsample_indices(y, 2.5)
    with pytest.raises(ValueError, match="1-D"):
        subsample_indices(y.reshape(6, 10), 2)


def test_initial_labeled_balanced():
    y = np.repeat(np.arange(10), 10)
    idx = initial_labeled_indices(y, 20, random_state=0)
    assert np.array_equal(class_counts(y, idx, 10), np.full(10, 2))
    idx = initial_labeled_indices(y, 25, random_state=1)
    counts = class_counts(y, idx, 10)
    assert sorted(counts) == [2] * 5 + [3] * 5
    # string labels work too
    assert len(initial_labeled_indices(np.array(list("aabbbc")), 3, random_state=0)) == 3


def test_initial_labeled_small_class_is_topped_up():
    y = np.repeat([0, 1, 2], [20, 1, 20])
    for seed in range(5):
        idx = initial_labeled_indices(y, 9, random_state=seed)
        counts = class_counts(y, idx, 3)
        assert counts[1] == 1 and counts.sum() == 9 and counts.min() >= 1
        assert counts[0] >= 3 and counts[2] >= 3
        assert len(np.unique(idx)) == 9


def test_initial_labeled_edges_and_determinism():
    y = np.arange(30) % 3
    for stratified in (True, False):
        a = initial_labeled_indices(y, 7, random_state=5, stratified=stratified)
        b = initial_labeled_indices(y, 7, random_state=5, stratified=stratified)
        assert np.array_equal(a, b) and len(np.unique(a)) == 7 and a.dtype == np.int64
    assert np.array_equal(initial_labeled_indices(y, 30, random_state=0), np.arange(30))
    assert len(initial_labeled_indices(y, 1, random_state=0)) == 1
    with pytest.raises(ValueError, match="at least 1"):
        initial_labeled_indices(y, 0)
    with pytest.raises(ValueError, match="larger than y"):
        initial_labeled_indices(y, 31)
    with pytest.raises(TypeError):
        initial_labeled_indices(y, True)
