"""Atomic checkpoints: the resumable training checkpoint and the deployable best model.

MONAI's ``CheckpointSaver`` writes non-atomically and Ignite saves a single object without a key, so
these two small handlers use Ignite's ``Checkpoint``/``DiskSaver(atomic=True)`` and ``torch.save`` to
a temporary file + rename: an interrupted write never leaves a corrupt checkpoint behind.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver

from monai_scribble.data.image_io import atomic_write
from monai_scribble.engines.distributed import unwrap

__all__ = ["BestModelSaver", "FinalModelSaver", "TrainingCheckpointHandler"]


class TrainingCheckpointHandler:
    """Save ``to_save`` (network, heads, optimizer, trainer, EMA handler, ...) every epoch, atomically.

    Files: ``<save_dir>/checkpoint_epoch=<N>.pt``; only the newest ``n_saved`` are kept.
    Resume with :meth:`load` (or Ignite's ``Checkpoint.load_objects``).
    """

    def __init__(self, save_dir: str | os.PathLike, to_save: Mapping, n_saved: int = 1) -> None:
        self.to_save = {k: v for k, v in to_save.items() if v is not None}
        self.checkpoint = Checkpoint(
            to_save=self.to_save,
            save_handler=DiskSaver(str(save_dir), require_empty=False, atomic=True),
            filename_prefix="",
            score_function=lambda engine: engine.state.epoch,
            score_name="epoch",
            n_saved=n_saved,
            include_self=True,  # a resumed run knows the earlier files and prunes them
        )

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.checkpoint)

    def load(self, path: str | os.PathLike) -> None:
        """Restore every object of ``to_save`` from ``path``.

        Engines keep the ``max_epochs`` they were configured with (a resumed run may be asked to train
        longer than the interrupted one); epoch and iteration come from the checkpoint.
        """
        engines = [obj for obj in self.to_save.values() if isinstance(obj, Engine)]
        configured = [engine.state.max_epochs for engine in engines]
        state = torch.load(str(path), map_location="cpu", weights_only=False)
        to_load = dict(self.to_save)
        if "checkpointer" in state:
            to_load["checkpointer"] = self.checkpoint
        Checkpoint.load_objects(to_load=to_load, checkpoint=state)
        for engine, max_epochs in zip(engines, configured):
            if max_epochs is not None:
                engine.state.max_epochs = max_epochs
        logging.getLogger(__name__).info("resumed from %s", path)


class BestModelSaver:
    """Write ``{"model": network.state_dict()}`` to ``<save_dir>/model.pt`` whenever the metric improves.

    Attach to the validation evaluator. The file holds the network only (MONAI Label / model-zoo
    convention) and is written atomically.

    Args:
        save_dir: usually ``<bundle_root>/models``.
        network: the network to save.
        metric_name: key in ``evaluator.state.metrics``.
        greater_is_better: direction of the metric.
        filename: ``model.pt``.
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        network: torch.nn.Module,
        metric_name: str,
        greater_is_better: bool = True,
        filename: str = "model.pt",
        epoch_fn: Callable[[], int] | None = None,
    ) -> None:
        self.path = Path(save_dir) / filename
        self.network = network
        self.metric_name = metric_name
        self.greater_is_better = greater_is_better
        self.best = -math.inf if greater_is_better else math.inf
        self.epoch_fn = epoch_fn
        self.logger = logging.getLogger(__name__)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def save(self) -> None:
        """Write the network now (atomically)."""
        network = unwrap(self.network)
        state = {"model": {k: v.detach().cpu() for k, v in network.state_dict().items()}}
        atomic_write(self.path, lambda tmp: torch.save(state, tmp))

    def __call__(self, engine: Engine) -> None:
        value = float(engine.state.metrics[self.metric_name])
        if math.isnan(value):
            return
        improved = value > self.best if self.greater_is_better else value < self.best
        if not improved:
            return
        self.best = value
        self.save()
        epoch = self.epoch_fn() if self.epoch_fn else None
        self.logger.info("new best %s = %.4f%s: saved %s", self.metric_name, value, f" (epoch {epoch})" if epoch else "", self.path)

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = float(state["best"])


class FinalModelSaver:
    """At the end of training, write the final network if validation never gave a best model in this run.

    That happens when there are no validation images (e.g. a MONAI Label training request on two
    labelled images), when training is shorter than ``val_interval`` or when every validation metric was
    NaN; the user still gets a ``model.pt`` from the run. The best metric is part of the training
    checkpoint, so a resumed run that had a best model before the interruption keeps it. Attach to the
    trainer.

    Args:
        best_model: the run's :class:`BestModelSaver` (its file and network are used).
    """

    def __init__(self, best_model: BestModelSaver) -> None:
        self.best_model = best_model

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if math.isfinite(self.best_model.best):
            return
        self.best_model.save()
        self.best_model.logger.info("no validation result in this run: saved the final network (epoch %d) to %s", engine.state.epoch, self.best_model.path)
