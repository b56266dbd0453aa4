from __future__ import annotations

import pytest
import torch

from monai_scribble.engines.methods import contrastive_terms
from monai_scribble.engines.optimizer import optimizer_param_groups
from monai_scribble.losses import MultiscaleContrastiveLoss
from monai_scribble.networks import MultiscaleUNet


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
