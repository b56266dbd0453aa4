"""MONAI ResNet's type-A shortcut as a module, so the network traces shape-generically for TorchScript export."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

__all__ = ["ZeroPadShortcut", "use_shortcut_modules"]


class ZeroPadShortcut(torch.nn.Module):
    """Type-A residual shortcut: subsample by ``stride``, pad the channels to ``planes`` with zeros, no gradient.

    The same computation as MONAI's ``ResNet._downsample_basic_block`` (a 1x1 average pool with ``stride``,
    zero channels appended, the input detached as its ``.data`` is), so weights, outputs and gradients are
    unchanged. MONAI builds that shortcut as a ``functools.partial`` creating its zeros from the traced
    tensor's sizes: a traced network then works only at the traced input shape, and it does not script.

    Args:
        planes: output channels.
        stride: spatial subsampling.
    """

    def __init__(self, planes: int, stride: int) -> None:
        super().__init__()
        self.planes = int(planes)
        self.stride = int(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.avg_pool2d(x, kernel_size=1, stride=self.stride)
        return F.pad(out.detach(), (0, 0, 0, 0, 0, self.planes - out.shape[1]))


def use_shortcut_modules(encoder: torch.nn.Module) -> int:
    """Replace every 2-D type-A shortcut partial of a MONAI ResNet ``encoder`` by a :class:`ZeroPadShortcut`; returns how many."""
    replaced = 0
    for block in encoder.modules():
        shortcut = getattr(block, "downsample", None)
        if isinstance(shortcut, functools.partial) and shortcut.keywords.get("spatial_dims") == 2:
            block.downsample = ZeroPadShortcut(shortcut.keywords["planes"], shortcut.keywords["stride"])
            replaced += 1
    return replaced
