from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_scribble.constants import IGNORE

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "selection_study.py"
sys.path.insert(0, str(PATH.parent))
spec = importlib.util.spec_from_file_location("selection_study", PATH)
selection_study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(selection_study)


def item() -> tuple[torch.Tensor, dict]:
    """A 16 x 16 image with two nuclei (label 1, 2), a stroke in each and background scribble in a corner; the
    probability covers nucleus 1 only, at 0.9."""
    label = np.zeros((16, 16), dtype=np.int32)
    label[2:8, 2:8], label[9:15, 9:15] = 1, 2
    scribble = np.full((16, 16), IGNORE, dtype=np.uint8)
    scribble[4, 3:7] = scribble[12, 10:14] = 1
    scribble[0, 12:16] = 0
    probability = torch.full((16, 16), 0.1)
    probability[2:8, 2:8] = 0.9
    return probability, {"label": label[None], "scribble": torch.from_numpy(scribble)[None]}


def test_validation_scores_of_one_prediction():
    probability, data = item()
    scores, ema = selection_study.validation_scores([(probability, probability > 0.5, data)], None, momentum=0.2, min_size=1)
    assert scores["val_iou"] == pytest.approx(0.5)  # 36 px predicted of 72 px nuclei, none outside
    assert scores["scribble_accuracy"] == pytest.approx(8 / 12)  # the second stroke (4 px) is missed
    assert scores["balanced_scribble_accuracy"] == pytest.approx((4 / 4 + 4 / 8) / 2)
    assert scores["scribble_instances"] == pytest.approx(1 / 2)
    assert scores["scribble_nll"] == pytest.approx(-(8 * -math.log(0.9) + 4 * -math.log(0.1)) / 12, rel=1e-5)
    assert scores["confidence"] == pytest.approx(0.9)
    assert math.isnan(scores["ema_agreement"])  # no earlier validation
    flipped = 1 - probability
    scores, ema = selection_study.validation_scores([(flipped, flipped > 0.5, data)], ema, momentum=0.2, min_size=1)
    assert scores["ema_agreement"] == 0.0  # every pixel disagrees with the average, still dominated by the first
    assert torch.allclose(ema[0], 0.2 * flipped + 0.8 * probability)


@pytest.mark.parametrize(
    "values, expected_epoch",
    [
        ([0.2, 0.5, 0.4], 20),
        ([0.5, 0.5, 0.4], 10),  # first on ties, as the bundle's BestModelSaver
        ([float("nan"), 0.1, 0.3], 30),  # NaN is never chosen
    ],
)
def test_choose(values, expected_epoch):
    rows = [{"epoch": 10 * (i + 1), "score": value} for i, value in enumerate(values)]
    assert selection_study.choose(rows, "score")["epoch"] == expected_epoch
