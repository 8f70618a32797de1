"""Pools read lazily: memmaps and image folders give what the same images in memory give."""

from __future__ import annotations

import os

import numpy as np
import pytest
from modAL.uncertainty import margin_sampling
from PIL import Image

from moby_al_plugin import (
    ActiveLearner,
    ImagePool,
    MoBYALError,
    coreset_sampling,
    open_memmap_pool,
    typiclust_sampling,
    write_features,
)
from moby_al_plugin.data import pools as pools_module
from moby_al_plugin.data.pools import LazyImages, check_pool
from moby_al_plugin.exceptions import DataNotFoundError
from moby_al_plugin.skorch_base import channel_statistics
from tests.conftest import small_encoder, small_net


@pytest.fixture(scope="module")
def digit_pool(digit_image_folder):
    """The 240 digit PNGs as an ImagePool, and the same uint8 images in memory, in pool order."""
    folder, _ = digit_image_folder
    pool = ImagePool(folder, image_size=8)
    images = np.stack([np.asarray(Image.open(folder / p)) for p in pool.paths])
    return pool, images


@pytest.fixture
def memmap_of(tmp_path):
    def write(images: np.ndarray, name: str = "pool.npy") -> np.memmap:
        path = tmp_path / name
        np.save(path, images)
        return np.load(path, mmap_mode="r")

    return write


# ----------------------------------------------------------------- ImagePool
def test_image_pool_reads_the_files_as_written(digit_pool):
    pool, images = digit_pool
    assert len(pool) == 240 and pool.shape == (240, 1, 8, 8) and pool.skipped == []
    assert pool.grayscale  # every file has one band
    np.testing.assert_array_equal(pool[5], images[5][None])
    np.testing.assert_array_equal(pool[-1], images[-1][None])
    np.testing.assert_array_equal(pool[[7, 2, 7]], images[[7, 2, 7]][:, None])
    np.testing.assert_array_equal(pool[10:14], images[10:14][:, None])
    mask = np.zeros(240, dtype=bool)
    mask[[0, 99]] = True
    np.testing.assert_array_equal(pool[mask], images[mask][:, None])
    np.testing.assert_array_equal(np.asarray(pool), images[:, None])
    with pytest.raises(IndexError, match="240"):
        pool[240]


def test_image_pool_workers_decode_the_same_images(digit_pool):
    pool, images = digit_pool
    parallel = ImagePool(pool.folder, image_size=8, num_workers=2)
    chunks = list(check_pool(parallel).chunks(100))
    assert [len(c) for c in chunks] == [100, 100, 40]
    np.testing.assert_array_equal(np.concatenate(chunks), images[:, None] / np.float32(255))


def test_image_pool_skips_and_lists_unreadable_files(tmp_path, digits):
    folder = tmp_path / "messy"
    (folder / "sub").mkdir(parents=True)
    pixels = (digits.X_train[0] * 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(folder / "a.png")
    Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(folder / "sub" / "b.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")
    whole = (folder / "a.png").read_bytes()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    outside = tmp_path / "outside.png"
    Image.fromarray(pixels, mode="L").save(outside)
    os.symlink(outside, folder / "link.png")

    pool = ImagePool(folder, image_size=(6, 5))
    skipped = dict(pool.skipped)
    assert "empty.png" in skipped and "outside" in skipped["link.png"]
    assert pool.ignored == ["notes.txt"]
    assert not pool.grayscale and pool.shape == (3, 3, 6, 5)  # one RGB file: all RGB
    # the header of the truncated file reads; decoding it names the file
    row = pool.paths.index("truncated.png")
    with pytest.raises(MoBYALError, match="truncated.png.*check='decode'"):
        pool[row]
    checked = ImagePool(folder, image_size=(6, 5), check="decode")
    assert checked.paths == ["a.png", "sub/b.png"]
    assert "truncated.png" in dict(checked.skipped)
    assert checked[1].shape == (3, 6, 5)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(image_size=None), MoBYALError, "image_size"),
        (dict(check="full"), MoBYALError, "check"),
        (dict(num_workers=-1), MoBYALError, "num_workers"),
        (dict(grayscale="yes"), MoBYALError, "grayscale"),
    ],
)
def test_image_pool_refuses_bad_settings(digit_image_folder, kwargs, error, match):
    folder, _ = digit_image_folder
    with pytest.raises(error, match=match):
        ImagePool(folder, **{"image_size": 8, **kwargs})


def test_image_pool_refuses_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataNotFoundError, match="not found"):
        ImagePool(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MoBYALError, match="no readable image"):
        ImagePool(tmp_path / "empty")


# ------------------------------------------------------------------- memmaps
def test_open_memmap_pool_names_the_shape_and_dtype(tmp_path):
    images = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5)
    np.save(tmp_path / "pool.npy", images)
    opened = open_memmap_pool(tmp_path / "pool.npy")
    assert isinstance(opened, np.memmap)
    np.testing.assert_array_equal(opened, images)
    with pytest.raises(MoBYALError, match=r"\(2, 4, 5\) and dtype uint8.*float32"):
        open_memmap_pool(tmp_path / "pool.npy", dtype=np.float32)
    images.tofile(tmp_path / "pool.raw")
    raw = open_memmap_pool(tmp_path / "pool.raw", shape=(2, 4, 5), dtype=np.uint8)
    np.testing.assert_array_equal(raw, images)
    # 40 bytes: not two 4x5 float32 images (160 bytes)
    with pytest.raises(MoBYALError, match=r"40 bytes.*\(2, 4, 5\) of dtype float32 needs 160"):
        open_memmap_pool(tmp_path / "pool.raw", shape=(2, 4, 5), dtype=np.float32)
    with pytest.raises(MoBYALError, match="raw file: give its shape and dtype"):
        open_memmap_pool(tmp_path / "pool.raw")
    with pytest.raises(DataNotFoundError):
        open_memmap_pool(tmp_path / "missing.npy")


@pytest.mark.parametrize(
    "array, match",
    [
        (np.zeros((3, 64), dtype=np.uint8), r"dtype uint8 and shape \(3, 64\)"),
        (np.zeros((3, 8, 8), dtype=np.int64), r"dtype int64 and shape \(3, 8, 8\)"),
    ],
)
def test_a_memmap_that_is_not_images_is_refused_with_its_dtype_and_shape(memmap_of, array, match):
    with pytest.raises(MoBYALError, match=match):
        small_encoder().fit(memmap_of(array))


def test_float_memmap_values_are_checked_as_read(memmap_of):
    bad = np.full((4, 8, 8), 2.0, dtype=np.float32)
    lazy = check_pool(memmap_of(bad))
    with pytest.raises(MoBYALError, match=r"float values in \[2, 2\]"):
        lazy[0:2]


def test_lazy_images_follow_the_layout_rules_of_in_memory_images(memmap_of):
    rng = np.random.RandomState(0)
    channels_last = rng.randint(0, 256, size=(5, 6, 7, 3)).astype(np.uint8)
    lazy = check_pool(memmap_of(channels_last))
    assert lazy.shape == (5, 3, 6, 7)
    expected = channels_last.transpose(0, 3, 1, 2) / np.float32(255)
    np.testing.assert_array_equal(lazy[[4, 1]], expected[[4, 1]])
    view = lazy.take([3, 0, 2])
    assert len(view) == 3
    np.testing.assert_array_equal(view[1:], expected[[0, 2]])
    np.testing.assert_array_equal(np.concatenate(list(view.chunks(2))), expected[[3, 0, 2]])


def test_statistics_of_a_large_lazy_pool_come_from_evenly_spaced_images(memmap_of, monkeypatch):
    rng = np.random.RandomState(1)
    images = rng.randint(0, 256, size=(11, 1, 4, 4)).astype(np.uint8)
    monkeypatch.setattr(pools_module, "STATISTICS_SAMPLE", 5)
    lazy = check_pool(memmap_of(images))
    sample = images[[0, 2, 5, 8, 10]] / np.float32(255)  # linspace(0, 10, 5), rounded
    got = channel_statistics(lazy.statistics_chunks(sample=5))
    assert got[0] == pytest.approx([sample.mean()], rel=1e-6)
    assert got[1] == pytest.approx([sample.std()], rel=1e-5)


# ---------------------------------------------- same results as in memory
def test_encoder_on_a_memmap_trains_and_transforms_as_on_the_array(digits, memmap_of):
    images = (digits.X_train[:200] * 255).round().astype(np.uint8)
    in_memory = small_encoder(max_epochs=1).fit(images)
    on_disk = small_encoder(max_epochs=1).fit(memmap_of(images))
    assert on_disk.input_mean_ == pytest.approx(in_memory.input_mean_)
    for a, b in zip(in_memory.module_.parameters(), on_disk.module_.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(
        on_disk.transform(memmap_of(images)), in_memory.transform(images), atol=1e-4
    )


def test_classifier_with_an_unlabelled_memmap_and_lazy_inference(tiny_digits, memmap_of):
    X, y = tiny_digits["X"], tiny_digits["y"]
    pool = tiny_digits["X_pool"].astype(np.float32)
    in_memory = small_net(max_epochs=1).fit(X, y, X_unlabeled=pool)
    lazy = memmap_of(pool)
    on_disk = small_net(max_epochs=1).fit(X, y, X_unlabeled=lazy)
    np.testing.assert_allclose(
        on_disk.predict_proba(lazy), in_memory.predict_proba(pool), atol=1e-4
    )
    np.testing.assert_allclose(on_disk.transform(lazy), in_memory.transform(pool), atol=1e-4)


@pytest.fixture(scope="module")
def fitted_on_pool_images(digit_pool, digit_image_folder):
    """A small net fitted on the pool's first 60 digits; the pool, its images and labels."""
    pool, images = digit_pool
    _, truth = digit_image_folder
    labels = np.array([int(truth[path]) for path in pool.paths])
    net = small_net(max_epochs=1).fit(images[:60], labels[:60])
    return net, pool, images, labels


@pytest.mark.parametrize(
    "strategy, options",
    [
        (coreset_sampling, {}),
        (typiclust_sampling, {"random_state": 0}),
        (margin_sampling, {}),
        (coreset_sampling, {"candidates": np.arange(60, 240, 2)}),
    ],
    ids=["coreset", "typiclust", "margin", "coreset-candidates"],
)
def test_memmap_and_image_folder_pools_give_the_picks_of_the_array(
    fitted_on_pool_images, memmap_of, strategy, options
):
    net, pool, images, _ = fitted_on_pool_images
    kwargs = dict(n_instances=7, **options)
    if strategy is coreset_sampling:
        kwargs["X_labeled"] = images[:60]
    expected = np.asarray(_indices(strategy(net, images, **kwargs)))
    for lazy in (memmap_of(images), pool):
        np.testing.assert_array_equal(np.asarray(_indices(strategy(net, lazy, **kwargs))), expected)


def _indices(result):
    return result[0] if isinstance(result, tuple) else result


def test_active_learner_queries_and_teaches_from_an_image_pool(fitted_on_pool_images):
    _, pool, images, labels = fitted_on_pool_images
    learner = ActiveLearner(
        estimator=small_net(max_epochs=1),
        query_strategy=coreset_sampling,
        X_training=pool[:60],
        y_training=labels[:60],
    )
    indices, rows = learner.query(pool, n_instances=5)
    assert len(indices) == 5
    np.testing.assert_array_equal(rows, images[indices][:, None])
    learner.teach(rows, labels[indices])
    assert learner.X_training.shape == (65, 1, 8, 8)
    with pytest.raises(TypeError, match="return_metrics"):
        learner.query(pool, n_instances=2, return_metrics=True)


def test_write_features_fills_a_float16_file_chunk_by_chunk(fitted_on_pool_images, tmp_path):
    net, pool, images, _ = fitted_on_pool_images
    written = write_features(net, pool, tmp_path / "features.npy", chunk_size=50)
    assert isinstance(written, np.memmap) and written.dtype == np.float16
    expected = net.transform(images)
    assert written.shape == expected.shape
    np.testing.assert_allclose(written, expected, rtol=2e-3, atol=2e-3)
    with pytest.raises(TypeError, match="chunk_size"):
        write_features(net, pool, tmp_path / "f.npy", chunk_size=1.5)


def test_lazy_images_are_what_check_pool_gives_for_disk_pools(digit_pool, memmap_of):
    pool, images = digit_pool
    assert isinstance(check_pool(pool), LazyImages)
    assert isinstance(check_pool(memmap_of(images)), LazyImages)
    in_memory = check_pool(images)
    assert isinstance(in_memory, np.ndarray) and in_memory.dtype == np.float32
