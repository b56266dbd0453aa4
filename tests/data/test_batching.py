from __future__ import annotations

import pytest

from monai_scribble.data.batching import drop_batch_of_one, training_batch_size


@pytest.mark.parametrize("batch_size, images, world, expected", [
    ("auto", 9, 1, 9),      # DSB-BF: one iteration per epoch, as the authors'
    ("auto", 24, 1, 24),    # MoNuSeg
    ("auto", 327, 1, 30),   # DSB-Fluo: the authors' 30
    ("auto", 327, 2, 30),   # per process under DDP
    ("auto", 40, 2, 20),
    ("AUTO", 1, 1, 1),
    (8, 327, 1, 8),
    ("6", 327, 1, 6),
])  # fmt: skip
def test_training_batch_size(batch_size, images, world, expected):
    assert training_batch_size(batch_size, images, world) == expected


@pytest.mark.parametrize("images, batch_size, world, expected", [
    (9, 4, 1, True),     # 4, 4, 1: the batch of one is dropped
    (9, 9, 1, False),
    (10, 3, 1, True),
    (24, 24, 1, False),
    (1, 1, 1, False),    # a single image is never dropped
    (11, 5, 2, True),    # 6 images per process: 5 + 1
])  # fmt: skip
def test_drop_batch_of_one(images, batch_size, world, expected):
    assert drop_batch_of_one(images, batch_size, world) is expected
