"""Exact greedy k-center (core-set) selection with bounded memory.

MoBYv2AL selects the samples to annotate with the greedy k-center heuristic
(Sener & Savarese, 2018) on self-supervised embeddings:

    p_k = argmax_i min_{c in centres} ||x_i - c||_2

The usual implementation (Google's ``kCenterGreedy``) builds the dense
``N x |labelled|`` float64 distance matrix and calls ``pairwise_distances``
again for every pick. Here the distances to the initial centres are computed
in tiles, and every pick costs one float32 matrix-vector product, with the
squared-norm expansion taken around the mean of the features and the norms
accumulated in float64.

Backends: numpy (OpenBLAS ``sgemv``) on the CPU, torch on CUDA. On the 2-core
development machine ``benchmarks/kcenter_speed.py`` measured the numpy loop
at 0.9 s for 1,000 picks from 11,000 x 512 against 4.0 s for the same loop in
torch on the CPU (``torch.mv`` is several times slower there), hence numpy.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
import torch

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
        If ``features`` is not 2-D or is empty, ``n`` is out of range,
        ``initial_centers`` has the wrong shape, an input holds NaN, infinite
        or float32-overflowing values, ``chunk_size < 1``, or ``device`` is
        not an available CPU/CUDA device.

    Warns
    -----
    UserWarning
        On CUDA when TF32 matmuls are enabled globally in torch.

    Notes
    -----
    ``min_dist[i]`` is the squared distance from point ``i`` to its nearest
    centre (``+inf`` with none). Each step picks ``p = argmax(min_dist)``,
    marks it ``-1`` (so duplicates are never returned twice) and updates
    ``min_dist = minimum(min_dist, ||x - x_p||^2)``. ``argmax`` takes the
    lowest index among exact ties: without initial centres the first pick is
    index 0. With ``s`` the float32 mean of the features,
    ``||x - c||^2 = ||x - s||^2 + ||c - s||^2 - 2 x.(c - s) + 2 s.(c - s)``:
    the norms are summed once in float64, only ``d``-vectors are shifted, and
    no ``N x d`` copy nor ``N x M`` matrix is made. The rounding error is about
    ``6e-8 * ||s|| / spread`` relative, negligible for embeddings whose mean
    is within a few spreads of the origin. Negative rounded squared distances
    are clamped to 0.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [1.0], [5.0], [7.0], [10.0]])
    >>> k_center_greedy(x, 5, initial_centers=[[0.0]]).tolist()
    [4, 2, 3, 1, 0]
    """
    return _k_center_greedy(features, n, initial_centers, device=device, chunk_size=chunk_size)


def _k_center_greedy(
    features: Any, n: Any, initial_centers: Any, *, device: Any, chunk_size: Any,
    torch_on_cpu: bool = False,
) -> np.ndarray:
    """:func:`k_center_greedy`; ``torch_on_cpu`` times the torch loop on the CPU."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an integer, got {type(n).__name__} ({n!r})")
    n = int(n)
    if chunk_size is None:
        chunk_size = _DEFAULT_CHUNK_SIZE
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral):
        raise TypeError(f"chunk_size must be an integer or None, got {type(chunk_size).__name__}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    cuda_device = _resolve_device(device, features)
    x = _as_array(features, "features")
    if x.ndim != 2:
        raise ValueError(
            f"features must be a 2-D array of shape (N, d); got {x.ndim}-D "
            f"array of shape {tuple(x.shape)}"
        )
    n_points, dim = (int(v) for v in x.shape)
    if n_points == 0:
        raise ValueError("features is empty (N=0): there is nothing to select")
    if n < 1:
        raise ValueError(f"n must be >= 1, got n={n}")
    if n > n_points:
        raise ValueError(f"n={n} exceeds the number of candidates N={n_points}")
    centres = None if initial_centers is None else _as_array(initial_centers, "initial_centers")
    if centres is not None and centres.ndim == 1 and centres.shape[0] == 0:
        centres = None  # e.g. []: no initial centre
    if centres is not None:
        if centres.ndim != 2:
            raise ValueError(
                f"initial_centers must be a 2-D array of shape (M, d); got "
                f"{centres.ndim}-D array of shape {tuple(centres.shape)}"
            )
        if int(centres.shape[1]) != dim:
            raise ValueError(
                f"initial_centers has {int(centres.shape[1])} columns but features has d={dim} "
                "columns"
            )
        centres = centres if centres.shape[0] else None
    for name, a in (("features", x), ("initial_centers", centres)):
        floating = a is not None and (
            a.is_floating_point() if isinstance(a, torch.Tensor) else a.dtype.kind == "f"
        )
        if floating and a.shape[0] and a.shape[1]:  # integers are finite and in range
            # max and min need no temporary array, and NaN propagates through both
            hi, lo = float(a.max()), float(a.min())
            if not (np.isfinite(hi) and np.isfinite(lo)):
                raise ValueError(f"{name} contains NaN or infinite values")
            if max(hi, -lo) > _F32_MAX:
                raise ValueError(
                    f"{name} contains values too large for float32 (|value| up to "
                    f"{max(hi, -lo):.3g})"
                )
    if cuda_device is not None or torch_on_cpu:
        if cuda_device is not None:
            _warn_if_tf32()
        dev = cuda_device or torch.device("cpu")
        if isinstance(x, np.ndarray):
            # convert on the host, so the device never holds a float64 copy
            x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        x32 = x.to(device=dev, dtype=torch.float32).contiguous()
        return _greedy(_TorchOps(dev), x32, centres, n, chunk_size)
    if isinstance(x, torch.Tensor):
        x = x.to(device="cpu", dtype=torch.float32).numpy()  # numpy has no bfloat16
    x32 = np.asarray(x, dtype=np.float32)
    if not (x32.flags.c_contiguous or x32.flags.f_contiguous):
        x32 = np.ascontiguousarray(x32)  # else matmul copies a strided view at every pick
    return _greedy(_NumpyOps(), x32, centres, n, chunk_size)


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


def _as_array(a: Any, name: str) -> np.ndarray | torch.Tensor:
    """Numpy array or detached tensor of ``a``, dtype unchanged."""
    if isinstance(a, torch.Tensor):
        if a.is_complex():
            raise TypeError(f"{name} must be real-valued, got dtype {a.dtype}")
        return a.detach()
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real-valued numeric, got dtype {arr.dtype}")
    return arr


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


class _NumpyOps:
    """The few array operations of the greedy loop, on the CPU with numpy."""

    def f64(self, a: Any) -> np.ndarray:
        if isinstance(a, torch.Tensor):
            a = a.to(device="cpu", dtype=torch.float64).numpy()
        return np.array(a, dtype=np.float64)  # a fresh copy, safe to modify

    def f32(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a, dtype=np.float32)

    def full(self, n: int, value: float) -> np.ndarray:
        return np.full(n, value, dtype=np.float32)

    def argmax(self, a: np.ndarray) -> int:
        return int(np.argmax(a))  # the first index among exact ties

    def row_min(self, a: np.ndarray) -> np.ndarray:
        return a.min(axis=1)

    def matvec(self, x: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
        np.matmul(x, v, out=out)  # in place: one sgemv, no new N-vector

    def minimum(self, a: np.ndarray, b: np.ndarray) -> None:
        np.minimum(a, b, out=a)

    def clamp(self, a: np.ndarray) -> None:
        np.maximum(a, 0.0, out=a)  # rounding can make d^2 slightly negative

    def picks(self, picks: list) -> np.ndarray:
        return np.asarray(picks, dtype=np.int64)


class _TorchOps(_NumpyOps):
    """The same operations with torch on ``device``."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def f64(self, a: Any) -> torch.Tensor:
        return torch.as_tensor(a).to(device=self.device, dtype=torch.float64, copy=True)

    def f32(self, a: torch.Tensor) -> torch.Tensor:
        return a.to(torch.float32)

    def full(self, n: int, value: float) -> torch.Tensor:
        return torch.full((n,), value, dtype=torch.float32, device=self.device)

    def argmax(self, a: torch.Tensor) -> torch.Tensor:
        # the pick stays on the device: the loop never waits for the host
        return torch.argmax(a).reshape(1)

    def row_min(self, a: torch.Tensor) -> torch.Tensor:
        return a.amin(dim=1)

    def matvec(self, x: torch.Tensor, v: torch.Tensor, out: torch.Tensor) -> None:
        torch.mv(x, v, out=out)

    def minimum(self, a: torch.Tensor, b: torch.Tensor) -> None:
        torch.minimum(a, b, out=a)

    def clamp(self, a: torch.Tensor) -> None:
        a.clamp_(min=0.0)

    def picks(self, picks: list) -> np.ndarray:
        return torch.cat(picks).cpu().numpy().astype(np.int64)


@torch.no_grad()
def _greedy(ops: _NumpyOps, x: Any, centres: Any, n: int, chunk_size: int) -> np.ndarray:
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
        p = ops.argmax(min_d)
        picks.append(p)
        min_d[p] = -1.0  # distances are >= 0: p never wins again
        if k == n - 1:
            break  # the last update would be wasted work
        w, offset = weights(x[p])
        ops.matvec(x, w.reshape(-1), buf)
        buf += sq_x
        buf += offset.reshape(-1)
        ops.clamp(buf)
        ops.minimum(min_d, buf)
    return ops.picks(picks)


def _overflow_error(name: str) -> ValueError:
    return ValueError(
        f"{name} values are too large in magnitude: squared distances would overflow float32"
    )
