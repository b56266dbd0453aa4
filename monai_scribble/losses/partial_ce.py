"""Partial cross-entropy: 2-class softmax CE over labelled pixels only.

Used for scribbles (Scribble2Label's L_s) and for thresholded EMA pseudo-labels (L_p); unlabelled
pixels carry :data:`~monai_scribble.constants.IGNORE` (250). Reference: docs/method.md#training-loop,
docs/method.md#pitfall-empty-ce.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.modules.loss import _Loss

from monai_scribble.constants import IGNORE

__all__ = ["PartialCrossEntropyLoss"]


class PartialCrossEntropyLoss(_Loss):
    """Mean softmax cross-entropy over the pixels whose target is not ``ignore_index``.

    Unlike ``torch.nn.CrossEntropyLoss(ignore_index=...)``, a batch with no labelled pixel gives a
    zero that is still connected to the graph instead of NaN, so it can be added
    to other terms and back-propagated (docs/method.md#pitfall-empty-ce).

    Args:
        ignore_index: target value of unlabelled pixels.
    """

    def __init__(self, ignore_index: int = IGNORE) -> None:
        super().__init__(reduction="mean")
        self.ignore_index = int(ignore_index)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            logits: ``(B, C, H, W)`` raw scores.
            target: ``(B, H, W)`` or ``(B, 1, H, W)`` integer class ids in ``[0, C)`` or ``ignore_index``.

        Returns:
            Scalar loss.
        """
        if target.ndim == logits.ndim and target.shape[1] == 1:
            target = target[:, 0]
        if target.shape != logits.shape[:1] + logits.shape[2:]:
            raise ValueError(f"target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)} (B, C, H, W)")
        target = target.long()
        labelled = target != self.ignore_index
        num_labelled = labelled.sum()
        # sum over labelled pixels / max(count, 1): the mean when anything is labelled, and a zero that is
        # still connected to the graph (not 0/0 = NaN) when nothing is
        loss_sum = F.cross_entropy(logits.float(), target, ignore_index=self.ignore_index, reduction="sum")
        return loss_sum / num_labelled.clamp_min(1)
