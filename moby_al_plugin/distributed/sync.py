"""MoBY's synchronisation during a fit over several processes, and gathered features.

* :class:`TrainingSync`: every rank draws the same seeded global batches and
  takes its own part of each (:class:`ShardedStream`), so one epoch is one
  pass over the pool split between the ranks; the gradients are all-reduced
  by ``DistributedDataParallel`` around :class:`ContrastiveStep`; the keys
  come from a batch shuffled across the ranks and are gathered before they
  enter the queues, so every rank holds the same queues.
* :func:`gather_rows` embeds each rank's block of the pool and gathers the
  blocks in pool order.

Batch norm over several processes
---------------------------------
``torch.nn.SyncBatchNorm`` would give every rank the statistics of the
global batch, but in torch (2.14 included) it refuses CPU tensors
("SyncBatchNorm expected input tensor to be on GPU ..."), so it cannot run
under gloo. The online branch therefore normalises each rank's part of the
batch with that part's statistics (as MoCo's query encoder does), and the key
branch uses MoCo's shuffled batch norm: the views of the global batch are
gathered, shuffled with a permutation every rank draws alike, and each rank
computes the keys of one shuffled part. A query and its positive key are then
normalised with statistics of different sub-batches, so the network cannot
find the positive through the batch statistics. The same code runs on CPU and
CUDA. After every step the running averages of every batch-norm layer are
averaged over the ranks (the mean of the ranks' running means is the running
mean of the global batch), which keeps the buffers, like the weights,
identical on every rank.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..exceptions import MoBYALError
from .checks import check_batches, check_pool
from .world import (
    World,
    _collective_device,
    all_gather_parts,
    all_gather_values,
    current_world,
    part_sizes,
    rank_seed,
)

__all__ = ["ContrastiveStep", "ShardedStream", "TrainingSync", "gather_rows"]


class ShardedStream:
    """This rank's part of the global batches drawn from an index stream.

    Every rank draws from an identically seeded stream, so all see the same
    global batch; :meth:`take` returns this rank's contiguous part of it
    (:func:`part_sizes`: unequal by at most one image) and keeps every
    rank's part size in ``parts`` for the step's gathers. Over an epoch the
    ranks' parts are disjoint and together one pass over the pool; with one
    process the part is the whole batch.

    Parameters
    ----------
    stream : moby_al_plugin.skorch_base.IndexStream
        The global stream (its generator is the one a checkpoint saves).
    world : World
    """

    def __init__(self, stream: Any, world: World) -> None:
        self.stream = stream
        self.world = world
        self.parts: list[int] = []

    def take(self, size: int) -> torch.Tensor:
        """This rank's indices of the next global batch of ``size``."""
        rows = self.stream.take(size)
        self.parts = part_sizes(size, self.world.world_size)
        start = sum(self.parts[: self.world.rank])
        return rows[start : start + self.parts[self.world.rank]]


class ContrastiveStep(nn.Module):
    """The contrastive pass of a :class:`moby_al_plugin.MoBYNetwork` as a module's ``forward``.

    ``DistributedDataParallel`` all-reduces the gradients of what runs
    through its wrapped module's ``forward``; ``contrastive_forward`` is a
    method of its own, so this module routes it through ``forward``. It
    registers only the modules the pass trains (encoder, projector,
    predictor): the classifier head is unused there (DDP would wait for its
    gradient) and the key branch takes no gradient.

    Parameters
    ----------
    network : MoBYNetwork
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.encoder = network.encoder
        self.projector = network.projector
        self.predictor = network.predictor
        self._network = (network,)  # a tuple: not registered as a submodule

    def forward(
        self,
        x_weak: torch.Tensor,
        x_strong: torch.Tensor,
        k_strong: torch.Tensor,
        k_weak: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``network.contrastive_forward`` of both views with the given keys."""
        return self._network[0].contrastive_forward(x_weak, x_strong, keys=(k_strong, k_weak))


def _ddp_options() -> dict[str, Any]:
    # the batch-norm buffers are averaged after every step (TrainingSync),
    # not broadcast from rank 0 before every forward; the name of the switch
    # changed in torch 2.13
    parameters = inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters
    if "forward_sync_buffers" in parameters:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


class TrainingSync:
    """One fit of a :class:`moby_al_plugin.MoBYNetwork` over the ranks of a process group.

    Built on every rank with the same arguments; every method that
    communicates is a collective, called by every rank at the same point.

    * :meth:`shard` gives the fit's state the global batch sizes, this
      rank's :class:`ShardedStream` and a view seed of its own;
    * :meth:`attach` wraps the network's contrastive pass in
      ``DistributedDataParallel``;
    * :meth:`contrastive_forward` is one step's pass: shuffled keys,
      then the online branch through DDP;
    * :meth:`after_step` averages the batch-norm running statistics and
      returns the loss of the global batch.

    Parameters
    ----------
    world : World
        An active world.
    n_images, batch_size : int
        Pool length and images per process per step.
    shuffle_seed : int
        Seed of the key-batch permutations, the same on every rank.

    Raises
    ------
    MoBYALError
        A step would give a process fewer than 2 images (:func:`check_batches`).
    """

    def __init__(self, world: World, n_images: int, batch_size: int, shuffle_seed: int) -> None:
        self.world = world
        self.batch_sizes = check_batches(n_images, batch_size, world.world_size)
        self.shuffle_generator = torch.Generator().manual_seed(int(shuffle_seed))
        self.stream: ShardedStream | None = None
        self.network: nn.Module | None = None
        self.ddp: nn.parallel.DistributedDataParallel | None = None
        self._norm_buffers: list[torch.Tensor] = []

    # ------------------------------------------------------------ set-up
    def shard(self, state: Any) -> None:
        """Make a fit's state (:class:`moby_al_plugin.skorch_base.FitState`) this rank's.

        Sets ``state.sizes`` to the global batch sizes, wraps
        ``state.stream`` in a :class:`ShardedStream` and reseeds
        ``state.view_generator`` with :func:`rank_seed`, so that the ranks
        draw different augmentations (rank 0 keeps the fit's seed).
        """
        state.sizes = list(self.batch_sizes)
        self.stream = ShardedStream(state.stream, self.world)
        state.stream = self.stream
        seed = state.view_generator.initial_seed()
        state.view_generator.manual_seed(rank_seed(seed, self.world.rank))

    def attach(self, network: nn.Module) -> None:
        """Wrap ``network``'s contrastive pass in ``DistributedDataParallel`` (a collective).

        Call it once the network holds its starting (or resumed) weights:
        DDP checks that every rank's parameters have the same shapes.
        """
        self.network = network
        device = next(network.parameters()).device
        ids = [device] if device.type == "cuda" else None
        self.ddp = nn.parallel.DistributedDataParallel(
            ContrastiveStep(network), device_ids=ids, **_ddp_options()
        )
        self._norm_buffers = [
            buffer
            for module in network.modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
            for buffer in (module.running_mean, module.running_var)
            if buffer is not None
        ]

    # ------------------------------------------------------------- steps
    def _own(self, rows: torch.Tensor, parts: Sequence[int]) -> torch.Tensor:
        start = sum(parts[: self.world.rank])
        return rows[start : start + parts[self.world.rank]]

    @torch.no_grad()
    def shuffled_keys(
        self, x_weak: torch.Tensor, x_strong: torch.Tensor, parts: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys of the global batch from the key branch, with batch norm over shuffled parts.

        The views of every rank are gathered, permuted by a permutation
        every rank draws alike, and each rank computes the keys of its part
        of the permuted batch; the keys are gathered and put back in batch
        order.

        Returns
        -------
        k_strong, k_weak : Tensor of shape (sum(parts), projection_dim)
            The global batch's keys, rows in rank order (rank 0's part first).
        """
        network = self.network
        both = all_gather_parts(torch.cat([x_strong, x_weak], dim=1), parts)
        channels = x_strong.shape[1]
        order = torch.randperm(both.shape[0], generator=self.shuffle_generator)
        mine = self._own(order, parts).to(both.device)
        shuffled = both[mine]
        keys = torch.cat(
            [
                network.momentum_keys(shuffled[:, :channels]),
                network.momentum_keys(shuffled[:, channels:]),
            ],
            dim=1,
        )
        gathered = all_gather_parts(keys, parts)  # row j: the keys of image order[j]
        in_order = torch.empty_like(gathered)
        in_order[order.to(gathered.device)] = gathered
        width = keys.shape[1] // 2
        return in_order[:, :width], in_order[:, width:]

    def contrastive_forward(
        self, x_weak: torch.Tensor, x_strong: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One step's contrastive pass of this rank's part of the batch.

        Returns
        -------
        loss : Tensor, scalar
            The MoBY loss of this rank's part (DDP averages its gradient).
        weak_features : Tensor
            Online features of this rank's weak views.
        keys : (Tensor, Tensor)
            ``(k_strong, k_weak)`` of the global batch, for the queues.
        """
        parts = self.stream.parts
        k_strong, k_weak = self.shuffled_keys(x_weak, x_strong, parts)
        loss, weak_features, _, _ = self.ddp(
            x_weak, x_strong, self._own(k_strong, parts), self._own(k_weak, parts)
        )
        return loss, weak_features, (k_strong, k_weak)

    @torch.no_grad()
    def after_step(self, loss: torch.Tensor) -> torch.Tensor:
        """Average the batch-norm running statistics over the ranks; the global batch's loss.

        One all-reduce carries both. Returns the mean loss over the images
        of the global batch, the same on every rank.
        """
        parts = self.stream.parts
        own = float(parts[self.world.rank])
        pieces = [b.reshape(-1).float() for b in self._norm_buffers]
        pieces.append((loss.detach().float() * own).reshape(1).to(_collective_device()))
        flat = torch.cat([p.to(_collective_device()) for p in pieces])
        dist.all_reduce(flat)
        offset = 0
        for buffer in self._norm_buffers:
            n = buffer.numel()
            chunk = flat[offset : offset + n] / self.world.world_size
            buffer.copy_(chunk.view_as(buffer).to(buffer.device, buffer.dtype))
            offset += n
        return (flat[-1] / float(sum(parts))).to(loss.device)

    # ----------------------------------------------------------- resume
    def checkpoint_state(self, view_generator: torch.Generator) -> dict:
        """What a checkpoint needs beyond one process's state (a collective).

        Every rank's view generator state (gathered) and the shuffle
        generator's.
        """
        return {
            "world_size": self.world.world_size,
            "view_generators": all_gather_values(view_generator.get_state()),
            "shuffle_generator": self.shuffle_generator.get_state(),
        }

    def resume(self, training: dict, view_generator: torch.Generator) -> None:
        """Restore this rank's generators from a checkpoint's ``training`` record."""
        saved = training["distributed"]  # check_checkpoint_world: same world size
        view_generator.set_state(saved["view_generators"][self.world.rank])
        self.shuffle_generator.set_state(saved["shuffle_generator"])

    def check_same_start(self, epochs_done: int, path: Any) -> None:
        """Refuse, on every rank, a start where the ranks found different checkpoints.

        Only rank 0 writes the checkpoint; a path that the other ranks do not
        see (a disk of rank 0's machine alone) would start them from
        another epoch.

        Raises
        ------
        MoBYALError
            The ranks found different numbers of finished epochs.
        """
        done = all_gather_values(int(epochs_done))
        if len(set(done)) > 1:
            found = ", ".join(f"rank {r}: {d}" for r, d in enumerate(done))
            raise MoBYALError(
                f"the processes found different checkpoints at {os.fspath(path)!r} (epochs done: "
                f"{found}); rank 0 alone writes it, so it must lie on a file system that every "
                "process reads."
            )


# ---------------------------------------------------------------- features
def gather_rows(fn: Callable[[np.ndarray], np.ndarray], X: Any, fingerprint: str) -> np.ndarray:
    """``fn`` of every row of ``X``, the rows split between the ranks, on every rank in order.

    A collective. Rank ``r`` computes ``fn(X[rows])`` on the ``r``-th
    contiguous block of the rows (:func:`part_sizes`: unequal by at most
    one), and the blocks are gathered in rank order, which is pool order.
    First checks that every rank holds the same ``X`` (:func:`check_pool`).

    Parameters
    ----------
    fn : callable
        Maps images ``(n, ...)`` to an array ``(n, F)``.
    X : array-like of images
        Read only as ``X[rows]`` with a sorted index array, and ``len(X)``.
    fingerprint : str
        Identity of ``X``.

    Returns
    -------
    ndarray of shape (len(X), F)
    """
    world = current_world()
    n = len(X)
    check_pool(n, fingerprint, training=False)
    sizes = part_sizes(n, world.world_size)
    start = sum(sizes[: world.rank])
    rows = np.arange(start, start + sizes[world.rank])
    if rows.size:
        local = np.asarray(fn(X[rows]))
    else:  # fewer rows than ranks: an empty block of the right width
        local = np.asarray(fn(X[np.arange(1)]))[:0]
    device = _collective_device()
    gathered = all_gather_parts(torch.from_numpy(np.ascontiguousarray(local)).to(device), sizes)
    return gathered.cpu().numpy()
