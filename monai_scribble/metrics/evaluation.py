"""Per-image evaluation of a foreground prediction against an instance label, and the summary files.

One row per image: the paper's foreground ``iou`` (raw prediction), then, on the post-processed
instances (:func:`~monai_scribble.data.postprocessing.foreground_to_instances`), ``mdice_legacy``,
``mdice``, ``aji``, ``pq``, ``f1_50``, ``precision_50``, ``recall_50``. :func:`summarize` gives mean and
std over images (NaN rows skipped and counted) and the dataset-level IoU.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from monai_scribble.data.image_io import atomic_write
from monai_scribble.data.postprocessing import foreground_to_instances
from monai_scribble.metrics.foreground_iou import foreground_counts, foreground_iou, pooled_iou
from monai_scribble.metrics.instance_metrics import aggregated_jaccard_index, detection_scores
from monai_scribble.metrics.mdice import mdice, mdice_legacy

__all__ = ["METRIC_NAMES", "image_metrics", "summarize", "write_metrics"]

METRIC_NAMES = ("iou", "mdice_legacy", "mdice", "aji", "pq", "f1_50", "precision_50", "recall_50")


def image_metrics(
    foreground: np.ndarray,
    gt: np.ndarray,
    min_size: int = 64,
    watershed_split: bool = False,
    clip_ids: bool = False,
    instances: np.ndarray | None = None,
) -> dict[str, float]:
    """All metrics of one image.

    Args:
        foreground: ``(H, W)`` predicted foreground (argmax; non-zero = nucleus).
        gt: ``(H, W)`` ground-truth instance ids.
        min_size, watershed_split: post-processing (paper: 64, off).
        clip_ids: legacy mDice only: clip ground-truth ids to 255 as the original DSB loader did.
        instances: the post-processed prediction, if already computed.
    """
    foreground, gt = np.asarray(foreground).squeeze(), np.asarray(gt).squeeze()
    if instances is None:
        instances = foreground_to_instances(foreground, min_size=min_size, watershed_split=watershed_split)
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


def _json_safe(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def write_metrics(rows: Sequence[Mapping], output_dir: str | os.PathLike, settings: Mapping | None = None) -> tuple[Path, Path]:
    """Write ``metrics.csv`` (one row per image, ``id`` first) and ``metrics.json`` (summary + ``settings``), atomically.

    NaN (undefined, e.g. an image without nuclei) is an empty CSV cell and ``null`` in JSON.
    """
    output_dir = Path(output_dir)
    columns = ["id", *METRIC_NAMES, "n_gt", "n_pred", "intersection", "union"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    csv_path = atomic_write(output_dir / "metrics.csv", lambda tmp: Path(tmp).write_text(buffer.getvalue()))
    summary = {**summarize(rows), "settings": dict(settings or {})}
    text = json.dumps(_json_safe(summary), indent=1)
    json_path = atomic_write(output_dir / "metrics.json", lambda tmp: Path(tmp).write_text(text))
    return csv_path, json_path
