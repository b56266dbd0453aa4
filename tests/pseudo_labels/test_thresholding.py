from __future__ import annotations

import pytest
import torch

from monai_scribble.constants import IGNORE
from monai_scribble.pseudo_labels import PseudoLabelConfig, threshold_pseudo_labels


@pytest.mark.parametrize(
    "ema, scribble, threshold, background_threshold, expected",
    [
        (0.9, IGNORE, 0.8, None, 1),
        (0.1, IGNORE, 0.8, None, 0),
        (0.5, IGNORE, 0.8, None, IGNORE),
        (0.85, IGNORE, 0.95, None, IGNORE),
        (0.99, 0, 0.8, None, IGNORE),  # scribbled pixels are never pseudo-labelled
        (0.01, 1, 0.8, None, IGNORE),
        (0.35, IGNORE, 0.8, 0.6, 0),  # background needs E < 1 - 0.6
        (0.45, IGNORE, 0.8, 0.6, IGNORE),
        (0.35, IGNORE, 0.8, None, IGNORE),  # ... and E < 0.2 with the symmetric rule
        (0.7, IGNORE, 0.8, 0.6, IGNORE),  # the nucleus threshold is unchanged
        (0.15, 0, 0.8, 0.6, IGNORE),
    ],
)
def test_threshold_pseudo_labels(ema, scribble, threshold, background_threshold, expected):
    labels = threshold_pseudo_labels(torch.full((1, 1, 2, 2), ema), torch.full((1, 2, 2), scribble), threshold, background_threshold)
    assert labels.shape == (1, 2, 2) and (labels == expected).all()
    config = PseudoLabelConfig(threshold=threshold, background_threshold=background_threshold)
    assert (config.pseudo_labels(torch.full((1, 1, 2, 2), ema), torch.full((1, 2, 2), scribble)) == labels).all()
