"""Ignite metric of :func:`~monai_scribble.metrics.scribble_instance_matches`, pooled over the validation images
(label-free model selection that sees merged nuclei, docs/method.md#pitfall-selection)."""

from __future__ import annotations

import torch

from monai_scribble.handlers.scribble_accuracy import ScribbleAccuracy
from monai_scribble.inference.postprocessing import foreground_to_instances
from monai_scribble.metrics.scribble_instances import scribble_instance_matches

__all__ = ["ScribbleInstanceAccuracy"]


class ScribbleInstanceAccuracy(ScribbleAccuracy):
    """Ignite metric: nucleus scribble strokes whose predicted instance is theirs alone / strokes, over all images.

    The prediction goes through the bundle's post-processing (:func:`~monai_scribble.inference.foreground_to_instances`
    with ``min_size``) before the strokes are matched, so that the score sees the instances the evaluation sees.
    Pooled over the images as :class:`~monai_scribble.handlers.ScribbleAccuracy` pools pixels.

    Args:
        min_size: smallest predicted instance kept, in pixels (the evaluation's ``min_size``).
        output_transform: as for any Ignite metric; the result is ``(preds, scribbles)``, sequences (decollated) or
            batches of ``(C, H, W)`` one-hot / logits or ``(1, H, W)`` class ids, and ``(1, H, W)`` scribbles.
    """

    def __init__(self, min_size: int = 64, output_transform=lambda output: output, device: str | torch.device = "cpu") -> None:
        self.min_size = int(min_size)
        super().__init__(output_transform=output_transform, device=device)

    def counts(self, pred: torch.Tensor, scribble: torch.Tensor) -> tuple[int, int]:
        """(matched, total) nucleus strokes of one image, after the post-processing."""
        pred = torch.as_tensor(pred).detach().cpu()
        foreground = pred.argmax(dim=0) if pred.ndim == 3 and pred.shape[0] > 1 else pred.reshape(pred.shape[-2:])
        return scribble_instance_matches(foreground_to_instances(foreground.numpy() != 0, min_size=self.min_size), scribble)
