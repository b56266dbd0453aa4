"""Validation and model selection: the metric that picks ``model.pt`` (full-mask IoU or a label-free one) and how often."""

from __future__ import annotations

import logging

from monai_scribble.errors import ArgumentError

__all__ = ["LABEL_FREE_MODELS", "SELECTION_METRICS", "label_free_metrics", "selection_metric", "validation_interval", "validation_key_metric"]

SELECTION_METRICS = {"iou": "val_iou", "scribble": "val_scribble_accuracy", "scribble_instances": "val_scribble_instances"}
"""``--select_by`` -> the validation metric it selects by."""

LABEL_FREE_MODELS = {"val_scribble_accuracy": "model_by_scribble.pt", "val_scribble_instances": "model_by_scribble_instances.pt"}
"""Label-free metric -> the model file a run selecting by validation IoU keeps beside ``model.pt`` for it."""


def selection_metric(select_by: str, validation_items: list[dict]) -> str:
    """Name of the model-selection metric.

    ``"iou"``: per-image foreground IoU on full masks (the paper's selection; needs labels);
    ``"scribble"``: pixel accuracy on the validation scribbles (what a lab without full masks can do);
    ``"scribble_instances"``: share of the validation nucleus strokes whose predicted instance is theirs alone
    (label-free too, and it sees merged nuclei, which pixel accuracy cannot: docs/method.md#pitfall-selection);
    ``"auto"``: ``"iou"`` when every validation item has a label map, else ``"scribble"``.
    """
    if select_by == "auto":
        select_by = "iou" if validation_items and all(item.get("label") for item in validation_items) else "scribble"
    if select_by not in SELECTION_METRICS:
        raise ArgumentError("select_by", f"unknown value {select_by!r}", "choose auto, iou, scribble or scribble_instances")
    if select_by == "iou" and not all(item.get("label") for item in validation_items):
        raise ArgumentError("select_by", "'iou' needs a label map for every validation image", "use scribble, scribble_instances or auto")
    return SELECTION_METRICS[select_by]


def validation_key_metric(metric_name: str, min_size: int = 64) -> dict:
    """``{metric_name: ignite metric}`` for the validation evaluator (see :func:`selection_metric`); ``min_size`` is the
    post-processing's smallest instance, for ``val_scribble_instances``."""
    from monai.handlers import MeanIoUHandler, from_engine

    from monai_scribble.handlers import ScribbleAccuracy, ScribbleInstanceAccuracy

    if metric_name == "val_iou":
        return {metric_name: MeanIoUHandler(include_background=False, output_transform=from_engine(["pred", "label"]))}
    if metric_name == "val_scribble_instances":
        return {metric_name: ScribbleInstanceAccuracy(min_size=min_size, output_transform=from_engine(["pred", "val_scribble"]))}
    return {metric_name: ScribbleAccuracy(output_transform=from_engine(["pred", "val_scribble"]))}


def label_free_metrics(metric_name: str, min_size: int = 64) -> dict:
    """The label-free selection metrics, computed beside ``metric_name`` when that is full-mask IoU (else ``{}``).

    A run that selects ``model.pt`` by validation IoU also keeps the models the validation scribbles alone would
    have picked (:data:`LABEL_FREE_MODELS`), so that the cost of selecting without masks is measured on the same
    run (README: How robust is it?).
    """
    if metric_name != SELECTION_METRICS["iou"]:
        return {}
    return {name: metric for label_free in LABEL_FREE_MODELS for name, metric in validation_key_metric(label_free, min_size).items()}


def validation_interval(val_interval: int, validation_items: list[dict] | None) -> int:
    """``val_interval``, or "never" (a huge interval, logged) when there are no validation images."""
    if validation_items:
        return int(val_interval)
    logging.getLogger(__name__).warning("no validation images: validation is off and the final network is saved as model.pt")
    return 2**31 - 1
