"""Foreground IoU: the paper's per-image metric and model-selection criterion (docs/method.md#iou).

Per image, on the raw prediction (no post-processing), foreground only, ``G = GT > 0``::

    IoU = (|P ∩ G| + 1e-6) / (|P ∪ G| + 1e-6)

averaged over images. :func:`dataset_foreground_iou` pools the pixel counts over all images instead.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["dataset_foreground_iou", "foreground_counts", "foreground_iou", "pooled_iou"]

SMOOTH = 1e-6


def foreground_counts(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """``(|P ∩ G|, |P ∪ G|)`` of two ``(H, W)`` maps (non-zero = foreground; instance maps are fine)."""
    pred, gt = np.asarray(pred) != 0, np.asarray(gt) != 0
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    return int((pred & gt).sum()), int((pred | gt).sum())


def foreground_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """The paper's smoothed per-image foreground IoU (1.0 when both are empty)."""
    intersection, union = foreground_counts(pred, gt)
    return (intersection + SMOOTH) / (union + SMOOTH)


def pooled_iou(counts: Iterable[tuple[int, int]]) -> float:
    """``Σ intersection / Σ union`` over per-image ``(|P ∩ G|, |P ∪ G|)`` counts (NaN when every union is empty)."""
    intersection = union = 0
    for i, u in counts:
        intersection, union = intersection + int(i), union + int(u)
    return intersection / union if union else float("nan")


def dataset_foreground_iou(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """``Σ|P ∩ G| / Σ|P ∪ G|`` over ``(pred, gt)`` pairs (NaN when every union is empty)."""
    return pooled_iou(foreground_counts(pred, gt) for pred, gt in pairs)
