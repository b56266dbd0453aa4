"""The training step of Scribble2Label + multiscale contrastive regularization, top to bottom in one place.

Reference: docs/method.md#training-loop; Oh, Lee & Jeong, ISBI 2022; Lee & Jeong, MICCAI 2020 (Scribble2Label).

- warm-up (``engine.state.stage == "warmup"``): ``L = CE(logits, scribbles)``;
- main: ``L = CE(logits, scribbles) + pseudo_weight * CE(logits, pseudo) + Σ λ_k R_k(features, c)`` with
  ``pseudo`` the thresholded EMA maps on unscribbled pixels and ``c`` the pseudo-labels with scribbles
  overriding them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys as Keys

from monai_scribble.constants import BACKGROUND, FOREGROUND
from monai_scribble.handlers.stage_switch import MAIN, StageSwitchHandler
from monai_scribble.losses.contrastive import MultiscaleContrastiveLoss, contrastive_labels
from monai_scribble.losses.partial_ce import PartialCrossEntropyLoss
from monai_scribble.pseudo_labels.config import PseudoLabelConfig

__all__ = ["ScribbleTrainer"]


class ScribbleTrainer(SupervisedTrainer):
    """MONAI ``SupervisedTrainer`` whose iteration is the scribble-supervised step.

    The engine output of every iteration is a dict of detached scalars: ``loss`` and each term
    (``scribble_ce``, ``pseudo_ce``, ``contrastive_<feature>_delta<δ>``) and, in the main stage, the share of
    the batch's pixels with a foreground / background pseudo-label (``pseudo_fg_share``,
    ``pseudo_bg_share``), so ``StatsHandler`` and ``TensorBoardStatsHandler`` can log each one. A non-finite loss stops training with an error that
    names the epoch, the iteration and the terms. The step fires Ignite's ``IterationEvents`` (``FORWARD_COMPLETED``,
    ``LOSS_COMPLETED``, ``BACKWARD_COMPLETED``, ``MODEL_COMPLETED``) as MONAI's ``SupervisedTrainer`` does, so handlers
    can act between its phases (e.g. gradient clipping or logging at ``BACKWARD_COMPLETED``).

    Args:
        device: training device.
        max_epochs: epochs.
        train_data_loader: batches with ``image`` (B, 3, H, W), ``scribble`` (B, 1, H, W) in {0, 1, 250}
            and, for the main stage, ``ema`` (B, 1, H, W) EMA maps.
        network: a :class:`~monai_scribble.networks.MultiscaleUNet` (or it inside ``DistributedDataParallel``).
        optimizer: optimiser of the network (and of the contrastive heads).
        warmup_epochs: scribble-only epochs before the main stage (negative: never switch; a method without
            pseudo-labels never switches whatever it is).
        pseudo_weight: weight of the pseudo-label CE (0.5).
        pseudo_labels: the EMA loop's settings (:class:`~monai_scribble.pseudo_labels.PseudoLabelConfig`), whose
            thresholds turn the ``ema`` maps into pseudo-labels (DSB 0.8, MoNuSeg 0.95).
        contrastive_loss: the multiscale contrastive loss (or it inside ``DistributedDataParallel``, so the
            projection heads' gradients are averaged over ranks), or ``None`` (plain Scribble2Label).
        use_pseudo_labels: ``False`` for the scribble-only and supervised baselines.
        amp_dtype: autocast dtype (``torch.bfloat16`` on CPU or CUDA, ``torch.float16`` on CUDA with a
            gradient scaler), or ``None``.
        channels_last: feed the network channels-last tensors.
        train_handlers: Ignite handlers (MONAI convention).
        kwargs: passed to ``SupervisedTrainer``.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        network: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        warmup_epochs: int = 100,
        pseudo_weight: float = 0.5,
        pseudo_labels: PseudoLabelConfig | None = None,
        contrastive_loss: MultiscaleContrastiveLoss | torch.nn.Module | None = None,
        use_pseudo_labels: bool = True,
        amp_dtype: torch.dtype | None = None,
        channels_last: bool = False,
        train_handlers: Sequence | None = None,
        loss_function: Callable | None = None,
        **kwargs,
    ) -> None:
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            network=network,
            optimizer=optimizer,
            loss_function=loss_function or PartialCrossEntropyLoss(),
            train_handlers=train_handlers,
            **kwargs,
        )
        self.pseudo_weight = float(pseudo_weight)
        self.pseudo_labels = pseudo_labels or PseudoLabelConfig()
        self.contrastive_loss = contrastive_loss
        self.use_pseudo_labels = bool(use_pseudo_labels)
        self.amp_dtype = amp_dtype
        self.channels_last = bool(channels_last)
        self.scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
        self.stage_switch = StageSwitchHandler(warmup_epochs if self.use_pseudo_labels else -1)
        self.stage_switch.attach(self)

    def run(self) -> None:
        """Train from the current state; a run restored from the checkpoint of its last epoch does nothing.

        Ignite restarts a finished engine from epoch 1. Resuming a finished run (``--resume true`` with a
        ``max_epochs`` its checkpoint already reached) is instead a no-op that says so; a larger
        ``max_epochs`` extends the run.
        """
        if self.state.iteration > 0 and self.state.epoch >= self.state.max_epochs:
            logging.getLogger(__name__).warning(
                "nothing to do: the run finished epoch %d of max_epochs %d; pass a larger --max_epochs to train it longer",
                self.state.epoch, self.state.max_epochs,
            )  # fmt: skip
            return
        super().run()

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(torch.device(self.state.device).type, dtype=self.amp_dtype)

    def _iteration(self, engine: ScribbleTrainer, batchdata: dict[str, torch.Tensor]) -> dict:
        device = engine.state.device
        images = batchdata[Keys.IMAGE].to(device, non_blocking=engine.non_blocking)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        scribbles = batchdata["scribble"].to(device).long()[:, 0]
        main_stage = engine.state.stage == MAIN and self.use_pseudo_labels
        contrastive = self.contrastive_loss if main_stage else None

        self.network.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            if contrastive is not None:
                logits, features = self.network(images, return_features=True)
            else:
                logits, features = self.network(images), {}
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            terms = {"scribble_ce": self.loss_function(logits, scribbles)}
            loss = terms["scribble_ce"]
            if main_stage:
                pseudo = self.pseudo_labels.pseudo_labels(batchdata["ema"].to(device), scribbles)
                shares = {"pseudo_fg_share": (pseudo == FOREGROUND).float().mean(), "pseudo_bg_share": (pseudo == BACKGROUND).float().mean()}
                terms["pseudo_ce"] = self.loss_function(logits, pseudo)
                loss = loss + self.pseudo_weight * terms["pseudo_ce"]
                if contrastive is not None:
                    weighted, values = contrastive(features, contrastive_labels(pseudo, scribbles), return_terms=True)
                    terms.update(values)
                    loss = loss + weighted
        if not torch.isfinite(loss):
            detail = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items())
            raise FloatingPointError(f"non-finite loss at epoch {engine.state.epoch}, iteration {engine.state.iteration}: {detail}")
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
            self.optimizer.step()
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        output = {Keys.LOSS: loss.detach()}
        output.update({name: value.detach() for name, value in terms.items()})
        if main_stage:
            output.update(shares)
        return output
