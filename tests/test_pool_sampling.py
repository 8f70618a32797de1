"""Tests of ``moby_al_plugin.data.pool_sampling``: drawing a pool and a first labelled set."""

from __future__ import annotations

import numpy as np
import pytest

from moby_al_plugin.data.pool_sampling import initial_labeled_indices, subsample_indices


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
    with pytest.raises(ValueError, match="must be >= 0"):
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
    with pytest.raises(ValueError, match="must be >= 1"):
        initial_labeled_indices(y, 0)
    with pytest.raises(ValueError, match="larger than y"):
        initial_labeled_indices(y, 31)
    with pytest.raises(TypeError):
        initial_labeled_indices(y, True)
