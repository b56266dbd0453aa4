"""The one config of the EMA loop: presets, command-line values, range checks named by their bundle id."""

from __future__ import annotations

import pytest
import torch

from monai_scribble.errors import ArgumentError
from monai_scribble.pseudo_labels import PseudoLabelConfig


def test_command_line_strings_are_converted():
    config = PseudoLabelConfig("0.1", "0.95", "0.6", "5", "true")
    assert config == PseudoLabelConfig(0.1, 0.95, 0.6, 5, True)


@pytest.mark.parametrize("settings, message", [
    ({"momentum": 0}, "--ema_momentum: must be a number in (0, 1], got 0"),
    ({"threshold": 0.5}, "--ema_threshold: must be a number in (0.5, 1), got 0.5"),
    ({"background_threshold": 1.0}, "--ema_background_threshold: must be a number in (0.5, 1), got 1.0"),
    ({"period": 0}, "--ema_period: must be an integer >= 1, got 0"),
    ({"bias_correction": "maybe"}, "--ema_bias_correction: must be true or false, got 'maybe'"),
])  # fmt: skip
def test_out_of_range_values_are_named_by_their_bundle_id(settings, message):
    with pytest.raises(ArgumentError) as caught:
        PseudoLabelConfig(**settings)
    assert str(caught.value) == message


@pytest.mark.parametrize("bias_correction, updates, expected", [(False, 3, 0.488), (True, 0, 0.488), (True, 3, 0.488 / (1 - 0.8**3))])
def test_read_corrects_the_zero_initialisation_only_when_asked(bias_correction, updates, expected):
    ema = torch.full((1, 2, 2), 0.488)
    read = PseudoLabelConfig(momentum=0.2, bias_correction=bias_correction).read(ema.clone(), updates)
    torch.testing.assert_close(read, torch.full((1, 2, 2), min(expected, 1.0)))
