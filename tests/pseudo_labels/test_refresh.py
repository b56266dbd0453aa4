"""The EMA refresh: schedule, values, eval-mode inference, the pseudo-label quality it measures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events

from monai_scribble.pseudo_labels import EMAPseudoLabelHandler, PseudoLabelConfig, PseudoLabelStore


class ConstantNet(torch.nn.Module):
    """Logits whose foreground probability is 0.9 everywhere; records its mode."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        assert x.shape[-1] % 32 == 0 and x.shape[-2] % 32 == 0
        fg = torch.full_like(x[:, :1], float(np.log(9.0)))
        return torch.cat([torch.zeros_like(fg), fg * self.scale], dim=1)


def test_ema_refresh_schedule_and_values(tmp_path):
    shapes = {"a": (40, 50), "b": (40, 50), "c": (33, 70)}
    store = PseudoLabelStore(tmp_path / "ema", shapes)
    dataset = [{"id": k, "image": torch.zeros(3, *s)} for k, s in shapes.items()]
    net = ConstantNet().train()
    handler = EMAPseudoLabelHandler(store, dataset, net, PseudoLabelConfig(momentum=0.5, period=2), batch_size=2)
    engine = Engine(lambda e, b: None)
    handler.attach(engine)
    refreshed = []
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: refreshed.append((e.state.epoch, store.state["updates"])))
    engine.run([0], max_epochs=5)
    assert refreshed == [(1, 0), (2, 1), (3, 1), (4, 2), (5, 2)]  # after epochs 2 and 4 (the paper's 1, 3 zero-based)
    np.testing.assert_allclose(store.get("c"), 0.9 * (1 - 0.5**2), atol=2e-3)
    assert store.get("c").shape == (33, 70)  # padded to /32 for inference, cropped back
    assert net.training and not any(net.modes)  # inference in eval mode, training mode restored
    assert handler.state_dict() == {"generation": 2, "updates": 2}


@pytest.mark.parametrize("epochs, background_threshold, expected", [
    (1, None, {"fg_coverage": 0.0, "fg_recall": 0.0, "bg_coverage": 0.0, "bg_recall": 0.0}),  # E = 0.45: nothing confident
    (4, None, {"fg_coverage": 1.0, "fg_precision": 0.25, "fg_recall": 1.0, "bg_coverage": 0.0, "bg_recall": 0.0}),  # E = 0.84 > 0.8
    (1, 0.51, {"fg_coverage": 0.0, "fg_recall": 0.0, "bg_coverage": 1.0, "bg_precision": 0.75, "bg_recall": 1.0}),  # E = 0.45 < 0.49
])  # fmt: skip
def test_ema_refresh_measures_pseudo_label_quality_against_label_maps(tmp_path, epochs, background_threshold, expected):
    label = torch.zeros(1, 32, 32, dtype=torch.int32)
    label[:, :16, :16] = 3  # a quarter of the pixels are nucleus
    store = PseudoLabelStore(tmp_path / "ema", {"a": (32, 32)})
    handler = EMAPseudoLabelHandler(store, [{"id": "a", "image": torch.zeros(3, 32, 32), "label": label}], ConstantNet(),
                                    PseudoLabelConfig(momentum=0.5, threshold=0.8, background_threshold=background_threshold, period=1))  # fmt: skip
    engine = Engine(lambda e, b: None)
    handler.attach(engine)
    engine.run([0], max_epochs=epochs)
    measured = {k.removeprefix("pseudo_"): v for k, v in engine.state.metrics.items()}
    assert {k: v for k, v in measured.items() if not np.isnan(v)} == pytest.approx(expected)
    undefined = {"fg_precision", "bg_precision"} - set(expected)  # no pseudo-label of that class: precision undefined
    assert set(measured) - set(expected) == undefined and all(np.isnan(measured[k]) for k in undefined)


def test_disabled_ema_handler_attaches_nothing(tmp_path):
    store = PseudoLabelStore(tmp_path / "ema", {"a": (8, 8)})
    handler = EMAPseudoLabelHandler(store, [{"id": "a", "image": torch.zeros(3, 8, 8)}], ConstantNet(), PseudoLabelConfig(period=1), enabled=False)
    engine = Engine(lambda e, b: None)
    handler.attach(engine)
    engine.run([0], max_epochs=2)
    assert store.state["updates"] == 0
