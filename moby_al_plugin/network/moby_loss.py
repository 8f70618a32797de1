"""The MoBY contrastive loss: InfoNCE of each view's query against the other view's key.

Pure functions of L2-normalised projections and the key queues; the network
(:mod:`.moby_network`) holds the queues and the estimators call the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["info_nce", "moby_contrastive_loss", "unit_rows"]


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm, in float32."""
    # L2-normalised in float32: under bfloat16 autocast the projections come out bf16
    return F.normalize(x.float(), dim=1)


def info_nce(
    query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor, temperature: float
) -> torch.Tensor:
    """InfoNCE loss of queries against their positive keys and a queue of negatives.

    Parameters
    ----------
    query, key : Tensor of shape (B, D)
        L2-normalised; row i of ``key`` is the positive of row i of ``query``.
    queue : Tensor of shape (D, K)
        L2-normalised negative keys, one per column.
    temperature : float

    Returns
    -------
    Tensor, scalar, float32
        Mean over the batch of ``-log softmax`` of the positive logit.

    Notes
    -----
    The logits are computed in float32 even under bfloat16 autocast: with
    bfloat16's 8-bit mantissa a similarity near 1 moves in steps of 1/128,
    which the temperature turns into logit steps of about 0.04. The product
    is small next to the encoder's, so float32 costs little here.
    """
    with torch.autocast(device_type=query.device.type, enabled=False):
        query, key, queue = query.float(), key.float(), queue.float()
        positive = (query * key).sum(dim=1, keepdim=True)
        negative = query @ queue
        logits = torch.cat([positive, negative], dim=1) / temperature
        # the positive sits in column 0 of every row
        target = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
        return F.cross_entropy(logits, target)


def moby_contrastive_loss(
    q_strong: torch.Tensor,
    q_weak: torch.Tensor,
    k_strong: torch.Tensor,
    k_weak: torch.Tensor,
    queue_strong: torch.Tensor,
    queue_weak: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """Symmetric MoBY loss: each view's query against the other view's key.

    ``L = InfoNCE(q_strong, k_weak, queue_weak) + InfoNCE(q_weak, k_strong, queue_strong)``.
    All inputs are L2-normalised; queues have shape (D, K).
    """
    return info_nce(q_strong, k_weak, queue_weak, temperature) + info_nce(
        q_weak, k_strong, queue_strong, temperature
    )
