"""Metrics: foreground IoU, legacy and corrected mDice, AJI, PQ, detection F1, scribble accuracy, scribble
instance matches.

Definitions and the paper's protocol: docs/method.md#evaluation.
"""

from __future__ import annotations

from monai_scribble.metrics.evaluation import METRIC_NAMES, image_metrics, summarize
from monai_scribble.metrics.foreground_iou import dataset_foreground_iou, foreground_iou
from monai_scribble.metrics.instance_metrics import aggregated_jaccard_index, detection_counts, detection_scores
from monai_scribble.metrics.mdice import mdice, mdice_legacy, object_dice_scores
from monai_scribble.metrics.scribble_accuracy import scribble_accuracy
from monai_scribble.metrics.scribble_instances import scribble_instance_matches

__all__ = [
    "METRIC_NAMES",
    "aggregated_jaccard_index",
    "dataset_foreground_iou",
    "detection_counts",
    "detection_scores",
    "foreground_iou",
    "image_metrics",
    "mdice",
    "mdice_legacy",
    "object_dice_scores",
    "scribble_accuracy",
    "scribble_instance_matches",
    "summarize",
]
