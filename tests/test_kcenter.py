"""Tests for moby_al_plugin.selection.kcenter.k_center_greedy.

The reference used throughout is the textbook greedy k-center in float64 with
explicit pairwise Euclidean distances (square root of the summed squared
coordinate differences).  Because float32 rounding may legitimately flip a
near-tie, the comparison is made step by step: at every step our pick must be
within 1e-5 (relative) of the reference's best remaining distance, and the
reference then continues from *our* pick.
"""

from __future__ import annotations

import tracemalloc
import types
import warnings

import numpy as np
import pytest
import torch

from moby_al_plugin.selection import kcenter
from moby_al_plugin.selection.kcenter import k_center_greedy

RTOL = 1e-5
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


# --------------------------------------------------------------------------
# float64 references
# --------------------------------------------------------------------------
def pairwise64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Textbook Euclidean distances, float64, shape (len(a), len(b))."""
    diff = np.asarray(a, np.float64)[:, None, :] - np.asarray(b, np.float64)[None, :, :]
    return np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))


def check_against_reference(features, centres, picks, n, rtol=RTOL):
    """Assert that ``picks`` is a valid greedy k-center sequence (see module doc)."""
    f = np.asarray(features, np.float64)
    n_points = f.shape[0]
    assert isinstance(picks, np.ndarray)
    assert picks.dtype == np.int64
    assert picks.shape == (n,)
    assert len(np.unique(picks)) == n, "indices must be distinct"
    if centres is None or len(centres) == 0:
        min_d = np.full(n_points, np.inf)
    else:
        min_d = pairwise64(f, np.asarray(centres, np.float64)).min(axis=1)
    available = np.ones(n_points, dtype=bool)
    for step, p in enumerate(picks.tolist()):
        assert 0 <= p < n_points and available[p], f"step {step}: invalid pick {p}"
        best = min_d[available].max()
        if np.isinf(best):
            # No centre yet: every point ties at +inf, the lowest index wins.
            assert p == np.flatnonzero(available)[0], f"step {step}: expected lowest index"
        else:
            assert min_d[p] >= best * (1.0 - rtol), (
                f"step {step}: picked distance {min_d[p]!r} < best {best!r} "
                f"(relative gap {(best - min_d[p]) / best:.3g})"
            )
        available[p] = False
        min_d = np.minimum(min_d, pairwise64(f, f[[p]])[:, 0])


def exact_greedy(features, centres, n):
    """Greedy on small dyadic-valued data (integers, halves): squared distances
    are exact in float64, so ties are exact and ``np.argmax`` resolves them
    to the lowest index."""
    f = np.asarray(features, np.float64)
    min_sq = np.full(f.shape[0], np.inf)
    if centres is not None and len(centres):
        diff = f[:, None, :] - np.asarray(centres, np.float64)[None, :, :]
        min_sq = (diff**2).sum(axis=2).min(axis=1)
    picks = []
    for _ in range(n):
        p = int(np.argmax(min_sq))
        picks.append(p)
        min_sq = np.minimum(min_sq, ((f - f[p]) ** 2).sum(axis=1))
        min_sq[picks] = -1.0
    return np.array(picks, dtype=np.int64)


def assert_same_or_near_tie(features, centres, a, b, rtol=RTOL):
    """Equal pick sequences, or a first divergence at a float64 near-tie.

    Different BLAS libraries round float32 products differently, which may
    legitimately flip a near-tie; everything after it then differs.
    """
    diverged = np.flatnonzero(a != b)
    if diverged.size == 0:
        return
    step = int(diverged[0])
    f = np.asarray(features, np.float64)
    if centres is None or len(centres) == 0:
        min_d = np.full(f.shape[0], np.inf)
    else:
        min_d = pairwise64(f, centres).min(axis=1)
    for p in a[:step]:
        min_d = np.minimum(min_d, pairwise64(f, f[[p]])[:, 0])
    min_d[a[:step]] = -1.0
    best = min_d.max()
    assert min(min_d[a[step]], min_d[b[step]]) >= best * (1.0 - rtol), f"diverged at {step}"


def gaussian(rng, n_points, dim, loc=0.0, scale=1.0, dtype=np.float32):
    return (loc + scale * rng.standard_normal((n_points, dim))).astype(dtype)


# --------------------------------------------------------------------------
# Correctness against the reference
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "n_points, dim, n_centres, n, seed",
    [
        (50, 2, None, 50, 0),  # n = N, no initial centre
        (200, 8, 10, 40, 1),
        (300, 16, 1, 100, 2),
        (120, 5, 30, 120, 3),  # n = N with centres
        (257, 3, 0, 64, 4),  # M = 0
        (80, 1, 5, 30, 5),  # d = 1
        (150, 64, 20, 50, 6),
    ],
)
def test_matches_reference(n_points, dim, n_centres, n, seed):
    rng = np.random.default_rng(seed)
    features = gaussian(rng, n_points, dim)
    centres = None if n_centres is None else gaussian(rng, n_centres, dim)
    picks = k_center_greedy(features, n, initial_centers=centres)
    check_against_reference(features, centres, picks, n)


@pytest.mark.parametrize("seed", [0, 1])
def test_torch_cpu_loop_agrees_with_numpy(seed):
    # The torch loop is the CUDA code path; on the CPU it must give the same picks.
    rng = np.random.default_rng(seed)
    features = gaussian(rng, 300, 12)
    centres = gaussian(rng, 25, 12)
    ours = k_center_greedy(features, 60, initial_centers=centres)
    via_torch = kcenter._k_center_greedy(
        features, 60, centres, device=None, chunk_size=None, torch_on_cpu=True
    )
    check_against_reference(features, centres, via_torch, 60)
    assert_same_or_near_tie(features, centres, ours, via_torch)


def test_first_pick_without_centres_is_index_zero():
    rng = np.random.default_rng(7)
    features = gaussian(rng, 40, 3)
    assert k_center_greedy(features, 1)[0] == 0
    assert k_center_greedy(features, 1, initial_centers=np.empty((0, 3)))[0] == 0


def test_empty_centres_are_the_same_as_none():
    rng = np.random.default_rng(8)
    features = gaussian(rng, 60, 4)
    expected = k_center_greedy(features, 20)
    for empty in (np.empty((0, 4)), [], np.empty((0, 4), np.float64)):
        np.testing.assert_array_equal(k_center_greedy(features, 20, empty), expected)


# --------------------------------------------------------------------------
# Hand-computed examples and exact ties
# --------------------------------------------------------------------------
def test_hand_computed_1d():
    x = np.array([[0.0], [1.0], [5.0], [7.0], [10.0]])
    # Centre at 0: farthest is 10 (idx 4); then 5 (distance 5, idx 2); then
    # 7 (distance 2 from 5, idx 3); then 1 (distance 1, idx 1); last 0 (idx 0),
    # which coincides with the initial centre.
    picks = k_center_greedy(x, 5, initial_centers=[[0.0]])
    assert picks.tolist() == [4, 2, 3, 1, 0]
    # No centre: idx 0 first (all +inf), then 10 (idx 4), then 5 (idx 2).
    assert k_center_greedy(x, 3).tolist() == [0, 4, 2]


@pytest.mark.parametrize("offset", [0.0, 1000.0])
def test_grid_ties_lowest_index_wins(offset):
    # 4 x 4 integer grid (mean 1.5: dyadic, so the float32 arithmetic is exact
    # and equidistant points tie exactly); offset 1000 exercises the
    # block-centred product.
    i, j = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    grid = np.stack([i.ravel(), j.ravel()], axis=1).astype(np.float32) + offset
    picks = k_center_greedy(grid, 16)
    # (0,0) first; (3,3) farthest; then (0,3)=idx 3 and (3,0)=idx 12 tie at 3.
    assert picks[:4].tolist() == [0, 15, 3, 12]
    np.testing.assert_array_equal(picks, exact_greedy(grid - offset, None, 16))
    centre = np.array([[1.5, 1.5]], np.float32) + offset
    # The four corners tie with a centre in the middle: lowest index first.
    picks = k_center_greedy(grid, 16, initial_centers=centre)
    assert picks[0] == 0
    np.testing.assert_array_equal(picks, exact_greedy(grid - offset, centre - offset, 16))


def test_duplicates_are_never_returned_twice():
    # Five distinct integer points, each present three times (interleaved).
    base = np.array([[0, 0], [4, 0], [0, 4], [4, 4], [2, 2]], np.float32)
    features = np.concatenate([base, base, base])  # idx k, k+5, k+10 are equal
    picks = k_center_greedy(features, 15)
    assert sorted(picks.tolist()) == list(range(15))
    # The first five picks are one copy of each distinct point (the lowest
    # index, as copies tie exactly), then the zero-distance rest in order.
    assert sorted(picks[:5].tolist()) == [0, 1, 2, 3, 4]
    assert picks[5:].tolist() == list(range(5, 15))
    np.testing.assert_array_equal(picks, exact_greedy(features, None, 15))


def test_all_points_identical():
    features = np.full((10, 3), 2.5, np.float32)
    assert k_center_greedy(features, 10).tolist() == list(range(10))
    assert k_center_greedy(features, 4, features[:2]).tolist() == [0, 1, 2, 3]


def test_random_duplicates_distinct_and_valid():
    rng = np.random.default_rng(9)
    base = gaussian(rng, 30, 6)
    features = base[rng.integers(0, 30, size=200)]
    centres = base[:3]
    picks = k_center_greedy(features, 200, initial_centers=centres)
    assert len(np.unique(picks)) == 200
    check_against_reference(features, centres, picks, 200)


# --------------------------------------------------------------------------
# Numerics: data away from the origin (a mean a dozen spreads out)
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "loc, dim, with_centres", [(12.0, 8, True), (12.0, 8, False), (12.0, 64, True)]
)
def test_far_from_origin_matches_reference(loc, dim, with_centres):
    rng = np.random.default_rng(10)
    data = gaussian(rng, 450, dim, loc=loc, scale=1.0)
    centres, features = (data[:50], data[50:]) if with_centres else (None, data)
    picks = k_center_greedy(features, 150, initial_centers=centres)
    check_against_reference(features, centres, picks, 150)


def test_large_scale_data():
    # Huge but representable values: the overflow guard must not trigger.
    rng = np.random.default_rng(11)
    features = gaussian(rng, 100, 4, scale=1e15)
    check_against_reference(features, None, k_center_greedy(features, 30), 30)


# --------------------------------------------------------------------------
# Input types and chunking
# --------------------------------------------------------------------------
def test_float64_and_tensor_inputs_agree():
    rng = np.random.default_rng(12)
    features = gaussian(rng, 200, 10)
    centres = gaussian(rng, 15, 10)
    expected = k_center_greedy(features, 50, initial_centers=centres)
    check_against_reference(features, centres, expected, 50)
    variants = [
        (features.astype(np.float64), centres.astype(np.float64)),
        (torch.from_numpy(features), torch.from_numpy(centres)),
        (torch.from_numpy(features).double().requires_grad_(), centres.tolist()),
        (features.tolist(), torch.from_numpy(centres).double()),
        (np.asfortranarray(features), centres),
        (np.repeat(features, 2, axis=1)[:, ::2], centres),  # strided view
    ]
    for feats, cents in variants:
        picks = k_center_greedy(feats, 50, initial_centers=cents, device="cpu")
        np.testing.assert_array_equal(picks, expected)


def test_half_precision_tensor_input():
    rng = np.random.default_rng(13)
    features = torch.from_numpy(gaussian(rng, 100, 6)).to(torch.bfloat16)
    picks = k_center_greedy(features, 20)
    check_against_reference(features.float().numpy(), None, picks, 20)


def test_integer_input():
    features = np.array([[0, 0], [10, 0], [0, 3], [5, 5]], dtype=np.int64)
    np.testing.assert_array_equal(k_center_greedy(features, 4), exact_greedy(features, None, 4))


@pytest.mark.parametrize("loc", [0.0, 1000.0])
@pytest.mark.parametrize("chunk_size", [1, 7, 100])
def test_tiny_chunk_size_gives_same_result(loc, chunk_size):
    rng = np.random.default_rng(14)
    features = gaussian(rng, 90, 5, loc=loc)
    centres = gaussian(rng, 23, 5, loc=loc)
    expected = k_center_greedy(features, 30, initial_centers=centres)
    picks = k_center_greedy(features, 30, initial_centers=centres, chunk_size=chunk_size)
    np.testing.assert_array_equal(picks, expected)
    via_torch = kcenter._k_center_greedy(
        features, 30, centres, device=None, chunk_size=chunk_size, torch_on_cpu=True
    )
    np.testing.assert_array_equal(via_torch, expected)


@pytest.mark.parametrize("loc", [0.0, 1000.0])
def test_memory_is_bounded_by_chunk_size(loc):
    # An N x M float32 matrix would be 20,000 x 400 x 4 B = 32 MB; the
    # features are 5.1 MB.  Temporaries: a few length-N vectors and blocks of
    # ~chunk_size elements (2**18 here: 1 MiB as float32).
    rng = np.random.default_rng(15)
    features = gaussian(rng, 20_000, 64, loc=loc)
    centres = gaussian(rng, 400, 64, loc=loc)
    tracemalloc.start()
    try:
        k_center_greedy(features, 3, initial_centers=centres, chunk_size=1 << 18)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < features.nbytes, (peak, features.nbytes)


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------
GOOD = np.zeros((5, 3), np.float32)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(features=np.zeros(5)), ValueError, "2-D"),
        (dict(features=np.zeros((2, 3, 4))), ValueError, "2-D"),
        (dict(features=np.zeros((0, 3))), ValueError, r"empty \(N=0\)"),
        (dict(features=np.array([[0.0, np.nan, 1.0]] * 5)), ValueError, "NaN or infinite"),
        (dict(features=np.array([[0.0, np.inf, 1.0]] * 5)), ValueError, "NaN or infinite"),
        (dict(features=torch.tensor([[0.0, float("nan")]] * 5)), ValueError, "NaN or infinite"),
        (dict(features=np.full((5, 3), 1e300)), ValueError, "too large for float32"),
        (
            dict(features=np.full((5, 3), 1e30, np.float32) * np.arange(5)[:, None]),
            ValueError,
            "too large in magnitude",
        ),
        (
            dict(initial_centers=np.array([[0.0, -np.inf, 0.0]])),
            ValueError,
            "initial_centers contains NaN or infinite",
        ),
        (
            dict(initial_centers=np.zeros((2, 4))),
            ValueError,
            "initial_centers has 4 columns but features has d=3",
        ),
        (dict(initial_centers=np.zeros(3)), ValueError, "initial_centers must be a 2-D"),
        (
            dict(initial_centers=np.full((2, 3), 3e37, np.float32)),
            ValueError,
            "initial_centers values are too large",
        ),
        (dict(n=2.0), TypeError, "n must be an integer"),
        (dict(n="2"), TypeError, "n must be an integer"),
        (dict(n=True), TypeError, "n must be an integer"),
        (dict(n=0), ValueError, r"n must be >= 1, got n=0"),
        (dict(n=-3), ValueError, r"n must be >= 1, got n=-3"),
        (dict(n=6), ValueError, r"n=6 exceeds the number of candidates N=5"),
        (dict(chunk_size=0), ValueError, "chunk_size == 0, must be >= 1"),
        (dict(chunk_size=2.5), TypeError, "chunk_size must be an integer"),
        (dict(device="mps"), ValueError, "not supported"),
        (dict(device="banana"), ValueError, "not a valid device"),
        (dict(features=np.zeros((5, 3), np.complex64)), TypeError, "real-valued"),
    ],
)
def test_bad_inputs_raise(kwargs, exc, match):
    args = dict(features=GOOD, n=2, initial_centers=None)
    args.update(kwargs)
    features, n, centres = args.pop("features"), args.pop("n"), args.pop("initial_centers")
    with pytest.raises(exc, match=match):
        k_center_greedy(features, n, centres, **args)


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the no-CUDA error")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_requested_without_cuda(device):
    with pytest.raises(ValueError, match="CUDA is not available"):
        k_center_greedy(GOOD, 2, device=device)


def test_numpy_integer_n_is_accepted():
    assert k_center_greedy(GOOD + np.arange(5)[:, None], np.int64(2)).tolist() == [0, 4]


def test_tf32_warning(monkeypatch):
    monkeypatch.setattr(torch.backends.cuda, "matmul", types.SimpleNamespace(fp32_precision="tf32"))
    with pytest.warns(UserWarning, match="TF32"):
        kcenter._warn_if_tf32()
    monkeypatch.setattr(torch.backends.cuda, "matmul", types.SimpleNamespace(fp32_precision="ieee"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kcenter._warn_if_tf32()


# --------------------------------------------------------------------------
# CUDA
# --------------------------------------------------------------------------
@pytest.mark.gpu
@CUDA
def test_cuda_matches_cpu_on_exact_data():
    i, j, k = np.meshgrid(np.arange(5), np.arange(4), np.arange(3), indexing="ij")
    grid = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1).astype(np.float32)
    centres = grid[[7, 40]] + 0.5
    for offset in (0.0, 1000.0):
        cpu = k_center_greedy(grid + offset, 60, centres + offset)
        gpu = k_center_greedy(grid + offset, 60, centres + offset, device="cuda")
        np.testing.assert_array_equal(cpu, exact_greedy(grid, centres, 60))
        np.testing.assert_array_equal(gpu, cpu)


@pytest.mark.gpu
@CUDA
@pytest.mark.parametrize("loc", [0.0, 1000.0])
def test_cuda_matches_cpu_on_random_data(loc):
    rng = np.random.default_rng(16)
    features = gaussian(rng, 2000, 32, loc=loc)
    centres = gaussian(rng, 100, 32, loc=loc)
    cpu = k_center_greedy(features, 200, centres)
    # A CUDA tensor with device=None runs on its device.
    gpu = k_center_greedy(torch.from_numpy(features).cuda(), 200, torch.from_numpy(centres))
    check_against_reference(features, centres, gpu, 200)
    assert_same_or_near_tie(features, centres, cpu, gpu)
