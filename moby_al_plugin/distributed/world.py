"""The process world of a ``torchrun`` launch, and the collectives built on it.

:func:`current_world` reads rank, world size and local rank;
:func:`init_from_env` starts the process group from ``torchrun``'s
environment (gloo on CPU, nccl on CUDA); :func:`shutdown` ends it. The
helpers below broadcast and gather picklable values and tensors of unequal
parts between the ranks, split rows into near-equal parts and give each
rank a seed of its own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ..exceptions import MoBYALError

__all__ = [
    "TORCHRUN_VARIABLES",
    "World",
    "all_gather_parts",
    "all_gather_values",
    "barrier",
    "broadcast_value",
    "current_world",
    "init_from_env",
    "part_sizes",
    "rank_seed",
    "shutdown",
]

#: The environment variables ``torchrun`` sets for every worker.
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


# ---------------------------------------------------------------- the world
@dataclass(frozen=True)
class World:
    """Where this process stands among the processes of one run.

    Attributes
    ----------
    rank : int
        This process's rank, 0 to ``world_size - 1``.
    world_size : int
        Number of processes.
    local_rank : int
        Rank on this machine (the CUDA device of the process).
    initialized : bool
        Whether a ``torch.distributed`` process group is initialised.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized: bool = False

    @property
    def active(self) -> bool:
        """Whether training and features are shared between processes (a group of two or more)."""
        return self.initialized and self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that writes files and prints."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    # lenient: a stray non-number is torch's to refuse when it initialises a group
    try:
        return int(os.environ.get(name, ""))
    except ValueError:
        return default


def current_world() -> World:
    """The world of this process: from the process group, else from the environment.

    With an initialised process group, rank and world size are the group's
    (the local rank comes from ``LOCAL_RANK``, as ``torchrun`` sets it, and
    is the rank when that is unset). Without one, they are read from
    ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (0, 1 and 0 when unset) and
    ``initialized`` is False: nothing is shared until :func:`init_from_env`.
    """
    if dist.is_available() and dist.is_initialized():
        rank = dist.get_rank()
        return World(rank, dist.get_world_size(), _env_int("LOCAL_RANK", rank), True)
    return World(_env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0), False)


def init_from_env(device: str = "cpu") -> World:
    """Initialise the process group from ``torchrun``'s environment, if it launched us.

    Without ``RANK`` and ``WORLD_SIZE`` in the environment (a plain single
    process) nothing is initialised. An already initialised group is kept.

    Parameters
    ----------
    device : str
        The training device: ``"cuda"`` (or ``"cuda:..."``) uses the nccl
        backend and makes ``cuda:LOCAL_RANK`` the current device, anything
        else gloo.

    Returns
    -------
    World

    Raises
    ------
    MoBYALError
        ``torchrun``'s variables are incomplete, or CUDA is asked for and
        this process has no GPU of its local rank.
    """
    if dist.is_available() and dist.is_initialized():
        return current_world()
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return current_world()
    missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise MoBYALError(
            f"RANK and WORLD_SIZE are set but {', '.join(missing)} are not: launch the "
            "processes with torchrun (for example torchrun --nproc-per-node 2 -m "
            "moby_al_plugin pretrain ...)."
        )
    if not dist.is_available():
        raise MoBYALError("this build of torch has no torch.distributed.")
    local_rank = _env_int("LOCAL_RANK", 0)
    if str(device).startswith("cuda"):
        if not torch.cuda.is_available() or local_rank >= torch.cuda.device_count():
            raise MoBYALError(
                f"local rank {local_rank} needs CUDA device {local_rank}, but this machine has "
                f"{torch.cuda.device_count() if torch.cuda.is_available() else 0}; start at most "
                "one process per GPU, or train with --device cpu."
            )
        # the nccl collectives and device="cuda" then mean this process's GPU
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend, init_method="env://")
    return current_world()


def shutdown() -> None:
    """End the process group, if one is initialised."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# -------------------------------------------------------------- collectives
def _collective_device() -> torch.device:
    # nccl moves CUDA tensors only; gloo CPU tensors
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_gather_values(value: Any) -> list[Any]:
    """Every rank's ``value`` (any picklable object), in rank order, on every rank."""
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def broadcast_value(value: Any) -> Any:
    """Rank 0's ``value`` (any picklable object) on every rank."""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait until every rank arrives here (nothing when no group is initialised)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def part_sizes(total: int, parts: int) -> list[int]:
    """Sizes of ``total`` rows split into ``parts`` near-equal parts, larger parts first.

    >>> part_sizes(5, 2), part_sizes(1, 3)
    ([3, 2], [1, 0, 0])
    """
    base, extra = divmod(int(total), int(parts))
    return [base + 1] * extra + [base] * (parts - extra)


def all_gather_parts(tensor: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along dim 0, in rank order, on every rank.

    gloo gathers tensors of one shape only, so each part is padded to the
    largest and cut back after the gather.

    Parameters
    ----------
    tensor : Tensor of shape (sizes[rank], ...)
        This rank's part.
    sizes : sequence of int
        Every rank's number of rows (known to every rank).

    Returns
    -------
    Tensor of shape (sum(sizes), ...)
    """
    rank = dist.get_rank()
    if tensor.shape[0] != sizes[rank]:
        raise ValueError(f"rank {rank} holds {tensor.shape[0]} rows, expected {sizes[rank]}.")
    largest = max(sizes)
    padded = tensor.new_zeros((largest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    out = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(out, padded)
    return torch.cat([part[:size] for part, size in zip(out, sizes)])


def rank_seed(seed: int, rank: int) -> int:
    """A seed of its own for each rank; rank 0 keeps ``seed`` (one process is unchanged)."""
    if rank == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(rank)]).generate_state(1)[0] % (2**31 - 1))
