"""Method and dataset presets of the training bundle (the run checks live in :mod:`.run_checks`).

Kept in Python so the bundle JSON only wires components: ``method`` selects which losses run, ``dataset``
selects the EMA momentum / threshold of the authors' code (docs/method.md#decision-monuseg-ema).
"""

from __future__ import annotations

import os
from pathlib import Path

from monai_scribble.engines.run_checks import as_bool
from monai_scribble.errors import ArgumentError
from monai_scribble.losses.contrastive import ContrastiveTerm

__all__ = [
    "METHODS",
    "EMA_PRESETS",
    "as_bool",
    "contrastive_terms",
    "default_amp_dtype",
    "ema_preset",
    "AUTHORS_BATCH_SIZE",
    "drop_batch_of_one",
    "labelled_items",
    "training_batch_size",
    "monailabel_run_dir",
    "validation_interval",
    "method_settings",
    "optimizer_param_groups",
    "selection_metric",
    "validation_key_metric",
]

METHODS: dict[str, dict] = {
    "supervised": {"targets": "label", "pseudo_labels": False, "terms": ()},
    "scribble_only": {"targets": "scribble", "pseudo_labels": False, "terms": ()},
    "s2l": {"targets": "scribble", "pseudo_labels": True, "terms": ()},
    "s2l_r1": {"targets": "scribble", "pseudo_labels": True, "terms": ("r1",)},
    "s2l_r4": {"targets": "scribble", "pseudo_labels": True, "terms": ("r4",)},
    "s2l_r1r4": {"targets": "scribble", "pseudo_labels": True, "terms": ("r1", "r4")},
}
"""``targets``: what the partial CE learns from (full masks for ``supervised``); ``pseudo_labels``: EMA
pseudo-labels in the main stage; ``terms``: contrastive terms (r1: δ=1 on d5, r4: δ=4 on d3)."""

EMA_PRESETS: dict[str, tuple[float, float]] = {
    "synthetic": (0.2, 0.8),
    "dsb_fluo": (0.2, 0.8),
    "dsb_bf": (0.2, 0.8),
    "dsb_histo": (0.2, 0.8),
    "folder": (0.2, 0.8),
    "monuseg": (0.1, 0.95),
}
"""Dataset -> (EMA momentum, confidence threshold), as in the authors' code."""


def method_settings(method: str) -> dict:
    """The preset of ``method`` (raises :class:`~monai_scribble.errors.ArgumentError` listing the methods)."""
    if method not in METHODS:
        raise ArgumentError("method", f"unknown value {method!r}", f"choose one of {', '.join(METHODS)}")
    return METHODS[method]


def ema_preset(dataset: str) -> tuple[float, float]:
    """(momentum, threshold) for ``dataset`` (DSB-like defaults for unknown names)."""
    return EMA_PRESETS.get(dataset, (0.2, 0.8))


def contrastive_terms(
    method: str, lambda1: float = 0.5, tau1: float = 0.3, lambda2: float = 10.0, tau2: float = 0.1, max_samples: int = 6000
) -> list[ContrastiveTerm]:
    """The contrastive terms ``method`` uses, with the bundle's λ, τ and sample cap."""
    chosen = method_settings(method)["terms"]
    terms = {
        "r1": ContrastiveTerm(feature="d5", delta=1, temperature=tau1, weight=lambda1, max_samples=max_samples,
                              in_channels=16, hidden_channels=16, out_channels=32),
        "r4": ContrastiveTerm(feature="d3", delta=4, temperature=tau2, weight=lambda2, max_samples=max_samples,
                              in_channels=64, hidden_channels=32, out_channels=32),
    }
    return [terms[name] for name in chosen]


def optimizer_param_groups(network, contrastive_loss, learning_rate: float, decoder_lr_multiplier: float = 10.0) -> list[dict]:
    """Parameter groups of the paper's optimiser: encoder and head at ``lr``, decoder at ``lr * multiplier``.

    The contrastive projection heads (if any) train at ``lr``. ``DistributedDataParallel`` wrappers are
    looked through, so train.json and multi_gpu_train.json share this.
    """
    from monai_scribble.engines.distributed import unwrap

    network = unwrap(network)
    groups = [
        {"params": list(network.encoder.parameters()), "lr": learning_rate},
        {"params": list(network.decoder.parameters()), "lr": learning_rate * decoder_lr_multiplier},
        {"params": list(network.segmentation_head.parameters()), "lr": learning_rate},
    ]
    if contrastive_loss is not None:
        groups.append({"params": list(unwrap(contrastive_loss).parameters()), "lr": learning_rate})
    return groups


def labelled_items(datalist_path, split: str = "test") -> list[dict]:
    """Items of ``split`` in the datalist, each with a label map (evaluation needs full masks).

    Raises:
        ArgumentError: unknown split.
        DataError: an empty split, or items without ``label`` (listed by id).
    """
    from monai.data import load_decathlon_datalist

    from monai_scribble.data.image_io import DataError

    if split not in ("training", "validation", "test"):
        raise ArgumentError("split", f"unknown value {split!r}", "choose training, validation or test")
    items = load_decathlon_datalist(str(datalist_path), data_list_key=split)
    if not items:
        raise DataError(datalist_path, f"the '{split}' split is empty; evaluate another --split")
    unlabelled = [str(item.get("id")) for item in items if not item.get("label")]
    if unlabelled:
        raise DataError(datalist_path, f"evaluation needs label maps, but {len(unlabelled)} '{split}' images have none: {unlabelled[:5]}; "
                                       "add them under labels/ or evaluate a split that has them")
    return items


def monailabel_run_dir(root: str | os.PathLike) -> str:
    """A new run folder ``<root>/<YYYYmmdd-HHMMSS>[-n]`` for one MONAI Label training request.

    Each request is a fresh run (fine-tuning from ``model.pt``), so it never meets the previous run's
    checkpoint, EMA maps or scribble cache.
    """
    import time

    base = Path(root) / time.strftime("%Y%m%d-%H%M%S")
    path, n = base, 0
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return str(path)


AUTHORS_BATCH_SIZE = 30
"""The authors' training batch (one iteration per epoch on DSB-BF's 9 and MoNuSeg's 24 training images)."""


def training_batch_size(batch_size: int | str, num_images: int, world_size: int | None = None) -> int:
    """The training batch per process: ``batch_size``, or for ``"auto"`` the authors' ``min(30, images)``.

    Args:
        batch_size: an integer, or ``"auto"``.
        num_images: training images (all processes together).
        world_size: data-parallel processes (default: Ignite's current world size); each sees
            ``ceil(num_images / world_size)`` images per epoch.
    """
    import math

    import ignite.distributed as idist

    if str(batch_size).strip().lower() != "auto":
        return int(batch_size)
    per_process = math.ceil(max(int(num_images), 1) / (world_size or idist.get_world_size()))
    return max(1, min(AUTHORS_BATCH_SIZE, per_process))


def drop_batch_of_one(num_images: int, batch_size: int, world_size: int | None = None) -> bool:
    """``drop_last`` for the training loader: only when the epoch would end with a batch of a single crop.

    A batch of one gives batch norm a single sample and the contrastive pool one image; dropping it loses
    one crop per epoch (a different one each epoch, the order is shuffled).
    """
    import math

    import ignite.distributed as idist

    per_process = math.ceil(int(num_images) / (world_size or idist.get_world_size()))
    return per_process > 1 and per_process % int(batch_size) == 1


def validation_interval(val_interval: int, validation_items: list[dict] | None) -> int:
    """``val_interval``, or "never" (a huge interval, logged) when there are no validation images."""
    if validation_items:
        return int(val_interval)
    import logging

    logging.getLogger(__name__).warning("no validation images: validation is off and the final network is saved as model.pt")
    return 2**31 - 1


def default_amp_dtype(device) -> "torch.dtype | None":
    """bf16 autocast where it is fast: CUDA with bf16 support, or a CPU with native bf16 (AVX-512-BF16/AMX).

    On CPUs without it (e.g. AVX2 only) oneDNN falls back to a reference convolution about 10x slower
    than fp32, so training stays in fp32 there.
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None


SELECTION_METRICS = {"iou": "val_iou", "scribble": "val_scribble_accuracy"}


def selection_metric(select_by: str, validation_items: list[dict]) -> str:
    """Name of the model-selection metric.

    ``"iou"``: per-image foreground IoU on full masks (the paper's selection; needs labels);
    ``"scribble"``: pixel accuracy on the validation scribbles (what a lab without full masks can do);
    ``"auto"``: ``"iou"`` when every validation item has a label map, else ``"scribble"``.
    """
    if select_by == "auto":
        select_by = "iou" if validation_items and all(item.get("label") for item in validation_items) else "scribble"
    if select_by not in SELECTION_METRICS:
        raise ArgumentError("select_by", f"unknown value {select_by!r}", "choose auto, iou or scribble")
    if select_by == "iou" and not all(item.get("label") for item in validation_items):
        raise ArgumentError("select_by", "'iou' needs a label map for every validation image", "use scribble or auto")
    return SELECTION_METRICS[select_by]


def validation_key_metric(metric_name: str) -> dict:
    """``{metric_name: ignite metric}`` for the validation evaluator (see :func:`selection_metric`)."""
    from monai.handlers import MeanIoUHandler, from_engine

    from monai_scribble.metrics import ScribbleAccuracy

    if metric_name == "val_iou":
        return {metric_name: MeanIoUHandler(include_background=False, output_transform=from_engine(["pred", "label"]))}
    return {metric_name: ScribbleAccuracy(output_transform=from_engine(["pred", "val_scribble"]))}
