"""Atomic checkpoints: the resumable training checkpoint and the deployable best model.

Both are written to a temporary file that is renamed over the final name once it is complete on disk,
and an older training checkpoint is deleted only after the newer one is in place, so a kill or a full
disk while a checkpoint is written never loses the previous one. (Ignite's ``Checkpoint`` with
``n_saved=1`` deletes the old file before it writes the new one, and MONAI's ``CheckpointSaver`` writes
in place.) Training checkpoints hold only tensors and plain Python values and load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint

from monai_scribble.errors import DataError, RunStateError, UserError
from monai_scribble.utils.atomic import atomic_write
from monai_scribble.utils.checkpoint_files import list_checkpoints, read_training_checkpoint
from monai_scribble.utils.distributed import unwrap

__all__ = ["BestModelSaver", "FinalModelSaver", "RandomStates", "TrainingCheckpointHandler"]


def _numpy_state(state: tuple) -> dict:
    name, keys, position, has_gauss, cached_gaussian = state
    return {"name": name, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "position": int(position),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}  # fmt: skip


def _numpy_tuple(state: Mapping) -> tuple:
    keys = state["keys"].numpy().astype(np.uint32)
    return (state["name"], keys, state["position"], state["has_gauss"], state["cached_gaussian"])


class RandomStates:
    """The random number generators of a training run, as one checkpointable object.

    Holds the global torch, NumPy and Python generators, the ``np.random.RandomState`` of every MONAI
    randomizable transform reachable from ``transforms`` (MONAI gives each transform its own), and the
    sampling generators of ``samplers`` (objects with ``rng_state`` / ``set_rng_state``, e.g. the
    contrastive loss). Saved with the training checkpoint at the end of an epoch and restored on resume,
    a resumed run draws the same crops, augmentations, batches and contrastive samples as an
    uninterrupted one. Data-loader workers seed themselves from the torch generator at every epoch.

    Args:
        transforms: the training transform(s), searched recursively for ``RandomState`` objects.
        samplers: other objects owning generators (``None`` entries are ignored).
    """

    def __init__(self, transforms: Any = None, samplers: Sequence[Any] = ()) -> None:
        self.transforms = transforms
        self.samplers = [unwrap(s) for s in samplers if s is not None]

    def _transform_states(self) -> Iterator[np.random.RandomState]:
        seen: set[int] = set()

        def walk(obj: Any, depth: int = 0) -> Iterator[np.random.RandomState]:
            if depth > 8 or id(obj) in seen or isinstance(obj, (str, bytes, int, float, torch.Tensor, np.ndarray)):
                return
            seen.add(id(obj))
            if isinstance(obj, np.random.RandomState):
                yield obj
                return
            if isinstance(obj, Mapping):
                children = list(obj.values())
            elif isinstance(obj, (list, tuple)):
                children = list(obj)
            elif hasattr(obj, "__dict__") and type(obj).__module__.startswith(("monai", "monai_scribble")):
                children = list(vars(obj).values())
            else:
                return
            for child in children:
                yield from walk(child, depth + 1)

        yield from walk(self.transforms)

    def state_dict(self) -> dict:
        return {
            "torch": torch.get_rng_state(),
            "numpy": _numpy_state(np.random.get_state()),
            "python": random.getstate(),
            "transforms": [_numpy_state(r.get_state()) for r in self._transform_states()],
            "samplers": [s.rng_state() for s in self.samplers],
        }

    def load_state_dict(self, state: Mapping) -> None:
        transforms = list(self._transform_states())
        if len(transforms) != len(state["transforms"]) or len(self.samplers) != len(state["samplers"]):
            raise RunStateError(
                f"the checkpoint holds {len(state['transforms'])} transform and {len(state['samplers'])} sampler generators, "
                f"this run has {len(transforms)} and {len(self.samplers)}; resume with the run's own arguments"
            )
        torch.set_rng_state(state["torch"])
        np.random.set_state(_numpy_tuple(state["numpy"]))
        python = state["python"]
        random.setstate((python[0], tuple(python[1]), python[2]))
        for generator, saved in zip(transforms, state["transforms"]):
            generator.set_state(_numpy_tuple(saved))
        for sampler, saved in zip(self.samplers, state["samplers"]):
            sampler.set_rng_state(saved)


OPTIONAL_ENTRIES = {
    "rng": "the resumed run draws other augmentations",
    "best_by_scribble": "model_by_scribble.pt is chosen among the resumed run's validations only",
    "best_by_scribble_instances": "model_by_scribble_instances.pt is chosen among the resumed run's validations only",
}
"""Checkpoint entries added after checkpoints were first written: a checkpoint without them still resumes (with this warning)."""


class TrainingCheckpointHandler:
    """Save ``to_save`` (network, heads, optimizer, trainer, EMA handler, RNG states, ...) every ``interval`` epochs, atomically.

    Saved at the end of every ``interval``-th epoch and of the last one. With the authors' one-iteration
    epochs a checkpoint (network + heads + RAdam moments: about 280 MB) costs a sizeable share of an
    epoch; an interval of a few epochs bounds both that cost and what a kill loses.
    Files: ``<save_dir>/checkpoint_epoch=<N>.pt``. The newest ``n_saved`` are kept; older ones are
    deleted only once the new file is complete, so a kill or a full disk during the write leaves the
    previous checkpoint intact (the half-written temporary file of a killed write is hidden, ``.``-named,
    and removed at the next save). Resume with :meth:`load`.

    Args:
        save_dir: usually ``<output_dir>/checkpoints``.
        to_save: ``{name: object with state_dict() / load_state_dict()}``; ``None`` values are left out.
        n_saved: how many checkpoints to keep (at least 1).
        interval: epochs between checkpoints (at least 1).
    """

    def __init__(self, save_dir: str | os.PathLike, to_save: Mapping, n_saved: int = 1, interval: int = 1) -> None:
        if n_saved < 1:
            raise ValueError(f"n_saved must be >= 1, got {n_saved}")
        if int(interval) < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.interval = int(interval)
        self.save_dir = Path(save_dir)
        self.to_save = {k: v for k, v in to_save.items() if v is not None}
        self.n_saved = int(n_saved)
        self.logger = logging.getLogger(__name__)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _due(self, engine: Engine) -> bool:
        return engine.state.epoch % self.interval == 0 or engine.state.epoch >= (engine.state.max_epochs or 0)

    def path(self, epoch: int) -> Path:
        return self.save_dir / f"checkpoint_epoch={int(epoch)}.pt"

    def __call__(self, engine: Engine) -> None:
        if idist.get_rank() > 0 or not self._due(engine):  # data-parallel ranks hold the same state; rank 0 writes it
            return
        state = {name: unwrap(obj).state_dict() for name, obj in self.to_save.items()}  # DDP modules saved unwrapped
        path = self.path(engine.state.epoch)
        try:
            atomic_write(path, lambda tmp: torch.save(state, tmp), fsync=True)
        except OSError as err:
            previous = [p.name for p in self._saved() if p != path]
            raise UserError(
                f"{path}: could not write the training checkpoint ({err.strerror or err}); "
                f"the previous one ({previous[-1] if previous else 'none'}) is intact: fix the cause (e.g. free disk space) and resume with --resume true"
            ) from err
        for old in self._saved()[: -self.n_saved]:
            old.unlink(missing_ok=True)
        for leftover in self.save_dir.glob(".checkpoint_epoch=*.tmp*"):  # of a killed write
            leftover.unlink(missing_ok=True)

    def _saved(self) -> list[Path]:
        return list_checkpoints(self.save_dir)

    def load(self, path: str | os.PathLike | None) -> None:
        """Restore every object of ``to_save`` from ``path`` (``None``: a new run, nothing to do).

        Engines keep the ``max_epochs`` they were configured with (a resumed run may be asked to train
        longer than the interrupted one); epoch and iteration come from the checkpoint.

        Raises:
            DataError: the file is unreadable, or does not hold this run's objects.
        """
        if path is None:
            return
        engines = [obj for obj in self.to_save.values() if isinstance(obj, Engine)]
        configured = [engine.state.max_epochs for engine in engines]
        state = read_training_checkpoint(path)
        missing = sorted(set(self.to_save) - set(state) - set(OPTIONAL_ENTRIES))
        if missing:
            raise DataError(path, f"checkpoint has no {missing} (it holds {sorted(state)}); resume with the run's own --method and settings")
        to_load = {name: obj for name, obj in self.to_save.items() if name in state}
        for name in sorted(set(OPTIONAL_ENTRIES) & set(self.to_save) - set(state)):
            self.logger.warning("%s holds no %s (written by an older version): %s", path, name, OPTIONAL_ENTRIES[name])
        try:
            Checkpoint.load_objects(to_load=to_load, checkpoint=state)
        except (RuntimeError, KeyError, ValueError) as err:
            raise DataError(path, f"checkpoint does not match this run ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                                  "resume with the run's own --method and settings") from err  # fmt: skip
        for engine, max_epochs in zip(engines, configured):
            if max_epochs is not None:
                engine.state.max_epochs = max_epochs
        self.logger.info("resumed from %s", path)


class BestModelSaver:
    """Write the network to ``<save_dir>/model.pt`` whenever the metric improves.

    The file is ``{"model": state_dict, "metadata": {...}}``: the network only (MONAI Label / model-zoo
    convention: MONAI's ``CheckpointLoader`` with ``load_dict={"model": network}`` reads it) plus plain
    values describing it — ``metadata`` given here (e.g. the dataset and method of the run) and the
    selection ``metric``, its ``value`` and the ``epoch``. Written atomically; loads with
    ``torch.load(weights_only=True)``. Attach to the validation evaluator.

    Args:
        save_dir: the run's ``<output_dir>/models``.
        network: the network to save.
        metric_name: key in ``evaluator.state.metrics``.
        greater_is_better: direction of the metric.
        filename: ``model.pt``.
        epoch_fn: returns the current training epoch (for the log and the metadata); default: the
            evaluator's epoch, which MONAI's ``ValidationHandler`` sets to the trainer's.
        metadata: plain values stored with the weights.
        enabled: attach nothing when false (e.g. the label-free second choice of a run that selects by scribbles anyway).
    """

    def __init__(
        self,
        save_dir: str | os.PathLike,
        network: torch.nn.Module,
        metric_name: str,
        greater_is_better: bool = True,
        filename: str = "model.pt",
        epoch_fn: Callable[[], int] | None = None,
        metadata: Mapping[str, Any] | None = None,
        enabled: bool = True,
    ) -> None:
        self.path = Path(save_dir) / filename
        self.network = network
        self.metric_name = metric_name
        self.greater_is_better = greater_is_better
        self.best = -math.inf if greater_is_better else math.inf
        self.epoch_fn = epoch_fn
        self.metadata = dict(metadata or {})
        self.enabled = bool(enabled)
        self.logger = logging.getLogger(__name__)

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            engine.add_event_handler(Events.COMPLETED, self)

    def save(self, epoch: int | None = None, value: float | None = None) -> None:
        """Write the network now (atomically; on rank 0 only), with the metadata, the epoch and the metric value."""
        if idist.get_rank() > 0:
            return
        network = unwrap(self.network)
        metadata = {**self.metadata, "metric": self.metric_name, "value": value, "epoch": epoch}
        state = {"model": {k: v.detach().cpu() for k, v in network.state_dict().items()}, "metadata": metadata}
        atomic_write(self.path, lambda tmp: torch.save(state, tmp), fsync=True)

    def __call__(self, engine: Engine) -> None:
        value = float(engine.state.metrics[self.metric_name])
        if math.isnan(value):
            return
        improved = value > self.best if self.greater_is_better else value < self.best
        if not improved:
            return
        self.best = value
        epoch = self.epoch_fn() if self.epoch_fn else engine.state.epoch  # MONAI evaluators run at the trainer's epoch
        self.save(epoch, value)
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
        self.best_model.save(engine.state.epoch)
        self.best_model.logger.info("no validation result in this run: saved the final network (epoch %d) to %s", engine.state.epoch, self.best_model.path)
