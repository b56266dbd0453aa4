from __future__ import annotations

import pytest

from monai_scribble.engines.methods import METHODS, contrastive_terms


@pytest.mark.parametrize(
    "method, features", [("supervised", []), ("scribble_only", []), ("s2l", []), ("s2l_r1", ["d5"]), ("s2l_r4", ["d3"]), ("s2l_r1r4", ["d5", "d3"])]
)
def test_method_terms(method, features):
    assert [t.feature for t in contrastive_terms(method)] == features


def test_paper_hyper_parameters():
    r1, r4 = contrastive_terms("s2l_r1r4")
    assert (r1.delta, r1.temperature, r1.weight, r1.max_samples) == (1, 0.3, 0.5, 6000)
    assert (r4.delta, r4.temperature, r4.weight, r4.in_channels, r4.hidden_channels) == (4, 0.1, 10.0, 64, 32)
    assert set(METHODS) == {"supervised", "scribble_only", "s2l", "s2l_r1", "s2l_r4", "s2l_r1r4"}


def test_unknown_method():
    with pytest.raises(ValueError, match="--method: unknown value 's2l_r2'; choose one of supervised"):
        contrastive_terms("s2l_r2")
