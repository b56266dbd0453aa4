from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monai_scribble.constants import IGNORE
from monai_scribble.handlers import ScribbleInstanceAccuracy
from monai_scribble.metrics import scribble_instance_matches


def instance_map() -> np.ndarray:
    """Two predicted nuclei: id 1 at the top left, id 2 a wide one at the bottom."""
    instances = np.zeros((8, 8), dtype=np.int32)
    instances[1:4, 1:4] = 1
    instances[5:8, 1:7] = 2
    return instances


def scribble(nucleus: list[tuple[int, int]], background: list[tuple[int, int]] = ()) -> np.ndarray:
    out = np.full((8, 8), IGNORE, dtype=np.uint8)
    for row, col in nucleus:
        out[row, col] = 1
    for row, col in background:
        out[row, col] = 0
    return out


@pytest.mark.parametrize(
    "scribble_map, expected",
    [
        (scribble([(2, 2)]), (1, 1)),  # one stroke, its own instance
        (scribble([(2, 2), (2, 3)]), (1, 1)),  # two touching pixels are one stroke
        (scribble([(2, 2), (6, 2), (6, 5)]), (1, 3)),  # two strokes share instance 2: a merge, neither counts
        (scribble([(2, 2)], background=[(3, 3)]), (0, 1)),  # background scribble inside the instance
        (scribble([(2, 2)], background=[(0, 7)]), (1, 1)),  # background scribble outside every instance
        (scribble([(4, 6)]), (0, 1)),  # stroke on predicted background
        (scribble([(3, 3), (4, 4), (5, 5), (6, 5)]), (1, 1)),  # one stroke over both instances: the majority's, 2
        (scribble([], background=[(0, 0)]), (0, 0)),  # no nucleus stroke
    ],
)
def test_matches(scribble_map, expected):
    assert scribble_instance_matches(instance_map(), scribble_map) == expected


def test_majority_instance_and_tensor_input():
    # a stroke of three pixels, two on instance 1 and one on background: instance 1 is its own
    result = scribble_instance_matches(torch.from_numpy(instance_map())[None], torch.from_numpy(scribble([(1, 3), (2, 3), (1, 4)]))[None])
    assert result == (1, 1)


def test_size_mismatch():
    with pytest.raises(ValueError, match=r"instances \(8, 8\) and scribble \(4, 4\) differ in size"):
        scribble_instance_matches(instance_map(), np.zeros((4, 4), dtype=np.uint8))


def onehot(foreground: np.ndarray) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.from_numpy(foreground.astype(np.int64)), 2).permute(2, 0, 1).float()


@pytest.mark.parametrize(
    "min_size, expected",
    [
        (1, 2 / 4),  # image 1: 1 of 1 (its instance is its own); image 2: 1 of 3 (two strokes share instance 2)
        (10, 0.0),  # instance 1 (9 px) is removed by the post-processing: the strokes on it land on background
    ],
)
def test_pooled_over_images_after_postprocessing(min_size, expected):
    metric = ScribbleInstanceAccuracy(min_size=min_size)
    foreground = torch.from_numpy(instance_map() > 0)
    metric.update(([onehot(instance_map() > 0)], [torch.from_numpy(scribble([(2, 2)]))[None]]))
    metric.update((foreground[None, None].long(), torch.from_numpy(scribble([(2, 2), (6, 2), (6, 5)]))[None, None]))
    assert metric.compute() == pytest.approx(expected)
    metric.reset()
    assert math.isnan(metric.compute())
