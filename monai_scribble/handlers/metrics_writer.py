"""Evaluator handler: per-image instance metrics, written as ``metrics.csv`` / ``metrics.json`` at the end.

Written here rather than with MONAI's ``MetricsSaver``, which saves one file per metric: our files hold one row
per image with every metric, and a summary with the dataset-level IoU and the run's settings.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from ignite.engine import Engine, Events

from monai_scribble.data.image_io import read_image, write_png
from monai_scribble.inference.postprocessing import foreground_to_instances
from monai_scribble.metrics.evaluation import METRIC_NAMES, image_metrics, summarize
from monai_scribble.utils.atomic import atomic_write
from monai_scribble.visualize import contour_overlay

__all__ = ["InstanceMetricsWriter", "write_metrics"]


class InstanceMetricsWriter:
    """Score every evaluated image and write the metric files when the evaluator completes.

    Expects a decollating evaluator (MONAI's default): outputs with ``pred`` (``(1, H, W)`` class ids after
    argmax) and ``label`` (``(1, H, W)`` instance ids); the image ``id`` comes from the batch.

    Args:
        output_dir: folder of ``metrics.csv`` and ``metrics.json``.
        min_size, watershed_split: instance post-processing (paper: 64, off).
        clip_ids: legacy mDice: clip GT ids to 255 (the original DSB loader).
        settings: recorded in ``metrics.json`` (dataset, split, checkpoint, ...).
        save_overlays: also write ``<output_dir>/overlays/<id>_overlay.png`` (predicted nucleus contours on the
            image, :func:`~monai_scribble.visualize.contour_overlay`).
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        min_size: int = 64,
        watershed_split: bool = False,
        clip_ids: bool = False,
        settings: Mapping | None = None,
        save_overlays: bool = False,
        pred_key: str = "pred",
        label_key: str = "label",
        id_key: str = "id",
    ) -> None:
        self.output_dir = output_dir
        self.min_size = int(min_size)
        self.watershed_split = bool(watershed_split)
        self.clip_ids = bool(clip_ids)
        self.settings = dict(settings or {})
        self.save_overlays = bool(save_overlays)
        self.keys = (pred_key, label_key, id_key)
        self.rows: list[dict] = []
        self.logger = logging.getLogger(__name__)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda _: self.rows.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.score)
        engine.add_event_handler(Events.COMPLETED, self.write)

    def score(self, engine: Engine) -> None:
        pred_key, label_key, id_key = self.keys
        for sample, item in zip(engine.state.batch, engine.state.output):  # decollated: one dict per image
            pred = torch.as_tensor(item[pred_key]).detach().cpu().numpy()
            label = torch.as_tensor(item[label_key]).detach().cpu().numpy()
            instances = foreground_to_instances(pred, self.min_size, watershed_split=self.watershed_split)
            row = image_metrics(pred, instances, label, self.clip_ids)
            self.rows.append({"id": str(sample[id_key]), **row})
            if self.save_overlays:
                source = sample["image"].meta["filename_or_obj"]
                overlay = contour_overlay(read_image(source), instances)
                write_png(Path(self.output_dir) / "overlays" / f"{sample[id_key]}_overlay.png", overlay)

    def write(self, engine: Engine) -> None:
        csv_path, json_path = write_metrics(self.rows, self.output_dir, self.settings)
        means = summarize(self.rows)["metrics"]
        text = ", ".join(f"{name} {means[name]['mean']:.4f}" for name in METRIC_NAMES[:6])
        self.logger.info("%d images: mean %s; wrote %s and %s", len(self.rows), text, csv_path, json_path)


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
