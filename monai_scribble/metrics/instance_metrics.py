"""Instance-level metrics: AJI, panoptic quality and detection F1 at IoU 0.5 (docs/method.md#ext-metrics).

- AJI (Kumar et al., IEEE TMI 2017): every ground-truth object is paired with the predicted object of
  highest IoU (a prediction may serve several objects); ``AJI = Σ|G ∩ S| / (Σ|G ∪ S| + Σ|unused S|)``,
  unpaired ground truth adding its area to the denominator.
- PQ, and precision / recall / F1 at IoU > 0.5 with one-to-one matching (unique by construction above
  0.5): MONAI's :func:`monai.metrics.compute_panoptic_quality` confusion counts ``tp, fp, fn, ΣIoU``;
  ``F1 = tp / (tp + (fp + fn) / 2)`` (the recognition quality), ``PQ = ΣIoU / (tp + (fp + fn) / 2)``.

Both maps are ``(H, W)`` instance ids (0 background). Empty-vs-empty images give NaN (no objects to score).
"""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import compute_panoptic_quality

__all__ = ["aggregated_jaccard_index", "check_instance_maps", "detection_counts", "detection_scores"]


def check_instance_maps(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both maps as int64 ``(H, W)`` arrays; ``ValueError`` quoting the shapes unless they are 2-D and equal."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"expected two (H, W) instance maps of the same shape, got {pred.shape} and {gt.shape}")
    return pred.astype(np.int64), gt.astype(np.int64)


def _consecutive_ids(instances: np.ndarray) -> np.ndarray:
    """Ids renumbered 1..N in sorted order, 0 kept as background (even when the map has no 0)."""
    inverse = np.unique(np.concatenate([[0], instances.ravel()]), return_inverse=True)[1]
    return inverse[1:].reshape(instances.shape)


def aggregated_jaccard_index(pred: np.ndarray, gt: np.ndarray) -> float:
    """AJI of one image (Kumar et al. 2017); NaN when both maps are empty."""
    pred, gt = check_instance_maps(pred, gt)
    pred, gt = _consecutive_ids(pred), _consecutive_ids(gt)
    n_pred, n_gt = int(pred.max()) + 1, int(gt.max()) + 1
    joint = np.bincount((gt * n_pred + pred).ravel(), minlength=n_gt * n_pred).reshape(n_gt, n_pred)
    gt_area, pred_area = joint.sum(axis=1), joint.sum(axis=0)
    if n_gt == 1 and n_pred == 1:
        return float("nan")
    intersection = joint[1:, 1:]
    union = gt_area[1:, None] + pred_area[None, 1:] - intersection
    iou = np.divide(intersection, union, out=np.zeros(intersection.shape, float), where=union > 0)
    total_intersection = total_union = 0
    used = np.zeros(n_pred - 1, dtype=bool)
    for g in range(n_gt - 1):
        if intersection.shape[1] and iou[g].max() > 0:
            s = int(iou[g].argmax())
            total_intersection += int(intersection[g, s])
            total_union += int(union[g, s])
            used[s] = True
        else:
            total_union += int(gt_area[g + 1])
    total_union += int(pred_area[1:][~used].sum())
    return total_intersection / total_union if total_union else float("nan")


def detection_counts(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int, float]:
    """``(tp, fp, fn, sum of matched IoUs)`` at IoU > 0.5 (MONAI's panoptic-quality confusion counts)."""
    pred, gt = check_instance_maps(pred, gt)
    counts = compute_panoptic_quality(torch.from_numpy(pred), torch.from_numpy(gt), remap=True, output_confusion_matrix=True)
    tp, fp, fn, iou_sum = (float(v) for v in counts)
    return int(tp), int(fp), int(fn), iou_sum


def detection_scores(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """``pq``, ``f1_50``, ``precision_50``, ``recall_50`` of one image (NaN where undefined)."""
    tp, fp, fn, iou_sum = detection_counts(pred, gt)
    nan = float("nan")
    denominator = tp + 0.5 * (fp + fn)
    return {
        "pq": iou_sum / denominator if denominator else nan,
        "f1_50": tp / denominator if denominator else nan,
        "precision_50": tp / (tp + fp) if tp + fp else nan,
        "recall_50": tp / (tp + fn) if tp + fn else nan,
    }
