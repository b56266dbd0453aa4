from __future__ import annotations

import pytest
import torch

from monai_scribble.engines.presets import METHODS, as_bool, contrastive_terms, ema_preset, optimizer_param_groups
from monai_scribble.losses import MultiscaleContrastiveLoss
from monai_scribble.networks import MultiscaleUNet


@pytest.mark.parametrize(
    "method, features", [("supervised", []), ("scribble_only", []), ("s2l", []), ("s2l_r1", ["d5"]), ("s2l_r4", ["d3"]), ("s2l_r1r4", ["d5", "d3"])]
)
def test_method_terms(method, features):
    assert [t.feature for t in contrastive_terms(method)] == features


def test_paper_hyper_parameters():
    r1, r4 = contrastive_terms("s2l_r1r4")
    assert (r1.delta, r1.temperature, r1.weight, r1.max_samples) == (1, 0.3, 0.5, 6000)
    assert (r4.delta, r4.temperature, r4.weight, r4.in_channels, r4.hidden_channels) == (4, 0.1, 10.0, 64, 32)
    assert ema_preset("dsb_fluo") == (0.2, 0.8) and ema_preset("monuseg") == (0.1, 0.95)
    assert set(METHODS) == {"supervised", "scribble_only", "s2l", "s2l_r1", "s2l_r4", "s2l_r1r4"}


@pytest.mark.parametrize("wrap", [False, True])
@pytest.mark.parametrize("with_heads", [False, True])
def test_optimizer_param_groups(wrap, with_heads):
    network = MultiscaleUNet()
    heads = MultiscaleContrastiveLoss(contrastive_terms("s2l_r1r4")) if with_heads else None
    wrapped = torch.nn.DataParallel(network) if wrap else network  # wrappers (DDP too) are looked through
    groups = optimizer_param_groups(wrapped, heads, 3e-4, 10.0)
    assert [g["lr"] for g in groups] == pytest.approx([3e-4, 3e-3, 3e-4] + ([3e-4] if with_heads else []))
    grouped = [id(p) for g in groups for p in g["params"]]
    expected = list(network.parameters()) + (list(heads.parameters()) if with_heads else [])
    assert len(grouped) == len(set(grouped)) == len(expected) and set(grouped) == {id(p) for p in expected}


def test_unknown_method():
    with pytest.raises(ValueError, match="--method: unknown value 's2l_r2'; choose one of supervised"):
        contrastive_terms("s2l_r2")


@pytest.mark.parametrize("value, expected", [(True, True), ("true", True), ("True", True), ("1", True), (False, False), ("false", False), ("no", False), (0, False)])
def test_command_line_flags(value, expected):
    assert as_bool(value) is expected


@pytest.mark.parametrize(
    "select_by, items, expected",
    [
        ("auto", [{"label": "a.png"}, {"label": "b.png"}], "val_iou"),
        ("auto", [{"label": "a.png"}, {}], "val_scribble_accuracy"),
        ("scribble", [{"label": "a.png"}], "val_scribble_accuracy"),
        ("iou", [{"label": "a.png"}], "val_iou"),
    ],
)
def test_selection_metric(select_by, items, expected):
    from monai_scribble.engines.presets import selection_metric

    assert selection_metric(select_by, items) == expected


@pytest.mark.parametrize("select_by, message", [("iou", "needs a label map"), ("dice", "--select_by: unknown value 'dice'")])
def test_selection_metric_errors(select_by, message):
    from monai_scribble.engines.presets import selection_metric

    with pytest.raises(ValueError, match=message):
        selection_metric(select_by, [{}])


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
    from monai_scribble.engines.presets import training_batch_size

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
    from monai_scribble.engines.presets import drop_batch_of_one

    assert drop_batch_of_one(images, batch_size, world) is expected
