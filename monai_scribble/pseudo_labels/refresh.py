"""Refresh the EMA pseudo-label maps every ``period`` epochs (Scribble2Label; docs/method.md#ema)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events

from monai_scribble.constants import BACKGROUND, FOREGROUND, IGNORE
from monai_scribble.inference.inferer import WholeImageInferer, foreground_probabilities
from monai_scribble.pseudo_labels.config import PseudoLabelConfig
from monai_scribble.pseudo_labels.store import PseudoLabelStore
from monai_scribble.utils.distributed import unwrap

__all__ = ["EMAPseudoLabelHandler"]


class EMAPseudoLabelHandler:
    """Whole-image inference over every training image, then ``E <- m * p + (1 - m) * E``.

    Runs at ``EPOCH_COMPLETED`` every ``config.period`` epochs (after epochs ``period``, ``2 period``, ... in
    Ignite's 1-based numbering, i.e. the paper's "after epoch 4, 9, 14"), in warm-up too. Inference is the
    shared whole-image path (:func:`~monai_scribble.inference.foreground_probabilities`: padded to a multiple
    of 32, cropped back, eval mode, ``torch.inference_mode``, no augmentation, same-size images batched).

    Under data-parallel training (``torchrun``, multi_gpu_train.json) rank ``r`` of ``w`` predicts and
    writes images ``r, r + w, ...`` of ``dataset`` into the new generation; rank 0 makes it current once
    every rank has written (barriers before and after), so each image is updated exactly once per refresh
    and all ranks train on the same maps.

    Where the dataset items carry full label maps (``label``, as the benchmark datasets' training images
    do), each refresh also measures the pseudo-labels the new maps give at the config's thresholds (on every pixel,
    before scribbles override them): for each class the share of pixels it covers, its precision and its
    recall against the label maps, as ``engine.state.metrics["pseudo_{fg,bg}_{coverage,precision,recall}"]``
    (logged with the epoch by ``StatsHandler`` / ``TensorBoardStatsHandler``; under data-parallel training,
    on each rank's share of the images). A precision is NaN while its class covers nothing.

    Args:
        store: the :class:`~monai_scribble.pseudo_labels.PseudoLabelStore`.
        dataset: items ``{"id": str, "image": (3, H, W) normalised tensor}`` for every training image
            (e.g. a MONAI ``Dataset`` with the evaluation transforms).
        network: the segmentation network (logits ``(B, 2, H, W)``; a ``DistributedDataParallel`` wrapper
            is unwrapped for inference, which needs no collective communication).
        config: the loop's settings (:class:`~monai_scribble.pseudo_labels.PseudoLabelConfig`): ``period``
            and ``momentum`` of the refresh, the thresholds of the quality measurement (as the trainer's).
        device: inference device.
        batch_size: most images per inference batch (same-size images only; fewer for images so large
            that a batch would exceed about one megapixel).
        amp_dtype: autocast dtype for inference (``None``: full precision).
        channels_last: feed channels-last tensors (``None``: as :class:`~monai_scribble.inference.WholeImageInferer`).
        enabled: ``False`` attaches nothing (methods without pseudo-labels: supervised, scribble-only).
    """

    def __init__(
        self,
        store: PseudoLabelStore,
        dataset: Sequence[dict],
        network: torch.nn.Module,
        config: PseudoLabelConfig | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 8,
        amp_dtype: torch.dtype | None = None,
        channels_last: bool | None = None,
        enabled: bool = True,
    ) -> None:
        self.store = store
        self.dataset = dataset
        self.network = network
        self.config = config or PseudoLabelConfig()
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.inferer = WholeImageInferer(mode="pad", amp_dtype=amp_dtype, channels_last=channels_last)
        self.enabled = bool(enabled)
        self._labels: dict[str, torch.Tensor] = {}
        self._checkpointed_generation: int | None = None
        self.logger = logging.getLogger(__name__)

    @classmethod
    def find(cls, handlers: Sequence) -> EMAPseudoLabelHandler:
        """The refresh handler among a trainer's ``handlers`` (found by type: MONAI Label prepends its own handlers)."""
        found = [h for h in handlers if isinstance(h, cls)]
        if len(found) != 1:
            raise ValueError(f"expected one {cls.__name__} among the training handlers, found {len(found)}")
        return found[0]

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.config.period), self)

    def predict(self, indices: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
        """Foreground probability ``(H, W)`` of the images of ``dataset`` at ``indices`` (default: all)."""
        items = [self.dataset[index] for index in (range(len(self.dataset)) if indices is None else indices)]
        for item in items:
            if item.get("label") is not None:
                self._labels[str(item["id"])] = torch.as_tensor(item["label"]).reshape(item["image"].shape[-2:]) > 0
        images = [torch.as_tensor(item["image"]) for item in items]
        fg = foreground_probabilities(unwrap(self.network), images, self.inferer, self.device, self.batch_size)
        return {str(item["id"]): p for item, p in zip(items, fg)}

    def __call__(self, engine: Engine) -> None:
        start = time.perf_counter()
        rank, world_size = idist.get_rank(), idist.get_world_size()
        state = self.store.state  # every rank starts from the same generation
        if rank == 0:
            self.store.begin_update(state)
        idist.barrier()
        shard = range(rank, len(self.dataset), world_size)
        probabilities = self.predict(shard)
        self.store.write_update(state, {k: v.numpy() for k, v in probabilities.items()}, self.config.momentum)
        idist.barrier()
        if rank == 0:
            self.store.commit_update(state)
            # the generation the last training checkpoint recorded stays until a newer checkpoint records another
            self.store.prune(keep={state["generation"] if self._checkpointed_generation is None else self._checkpointed_generation})
        idist.barrier()
        quality = self.quality(state["generation"] + 1, [k for k in probabilities if k in self._labels])
        engine.state.metrics.update(quality)
        self.logger.info(
            "epoch %d: EMA pseudo-labels refreshed (update %d) in %.1f s%s", engine.state.epoch, self.store.state["updates"],
            time.perf_counter() - start, "".join(f", {k} {v:.3f}" for k, v in quality.items()),
        )  # fmt: skip

    def quality(self, generation: int, ids: Sequence[str]) -> dict[str, float]:
        """Coverage, precision and recall of each pseudo-label class of ``generation`` on the images ``ids``."""
        if not ids:
            return {}
        counts = torch.zeros(2, 3, dtype=torch.float64)  # class x (labelled, correct, true pixels)
        total = 0
        for image_id in ids:
            ema = torch.from_numpy(self.store.get(image_id, generation).astype("float32"))
            pseudo = self.config.pseudo_labels(ema[None], torch.full(ema.shape, IGNORE)[None])[0]
            truth = self._labels[image_id]
            total += truth.numel()
            for row, (cls, is_cls) in enumerate(((FOREGROUND, truth), (BACKGROUND, ~truth))):
                labelled = pseudo == cls
                counts[row] += torch.tensor([labelled.sum(), (labelled & is_cls).sum(), is_cls.sum()], dtype=torch.float64)
        quality = {}
        for row, name in enumerate(("fg", "bg")):
            labelled, correct, true = counts[row].tolist()
            quality[f"pseudo_{name}_coverage"] = labelled / total
            quality[f"pseudo_{name}_precision"] = correct / labelled if labelled else float("nan")
            quality[f"pseudo_{name}_recall"] = correct / true if true else float("nan")
        return quality

    def state_dict(self) -> dict:
        """The current generation; asked by the training checkpoint, which then depends on it (kept by :meth:`__call__`)."""
        state = dict(self.store.state)
        self._checkpointed_generation = int(state["generation"])
        return state

    def load_state_dict(self, state: dict) -> None:
        self.store.restore(int(state["generation"]), int(state["updates"]))
        self._checkpointed_generation = int(state["generation"])
