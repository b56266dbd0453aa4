"""The metric files: one CSV row per image (NaN as an empty cell) and the JSON summary with the run's settings."""

from __future__ import annotations

import csv
import json

from monai_scribble.handlers import write_metrics
from monai_scribble.metrics import METRIC_NAMES


def test_metric_files_hold_every_row_and_the_summary(tmp_path):
    rows = [
        {"id": "a", **{n: 1.0 for n in METRIC_NAMES}, "n_gt": 1, "n_pred": 1, "intersection": 10, "union": 10},
        {"id": "b", **{n: 0.5 for n in METRIC_NAMES}, "mdice": float("nan"), "n_gt": 0, "n_pred": 2, "intersection": 0, "union": 30},
    ]
    csv_path, json_path = write_metrics(rows, tmp_path, {"dataset": "synthetic"})
    with open(csv_path) as f:
        table = list(csv.DictReader(f))
    assert [r["id"] for r in table] == ["a", "b"] and table[1]["mdice"] == ""  # NaN: empty cell
    written = json.loads(json_path.read_text())
    assert written["settings"] == {"dataset": "synthetic"} and written["n_images"] == 2
    assert set(METRIC_NAMES) <= set(written["metrics"])
    assert written["metrics"]["mdice"] == {"mean": 1.0, "std": 0.0, "n": 1}  # the NaN row is skipped
