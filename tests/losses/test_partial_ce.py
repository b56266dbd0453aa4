from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from monai_scribble.constants import IGNORE
from monai_scribble.losses import PartialCrossEntropyLoss


def reference(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean CE over labelled pixels, written out per pixel."""
    losses = []
    for b in range(target.shape[0]):
        for y in range(target.shape[1]):
            for x in range(target.shape[2]):
                t = int(target[b, y, x])
                if t != IGNORE:
                    losses.append(-F.log_softmax(logits[b, :, y, x], dim=0)[t])
    return torch.stack(losses).mean()


@pytest.mark.parametrize("labelled_fraction", [0.05, 0.5, 1.0])
@pytest.mark.parametrize("channel_dim", [False, True])
def test_matches_per_pixel_reference(labelled_fraction, channel_dim):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 2, 6, 7, generator=generator)
    target = torch.randint(0, 2, (2, 6, 7), generator=generator)
    target[torch.rand(target.shape, generator=generator) > labelled_fraction] = IGNORE
    target[0, 0, 0] = 1  # at least one labelled pixel
    loss = PartialCrossEntropyLoss()(logits, target[:, None] if channel_dim else target)
    torch.testing.assert_close(loss, reference(logits, target), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_nothing_labelled_is_a_connected_zero(dtype):
    logits = torch.randn(2, 2, 4, 4).to(dtype).requires_grad_()
    loss = PartialCrossEntropyLoss()(logits, torch.full((2, 4, 4), IGNORE))
    assert loss.item() == 0.0 and torch.isfinite(loss)
    loss.backward()
    assert logits.grad is not None and torch.count_nonzero(logits.grad) == 0


def test_gradient_only_from_labelled_pixels():
    logits = torch.randn(1, 2, 3, 3, requires_grad=True)
    target = torch.full((1, 3, 3), IGNORE)
    target[0, 1, 1] = 0
    PartialCrossEntropyLoss()(logits, target).backward()
    grad_norm = logits.grad.abs().sum(dim=1)[0]
    assert grad_norm[1, 1] > 0 and torch.count_nonzero(grad_norm) == 1


def test_bad_target_shape_is_reported():
    with pytest.raises(ValueError, match=r"target shape \(2, 5, 5\) does not match logits \(2, 2, 4, 4\)"):
        PartialCrossEntropyLoss()(torch.randn(2, 2, 4, 4), torch.zeros(2, 5, 5, dtype=torch.long))
