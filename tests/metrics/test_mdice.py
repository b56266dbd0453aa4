"""mDice, legacy and corrected, on hand-computed tiny cases.

The rules: docs/method.md#mdice-legacy and docs/method.md#pitfall-mdice.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from monai_scribble.metrics import mdice, mdice_legacy, object_dice_scores
from tests.conftest import instance_boxes

EPS = 1e-4


def dice(overlap, m, g):
    return (2 * overlap + EPS) / (m + g + EPS)


INTERIOR = (1, 2, 7, 2, 7)  # 25 px, away from the border of a 12 x 12 image
BORDER = (2, 0, 5, 7, 12)  # 25 px, touches the top and right border


@pytest.mark.parametrize(
    "name, gt, pred, legacy, corrected",
    [
        # mode match on an interior object: 20 of 25 px predicted
        ("match", instance_boxes((12, 12), INTERIOR), instance_boxes((12, 12), (5, 2, 7, 2, 6)), dice(20, 20, 25), dice(20, 20, 25)),
        # quirk 2: an object under 20 px is erased and scores eps/eps = 1; corrected excludes it (no object left: NaN)
        ("small object", instance_boxes((12, 12), (1, 4, 6, 4, 9)), np.zeros((12, 12), np.int32), 1.0, math.nan),
        # quirk 3: a missed interior object erases the border objects, so the poorly predicted border object
        # scores 1 in legacy; corrected: miss = 0 and the border object gets its real Dice (15 of 25 px)
        ("border erasure", instance_boxes((12, 12), INTERIOR, BORDER), instance_boxes((12, 12), (9, 0, 5, 7, 10)),
         (dice(0, 0, 25) + 1.0) / 2, (0.0 + dice(15, 15, 25)) / 2),
        # a missed object touching the border erases itself: legacy 1, corrected 0
        ("missed border object", instance_boxes((12, 12), BORDER), np.zeros((12, 12), np.int32), 1.0, 0.0),
        # false-positive components are never penalised
        ("false positive", instance_boxes((12, 12), INTERIOR), instance_boxes((12, 12), (3, 2, 7, 2, 7), (4, 9, 12, 0, 3)), 1.0, 1.0),
    ],
)  # fmt: skip
def test_hand_computed_cases(name, gt, pred, legacy, corrected):
    assert mdice_legacy(pred, gt) == pytest.approx(legacy, abs=1e-9, nan_ok=True), name
    assert mdice(pred, gt) == pytest.approx(corrected, abs=1e-9, nan_ok=True), name


def test_legacy_mutation_makes_later_border_objects_score_one():
    """Ids fixed up front, map mutated: after a miss, a later (even well-predicted) border object scores 1."""
    gt = instance_boxes((12, 12), INTERIOR, BORDER, (3, 7, 12, 0, 5))  # id 3: 25 px on the bottom/left border
    pred = instance_boxes((12, 12), (8, 7, 12, 0, 3))  # covers 15 of id 3's 25 px, misses ids 1 and 2
    assert object_dice_scores(pred, gt, legacy=True) == pytest.approx([dice(0, 0, 25), 1.0, 1.0])
    assert object_dice_scores(pred, gt) == pytest.approx([0.0, 0.0, dice(15, 15, 25)])


def test_mode_picks_the_component_covering_most_and_smallest_id_on_ties():
    gt = instance_boxes((10, 10), (1, 2, 8, 2, 8))  # 36 px
    pred = instance_boxes((10, 10), (7, 2, 8, 2, 4), (3, 2, 8, 4, 8))  # 12 px and 24 px inside
    assert object_dice_scores(pred, gt) == pytest.approx([dice(24, 24, 36)])
    tie = instance_boxes((10, 10), (7, 2, 8, 2, 5), (3, 2, 8, 5, 8))  # 18 px each: id 3 wins
    assert object_dice_scores(tie, gt) == pytest.approx([dice(18, 18, 36)])


def test_quirk4_clipping_merges_ids_above_255():
    gt = instance_boxes((12, 12), (255, 0, 5, 0, 5), (300, 6, 11, 6, 11))
    pred = gt.copy()
    assert len(object_dice_scores(pred, gt, legacy=True)) == 2
    clipped = object_dice_scores(pred, gt, legacy=True, clip_ids=True)  # one merged object of 50 px
    assert len(clipped) == 1
    assert clipped[0] == pytest.approx(dice(25, 25, 50))


def test_corrected_min_gt_size_is_explicit():
    gt = instance_boxes((12, 12), (1, 4, 6, 4, 9))  # 10 px
    pred = gt.copy()
    assert mdice(pred, gt, min_gt_size=5) == pytest.approx(1.0)
    assert math.isnan(mdice(pred, gt))


def test_shape_mismatch():
    with pytest.raises(ValueError, match=r"same shape, got \(4, 4\) and \(4, 5\)"):
        mdice(np.zeros((4, 4)), np.zeros((4, 5)))


def reference_object_dice(pred, gt, legacy):
    """The whole-image formulation of the paper's code (slow, obviously faithful) to check the fast one."""
    gt = gt.astype(np.int64).copy()
    scores = []
    for i in [i for i in np.unique(gt) if i > 0]:
        g = gt == i
        if not legacy and g.sum() < 20:
            continue
        if legacy and g.sum() < 20:
            gt[g] = 0
            g = gt == i
        inside = pred[g][pred[g] > 0]
        m = (pred == np.bincount(inside).argmax()) if inside.size else None
        if m is None and legacy:
            border = np.concatenate([gt[0], gt[-1], gt[:, 0], gt[:, -1]])
            gt[np.isin(gt, border[border > 0])] = 0
            g = gt == i
        if m is None and not legacy:
            scores.append(0.0)
            continue
        overlap, m_area = (0, 0) if m is None else (int((m & g).sum()), int(m.sum()))
        scores.append((2 * overlap + EPS) / (m_area + int(g.sum()) + EPS))
    return scores


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("legacy", [True, False])
def test_fast_scores_equal_the_whole_image_formulation(seed, legacy):
    from skimage.measure import label

    rng = np.random.default_rng(seed)
    gt = label(rng.random((48, 48)) > 0.55, connectivity=1).astype(np.int32)  # many small and border objects
    pred = label(rng.random((48, 48)) > 0.5, connectivity=2).astype(np.int32)
    assert object_dice_scores(pred, gt, legacy=legacy) == pytest.approx(reference_object_dice(pred, gt, legacy))
