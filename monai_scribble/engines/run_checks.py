"""Checks a bundle run makes before it writes anything: its arguments and the state of its output folder.

``prepare`` and ``training`` call these first (train.json), so a bad argument, a refused overwrite or an
unreadable checkpoint stops the run with one clear line (:mod:`monai_scribble.errors`) before a folder is
created, data is generated or a datalist is rewritten.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai_scribble.data.arguments import DATALIST_PARAMETERS, check_datalist_matches, check_prepare_arguments
from monai_scribble.engines.initial_weights import check_initial_weights
from monai_scribble.errors import ArgumentError, RunStateError
from monai_scribble.losses.contrastive import ContrastiveTerm
from monai_scribble.pseudo_labels.config import PseudoLabelConfig
from monai_scribble.utils.arguments import as_bool, integer_at_least, number_in, one_of
from monai_scribble.utils.checkpoint_files import find_last_checkpoint, read_training_checkpoint

__all__ = ["check_training_arguments", "check_training_run", "monailabel_run_dir"]

_NETWORK_STRIDE = 32  # MultiscaleUNet downsamples 5 times


def check_training_arguments(
    *,
    dataset: str,
    dataset_preset: str,
    method: str,
    max_epochs: int,
    warmup_epochs: int,
    ema_period: int,
    ema_momentum: float,
    ema_threshold: float,
    ema_background_threshold: float | None,
    batch_size: int | str,
    crop_size: int,
    val_interval: int,
    num_workers: int,
    select_by: str,
    learning_rate: float,
    max_samples: int,
    resume: bool | str,
    ema_bias_correction: bool | str,
    encoder_layout: str,
    pretrained_weights: str | None,
    pretrained: bool | str,
    init_from: str | None,
) -> None:
    """Check the training arguments of train.json (its ``training_args``, every one given: the values live in the config only); every error names the argument.

    Raises:
        ArgumentError: an invalid argument, with the valid choices or range.
    """
    from monai_scribble.engines.methods import METHODS
    from monai_scribble.engines.model_selection import SELECTION_METRICS

    if dataset != dataset_preset:
        raise ArgumentError("dataset", f"{dataset!r} runs with its preset (schedule, EMA momentum and threshold, augmentation), "
                                       f"but the config holds the {dataset_preset!r} one",
                            f"add bundles/scribble_cell_segmentation/configs/datasets/{dataset}.json to --config_file (README: Training)")  # fmt: skip
    one_of("method", method, list(METHODS))
    integer_at_least("max_epochs", max_epochs, 1)
    integer_at_least("warmup_epochs", warmup_epochs, 0)
    PseudoLabelConfig(ema_momentum, ema_threshold, ema_background_threshold, ema_period, ema_bias_correction)
    if str(batch_size).strip().lower() != "auto":
        integer_at_least("batch_size", batch_size, 1, "or auto (the authors' min(30, training images))")
    crop = integer_at_least("crop_size", crop_size, _NETWORK_STRIDE)
    if crop % _NETWORK_STRIDE:
        lower = crop // _NETWORK_STRIDE * _NETWORK_STRIDE
        raise ArgumentError("crop_size", f"must be a multiple of {_NETWORK_STRIDE} (the network halves it 5 times), got {crop}",
                            f"use {lower} or {lower + _NETWORK_STRIDE}")  # fmt: skip
    integer_at_least("val_interval", val_interval, 1)
    integer_at_least("num_workers", num_workers, 0)
    one_of("select_by", select_by, ["auto", *SELECTION_METRICS])
    number_in("learning_rate", learning_rate, 0.0, float("inf"))
    integer_at_least("max_samples", max_samples, 2)
    as_bool(resume, "resume")
    check_initial_weights(encoder_layout, pretrained_weights, as_bool(pretrained, "pretrained"), init_from)


def check_training_run(prepare_args: Mapping[str, Any], training_args: Mapping[str, Any]) -> str | None:
    """Every check of a ``training`` run, before anything is written; returns the checkpoint to resume from.

    Arguments first (:func:`check_prepare_arguments`, :func:`check_training_arguments`), then the output
    folder: a new run into a folder holding a training checkpoint is refused unless ``resume`` is true; a
    resume needs a checkpoint, readable (checked here, so a corrupt file is named before anything
    runs), from a run prepared with the same data arguments.

    Args:
        prepare_args: the keyword arguments of ``prepare_datalist`` (train.json's ``prepare_args``).
        training_args: the keyword arguments of :func:`check_training_arguments`.

    Returns:
        The checkpoint path when resuming, else ``None`` (a new run).

    Raises:
        ArgumentError: an invalid argument.
        RunStateError: a refused overwrite, or a resume without a checkpoint.
        DataError: an unreadable checkpoint (named).
    """
    check_prepare_arguments(**prepare_args, check_run=False)
    check_training_arguments(**training_args)
    output_dir = prepare_args["output_dir"]
    resume = as_bool(training_args.get("resume", False), "resume")
    last = find_last_checkpoint(output_dir)
    if last and not resume:
        raise RunStateError(
            f"{output_dir} already holds a training checkpoint ({Path(last).name}); "
            "pass --resume true to continue that run, or choose another --output_dir"
        )
    if resume and not last:
        raise RunStateError(f"--resume true but there is no checkpoint in {Path(output_dir) / 'checkpoints'}; drop --resume to start a new run")
    if last:
        check_datalist_matches(output_dir, {name: prepare_args.get(name) for name in DATALIST_PARAMETERS})
        read_training_checkpoint(last, mmap=True)  # mmap: reads the archive's index, not the tensors
    return last


def monailabel_run_dir(root: str | os.PathLike) -> str:
    """A new run folder ``<root>/<YYYYmmdd-HHMMSS>[-n]`` for one MONAI Label training request.

    Each request is a fresh run (fine-tuning from ``model.pt``), so it never meets the previous run's
    checkpoint, EMA maps or scribble cache.
    """
    base = Path(root) / time.strftime("%Y%m%d-%H%M%S")
    path, n = base, 0
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return str(path)
