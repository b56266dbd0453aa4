"""Switch between Scribble2Label's warm-up and main stage (Oh et al. 2022, Sec. 2.1; docs/method.md#training-loop)."""

from __future__ import annotations

import logging

from ignite.engine import Engine, Events

__all__ = ["StageSwitchHandler", "WARMUP", "MAIN"]

WARMUP = "warmup"
MAIN = "main"


class StageSwitchHandler:
    """Set ``engine.state.stage`` to ``"warmup"`` for the first ``warmup_epochs`` epochs, then ``"main"``.

    The stage is derived from the epoch at every ``EPOCH_STARTED``, so a resumed run is in the right
    stage without saving anything; the switch is logged once.

    Args:
        warmup_epochs: epochs of scribble-only training (the paper's ``thr_epoch``, 100). ``0`` starts in
            the main stage; a negative value never leaves the warm-up (scribble-only baseline).
    """

    def __init__(self, warmup_epochs: int) -> None:
        self.warmup_epochs = int(warmup_epochs)
        self.logger = logging.getLogger(__name__)

    def stage_of(self, epoch: int) -> str:
        """Stage of the 1-based Ignite ``epoch``."""
        if self.warmup_epochs < 0:
            return WARMUP
        return MAIN if epoch > self.warmup_epochs else WARMUP

    def attach(self, engine: Engine) -> None:
        if not hasattr(engine.state, "stage"):
            engine.state.stage = self.stage_of(max(engine.state.epoch, 0) + 1)
        engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        stage = self.stage_of(engine.state.epoch)
        if getattr(engine.state, "stage", None) != stage:
            self.logger.info("epoch %d: %s stage", engine.state.epoch, stage)
        engine.state.stage = stage
