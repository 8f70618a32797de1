"""Resizing a batch of images to the size a backbone's pretrained weights expect.

Pretrained weights (:mod:`moby_al_plugin.network.pretrained_weights`) were
trained on images of one size (224x224 for most ImageNet weights). The network
puts :class:`ResizeImages` in front of its encoder, so the pool, its views and
the data pipeline keep their own size: only the encoder's input is resized.

Cost: the encoder's work grows with the pixels it sees. A 32x32 image resized
to 224x224 has 49 times the pixels; a torchvision ResNet-18 at 224x224 costs
about 1.8 GFLOPs per image and view (forward), against about 0.56 for the
CIFAR-style ``resnet18`` at 32x32. Measured on one CPU thread (forward and
backward, per image): ``small_cnn`` at 32x32 about 2 ms, the CIFAR-style
``resnet18`` about 75 ms, torchvision's ResNet-18 at 224x224 about 240 ms. So
on a CPU, weights by name make a MoBY step about three times the CIFAR-style
``resnet18``'s and a hundred times ``small_cnn``'s; a GPU takes it in stride.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ResizeImages"]


class ResizeImages(nn.Module):
    """Resize ``(B, C, H, W)`` images to ``size`` (bilinear; antialiased when shrinking).

    The whole image is resized, not cropped (a pool's images are whole
    pictures already); an image that is not square is stretched. Images of
    the size already pass unchanged. No parameters or buffers: the
    network's state dict is the same with or without it.

    Parameters
    ----------
    size : int or (int, int)
        Output height and width (an int: a square).
    """

    def __init__(self, size: int | tuple[int, int]) -> None:
        super().__init__()
        height, width = (size, size) if isinstance(size, int) else size
        self.size = (int(height), int(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The images at ``size``, same dtype."""
        if tuple(x.shape[-2:]) == self.size:
            return x
        shrink = x.shape[-2] > self.size[0] or x.shape[-1] > self.size[1]
        return F.interpolate(
            x, size=self.size, mode="bilinear", align_corners=False, antialias=shrink
        )

    def extra_repr(self) -> str:
        return f"size={self.size}"
