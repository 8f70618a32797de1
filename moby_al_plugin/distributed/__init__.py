"""Running over several processes with ``torch.distributed``, as ``torchrun`` launches them.

Everything the estimators need to train and embed one pool over several
processes lives here; :class:`moby_al_plugin.MoBYEncoder` calls it when a
process group is initialised with more than one process and behaves
exactly as in one process otherwise. Callers use this package's names; it
is in three parts:

* :mod:`.world`: the world (:func:`current_world`, :func:`init_from_env`,
  :func:`shutdown`) and the collectives that broadcast and gather values
  and tensors between the ranks;
* :mod:`.checks`: the checks before training, raised on every rank alike:
  every process holds the same pool and settings, the pool has enough
  images for the world (:func:`check_pool`, :func:`check_batches`), an
  unfinished checkpoint continues over the world that wrote it
  (:func:`check_checkpoint_world`);
* :mod:`.sync`: MoBY's synchronisation during training
  (:class:`TrainingSync`: sharded global batches, DDP, shuffled batch norm
  of the key branch, gathered keys) and features gathered in pool order
  (:func:`gather_rows`).
"""

from __future__ import annotations

from .checks import check_batches, check_checkpoint_world, check_pool
from .sync import ContrastiveStep, ShardedStream, TrainingSync, gather_rows
from .world import (
    TORCHRUN_VARIABLES,
    World,
    all_gather_parts,
    all_gather_values,
    barrier,
    broadcast_value,
    current_world,
    init_from_env,
    part_sizes,
    rank_seed,
    shutdown,
)

__all__ = [
    "TORCHRUN_VARIABLES",
    "ContrastiveStep",
    "ShardedStream",
    "TrainingSync",
    "World",
    "all_gather_parts",
    "all_gather_values",
    "barrier",
    "broadcast_value",
    "check_batches",
    "check_checkpoint_world",
    "check_pool",
    "current_world",
    "gather_rows",
    "init_from_env",
    "part_sizes",
    "rank_seed",
    "shutdown",
]
