"""Exact greedy k-center (core-set) selection with bounded memory.

MoBYv2AL selects the unlabelled samples to annotate with the greedy k-center
heuristic (Sener & Savarese, 2018) on self-supervised embeddings.  The usual
implementation (Google's ``kCenterGreedy``) first builds the dense
``N x |labelled|`` float64 distance matrix with
``sklearn.metrics.pairwise_distances`` and then calls ``pairwise_distances``
again for every pick.  This module implements the *same* greedy rule

    p_k = argmax_i min_{c in centres} ||x_i - c||_2

with

* ``O(N * d)`` memory: the distances to the initial centres are computed in
  tiles (blocks of centres x blocks of rows), never as an ``N x M`` matrix;
* one float32 matrix-vector product over the features per pick, using the
  squared-norm expansion ``||x||^2 + ||c||^2 - 2 x.c`` with preallocated
  in-place buffers;
* numerically careful float32: the expansion is applied around the mean of
  the features without building a centred copy of the features (only
  vectors are shifted, or, for data far from the origin, cache-sized row
  blocks), and squared norms are accumulated in float64.

Backends: numpy (OpenBLAS ``sgemv``) on the CPU and torch on CUDA.  On the
2-core AMD EPYC development machine (shared, so noisy) a single float32
matrix-vector product with numpy took 33 ms for 51,000 x 512 and 38 ms for
1,000,000 x 128, against 42 ms and 93 ms for ``torch.mv``; for the whole
1,000-pick loop ``benchmarks/kcenter_speed.py`` measured numpy 0.9 s vs
torch-CPU 4.0 s (11,000 x 512 pool), 9.1 s vs 18.5 s (51,000 x 512) and
103 s vs 121 s (1,000,000 x 128, load average 1-2), hence numpy on the CPU.
Multi-threaded OpenBLAS slows down sharply (up to ~10x on the small pool)
when other processes occupy the cores.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
import torch

__all__ = ["k_center_greedy"]

# Elements of the largest temporary block (a tile of distances to initial
# centres, a block of centres, a block of rows while computing norms).
# 2**22 float32 elements = 16 MiB: large enough for efficient BLAS-3 calls,
# small next to any pool worth running k-center on.
_DEFAULT_CHUNK_SIZE = 1 << 22

_F32_MAX = float(np.finfo(np.float32).max)
# A squared distance is at most 2 * (||x - mu||^2 + ||c - mu||^2); keeping every
# centred squared norm below this bound guarantees no float32 overflow.
_SQ_NORM_LIMIT = _F32_MAX / 8.0

# Beyond this ratio ||mean|| / spread the features are centred block by block
# inside every product (see _needs_block_centring).
_MAX_OFFSET_RATIO = 16.0

# Streaming row blocks on the CPU (value checks, squared norms, centred rows
# in the per-pick product) hold at most this many elements: cache-sized, and
# small next to the features; only the distance tiles use all of chunk_size.
_CPU_CACHE_ELEMENTS = 1 << 18


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------
def k_center_greedy(
    features: Any,
    n: int,
    initial_centers: Any = None,
    *,
    device: str | torch.device | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Select ``n`` points by exact greedy k-center (farthest-first traversal).

    Starting from the distances of every candidate to its nearest initial
    centre, repeatedly pick the candidate farthest from all centres chosen so
    far and add it to the centres.

    Parameters
    ----------
    features : array_like or torch.Tensor, shape (N, d)
        Candidate points (e.g. embeddings of the unlabelled pool).  Any real
        dtype; computations are done in float32.  A float32, contiguous numpy
        array (or CPU float32 tensor) is used without copying.
    n : int
        Number of points to select, ``1 <= n <= N``.
    initial_centers : array_like or torch.Tensor, shape (M, d), optional
        Feature vectors of already-chosen centres (e.g. the labelled set).
        They are *not* rows of ``features`` and are never returned.  ``None``,
        an ``(0, d)`` array or an empty 1-D array mean "no initial centre".
    device : str or torch.device, optional
        ``"cpu"`` (numpy backend) or ``"cuda"``/``"cuda:k"`` (torch backend on
        that GPU).  Default: the device of ``features`` if it is a CUDA
        tensor, the CPU otherwise.
    chunk_size : int, optional
        Upper bound, in elements, of the temporary blocks: tiles of distances
        to the initial centres, blocks of centres, row blocks.  At least one
        row or centre is processed at a time, so a block may exceed it when
        ``d`` alone does.  Default ``2**22`` (16 MiB of float32).  On the CPU,
        row blocks that are only streamed through (value checks, norms,
        centred rows) are further capped at ``2**18`` elements.

    Returns
    -------
    numpy.ndarray of int64, shape (n,)
        Distinct row indices into ``features``, in pick order.

    Raises
    ------
    TypeError
        If ``n`` or ``chunk_size`` is not an integer, or an input is not
        real-valued.
    ValueError
        If ``features`` is not 2-D or is empty, ``n < 1`` or ``n > N``,
        ``initial_centers`` is not 2-D or has a different number of columns,
        an input contains NaN or infinite values (or values so large that
        float32 squared distances would overflow), ``chunk_size < 1``,
        ``device`` is not a CPU/CUDA device, or CUDA is requested but not
        available.

    Warns
    -----
    UserWarning
        On CUDA when TF32 matmuls are enabled globally in torch: the distances
        are then only accurate to about 1e-3 relative.

    Notes
    -----
    Algorithm (exact greedy, Euclidean): ``min_dist[i]`` is the squared
    distance from point ``i`` to its nearest initial centre (``+inf`` when
    there is none).  Each of the ``n`` steps picks
    ``p = argmax(min_dist)`` and then sets
    ``min_dist = minimum(min_dist, ||x - x_p||^2)``; picked points are marked
    ``-1`` so they are never picked again, which keeps the result distinct
    even with duplicated points.  ``argmax`` returns the lowest index among
    exactly equal values, hence:

    * without initial centres every ``min_dist`` is ``+inf`` and the first
      pick is always index 0;
    * once every remaining point is at distance 0 (duplicates of centres),
      the remaining picks are the unpicked indices in increasing order.

    Ties are decided on the computed float32 values, so points that are
    equidistant in exact arithmetic but whose float32 distances round
    differently are ordered by those rounded values.

    Numerics (float32): let ``s`` be the mean of ``features`` rounded to
    float32.  Then
    ``||x - c||^2 = ||x - s||^2 + ||c - s||^2 - 2 (x - s).(c - s)``, where
    ``||x - s||^2`` is accumulated once in float64 over row blocks and the
    cross term is one float32 matrix-vector product per pick.  Working around
    ``s`` removes the catastrophic cancellation of ``||x||^2 + ||c||^2``
    against ``2 x.c`` for data far from the origin.

    * Usual case, ``||s|| <= 16 * spread`` (``spread`` = root mean squared
      distance to ``s``): the product is taken on the features as given, as
      ``x.(c - s) - s.(c - s)``, so only ``d``-vectors are shifted and no
      copy of the ``N x d`` matrix is made.  Its residual rounding error is
      about ``eps32 * ||s|| / spread`` relative (``eps32 ~ 6e-8``).
    * Farther from the origin that residual becomes visible (~6e-5 relative
      at ``||s|| / spread = 1000``), so the product is taken on row blocks
      centred into a small reusable buffer (~1 MiB on the CPU), still without
      an ``N x d`` copy, at roughly 3-4x the cost per pick on the CPU.

    Negative rounded squared distances are clamped to 0.

    Memory: besides the float32 features (a copy only when the input is not
    float32, e.g. half the size of a float64 input), a handful of length-N
    vectors and temporary blocks of at most about ``chunk_size`` elements:
    never an ``N x M`` matrix.  Time: ``O(M N d)`` for the initial centres
    (tiled sgemm) plus ``n - 1`` matrix-vector products, ``O((M + n) N d)``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [1.0], [5.0], [7.0], [10.0]])
    >>> k_center_greedy(x, 5, initial_centers=[[0.0]]).tolist()
    [4, 2, 3, 1, 0]
    """
    return _k_center_greedy(features, n, initial_centers, device=device, chunk_size=chunk_size)


# --------------------------------------------------------------------------
# Driver: validation, conversion, dispatch
# --------------------------------------------------------------------------
def _k_center_greedy(
    features: Any,
    n: Any,
    initial_centers: Any,
    *,
    device: Any,
    chunk_size: Any,
    torch_on_cpu: bool = False,
) -> np.ndarray:
    """Implementation of :func:`k_center_greedy`.

    ``torch_on_cpu=True`` runs the torch loop on the CPU instead of numpy; it
    exists only so the benchmark can time that alternative.
    """
    # --- cheap argument checks first: nothing is converted yet -------------
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an integer, got {type(n).__name__} ({n!r})")
    n = int(n)
    if chunk_size is None:
        chunk_size = _DEFAULT_CHUNK_SIZE
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral):
        raise TypeError(f"chunk_size must be an integer or None, got {type(chunk_size).__name__}")
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    cuda_device = _resolve_device(device, features)

    x = _as_array(features, "features")
    if x.ndim != 2:
        raise ValueError(
            f"features must be a 2-D array of shape (N, d); got {x.ndim}-D "
            f"array of shape {tuple(x.shape)}"
        )
    n_points, dim = (int(s) for s in x.shape)
    if n_points == 0:
        raise ValueError("features is empty (N=0): there is nothing to select")
    if n < 1:
        raise ValueError(f"n must be >= 1, got n={n}")
    if n > n_points:
        raise ValueError(f"n={n} exceeds the number of candidates N={n_points}")

    centres = None
    if initial_centers is not None:
        centres = _as_array(initial_centers, "initial_centers")
        if centres.ndim == 1 and centres.shape[0] == 0:
            centres = None  # e.g. [] : no initial centre
        elif centres.ndim != 2:
            raise ValueError(
                f"initial_centers must be a 2-D array of shape (M, d); got "
                f"{centres.ndim}-D array of shape {tuple(centres.shape)}"
            )
        elif int(centres.shape[1]) != dim:
            raise ValueError(
                f"initial_centers has {int(centres.shape[1])} columns but "
                f"features has d={dim} columns"
            )
        elif centres.shape[0] == 0:
            centres = None

    rows = _block_rows(chunk_size, dim, None if cuda_device is not None else _CPU_CACHE_ELEMENTS)
    _check_values(x, "features", rows)
    if centres is not None:
        _check_values(centres, "initial_centers", rows)

    # --- dispatch ------------------------------------------------------------
    if cuda_device is not None:
        _warn_if_tf32()
        x32 = _to_torch_f32(x, cuda_device)
        return _greedy_torch(x32, centres, n, chunk_size)
    if torch_on_cpu:
        x32 = _to_torch_f32(x, torch.device("cpu"))
        return _greedy_torch(x32, centres, n, chunk_size)
    return _greedy_numpy(_to_numpy_f32(x), centres, n, chunk_size)


def _resolve_device(device: Any, features: Any) -> torch.device | None:
    """Return the CUDA device to run on, or ``None`` for the numpy CPU path."""
    if device is None:
        if isinstance(features, torch.Tensor) and features.device.type == "cuda":
            return features.device
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"device={device!r} is not a valid device") from exc
    if dev.type == "cpu":
        return None
    if dev.type != "cuda":
        raise ValueError(
            f"device={device!r} is not supported: use 'cpu' or 'cuda' (got type {dev.type!r})"
        )
    if not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available "
            "(torch.cuda.is_available() is False)"
        )
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r} does not exist: only {torch.cuda.device_count()} "
            "CUDA device(s) are visible"
        )
    return dev


def _as_array(a: Any, name: str) -> np.ndarray | torch.Tensor:
    """Numpy array or detached tensor view of ``a`` (no dtype conversion)."""
    if isinstance(a, torch.Tensor):
        if a.is_complex():
            raise TypeError(f"{name} must be real-valued, got dtype {a.dtype}")
        return a.detach()
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real-valued numeric, got dtype {arr.dtype}")
    return arr


def _check_values(a: np.ndarray | torch.Tensor, name: str, rows: int) -> None:
    """Reject NaN/inf (and values beyond float32 range) block by block.

    Works on blocks of rows so that the temporary is bounded (a whole-array
    ``isfinite`` would be a second N x d array).  ``max(|a|)`` propagates NaN
    and is infinite for inf, so one reduction per block answers both questions.
    """
    if a.shape[0] == 0 or a.shape[1] == 0:
        return
    is_tensor = isinstance(a, torch.Tensor)
    if is_tensor:
        if not a.is_floating_point():
            return  # integers and booleans are always finite
    elif a.dtype.kind != "f":
        return
    for start in range(0, int(a.shape[0]), rows):
        block = a[start : start + rows]
        if is_tensor:
            peak = float(block.abs().amax())
        else:
            peak = float(np.max(np.abs(block)))
        if not np.isfinite(peak):
            raise ValueError(f"{name} contains NaN or infinite values")
        if peak > _F32_MAX:
            raise ValueError(
                f"{name} contains values too large for float32 (|value| up to "
                f"{peak:.3g} > {_F32_MAX:.3g})"
            )


def _to_numpy_f32(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Float32 numpy matrix usable by BLAS without per-call copies."""
    if isinstance(x, torch.Tensor):
        # Convert the dtype in torch (numpy has no bfloat16), then share memory.
        x = x.to(device="cpu", dtype=torch.float32).numpy()
    x = np.asarray(x, dtype=np.float32)  # no copy when already float32
    if not (x.flags.c_contiguous or x.flags.f_contiguous):
        # A strided view would be copied by matmul on every single step.
        x = np.ascontiguousarray(x)
    return x


def _to_torch_f32(x: np.ndarray | torch.Tensor, dev: torch.device) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        # Convert on the host so the device never holds a float64 copy.
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return x.to(device=dev, dtype=torch.float32).contiguous()


def _warn_if_tf32() -> None:
    """Warn when cuBLAS may use TF32 (10-bit mantissa) for our float32 products.

    The flag is global torch state; toggling it here would race with other
    threads and the legacy/new precision APIs refuse mixed settings, so we only
    warn.
    """
    try:
        matmul = torch.backends.cuda.matmul
        if hasattr(matmul, "fp32_precision"):
            enabled = matmul.fp32_precision == "tf32"
        else:  # older torch
            enabled = bool(matmul.allow_tf32)
    except Exception:  # noqa: BLE001 - a query of global flags must not fail the call
        return
    if enabled:
        warnings.warn(
            "TF32 matmuls are enabled in torch (torch.backends.cuda.matmul); "
            "k_center_greedy distances on CUDA are then only accurate to about "
            "1e-3 relative. Set torch.backends.cuda.matmul.fp32_precision = "
            "'ieee' for full float32 precision.",
            UserWarning,
            stacklevel=4,
        )


def _centre_rows_f64_numpy(centres: np.ndarray | torch.Tensor, start: int, stop: int) -> np.ndarray:
    """A fresh float64 copy of centre rows (safe to modify in place)."""
    block = centres[start:stop]
    if isinstance(block, torch.Tensor):
        return block.to(device="cpu", dtype=torch.float64, copy=True).numpy()
    return np.array(block, dtype=np.float64, copy=True)


def _overflow_error(name: str) -> ValueError:
    return ValueError(
        f"{name} values are too large in magnitude: squared distances would overflow float32"
    )


# --------------------------------------------------------------------------
# Shared numerics
# --------------------------------------------------------------------------
def _needs_block_centring(shift_sq_norm: float, mean_sq_spread: float) -> bool:
    """Whether the data lie too far from the origin for the direct product.

    The direct product ``x.v`` on the uncentred features has a rounding error
    of about ``eps32 * ||shift|| * ||v||``, i.e. relative to a squared
    distance about ``eps32 * r`` with ``r = ||shift|| / spread``.  Measured:
    up to 6e-5 relative error in the picked distance at r = 1000 (mean 1000,
    spread 1, d = 8), against none visible (picks equal to a float64
    reference) at r = 15.  Up to r = 16 the expected error is ~1e-6, far
    below a meaningful gap; beyond it each product is computed on centred
    row blocks instead (exact shift, ~3-4x slower per step on the CPU).
    """
    return shift_sq_norm > _MAX_OFFSET_RATIO**2 * mean_sq_spread


def _block_rows(chunk_size: int, dim: int, cache_elements: int | None) -> int:
    elements = chunk_size if cache_elements is None else min(chunk_size, cache_elements)
    return max(1, elements // max(dim, 1))


# --------------------------------------------------------------------------
# numpy backend (CPU)
# --------------------------------------------------------------------------
class _NumpyProduct:
    """``out = (x - shift) @ w`` for a vector ``w``.

    Without ``shift`` this is a single BLAS call on the features as given.
    With ``shift`` the rows are centred block by block into a small reusable
    buffer (sized for the CPU cache), so no N x d centred copy ever exists.
    """

    def __init__(self, x: np.ndarray, shift: np.ndarray | None, rows: int) -> None:
        self.x = x
        self.shift = shift
        self.tmp = (
            None
            if shift is None
            else np.empty((min(rows, x.shape[0]), x.shape[1]), dtype=np.float32)
        )

    def __call__(self, w: np.ndarray, out: np.ndarray) -> None:
        if self.shift is None:
            np.matmul(self.x, w, out=out)
            return
        n_points, rows = self.x.shape[0], self.tmp.shape[0]
        for start in range(0, n_points, rows):
            stop = min(n_points, start + rows)
            block = self.tmp[: stop - start]
            # x - s for nearby float32 values is exact (Sterbenz), and is
            # otherwise rounded relative to the small difference, not to |x|.
            np.subtract(self.x[start:stop], self.shift, out=block)
            np.matmul(block, w, out=out[start:stop])


def _greedy_numpy(
    x: np.ndarray, centres: np.ndarray | torch.Tensor | None, n: int, chunk_size: int
) -> np.ndarray:
    n_points, dim = x.shape
    rows = _block_rows(chunk_size, dim, _CPU_CACHE_ELEMENTS)

    # Shift = mean rounded to float32, so that x - shift is exact in float32
    # for nearby values; numpy's float64 mean casts in small internal
    # buffers, so no N x d copy is made.
    shift = np.mean(x, axis=0, dtype=np.float64).astype(np.float32)
    shift64 = shift.astype(np.float64)

    # ||x - shift||^2 accumulated in float64 over row blocks.
    sq_x64 = np.empty(n_points, dtype=np.float64)
    for start in range(0, n_points, rows):
        block = x[start : start + rows].astype(np.float64)
        block -= shift64
        np.einsum("ij,ij->i", block, block, out=sq_x64[start : start + rows])
    if float(sq_x64.max()) > _SQ_NORM_LIMIT:
        raise _overflow_error("features")
    centred = _needs_block_centring(float(shift64 @ shift64), float(sq_x64.mean()))
    sq_x = sq_x64.astype(np.float32)
    del sq_x64
    product = _NumpyProduct(
        x, shift if centred else None, _block_rows(chunk_size, dim, _CPU_CACHE_ELEMENTS)
    )
    # In direct mode x.v still contains shift.v, which the offset removes.
    shift_for_offset = None if centred else shift64

    min_d = np.full(n_points, np.inf, dtype=np.float32)
    if centres is not None:
        _init_min_dist_numpy(
            x, product.shift, shift64, shift_for_offset, sq_x, centres, min_d, chunk_size
        )

    picks = np.empty(n, dtype=np.int64)
    buf = np.empty(n_points, dtype=np.float32)
    for k in range(n):
        p = int(np.argmax(min_d))  # first index among exact ties
        picks[k] = p
        min_d[p] = -1.0  # distances are >= 0, so p can never win again
        if k == n - 1:
            break  # the last update would be wasted work
        c_shift = x[p].astype(np.float64) - shift64
        v = (-2.0 * c_shift).astype(np.float32)
        offset = float(c_shift @ c_shift)
        if shift_for_offset is not None:
            # Same rounded v in x.v and shift.v: their large parts cancel.
            offset -= float(shift_for_offset @ v.astype(np.float64))
        product(v, buf)  # -2 (x - shift).(c - shift), one sgemv
        buf += sq_x
        buf += np.float32(offset)
        np.maximum(buf, 0.0, out=buf)  # rounding can make d^2 slightly < 0
        np.minimum(min_d, buf, out=min_d)
    return picks


def _init_min_dist_numpy(
    x: np.ndarray,
    shift: np.ndarray | None,
    shift64: np.ndarray,
    shift_for_offset: np.ndarray | None,
    sq_x: np.ndarray,
    centres: np.ndarray | torch.Tensor,
    min_d: np.ndarray,
    chunk_size: int,
) -> None:
    """min_d <- min(min_d, squared distance to the nearest centre), by tiles.

    Centres are taken ``c`` at a time (a ``c x d`` block) and, for each such
    block, the rows in tiles of ``r`` rows, so every temporary (``c x d``
    weights, ``r x c`` distances, ``r x d`` centred rows) holds at most about
    ``chunk_size`` elements.  Each tile is one well-shaped sgemm.
    """
    n_points, dim = x.shape
    n_centres = int(centres.shape[0])
    per_chunk = max(1, min(n_centres, chunk_size // max(dim, 1)))
    tile_rows = max(1, min(n_points, chunk_size // max(per_chunk, dim, 1)))
    storage = np.empty(tile_rows * per_chunk, dtype=np.float32)
    tile_min = np.empty(tile_rows, dtype=np.float32)
    centred_rows = None if shift is None else np.empty((tile_rows, dim), dtype=np.float32)
    for c_start in range(0, n_centres, per_chunk):
        # In-place steps keep the centre temporaries at 1.5 blocks.
        c_shift = _centre_rows_f64_numpy(centres, c_start, c_start + per_chunk)
        c_shift -= shift64
        n_c = c_shift.shape[0]
        sq_c = np.einsum("ij,ij->i", c_shift, c_shift)
        if float(sq_c.max()) > _SQ_NORM_LIMIT:
            raise _overflow_error("initial_centers")
        w = np.empty(c_shift.shape, dtype=np.float32)
        np.multiply(c_shift, -2.0, out=w, casting="same_kind")
        offsets = sq_c
        if shift_for_offset is not None:
            c_shift[...] = w  # the rounded weights, in float64
            offsets -= c_shift @ shift_for_offset
        offsets = offsets.astype(np.float32)
        w_t = w.T  # (d, n_c)
        for r_start in range(0, n_points, tile_rows):
            r_stop = min(n_points, r_start + tile_rows)
            rows = x[r_start:r_stop]
            if centred_rows is not None:
                rows = np.subtract(rows, shift, out=centred_rows[: r_stop - r_start])
            dist = storage[: (r_stop - r_start) * n_c].reshape(r_stop - r_start, n_c)
            np.matmul(rows, w_t, out=dist)
            dist += offsets  # broadcast over rows
            # min_c(sq_x + offset_c + dot) = sq_x + min_c(offset_c + dot)
            t_min = np.min(dist, axis=1, out=tile_min[: r_stop - r_start])
            t_min += sq_x[r_start:r_stop]
            np.maximum(t_min, 0.0, out=t_min)
            np.minimum(min_d[r_start:r_stop], t_min, out=min_d[r_start:r_stop])


# --------------------------------------------------------------------------
# torch backend (CUDA; also CPU for the benchmark)
# --------------------------------------------------------------------------
class _TorchProduct:
    """Torch twin of :class:`_NumpyProduct`."""

    def __init__(self, x: torch.Tensor, shift: torch.Tensor | None, rows: int) -> None:
        self.x = x
        self.shift = shift
        self.tmp = None
        if shift is not None:
            self.tmp = torch.empty(
                (min(rows, x.shape[0]), x.shape[1]), dtype=torch.float32, device=x.device
            )

    def __call__(self, w: torch.Tensor, out: torch.Tensor) -> None:
        mm = torch.mv if w.dim() == 1 else torch.mm
        if self.shift is None:
            mm(self.x, w, out=out)
            return
        n_points, rows = self.x.shape[0], self.tmp.shape[0]
        for start in range(0, n_points, rows):
            stop = min(n_points, start + rows)
            block = self.tmp[: stop - start]
            torch.sub(self.x[start:stop], self.shift, out=block)
            mm(block, w, out=out[start:stop])


@torch.no_grad()
def _greedy_torch(
    x: torch.Tensor, centres: np.ndarray | torch.Tensor | None, n: int, chunk_size: int
) -> np.ndarray:
    dev = x.device
    n_points, dim = x.shape
    # A GPU has no small cache worth targeting; big blocks keep launches few.
    cache = _CPU_CACHE_ELEMENTS if dev.type == "cpu" else None
    rows = _block_rows(chunk_size, dim, cache)

    shift = x.mean(dim=0, dtype=torch.float64).to(torch.float32)
    shift64 = shift.to(torch.float64)
    sq_x64 = torch.empty(n_points, dtype=torch.float64, device=dev)
    for start in range(0, n_points, rows):
        block = x[start : start + rows].to(torch.float64) - shift64
        torch.sum(block * block, dim=1, out=sq_x64[start : start + rows])
    if float(sq_x64.max()) > _SQ_NORM_LIMIT:
        raise _overflow_error("features")
    centred = _needs_block_centring(float(shift64 @ shift64), float(sq_x64.mean()))
    sq_x = sq_x64.to(torch.float32)
    del sq_x64
    product = _TorchProduct(x, shift if centred else None, _block_rows(chunk_size, dim, cache))
    shift_for_offset = None if centred else shift64

    min_d = torch.full((n_points,), float("inf"), dtype=torch.float32, device=dev)
    if centres is not None:
        _init_min_dist_torch(
            x, product.shift, shift64, shift_for_offset, sq_x, centres, min_d, chunk_size
        )

    # The loop never synchronises with the host: the pick stays a device
    # tensor and indexes the features directly; indices are copied once at
    # the end.
    picks = torch.empty(n, dtype=torch.int64, device=dev)
    buf = torch.empty(n_points, dtype=torch.float32, device=dev)
    for k in range(n):
        p = torch.argmax(min_d)  # documented: first index among exact ties
        picks[k] = p
        p1 = p.reshape(1)
        min_d.index_fill_(0, p1, -1.0)
        if k == n - 1:
            break
        c_shift = x.index_select(0, p1)[0].to(torch.float64) - shift64
        v = (-2.0 * c_shift).to(torch.float32)
        offset = torch.dot(c_shift, c_shift)
        if shift_for_offset is not None:
            offset = offset - torch.dot(shift_for_offset, v.to(torch.float64))
        product(v, buf)
        buf.add_(sq_x)
        buf.add_(offset.to(torch.float32))
        buf.clamp_(min=0.0)
        torch.minimum(min_d, buf, out=min_d)
    return picks.cpu().numpy()


def _init_min_dist_torch(
    x: torch.Tensor,
    shift: torch.Tensor | None,
    shift64: torch.Tensor,
    shift_for_offset: torch.Tensor | None,
    sq_x: torch.Tensor,
    centres: np.ndarray | torch.Tensor,
    min_d: torch.Tensor,
    chunk_size: int,
) -> None:
    """Torch twin of :func:`_init_min_dist_numpy`."""
    dev = x.device
    n_points, dim = x.shape
    n_centres = int(centres.shape[0])
    per_chunk = max(1, min(n_centres, chunk_size // max(dim, 1)))
    tile_rows = max(1, min(n_points, chunk_size // max(per_chunk, dim, 1)))
    storage = torch.empty(tile_rows * per_chunk, dtype=torch.float32, device=dev)
    tile_min = torch.empty(tile_rows, dtype=torch.float32, device=dev)
    centred_rows = None
    if shift is not None:
        centred_rows = torch.empty((tile_rows, dim), dtype=torch.float32, device=dev)
    for c_start in range(0, n_centres, per_chunk):
        block = centres[c_start : c_start + per_chunk]
        if isinstance(block, np.ndarray):
            block = torch.from_numpy(np.asarray(block, dtype=np.float64))
        c_shift = block.to(device=dev, dtype=torch.float64) - shift64  # a new tensor
        n_c = c_shift.shape[0]
        sq_c = torch.sum(c_shift * c_shift, dim=1)
        if float(sq_c.max()) > _SQ_NORM_LIMIT:
            raise _overflow_error("initial_centers")
        w = c_shift.mul_(-2.0).to(torch.float32)
        offsets = sq_c
        if shift_for_offset is not None:
            c_shift.copy_(w)  # the rounded weights, in float64
            offsets = offsets - c_shift @ shift_for_offset
        offsets = offsets.to(torch.float32)
        w_t = w.t()
        for r_start in range(0, n_points, tile_rows):
            r_stop = min(n_points, r_start + tile_rows)
            rows = x[r_start:r_stop]
            if centred_rows is not None:
                rows = torch.sub(rows, shift, out=centred_rows[: r_stop - r_start])
            dist = storage[: (r_stop - r_start) * n_c].view(r_stop - r_start, n_c)
            torch.mm(rows, w_t, out=dist)
            dist.add_(offsets)
            t_min = torch.amin(dist, dim=1, out=tile_min[: r_stop - r_start])
            t_min.add_(sq_x[r_start:r_stop]).clamp_(min=0.0)
            torch.minimum(min_d[r_start:r_stop], t_min, out=min_d[r_start:r_stop])
