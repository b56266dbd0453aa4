"""Pixel accuracy on scribbled pixels: model selection without full masks (docs/method.md#pitfall-selection).

Real users have only scribbles on their validation images; selecting the checkpoint by full-mask IoU
(as the paper does) leaks labels they do not have. This metric scores the prediction on the validation
scribbles only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced, sync_all_reduce

from monai_scribble.constants import IGNORE

__all__ = ["ScribbleAccuracy", "scribble_accuracy"]


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


class ScribbleAccuracy(Metric):
    """Ignite metric: correct / scribbled pixels over all validation images (pooled, not per image).

    ``update`` takes ``(preds, scribbles)``: sequences (decollated) or batches of the tensors accepted by
    :func:`scribble_accuracy`.
    """

    @reinit__is_reduced
    def reset(self) -> None:
        self._correct = 0
        self._total = 0

    @reinit__is_reduced
    def update(self, output: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]]) -> None:
        preds, scribbles = output
        for pred, scribble in zip(preds, scribbles):
            correct, total = scribble_accuracy(pred, scribble)
            self._correct += correct
            self._total += total

    @sync_all_reduce("_correct", "_total")
    def compute(self) -> float:
        return float(self._correct) / self._total if self._total else float("nan")
