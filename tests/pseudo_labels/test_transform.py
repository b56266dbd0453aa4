from __future__ import annotations

import numpy as np
import pytest

from monai_scribble.pseudo_labels import LoadPseudoLabelMapd, PseudoLabelConfig, PseudoLabelStore

SHAPES = {"a": (4, 5), "b": (3, 3)}


def test_load_transform_reads_fresh_values(tmp_path):
    store = PseudoLabelStore(tmp_path / "ema", SHAPES)
    load = LoadPseudoLabelMapd(tmp_path / "ema")
    assert load({"id": "a"})["ema"].shape == (1, 4, 5)
    store.update({k: np.ones(s, np.float32) for k, s in SHAPES.items()}, 1.0)
    assert float(load({"id": "a"})["ema"].min()) == 1.0


@pytest.mark.parametrize("updates", [1, 3])
def test_bias_correction(tmp_path, updates):
    store = PseudoLabelStore(tmp_path / "ema", SHAPES)
    for _ in range(updates):
        store.update({k: np.full(s, 0.9, np.float32) for k, s in SHAPES.items()}, 0.2)
    plain = LoadPseudoLabelMapd(tmp_path / "ema", PseudoLabelConfig(momentum=0.2))({"id": "a"})["ema"]
    corrected = LoadPseudoLabelMapd(tmp_path / "ema", PseudoLabelConfig(momentum=0.2, bias_correction=True))({"id": "a"})["ema"]
    assert float(plain.mean()) == pytest.approx(0.9 * (1 - 0.8**updates), abs=2e-3)
    assert float(corrected.mean()) == pytest.approx(0.9, abs=2e-3)  # the zero initialisation is undone
