"""Ignite metric of :func:`~monai_scribble.metrics.scribble_accuracy`, pooled over the validation images (model
selection without full masks, docs/method.md#pitfall-selection)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced, sync_all_reduce

from monai_scribble.metrics.scribble_accuracy import scribble_accuracy

__all__ = ["ScribbleAccuracy"]


class ScribbleAccuracy(Metric):
    """Ignite metric: correct / scribbled pixels over all validation images (pooled, not per image).

    ``update`` takes ``(preds, scribbles)``: sequences (decollated) or batches of the tensors accepted by
    :func:`~monai_scribble.metrics.scribble_accuracy`. Subclasses pool other per-image counts the same way
    (:meth:`counts`).
    """

    def counts(self, pred: torch.Tensor, scribble: torch.Tensor) -> tuple[int, int]:
        """(hits, total) of one image: here correct and scribbled pixels."""
        return scribble_accuracy(pred, scribble)

    @reinit__is_reduced
    def reset(self) -> None:
        self._correct = 0
        self._total = 0

    @reinit__is_reduced
    def update(self, output: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]]) -> None:
        preds, scribbles = output
        for pred, scribble in zip(preds, scribbles):
            correct, total = self.counts(pred, scribble)
            self._correct += correct
            self._total += total

    @sync_all_reduce("_correct", "_total")
    def compute(self) -> float:
        return float(self._correct) / self._total if self._total else float("nan")
