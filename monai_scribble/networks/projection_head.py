"""Projection head of the multiscale contrastive regularization (docs/method.md#projection-heads).

Reference: Oh, Lee & Jeong, ISBI 2022. ``Conv1x1 -> BN -> ReLU -> Conv1x1 -> BN`` (no ReLU after the
last BN), Xavier-initialised. P1 (δ=1 on the 16-ch full-resolution block): 16 -> 16 -> 32;
P4 (δ=4 on the 64-ch 1/4-resolution block): 64 -> 32 -> 32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self[0].in_channels:
            raise ValueError(f"expected (B, {self[0].in_channels}, H, W) features, got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - nn.Sequential semantics
        self._check_input(x)
        return super().forward(x)

    def forward_at(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The head's output at a few positions, exactly as ``self(x)`` would give there.

        Batch-norm statistics (training mode) are still taken over every position of ``x``, and the
        running statistics are updated as by ``self(x)``; but the last convolution and batch norm are
        evaluated only at ``index``: the second batch norm's mean and variance follow in closed form
        from the mean and covariance of its input (``mean = W m``, ``var = diag(W C W^T)``). On a
        ``(8, 16, 256, 256)`` feature this skips the widest and slowest part of the head.

        Args:
            x: ``(B, in_channels, H, W)``.
            index: ``(K,)`` flat indices into ``(B, H, W)`` (row-major).

        Returns:
            ``(K, out_channels)``, equal to ``self(x).permute(0, 2, 3, 1).reshape(-1, out)[index]``.
        """
        self._check_input(x)
        conv1, bn1, _, conv2, bn2 = self
        rows = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])  # (N, C_in)
        hidden = rows @ conv1.weight.flatten(1).T.to(rows.dtype)  # (N, C_hidden)
        hidden = F.relu(bn1(hidden.reshape(*hidden.shape, 1, 1)).flatten(1))  # not in place: no CopySlices
        weight2 = conv2.weight.flatten(1).float()  # (C_out, C_hidden)
        if bn2.training or not bn2.track_running_stats:
            stats = hidden.float()
            mean_h = stats.mean(dim=0)
            cov_h = (stats.T @ stats) / stats.shape[0] - torch.outer(mean_h, mean_h)  # E[hh^T] - E[h]E[h]^T
            mean = weight2 @ mean_h
            var = ((weight2 @ cov_h) * weight2).sum(dim=1)  # biased, as batch norm normalises with
            if bn2.training and bn2.track_running_stats:
                self._update_running_stats(bn2, mean.detach(), var.detach(), stats.shape[0])
        else:
            mean, var = bn2.running_mean, bn2.running_var
        selected = hidden[index].float() @ weight2.T  # (K, C_out)
        out = (selected - mean) * torch.rsqrt(var + bn2.eps)
        if bn2.affine:
            out = out * bn2.weight + bn2.bias
        return out

    @staticmethod
    def _update_running_stats(bn: nn.BatchNorm2d, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
        """Running-statistics update of ``nn.BatchNorm2d`` in training mode (unbiased running variance)."""
        bn.num_batches_tracked.add_(1)
        momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
        unbiased = var * (count / max(count - 1, 1))
        bn.running_mean.mul_(1 - momentum).add_(mean.to(bn.running_mean.dtype), alpha=momentum)
        bn.running_var.mul_(1 - momentum).add_(unbiased.to(bn.running_var.dtype), alpha=momentum)
