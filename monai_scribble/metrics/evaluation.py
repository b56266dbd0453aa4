"""Per-image evaluation of a prediction against an instance label, and the summary over images (pure functions).

One row per image: the paper's foreground ``iou`` (raw prediction), then, on the post-processed
instances (:func:`~monai_scribble.inference.foreground_to_instances`, computed by the caller),
``mdice_legacy``, ``mdice``, ``aji``, ``pq``, ``f1_50``, ``precision_50``, ``recall_50``. :func:`summarize`
gives mean and std over images (NaN rows skipped and counted) and the dataset-level IoU. The files are
written by :class:`~monai_scribble.handlers.InstanceMetricsWriter`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from monai_scribble.metrics.foreground_iou import foreground_counts, foreground_iou, pooled_iou
from monai_scribble.metrics.instance_metrics import aggregated_jaccard_index, detection_scores
from monai_scribble.metrics.mdice import mdice, mdice_legacy

__all__ = ["METRIC_NAMES", "image_metrics", "summarize"]

METRIC_NAMES = ("iou", "mdice_legacy", "mdice", "aji", "pq", "f1_50", "precision_50", "recall_50")


def image_metrics(foreground: np.ndarray, instances: np.ndarray, gt: np.ndarray, clip_ids: bool = False) -> dict[str, float]:
    """All metrics of one image.

    Args:
        foreground: ``(H, W)`` predicted foreground (argmax; non-zero = nucleus), for the paper's IoU.
        instances: ``(H, W)`` post-processed prediction (instance ids; paper: connected components, objects
            under 64 px removed, holes filled).
        gt: ``(H, W)`` ground-truth instance ids.
        clip_ids: legacy mDice only: clip ground-truth ids to 255 as the original DSB loader did.
    """
    foreground, instances, gt = np.asarray(foreground).squeeze(), np.asarray(instances).squeeze(), np.asarray(gt).squeeze()
    intersection, union = foreground_counts(foreground, gt)
    row = {
        "iou": foreground_iou(foreground, gt),
        "mdice_legacy": mdice_legacy(instances, gt, clip_ids=clip_ids),
        "mdice": mdice(instances, gt),
        "aji": aggregated_jaccard_index(instances, gt),
        **detection_scores(instances, gt),
    }
    row.update(n_gt=int(len(np.unique(gt[gt > 0]))), n_pred=int(instances.max()), intersection=intersection, union=union)
    return row


def summarize(rows: Sequence[Mapping[str, float]]) -> dict:
    """``{"n_images", "metrics": {name: {"mean", "std", "n"}}, "dataset_iou"}`` (NaNs skipped; ``n`` counts the rest)."""
    metrics = {}
    for name in METRIC_NAMES:
        values = np.array([row[name] for row in rows], dtype=float)
        values = values[~np.isnan(values)]
        metrics[name] = {
            "mean": float(values.mean()) if values.size else float("nan"),
            "std": float(values.std()) if values.size else float("nan"),
            "n": int(values.size),
        }
    dataset_iou = pooled_iou((row["intersection"], row["union"]) for row in rows)
    return {"n_images": len(rows), "metrics": metrics, "dataset_iou": dataset_iou}
