"""The checks every rank makes before training, raised on every rank alike.

Every process must hold the same pool and settings (:func:`check_pool`),
every step must give each process at least two images
(:func:`check_batches`), and an unfinished checkpoint continues only over
the number of processes that wrote it (:func:`check_checkpoint_world`).
"""

from __future__ import annotations

import os
from typing import Any

import torch.distributed as dist

from ..exceptions import MoBYALError
from ..schedule import even_batches
from .world import World, all_gather_values, part_sizes

__all__ = ["check_batches", "check_checkpoint_world", "check_pool"]


def _pool_line(rank: int, length: int, fingerprint: str) -> str:
    return f"rank {rank}: {length} images (fingerprint {fingerprint[:12]})"


def check_pool(
    n_images: int, fingerprint: str, settings: dict[str, str] | None = None, *, training: bool
) -> None:
    """Refuse, on every rank alike, pools or settings that differ between the ranks.

    A collective: every rank must call it. Each rank gathers every rank's
    pool length, pool fingerprint and settings, so each raises the same
    error.

    Parameters
    ----------
    n_images : int
        Length of this rank's pool.
    fingerprint : str
        Identity of this rank's images (:func:`moby_al_plugin.data.pools.images_fingerprint`).
    settings : dict of str to str or None
        Parameters that must agree (names to their ``repr``); None: none.
    training : bool
        Whether the pool is trained on; then it must hold at least one image
        per process.

    Raises
    ------
    MoBYALError
        The ranks hold different pools (the message names every rank's
        length and fingerprint), different settings (it names them), or,
        when training, fewer images than processes.
    """
    world_size = dist.get_world_size()
    gathered = all_gather_values((int(n_images), str(fingerprint), dict(settings or {})))
    pools = {(length, digest) for length, digest, _ in gathered}
    if len(pools) > 1:
        lines = "; ".join(_pool_line(r, n, d) for r, (n, d, _) in enumerate(gathered))
        raise MoBYALError(
            f"the {world_size} processes were given different pools ({lines}); every process "
            "must be given the same images (each then works on its own part of them)."
        )
    names = sorted({name for _, _, s in gathered for name in s})
    differing = [n for n in names if len({s.get(n) for _, _, s in gathered}) > 1]
    if differing:
        text = "; ".join(
            f"{name}: "
            + ", ".join(f"{s.get(name)} on rank {r}" for r, (_, _, s) in enumerate(gathered))
            for name in differing
        )
        raise MoBYALError(
            f"the {world_size} processes were given different settings ({text}); give every "
            "process the same ones."
        )
    if training and n_images < world_size:
        raise MoBYALError(
            f"the world of {world_size} processes is larger than the pool of {n_images} "
            f"image{'s' if n_images != 1 else ''}; train with at most {max(n_images // 2, 1)} "
            "processes (every process needs at least 2 images per step)."
        )


def check_batches(n_images: int, batch_size: int, world_size: int) -> list[int]:
    """The global batch sizes of one epoch; refuse a step that gives a process under 2 images.

    Every step takes the next ``batch_size * world_size`` images (near-equal
    batches, :func:`moby_al_plugin.schedule.even_batches`) and splits them
    between the processes (:func:`part_sizes`).

    Returns
    -------
    list of int
        The global batch sizes.

    Raises
    ------
    MoBYALError
        A process would get fewer than 2 images in a step (batch norm and
        the contrastive loss need two).
    """
    sizes = even_batches(int(n_images), int(batch_size) * int(world_size))
    smallest = min(min(part_sizes(size, world_size)) for size in sizes)
    if smallest < 2:
        raise MoBYALError(
            f"{n_images} images in batches of {batch_size} per process over {world_size} "
            f"processes give a process {smallest} image(s) in a step; every process needs at "
            f"least 2 (batch norm and the contrastive loss). Use fewer processes (at most "
            f"{max(n_images // 2, 1)}) or a larger batch_size."
        )
    return sizes


def check_checkpoint_world(training: dict, world: World, path: Any) -> None:
    """Refuse to continue a checkpoint written by a run over another number of processes.

    The global batches, and so every step, depend on the number of
    processes. (A finished checkpoint is only loaded: any number will do.)

    Raises
    ------
    MoBYALError
        The numbers differ; the message names both.
    """
    saved = int((training.get("distributed") or {}).get("world_size", 1))
    now = world.world_size if world.active else 1
    if saved != now:
        raise MoBYALError(
            f"the checkpoint {os.fspath(path)!r} was written by a run over {saved} process(es) "
            f"and this run has {now}; resume it with {saved} (torchrun --nproc-per-node "
            f"{saved}), or delete it or choose another checkpoint path."
        )
