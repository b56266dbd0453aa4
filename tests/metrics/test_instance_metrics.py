"""Foreground IoU, AJI, PQ and detection F1 on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monai_scribble.metrics import aggregated_jaccard_index, dataset_foreground_iou, detection_counts, detection_scores, foreground_iou
from tests.conftest import instance_boxes


GT = instance_boxes((6, 6), (1, 0, 3, 0, 3), (2, 4, 6, 4, 6))  # 9 px and 4 px
PRED = instance_boxes((6, 6), (5, 0, 3, 0, 2), (7, 4, 6, 4, 6), (9, 0, 1, 5, 6))  # 6 px inside g1, exact g2, 1 px false positive


def test_foreground_iou_per_image_and_pooled():
    pred, gt = np.zeros((4, 4), int), np.zeros((4, 4), int)
    pred[0, :4] = 1  # 4 px
    gt[0, 1:] = 3  # 3 px overlap
    gt[1, :3] = 3  # gt 6 px, union 7
    assert foreground_iou(pred, gt) == pytest.approx((3 + 1e-6) / (7 + 1e-6))
    assert foreground_iou(np.zeros((2, 2)), np.zeros((2, 2))) == pytest.approx(1.0)  # smoothed: both empty
    assert dataset_foreground_iou([(pred, gt), (np.zeros((4, 4)), gt)]) == pytest.approx(3 / (7 + 6))


def test_aji_hand_computed():
    # g1 pairs with s5 (∩6, ∪9), g2 with s7 (∩4, ∪4); s9 is unused and adds its 1 px to the union
    assert aggregated_jaccard_index(PRED, GT) == pytest.approx(10 / 14)
    assert aggregated_jaccard_index(GT, GT) == pytest.approx(1.0)
    assert aggregated_jaccard_index(np.zeros_like(GT), GT) == pytest.approx(0.0)  # every object unpaired
    assert math.isnan(aggregated_jaccard_index(np.zeros((3, 3)), np.zeros((3, 3))))


def test_aji_without_background_pixels():
    gt = np.ones((4, 4), int) * 7  # one object covering the image: id 7 is not background
    assert aggregated_jaccard_index(gt * 2, gt) == pytest.approx(1.0)


def test_detection_counts_and_scores_at_iou_half():
    tp, fp, fn, iou_sum = detection_counts(PRED, GT)
    assert (tp, fp, fn) == (2, 1, 0)
    assert iou_sum == pytest.approx(6 / 9 + 1.0, abs=1e-5)
    scores = detection_scores(PRED, GT)
    assert scores["f1_50"] == pytest.approx(2 / 2.5)
    assert scores["pq"] == pytest.approx((6 / 9 + 1) / 2.5, abs=1e-5)
    assert scores["precision_50"] == pytest.approx(2 / 3) and scores["recall_50"] == pytest.approx(1.0)


def test_iou_of_exactly_half_is_not_a_match():
    gt = instance_boxes((4, 4), (1, 0, 2, 0, 2))  # 4 px
    pred = instance_boxes((4, 4), (1, 0, 2, 0, 1))  # 2 px inside: IoU 0.5
    assert detection_counts(pred, gt)[:3] == (0, 1, 1)
