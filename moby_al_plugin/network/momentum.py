"""The momentum (key) branch's state: its EMA update, its schedule and the key queues.

Free functions under ``no_grad``, called by the training step after the
optimiser step and never inside ``forward``, so evaluation cannot change the
model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["cosine_momentum", "frozen_running_stats", "momentum_update", "enqueue"]


def cosine_momentum(step: int, total_steps: int, base: float = 0.99, final: float = 1.0) -> float:
    """Momentum of the key branch at optimiser step ``step`` of ``total_steps``.

    ``m = final - (final - base) * (cos(pi * step / total_steps) + 1) / 2``: ``base``
    at step 0, ``final`` at the last step.
    """
    if total_steps <= 0:
        return final
    progress = min(max(step / total_steps, 0.0), 1.0)
    return final - (final - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


@contextmanager
def frozen_running_stats(*modules: nn.Module) -> Iterator[None]:
    """Batch norm inside uses batch statistics but leaves its running averages alone.

    The running averages are what evaluation normalises clean images with;
    strongly augmented views (colour jitter, blur, solarize) have other
    statistics and would skew them.
    """
    norms = [
        m
        for module in modules
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch
    try:
        yield
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, momentum: float) -> None:
    """Move every parameter of ``target`` towards ``online``: ``t = m t + (1 - m) o``.

    Called after the optimiser step, never inside ``forward``. One fused
    ``lerp`` over all parameters instead of a Python loop of two kernels each.
    """
    targets = list(target.parameters())
    onlines = [p.detach() for p in online.parameters()]
    if len(targets) != len(onlines):
        raise ValueError("online and target modules must have the same parameters.")
    if targets:
        torch._foreach_lerp_(targets, onlines, 1.0 - momentum)


@torch.no_grad()
def enqueue(queue: torch.Tensor, pointer: torch.Tensor, keys: torch.Tensor) -> None:
    """Write ``keys`` (B, D) into the ring buffer ``queue`` (D, K) at ``pointer``.

    Any batch size works: writes wrap around the end, and a batch larger than
    the queue keeps only its last K keys. Writes are slices (at most two),
    not a gather of column indices.
    """
    size = queue.shape[1]
    keys = keys.detach()
    if keys.shape[0] > size:
        keys = keys[-size:]
    n = keys.shape[0]
    start = int(pointer.item())
    first = min(n, size - start)
    queue[:, start : start + first] = keys[:first].T.to(queue.dtype)
    if first < n:
        queue[:, : n - first] = keys[first:].T.to(queue.dtype)
    pointer.fill_((start + n) % size)
