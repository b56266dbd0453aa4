from __future__ import annotations

import math

import pytest
import torch

from monai_scribble.constants import IGNORE
from monai_scribble.handlers import ScribbleAccuracy
from monai_scribble.metrics import scribble_accuracy


def onehot(ids: list[list[int]]) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(ids), 2).permute(2, 0, 1).float()


@pytest.mark.parametrize(
    "pred, scribble, expected",
    [
        (onehot([[0, 1], [1, 1]]), torch.tensor([[[0, 1], [IGNORE, 0]]]), (2, 3)),
        (torch.tensor([[0, 0], [0, 0]]), torch.tensor([[IGNORE, IGNORE], [IGNORE, 1]]), (0, 1)),
        (torch.tensor([[[1, 1], [1, 1]]]), torch.full((1, 2, 2), IGNORE), (0, 0)),
    ],
)
def test_counts(pred, scribble, expected):
    assert scribble_accuracy(pred, scribble) == expected


def test_pooled_over_images_and_nan_without_scribbles():
    metric = ScribbleAccuracy()
    metric.update(([onehot([[0, 1], [1, 1]])], [torch.tensor([[[0, 1], [IGNORE, 0]]])]))  # 2 / 3
    metric.update(([onehot([[1, 1], [1, 1]])], [torch.tensor([[[1, IGNORE], [IGNORE, IGNORE]]])]))  # 1 / 1
    assert metric.compute() == pytest.approx(3 / 4)
    metric.reset()
    assert math.isnan(metric.compute())


def test_size_mismatch():
    with pytest.raises(ValueError, match=r"prediction \(2, 2\) and scribble \(3, 3\) differ in size"):
        scribble_accuracy(onehot([[0, 1], [1, 1]]), torch.zeros(1, 3, 3))
