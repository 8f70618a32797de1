"""How a fit uses the machine: the numeric precision of its arithmetic and its CPU threads.

Two settings of every estimator, resolved here so that the estimators, the
feature pass and the command agree:

* ``precision``: ``"fp32"``, ``"bf16"`` (bfloat16 autocast: the weights,
  the optimiser and the losses stay float32, convolutions and matrix
  products run in bfloat16) or ``"auto"``: bfloat16 where the hardware has
  it natively (CPUs with AVX512_BF16 or AMX, CUDA GPUs that report bf16
  support), float32 elsewhere. On this project's 2-core AMD EPYC VMs
  bfloat16 trains the small CNN about 1.35-1.4 times faster at the same
  accuracy (``benchmarks/learner.py``; docs/results.md, "Speed").
* ``n_threads``: torch's intra-op threads during a fit or an inference
  pass. None keeps torch's own count, which is the machine's cores unless
  ``OMP_NUM_THREADS`` (the user's choice) says otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .exceptions import MoBYALError

if TYPE_CHECKING:
    import torch

# torch and scikit-learn are imported by the functions that use them: the
# command's parser reads PRECISIONS and DEFAULT_PRECISION without loading either

__all__ = [
    "DEFAULT_PRECISION",
    "PRECISIONS",
    "autocast",
    "available_cores",
    "bf16_supported",
    "check_n_threads",
    "resolve_precision",
    "thread_report",
    "torch_threads",
]

#: Valid values of ``precision``.
PRECISIONS = ("auto", "bf16", "fp32")
#: The estimators' default.
DEFAULT_PRECISION = "auto"


def bf16_supported(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` runs bfloat16 arithmetic natively (not emulated).

    CPU: the AVX512_BF16 or AMX instructions (x86; torch's own checks).
    CUDA: ``torch.cuda.is_bf16_supported()`` (Ampere and later). Anything
    else: False.
    """
    import torch

    kind = torch.device(device).type
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)
    return False


@functools.cache
def _warn_no_bf16(kind: str) -> None:
    # once per device kind and process: a labelling loop refits every round
    warnings.warn(
        f'precision="bf16" was asked for, but this {kind} has no native bfloat16 '
        "arithmetic (emulated, it would be slower than float32); training in float32 "
        'instead. Use precision="auto" to choose silently, or "fp32".',
        RuntimeWarning,
        stacklevel=4,
    )


def resolve_precision(precision: Any, device: str | torch.device = "cpu") -> str:
    """The precision a fit on ``device`` runs in: ``"bf16"`` or ``"fp32"``.

    ``"bf16"`` on hardware without native bfloat16 warns once and gives
    ``"fp32"``: a model fitted elsewhere in bfloat16 keeps working (and
    nothing a person labelled is lost) on a machine without it.

    Raises
    ------
    MoBYALError
        (a ``ValueError``) ``precision`` is none of :data:`PRECISIONS`.

    >>> resolve_precision("fp32")
    'fp32'
    """
    import torch

    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise MoBYALError(
            f"unknown precision {precision!r}; valid values: {', '.join(map(repr, PRECISIONS))}."
        )
    if precision == "fp32":
        return "fp32"
    if bf16_supported(device):
        return "bf16"
    if precision == "bf16":
        _warn_no_bf16(torch.device(device).type)
    return "fp32"


def autocast(
    precision: str, device: str | torch.device = "cpu"
) -> contextlib.AbstractContextManager:
    """bfloat16 autocast for a resolved ``precision`` of ``"bf16"``, else nothing.

    Backward passes belong outside (PyTorch's advice): open it around the
    forward pass and the loss only.
    """
    import torch

    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def check_n_threads(n_threads: Any) -> int | None:
    """``n_threads`` checked: None or a positive int.

    Raises
    ------
    MoBYALError
        (a ``ValueError``) zero, negative or not an integer, naming it.
    """
    from ._validation import check_integer

    if n_threads is None:
        return None
    try:
        return check_integer(n_threads, "n_threads", minimum=1)
    except (TypeError, ValueError):
        raise MoBYALError(
            f"n_threads must be a positive integer or None, got {n_threads!r}."
        ) from None


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[int]:
    """Run the block on ``n_threads`` torch threads (None: torch's count), then restore.

    Yields the number of threads the block runs on.
    """
    import torch

    n_threads = check_n_threads(n_threads)
    before = torch.get_num_threads()
    if n_threads is None or n_threads == before:
        yield before
        return
    torch.set_num_threads(n_threads)
    try:
        yield n_threads
    finally:
        torch.set_num_threads(before)


def thread_report(n_threads: int | None = None) -> str:
    """One line for a log: threads a fit will use, of how many cores, and why if fewer.

    >>> "thread" in thread_report(1)
    True
    """
    import torch

    threads = check_n_threads(n_threads) or torch.get_num_threads()
    cores = available_cores()
    line = f"training on {threads} torch thread{'s' if threads != 1 else ''} of {cores} cores"
    if threads < cores:
        if n_threads is not None:
            line += " (asked for)"
        elif os.environ.get("OMP_NUM_THREADS"):
            line += f" (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; --threads overrides it)"
    return line
