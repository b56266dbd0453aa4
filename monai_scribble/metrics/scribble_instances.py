"""Share of nucleus scribbles that land in a nucleus of their own: label-free selection that sees merges
(docs/method.md#pitfall-selection).

Pixel accuracy on the scribbles (:func:`~monai_scribble.metrics.scribble_accuracy`) cannot see a prediction
that swells past the nucleus boundaries: background scribbles lie away from nuclei, nucleus scribbles inside
them, so a bloated foreground scores as well as a tight one, although it merges neighbours into one instance
and loses IoU, AJI and F1. Each nucleus scribble stroke marks one nucleus; this metric asks, after the
bundle's post-processing, whether the predicted instance under a stroke is that nucleus alone:

- a stroke (a connected component of nucleus scribble pixels, 8-connected) is *matched* when the predicted
  instance under most of its pixels exists (is not background), holds no pixel of another stroke and no
  background scribble pixel;
- the score is matched strokes / strokes, pooled over the images.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.measure import label as connected_components

from monai_scribble.constants import BACKGROUND, FOREGROUND

__all__ = ["scribble_instance_matches"]


def scribble_instance_matches(instances: np.ndarray | torch.Tensor, scribble: np.ndarray | torch.Tensor) -> tuple[int, int]:
    """(matched, total) nucleus scribble strokes of one image.

    Args:
        instances: ``(H, W)`` (or ``(1, H, W)``) predicted instance ids, ``0`` background (as
            :func:`~monai_scribble.inference.foreground_to_instances` returns).
        scribble: ``(H, W)`` (or ``(1, H, W)``) in {0, 1, IGNORE}.

    Returns:
        Number of strokes whose predicted instance is theirs alone, and number of strokes.
    """
    instances = np.asarray(instances.detach().cpu() if isinstance(instances, torch.Tensor) else instances)
    scribble = np.asarray(scribble.detach().cpu() if isinstance(scribble, torch.Tensor) else scribble)
    instances = instances.reshape(instances.shape[-2:]).astype(np.int64)
    scribble = scribble.reshape(scribble.shape[-2:])
    if instances.shape != scribble.shape:
        raise ValueError(f"instances {instances.shape} and scribble {scribble.shape} differ in size")
    strokes = connected_components(scribble == FOREGROUND, connectivity=2)
    n_strokes = int(strokes.max())
    if n_strokes == 0:
        return 0, 0
    on_stroke = strokes > 0
    n_ids = int(instances.max()) + 1
    # pixel count of every (stroke, instance) pair, one bincount instead of a loop over strokes
    pairs = np.bincount(strokes[on_stroke] * n_ids + instances[on_stroke], minlength=(n_strokes + 1) * n_ids)
    pairs = pairs.reshape(n_strokes + 1, n_ids)[1:]
    majority = pairs.argmax(axis=1)
    strokes_per_instance = (pairs > 0).sum(axis=0)
    touches_background = np.zeros(n_ids, dtype=bool)
    touches_background[np.unique(instances[scribble == BACKGROUND])] = True
    matched = (majority > 0) & (strokes_per_instance[majority] == 1) & ~touches_background[majority]
    return int(matched.sum()), n_strokes
