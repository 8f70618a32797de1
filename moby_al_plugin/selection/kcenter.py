"""Exact greedy k-center (core-set) selection with bounded memory.

MoBYv2AL picks the samples to annotate with the greedy k-center heuristic
(Sener & Savarese, 2018), ``p_k = argmax_i min_c ||x_i - c||``, on its
embeddings. Google's ``kCenterGreedy``, which the authors call, builds the
dense ``N x |labelled|`` float64 distance matrix; here the distances to the
initial centres come in tiles, and every pick costs one float32
matrix-vector product.

Backends: numpy (OpenBLAS ``sgemv``) on the CPU, torch on CUDA: on the CPU
``torch.mv`` is several times slower than numpy's matrix-vector product
(``benchmarks/kcenter_speed.py``; figures in docs/results.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._validation import check_integer

__all__ = ["k_center_greedy"]

# Elements of the largest temporary block (a tile of distances to the initial
# centres, a block of rows while summing norms): 2**22 float32 = 16 MiB.
_DEFAULT_CHUNK_SIZE = 1 << 22
_F32_MAX = float(np.finfo(np.float32).max)
# A squared distance is at most 2 * (||x - s||^2 + ||c - s||^2); keeping every
# centred squared norm below this bound keeps float32 from overflowing.
_SQ_NORM_LIMIT = _F32_MAX / 8.0


def k_center_greedy(
    features: Any,
    n: int,
    initial_centers: Any = None,
    *,
    device: str | torch.device | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Select ``n`` points by exact greedy k-center (farthest-first traversal).

    Starting from the distance of every candidate to its nearest initial
    centre, repeatedly pick the candidate farthest from all centres so far
    and make it a centre.

    Parameters
    ----------
    features : array_like or torch.Tensor, shape (N, d)
        Candidate points (e.g. embeddings of the unlabelled pool); any real
        dtype, computed in float32. A float32 numpy array or CPU tensor is
        used without a copy.
    n : int
        Number of points to select, ``1 <= n <= N``.
    initial_centers : array_like or torch.Tensor, shape (M, d), optional
        Already chosen centres (e.g. the labelled set); never returned.
        ``None``, a ``(0, d)`` array or an empty 1-D array: no initial centre.
    device : str or torch.device, optional
        ``"cpu"`` (numpy) or ``"cuda"``/``"cuda:k"`` (torch on that GPU).
        Default: the device of ``features`` if it is a CUDA tensor, else CPU.
    chunk_size : int, optional
        Upper bound, in elements, of the temporary blocks (default ``2**22``);
        at least one row is processed at a time.

    Returns
    -------
    numpy.ndarray of int64, shape (n,)
        Distinct row indices into ``features``, in pick order.

    Raises
    ------
    TypeError
        If ``n`` or ``chunk_size`` is not an integer, or an input is not real.
    ValueError
        Wrong shapes, ``n`` out of range, NaN, infinite or float32-overflowing
        values, ``chunk_size < 1``, or a device that is not an available CPU
        or CUDA device.

    Warns
    -----
    UserWarning
        On CUDA when TF32 matmuls are enabled globally in torch.

    Notes
    -----
    Each step picks ``p = argmax(min_dist)`` (the lowest index among exact
    ties, so index 0 first when there is no initial centre), marks it ``-1``
    so that duplicates are never returned twice, and updates ``min_dist``
    with ``||x - x_p||^2``. With ``s`` the float32 mean of the features,
    ``||x - c||^2 = ||x - s||^2 + ||c - s||^2 - 2 (x - s).(c - s)``; the norms
    are summed once in float64 and only ``d``-vectors are shifted, so neither
    an ``N x d`` copy nor an ``N x M`` matrix is made. The relative rounding
    error is about ``6e-8 * ||s|| / spread``: negligible for embeddings whose
    mean lies within a few spreads of the origin.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [1.0], [5.0], [7.0], [10.0]])
    >>> k_center_greedy(x, 5, initial_centers=[[0.0]]).tolist()
    [4, 2, 3, 1, 0]
    """
    return _k_center_greedy(features, n, initial_centers, device=device, chunk_size=chunk_size)


def _k_center_greedy(
    features: Any,
    n: Any,
    initial_centers: Any,
    *,
    device: Any,
    chunk_size: Any,
    torch_on_cpu: bool = False,
) -> np.ndarray:
    """:func:`k_center_greedy`; ``torch_on_cpu`` times the torch loop on the CPU."""
    n = check_integer(n, "n", minimum=None)
    if chunk_size is None:
        chunk_size = _DEFAULT_CHUNK_SIZE
    chunk_size = check_integer(chunk_size, "chunk_size")
    cuda_device = _resolve_device(device, features)
    x = _matrix(features, "features")
    n_points, dim = (int(v) for v in x.shape)
    if n_points == 0:
        raise ValueError("features is empty (N=0): there is nothing to select")
    if not 1 <= n:
        raise ValueError(f"n must be >= 1, got n={n}")
    if n > n_points:
        raise ValueError(f"n={n} exceeds the number of candidates N={n_points}")
    centres = initial_centers
    if centres is not None and not isinstance(centres, torch.Tensor):
        centres = np.asarray(centres)
    if centres is not None and not (centres.ndim == 1 and centres.shape[0] == 0):  # [] is none
        centres = _matrix(centres, "initial_centers", dim)
    centres = centres if centres is not None and centres.shape[0] else None
    if isinstance(x, np.ndarray) or cuda_device is None:
        # float32 on the host first: a device never holds a float64 copy, and
        # numpy has no bfloat16
        x = x.to("cpu", torch.float32).numpy() if isinstance(x, torch.Tensor) else x
        x = np.asarray(x, dtype=np.float32)
        if not (x.flags.c_contiguous or x.flags.f_contiguous):
            x = np.ascontiguousarray(x)  # else matmul copies a strided view at every pick
    if cuda_device is None and not torch_on_cpu:
        return _greedy(_NUMPY, x, centres, n, chunk_size)
    if cuda_device is not None:
        _warn_if_tf32()
    dev = cuda_device or torch.device("cpu")
    x = torch.as_tensor(x).to(device=dev, dtype=torch.float32).contiguous()
    return _greedy(_torch_backend(dev), x, centres, n, chunk_size)


def _matrix(a: Any, name: str, dim: int | None = None) -> np.ndarray | torch.Tensor:
    """A real 2-D numpy array or detached tensor, dtype unchanged, finite and float32-sized."""
    if isinstance(a, torch.Tensor):
        if a.is_complex():
            raise TypeError(f"{name} must be real-valued, got dtype {a.dtype}")
        a = a.detach()
    else:
        a = np.asarray(a)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be real-valued numeric, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape {'(N, d)' if dim is None else '(M, d)'}; "
            f"got {a.ndim}-D array of shape {tuple(a.shape)}"
        )
    if dim is not None and int(a.shape[1]) != dim:
        raise ValueError(f"{name} has {int(a.shape[1])} columns but features has d={dim} columns")
    floating = a.is_floating_point() if isinstance(a, torch.Tensor) else a.dtype.kind == "f"
    if floating and a.shape[0] and a.shape[1]:  # integers are finite and in range
        # max and min need no temporary array, and NaN propagates through both
        hi, lo = float(a.max()), float(a.min())
        if not (np.isfinite(hi) and np.isfinite(lo)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if max(hi, -lo) > _F32_MAX:
            raise ValueError(
                f"{name} contains values too large for float32 (|value| up to {max(hi, -lo):.3g})"
            )
    return a


def _resolve_device(device: Any, features: Any) -> torch.device | None:
    """The CUDA device to run on, or ``None`` for the numpy CPU path."""
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
        raise ValueError(f"device={device!r} is not supported: use 'cpu' or 'cuda'")
    if not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r} does not exist: {torch.cuda.device_count()} CUDA device(s)"
        )
    return dev


def _warn_if_tf32() -> None:
    """Warn when cuBLAS may use TF32 (10-bit mantissa) for the float32 products.

    The flag is global torch state that other threads may rely on: warn, do
    not toggle it.
    """
    matmul = torch.backends.cuda.matmul
    precision = getattr(matmul, "fp32_precision", None)
    enabled = precision == "tf32" if precision is not None else getattr(matmul, "allow_tf32", 0)
    if enabled:
        warnings.warn(
            "TF32 matmuls are enabled in torch (torch.backends.cuda.matmul); k_center_greedy "
            "distances on CUDA are then only accurate to about 1e-3 relative. Set "
            "torch.backends.cuda.matmul.fp32_precision = 'ieee' for full float32 precision.",
            UserWarning,
            stacklevel=4,
        )


@dataclass(frozen=True)
class _Backend:
    """The operations of the greedy loop that numpy and torch spell differently."""

    f64: Callable[[Any], Any]  # a fresh float64 copy, safe to modify in place
    f32: Callable[[Any], Any]
    full: Callable[[int, float], Any]  # a float32 vector
    row_min: Callable[[Any], Any]
    matvec: Callable[[Any, Any, Any], Any]  # into its third argument: no new N-vector
    minimum: Callable[[Any, Any], Any]  # in place, into the first
    clamp: Callable[[Any], Any]  # in place: rounding can make d^2 slightly negative
    concat: Callable[[list], np.ndarray]


def _numpy_f64(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.to(device="cpu", dtype=torch.float64).numpy()
    return np.array(a, dtype=np.float64)


_NUMPY = _Backend(
    f64=_numpy_f64,
    f32=lambda a: np.asarray(a, dtype=np.float32),
    full=lambda n, value: np.full(n, value, dtype=np.float32),
    row_min=lambda a: a.min(axis=1),
    matvec=lambda x, v, out: np.matmul(x, v, out=out),
    minimum=lambda a, b: np.minimum(a, b, out=a),
    clamp=lambda a: np.maximum(a, 0.0, out=a),
    concat=lambda picks: np.concatenate(picks).astype(np.int64),
)


def _torch_backend(device: torch.device) -> _Backend:
    return _Backend(
        f64=lambda a: torch.as_tensor(a).to(device=device, dtype=torch.float64, copy=True),
        f32=lambda a: a.to(torch.float32),
        full=lambda n, value: torch.full((n,), value, dtype=torch.float32, device=device),
        row_min=lambda a: a.amin(dim=1),
        matvec=lambda x, v, out: torch.mv(x, v, out=out),
        minimum=lambda a, b: torch.minimum(a, b, out=a),
        clamp=lambda a: a.clamp_(min=0.0),
        concat=lambda picks: torch.cat(picks).cpu().numpy().astype(np.int64),
    )


@torch.no_grad()
def _greedy(ops: _Backend, x: Any, centres: Any, n: int, chunk_size: int) -> np.ndarray:
    n_points, dim = x.shape
    # float64 blocks of rows take as many bytes as chunk_size float32 elements
    rows = max(1, chunk_size // max(2 * dim, 1))
    # s: the float32-rounded mean, in float64, summed one block of rows at a time
    total = sum(ops.f64(x[i : i + rows]).sum(0) for i in range(0, n_points, rows))
    shift = ops.f64(ops.f32(total / n_points))
    sq_x = ops.full(n_points, 0.0)
    for i in range(0, n_points, rows):
        block = ops.f64(x[i : i + rows])
        block -= shift
        block *= block
        norms = block.sum(1)
        if float(norms.max()) > _SQ_NORM_LIMIT:
            raise _overflow_error("features")
        sq_x[i : i + rows] = ops.f32(norms)

    def weights(c: Any, check: str | None = None) -> tuple[Any, Any]:
        """-2 (c - s) in float32 and the offsets ||c - s||^2 + 2 s.(c - s) of centres c."""
        c = ops.f64(c) - shift
        sq_c = (c * c).sum(-1)
        if check and float(sq_c.max()) > _SQ_NORM_LIMIT:
            raise _overflow_error(check)
        w = ops.f32(-2.0 * c)
        # the same rounded w in x.w and s.w: their large parts cancel
        return w, ops.f32(sq_c - ops.f64(w) @ shift)

    min_d = ops.full(n_points, float("inf"))
    if centres is not None:
        # tiles of rows x centres, each at most about chunk_size elements
        per_block = max(1, min(int(centres.shape[0]), chunk_size // max(dim, 1)))
        tile = max(1, chunk_size // max(per_block, dim, 1))
        for c0 in range(0, int(centres.shape[0]), per_block):
            w, offsets = weights(centres[c0 : c0 + per_block], check="initial_centers")
            for r0 in range(0, n_points, tile):
                nearest = ops.row_min(x[r0 : r0 + tile] @ w.T + offsets) + sq_x[r0 : r0 + tile]
                ops.clamp(nearest)
                ops.minimum(min_d[r0 : r0 + tile], nearest)
    picks = []
    buf = ops.full(n_points, 0.0)
    for k in range(n):
        # the first index among exact ties; a 1-element index keeps a CUDA pick on
        # the device, so the loop never waits for the host
        p = min_d.argmax().reshape(1)
        picks.append(p)
        min_d[p] = -1.0  # distances are >= 0: p never wins again
        if k == n - 1:
            break  # the last update would be wasted work
        w, offset = weights(x[p][0])
        ops.matvec(x, w, buf)
        buf += sq_x
        buf += offset
        ops.clamp(buf)
        ops.minimum(min_d, buf)
    return ops.concat(picks)


def _overflow_error(name: str) -> ValueError:
    return ValueError(
        f"{name} values are too large in magnitude: squared distances would overflow float32"
    )
