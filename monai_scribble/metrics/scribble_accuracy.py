"""Pixel accuracy on scribbled pixels: model selection without full masks (docs/method.md#pitfall-selection).

Real users have only scribbles on their validation images; selecting the checkpoint by full-mask IoU
(as the paper does) leaks labels they do not have. This metric scores the prediction on the validation
scribbles only. The Ignite metric pooling it over the validation images is
:class:`~monai_scribble.handlers.ScribbleAccuracy`.
"""

from __future__ import annotations

import torch

from monai_scribble.constants import IGNORE

__all__ = ["scribble_accuracy"]


def scribble_accuracy(pred: torch.Tensor, scribble: torch.Tensor) -> tuple[int, int]:
    """(correct, scribbled) pixel counts.

    Args:
        pred: ``(C, H, W)`` one-hot / logits or ``(1, H, W)`` / ``(H, W)`` class ids.
        scribble: ``(1, H, W)`` or ``(H, W)`` in {0, 1, IGNORE}.
    """
    scribble = torch.as_tensor(scribble).reshape(scribble.shape[-2:]).long()
    pred = torch.as_tensor(pred)
    labels = pred.argmax(dim=0) if pred.ndim == 3 and pred.shape[0] > 1 else pred.reshape(pred.shape[-2:]).long()
    if labels.shape != scribble.shape:
        raise ValueError(f"prediction {tuple(labels.shape)} and scribble {tuple(scribble.shape)} differ in size")
    scribbled = scribble != IGNORE
    return int((labels[scribbled] == scribble[scribbled]).sum()), int(scribbled.sum())
