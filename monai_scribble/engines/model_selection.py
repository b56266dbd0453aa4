"""Validation and model selection: the metric that picks ``model.pt`` (full-mask IoU or scribble accuracy) and how often."""

from __future__ import annotations

import logging

from monai_scribble.errors import ArgumentError

__all__ = ["SELECTION_METRICS", "label_free_metrics", "selection_metric", "validation_interval", "validation_key_metric"]

SELECTION_METRICS = {"iou": "val_iou", "scribble": "val_scribble_accuracy"}
"""``--select_by`` -> the validation metric it selects by."""


def selection_metric(select_by: str, validation_items: list[dict]) -> str:
    """Name of the model-selection metric.

    ``"iou"``: per-image foreground IoU on full masks (the paper's selection; needs labels);
    ``"scribble"``: pixel accuracy on the validation scribbles (what a lab without full masks can do);
    ``"auto"``: ``"iou"`` when every validation item has a label map, else ``"scribble"``.
    """
    if select_by == "auto":
        select_by = "iou" if validation_items and all(item.get("label") for item in validation_items) else "scribble"
    if select_by not in SELECTION_METRICS:
        raise ArgumentError("select_by", f"unknown value {select_by!r}", "choose auto, iou or scribble")
    if select_by == "iou" and not all(item.get("label") for item in validation_items):
        raise ArgumentError("select_by", "'iou' needs a label map for every validation image", "use scribble or auto")
    return SELECTION_METRICS[select_by]


def validation_key_metric(metric_name: str) -> dict:
    """``{metric_name: ignite metric}`` for the validation evaluator (see :func:`selection_metric`)."""
    from monai.handlers import MeanIoUHandler, from_engine

    from monai_scribble.handlers import ScribbleAccuracy

    if metric_name == "val_iou":
        return {metric_name: MeanIoUHandler(include_background=False, output_transform=from_engine(["pred", "label"]))}
    return {metric_name: ScribbleAccuracy(output_transform=from_engine(["pred", "val_scribble"]))}


def label_free_metrics(metric_name: str) -> dict:
    """The label-free selection metric, computed beside ``metric_name`` when that is full-mask IoU (else ``{}``).

    A run that selects ``model.pt`` by validation IoU also keeps ``model_by_scribble.pt``, the model validation
    scribbles alone would have picked, so that the cost of selecting without masks is measured on the same run
    (README: How robust is it?).
    """
    return validation_key_metric(SELECTION_METRICS["scribble"]) if metric_name == SELECTION_METRICS["iou"] else {}


def validation_interval(val_interval: int, validation_items: list[dict] | None) -> int:
    """``val_interval``, or "never" (a huge interval, logged) when there are no validation images."""
    if validation_items:
        return int(val_interval)
    logging.getLogger(__name__).warning("no validation images: validation is off and the final network is saved as model.pt")
    return 2**31 - 1
