"""Foreground -> instances: 8-connectivity, small-object removal, hole filling, optional watershed split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_scribble.inference.postprocessing import ForegroundToInstancesd, foreground_to_instances


def disk(shape, center, radius):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= radius**2


def test_diagonal_pixels_are_one_object_and_small_ones_go():
    mask = np.zeros((20, 20), bool)
    mask[2:10, 2:10] = True  # 64 px: kept (area < 64 is removed)
    mask[10, 10] = True  # touches diagonally: same 8-connected object (65 px)
    mask[15:18, 15:18] = True  # 9 px: removed
    instances = foreground_to_instances(mask)
    assert instances.dtype == np.int32 and instances.max() == 1
    assert (instances > 0).sum() == 65


def test_holes_are_filled_and_ids_are_consecutive():
    mask = np.zeros((30, 30), bool)
    mask[2:12, 2:12] = True
    mask[5:8, 5:8] = False  # hole
    mask[15:28, 15:28] = True
    instances = foreground_to_instances(mask)
    assert sorted(np.unique(instances)) == [0, 1, 2]
    assert (instances == 1).sum() == 100  # hole filled
    assert (foreground_to_instances(mask, fill_holes=False) == 1).sum() == 91


def test_watershed_splits_touching_nuclei_only_when_asked():
    mask = disk((40, 60), (20, 18), 10) | disk((40, 60), (20, 36), 10)  # two touching disks
    assert foreground_to_instances(mask).max() == 1  # the paper's default keeps them merged
    split = foreground_to_instances(mask, watershed_split=True)
    assert split.max() == 2
    assert split[20, 18] != split[20, 36]
    assert ((split > 0) == mask).all()  # no pixel lost


def test_dictionary_transform_takes_class_channels():
    logits = torch.zeros(2, 16, 16)
    logits[1, 2:12, 2:12] = 1.0  # foreground channel wins in a 100 px square
    out = ForegroundToInstancesd(keys="pred")({"pred": logits})["pred"]
    assert out.shape == (1, 16, 16) and int(out.max()) == 1 and int((out > 0).sum()) == 100


def test_bad_shape():
    with pytest.raises(ValueError, match=r"expected a \(H, W\) or \(1, H, W\) foreground mask, got shape \(2, 4, 4\)"):
        foreground_to_instances(np.zeros((2, 4, 4)))
