"""Projection head of the multiscale contrastive regularization (method-spec §1.1).

Reference: Oh, Lee & Jeong, ISBI 2022. ``Conv1x1 -> BN -> ReLU -> Conv1x1 -> BN`` (no ReLU after the
last BN), Xavier-initialised. P1 (δ=1 on the 16-ch full-resolution block): 16 -> 16 -> 32;
P4 (δ=4 on the 64-ch 1/4-resolution block): 64 -> 32 -> 32.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ProjectionHead"]


class ProjectionHead(nn.Sequential):
    """``(B, in_channels, H, W) -> (B, out_channels, H, W)`` by two 1x1 convolutions with batch norm.

    Args:
        in_channels: channels of the decoder feature it projects.
        hidden_channels: channels after the first 1x1 convolution.
        out_channels: projection dimension C'.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int = 32) -> None:
        for name, value in (("in_channels", in_channels), ("hidden_channels", hidden_channels), ("out_channels", out_channels)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        super().__init__(
            nn.Conv2d(in_channels, hidden_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(hidden_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden_channels, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - nn.Sequential semantics
        if x.ndim != 4 or x.shape[1] != self[0].in_channels:
            raise ValueError(f"expected (B, {self[0].in_channels}, H, W) features, got shape {tuple(x.shape)}")
        return super().forward(x)
