"""Refresh the EMA pseudo-label maps every ``period`` epochs (Scribble2Label; method-spec §1.3)."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence

import torch
from ignite.engine import Engine, Events
from monai.transforms import DivisiblePad

from monai_scribble.data.pseudo_label_store import PseudoLabelStore

__all__ = ["EMAPseudoLabelHandler"]


class EMAPseudoLabelHandler:
    """Whole-image inference over every training image, then ``E <- m * p + (1 - m) * E``.

    Runs at ``EPOCH_COMPLETED`` every ``period`` epochs (after epochs ``period``, ``2 period``, ... in
    Ignite's 1-based numbering, i.e. the paper's "after epoch 4, 9, 14"), in warm-up too. Inference is in
    eval mode, without gradients or augmentation; images are padded to a multiple of 32 at the end,
    batched by size, and the probabilities cropped back.

    Args:
        store: the :class:`~monai_scribble.data.pseudo_label_store.PseudoLabelStore`.
        dataset: items ``{"id": str, "image": (3, H, W) normalised tensor}`` for every training image
            (e.g. a MONAI ``Dataset`` with the evaluation transforms).
        network: the segmentation network (logits ``(B, 2, H, W)``).
        period: epochs between refreshes.
        momentum: EMA momentum ``m`` (DSB 0.2, MoNuSeg 0.1).
        device: inference device.
        batch_size: images per inference batch (same-size images only).
        amp_dtype: autocast dtype for inference (``None``: full precision).
        enabled: ``False`` attaches nothing (methods without pseudo-labels: supervised, scribble-only).
    """

    def __init__(
        self,
        store: PseudoLabelStore,
        dataset: Sequence[dict],
        network: torch.nn.Module,
        period: int = 5,
        momentum: float = 0.2,
        device: str | torch.device = "cpu",
        batch_size: int = 4,
        amp_dtype: torch.dtype | None = None,
        enabled: bool = True,
    ) -> None:
        if period < 1:
            raise ValueError(f"period must be >= 1, got {period}")
        self.store = store
        self.dataset = dataset
        self.network = network
        self.period = int(period)
        self.momentum = float(momentum)
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.amp_dtype = amp_dtype
        self.enabled = bool(enabled)
        self.pad = DivisiblePad(k=32, method="end")
        self.logger = logging.getLogger(__name__)

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.period), self)

    @torch.no_grad()
    def predict(self) -> dict[str, torch.Tensor]:
        """Foreground probability ``(H, W)`` of every image of ``dataset``."""
        by_shape: dict[tuple, list[dict]] = defaultdict(list)
        for item in self.dataset:
            by_shape[tuple(item["image"].shape)].append(item)
        was_training = self.network.training
        self.network.eval()
        probabilities: dict[str, torch.Tensor] = {}
        try:
            for shape, items in by_shape.items():
                for start in range(0, len(items), self.batch_size):
                    batch = items[start : start + self.batch_size]
                    images = torch.stack([self.pad(torch.as_tensor(i["image"])) for i in batch]).to(self.device)
                    with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
                        logits = self.network(images)
                    fg = torch.softmax(logits.float(), dim=1)[:, 1, : shape[-2], : shape[-1]].cpu()
                    probabilities.update({str(i["id"]): p for i, p in zip(batch, fg)})
        finally:
            self.network.train(was_training)
        return probabilities

    def __call__(self, engine: Engine) -> None:
        start = time.perf_counter()
        previous = self.store.generation
        self.store.update({k: v.numpy() for k, v in self.predict().items()}, self.momentum)
        self.store.prune(keep={previous})  # the last checkpoint may still point at the previous generation
        self.logger.info(
            "epoch %d: EMA pseudo-labels refreshed (update %d) in %.1f s", engine.state.epoch, self.store.state["updates"], time.perf_counter() - start
        )

    def state_dict(self) -> dict:
        return dict(self.store.state)

    def load_state_dict(self, state: dict) -> None:
        self.store.restore(int(state["generation"]), int(state["updates"]))
