"""Per-image rows and the summary (NaN-aware); the metric files are tested with their writer (tests/handlers)."""

from __future__ import annotations

import pytest

from monai_scribble.inference import foreground_to_instances
from monai_scribble.metrics import METRIC_NAMES, image_metrics, summarize
from tests.conftest import instance_boxes


def test_perfect_prediction_scores_one_everywhere():
    gt = instance_boxes((40, 40), (7, 5, 20, 5, 20))  # 225 px object
    row = image_metrics(gt > 0, foreground_to_instances(gt > 0), gt)
    for name in METRIC_NAMES:
        assert row[name] == pytest.approx(1.0), name
    assert (row["n_gt"], row["n_pred"], row["intersection"], row["union"]) == (1, 1, 225, 225)


def test_small_predicted_objects_are_removed_before_instance_metrics():
    gt = instance_boxes((40, 40), (1, 5, 20, 5, 20))
    pred = (gt > 0) | (instance_boxes((40, 40), (1, 30, 35, 30, 35)) > 0)  # + 25 px false positive
    row = image_metrics(pred, foreground_to_instances(pred, min_size=64), gt)
    assert row["iou"] == pytest.approx((225 + 1e-6) / (250 + 1e-6))  # raw prediction
    assert row["f1_50"] == pytest.approx(1.0) and row["n_pred"] == 1  # post-processed (< 64 px removed)


def test_summary_skips_nan_and_pools_iou():
    rows = [
        {"id": "a", **{n: 1.0 for n in METRIC_NAMES}, "n_gt": 1, "n_pred": 1, "intersection": 10, "union": 10},
        {"id": "b", **{n: 0.5 for n in METRIC_NAMES}, "mdice": float("nan"), "n_gt": 0, "n_pred": 2, "intersection": 0, "union": 30},
    ]
    summary = summarize(rows)
    assert summary["metrics"]["iou"] == {"mean": 0.75, "std": 0.25, "n": 2}
    assert summary["metrics"]["mdice"] == {"mean": 1.0, "std": 0.0, "n": 1}
    assert summary["dataset_iou"] == pytest.approx(10 / 40)
