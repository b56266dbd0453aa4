from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from monai.engines.utils import IterationEvents

from monai_scribble.constants import IGNORE
from monai_scribble.engines import ScribbleTrainer
from monai_scribble.pseudo_labels import PseudoLabelConfig


class TinyNet(torch.nn.Module):
    """1x1-conv 'network' with the MultiscaleUNet interface; ``poison`` makes its logits NaN."""

    def __init__(self, poison: bool = False) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1)
        self.poison = poison

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y * float("nan") if self.poison else y

    def forward_features(self, x: torch.Tensor):
        return self.forward(x), {}


def batches(n: int = 2) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    scribble = torch.full((2, 1, 8, 8), IGNORE)
    scribble[:, :, 0, :4], scribble[:, :, 7, :4] = 0, 1
    ema = torch.rand(2, 1, 8, 8, generator=generator)
    return [{"image": torch.randn(2, 3, 8, 8, generator=generator), "scribble": scribble, "ema": ema} for _ in range(n)]


@pytest.mark.parametrize("warmup, expected_terms", [
    (5, {"loss", "scribble_ce"}),
    (0, {"loss", "scribble_ce", "pseudo_ce", "pseudo_fg_share", "pseudo_bg_share"}),
])  # fmt: skip
def test_terms_per_stage(warmup, expected_terms):
    net = TinyNet()
    trainer = ScribbleTrainer("cpu", 1, batches(), net, torch.optim.SGD(net.parameters(), lr=0.1), warmup_epochs=warmup,
                              pseudo_labels=PseudoLabelConfig(threshold=0.6), decollate=False)
    trainer.run()
    assert set(trainer.state.output) == expected_terms
    out = trainer.state.output
    if "pseudo_ce" in out:
        torch.testing.assert_close(out["loss"], out["scribble_ce"] + 0.5 * out["pseudo_ce"])
        ema, scribble = batches()[-1]["ema"], batches()[-1]["scribble"]  # the last batch: its pseudo-labels, by hand
        unscribbled = scribble == IGNORE
        torch.testing.assert_close(out["pseudo_fg_share"], ((ema > 0.6) & unscribbled).float().mean())
        torch.testing.assert_close(out["pseudo_bg_share"], ((ema < 0.4) & unscribbled).float().mean())


def test_non_finite_loss_stops_with_the_terms():
    net = TinyNet(poison=True)
    trainer = ScribbleTrainer("cpu", 1, batches(), net, torch.optim.SGD(net.parameters(), lr=0.1), warmup_epochs=0, decollate=False)
    with pytest.raises(FloatingPointError, match=r"non-finite loss at epoch 1, iteration 1: scribble_ce=nan, pseudo_ce=nan"):
        trainer.run()


@pytest.mark.parametrize("use_pseudo_labels, stages", [(True, ["warmup", "main"]), (False, ["warmup", "warmup"])])
def test_the_step_fires_ignites_iteration_events_in_order(use_pseudo_labels, stages):
    net = TinyNet()
    trainer = ScribbleTrainer("cpu", 2, batches(), net, torch.optim.SGD(net.parameters(), lr=0.1), warmup_epochs=1,
                              use_pseudo_labels=use_pseudo_labels, decollate=False)  # fmt: skip
    fired, seen_stages = [], []
    events = [IterationEvents.FORWARD_COMPLETED, IterationEvents.LOSS_COMPLETED, IterationEvents.BACKWARD_COMPLETED, IterationEvents.MODEL_COMPLETED]
    for event in events:
        trainer.add_event_handler(event, lambda engine, name=event.name: fired.append(name))
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda engine: seen_stages.append(engine.state.stage))
    trainer.run()
    assert fired == [e.name for e in events] * 4  # every iteration (2 epochs x 2 batches), in the step's order
    assert seen_stages == stages  # a method without pseudo-labels never switches to the main stage
