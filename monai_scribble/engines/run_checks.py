"""Checks a bundle run makes before it writes anything: its arguments and the state of its output folder.

``prepare`` and ``training`` call these first (train.json), so a bad argument, a refused overwrite or an
unreadable checkpoint stops the run with one clear line (:mod:`monai_scribble.errors`) before a folder is
created, data is generated or a datalist is rewritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai_scribble.errors import ArgumentError, RunStateError

__all__ = [
    "DATALIST_PARAMETERS",
    "as_bool",
    "check_prepare_arguments",
    "check_training_arguments",
    "check_training_run",
    "checkpoint_epoch",
    "find_last_checkpoint",
    "list_checkpoints",
    "read_training_checkpoint",
]

DATALIST_PARAMETERS: tuple[str, ...] = ("dataset", "dataset_dir", "fold", "seed", "scribble_ratio", "scribble_format", "split_file")
"""Arguments of ``prepare`` recorded in ``datalist.json``; a resumed run must give the same."""

_NETWORK_STRIDE = 32  # MultiscaleUNet downsamples 5 times


def as_bool(value: bool | str | int, name: str = "value") -> bool:
    """A bundle flag given on the command line: ``--resume true`` arrives as the string ``"true"``.

    Raises:
        ArgumentError: anything but a bool, 0/1 or true/false/yes/no (any case).
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ArgumentError(name, f"must be true or false, got {value!r}")


def _integer(name: str, value: Any, minimum: int, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().lstrip("-").isdigit():
        raise ArgumentError(name, f"must be an integer >= {minimum}, got {value!r}", hint)
    number = int(value)
    if number < minimum:
        raise ArgumentError(name, f"must be an integer >= {minimum}, got {number}", hint)
    return number


def _number(name: str, value: Any, low: float, high: float, low_open: bool = True, high_open: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    below = number <= low if low_open else number < low
    above = number >= high if high_open else number > high
    if number != number or below or above:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ArgumentError(name, f"must be a number in {interval}, got {value!r}")
    return number


def _choice(name: str, value: Any, choices: tuple[str, ...] | list[str]) -> str:
    if value not in choices:
        raise ArgumentError(name, f"unknown value {value!r}", f"choose one of {', '.join(choices)}")
    return str(value)


def check_prepare_arguments(
    dataset: str = "synthetic",
    dataset_dir: str | os.PathLike | None = None,
    output_dir: str | os.PathLike = "output",
    fold: int = 0,
    seed: int = 0,
    scribble_ratio: float = 0.3,
    scribble_format: str = "s2l",
    cache_dir: str | os.PathLike | None = None,
    num_synthetic: int = 40,
    split_file: str | os.PathLike | None = None,
    check_run: bool = True,
) -> None:
    """Check ``prepare``'s arguments (the keyword arguments of ``prepare_datalist``) before anything is written.

    Also refuses to rewrite the datalist of a run that holds a training checkpoint with other data
    arguments (the checkpoint's EMA maps and model belong to the recorded split), unless ``check_run`` is
    false (the caller checks the output folder itself, see :func:`check_training_run`).

    Raises:
        ArgumentError: an invalid argument (named), with the valid choices or range.
        RunStateError: ``output_dir`` holds a checkpointed run whose datalist was made with other arguments.
    """
    from monai_scribble.data.datalist import DATASETS
    from monai_scribble.data.scribbles import ScribbleFormat

    _choice("dataset", dataset, DATASETS)
    if dataset == "synthetic":
        _integer("num_synthetic_images", num_synthetic, 5, "5 seeded folds need at least 5 images")
    elif not dataset_dir:
        raise ArgumentError("dataset_dir", f"dataset '{dataset}' needs --dataset_dir (the folder that holds it)")
    elif not Path(dataset_dir).is_dir():
        raise ArgumentError("dataset_dir", f"folder not found: {dataset_dir}")
    last_fold = 4 if dataset in ("monuseg", "folder") else 3  # fold 4 is the test fold elsewhere
    fold = _integer("fold", fold, 0)
    if fold > last_fold:
        raise ArgumentError("fold", f"must be in 0..{last_fold} for dataset '{dataset}', got {fold}",
                            "fold 4 is the test fold" if last_fold == 3 else "")  # fmt: skip
    _integer("seed", seed, 0)
    _number("scribble_ratio", scribble_ratio, 0.0, 1.0)
    _choice("scribble_format", scribble_format, [f.value for f in ScribbleFormat])
    if split_file and not Path(split_file).is_file():
        raise ArgumentError("split_file", f"file not found: {split_file}")
    if Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise ArgumentError("output_dir", f"{output_dir} exists and is not a folder")
    if check_run:
        _check_datalist_matches(output_dir, dict(dataset=dataset, dataset_dir=dataset_dir, fold=fold, seed=seed,
                                                 scribble_ratio=scribble_ratio, scribble_format=scribble_format, split_file=split_file))  # fmt: skip


def _check_datalist_matches(output_dir: str | os.PathLike, requested: Mapping[str, Any]) -> None:
    """``RunStateError`` if a checkpointed run in ``output_dir`` recorded other data arguments."""
    datalist_path = Path(output_dir) / "datalist.json"
    last = find_last_checkpoint(output_dir)
    if last is None or not datalist_path.is_file():
        return
    try:
        recorded = json.loads(datalist_path.read_text())
    except ValueError:
        return  # prepare rewrites an unreadable datalist; the checkpoint check reports the run
    differing = []
    for name in DATALIST_PARAMETERS:
        value, before = requested.get(name), recorded.get(name)
        if name in ("dataset_dir", "split_file"):
            value = str(Path(value).resolve()) if value else None
        elif name == "scribble_ratio":
            value, before = float(value), float(before) if before is not None else None
        elif name in ("fold", "seed"):
            value = int(value)
        if value != before:
            differing.append(f"--{name} {value} (the run has {before})")
    if differing:
        raise RunStateError(
            f"{output_dir} holds a training run ({Path(last).name}) prepared with other data arguments: {', '.join(differing)}; "
            "give the run's own arguments to resume it, or choose another --output_dir for a new run"
        )


def check_training_arguments(
    method: str = "s2l_r1r4",
    max_epochs: int = 1000,
    warmup_epochs: int = 100,
    ema_period: int = 5,
    ema_momentum: float = 0.2,
    ema_threshold: float = 0.8,
    ema_background_threshold: float | None = None,
    batch_size: int | str = "auto",
    crop_size: int = 256,
    val_interval: int = 1,
    num_workers: int = 0,
    select_by: str = "auto",
    learning_rate: float = 3e-4,
    max_samples: int = 6000,
    resume: bool | str = False,
    ema_bias_correction: bool | str = False,
) -> None:
    """Check the training arguments of train.json; every error names the argument.

    Raises:
        ArgumentError: an invalid argument, with the valid choices or range.
    """
    from monai_scribble.engines.presets import METHODS, SELECTION_METRICS

    _choice("method", method, list(METHODS))
    _integer("max_epochs", max_epochs, 1)
    _integer("warmup_epochs", warmup_epochs, 0)
    _integer("ema_period", ema_period, 1)
    _number("ema_momentum", ema_momentum, 0.0, 1.0)
    _number("ema_threshold", ema_threshold, 0.5, 1.0, high_open=True)
    if ema_background_threshold is not None:
        _number("ema_background_threshold", ema_background_threshold, 0.5, 1.0, high_open=True)
    if str(batch_size).strip().lower() != "auto":
        _integer("batch_size", batch_size, 1, "or auto (the authors' min(30, training images))")
    crop = _integer("crop_size", crop_size, _NETWORK_STRIDE)
    if crop % _NETWORK_STRIDE:
        lower = crop // _NETWORK_STRIDE * _NETWORK_STRIDE
        raise ArgumentError("crop_size", f"must be a multiple of {_NETWORK_STRIDE} (the network halves it 5 times), got {crop}",
                            f"use {lower} or {lower + _NETWORK_STRIDE}")  # fmt: skip
    _integer("val_interval", val_interval, 1)
    _integer("num_workers", num_workers, 0)
    _choice("select_by", select_by, ["auto", *SELECTION_METRICS])
    _number("learning_rate", learning_rate, 0.0, float("inf"))
    _integer("max_samples", max_samples, 2)
    as_bool(resume, "resume")
    as_bool(ema_bias_correction, "ema_bias_correction")


def list_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """The training checkpoints ``checkpoint_epoch=<N>.pt`` in ``folder``, oldest epoch first."""
    return sorted(Path(folder).glob("checkpoint_epoch=*.pt"), key=checkpoint_epoch)


def find_last_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The training checkpoint with the highest epoch in ``<output_dir>/checkpoints``, or ``None``."""
    paths = list_checkpoints(Path(output_dir) / "checkpoints")
    return str(paths[-1]) if paths else None


def checkpoint_epoch(path: str | os.PathLike) -> int:
    """The epoch in a checkpoint file name ``checkpoint_epoch=<N>.pt``."""
    return int(Path(path).stem.split("=")[-1])


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
        _check_datalist_matches(output_dir, {name: prepare_args.get(name) for name in DATALIST_PARAMETERS})
        read_training_checkpoint(last, mmap=True)  # mmap: reads the archive's index, not the tensors
    return last


def read_training_checkpoint(path: str | os.PathLike, mmap: bool = False) -> dict:
    """``torch.load(path, weights_only=True)`` of a training checkpoint, on the CPU.

    Raises:
        DataError: the file is unreadable or corrupt (the message names it and says what to do).
    """
    import torch

    from monai_scribble.data.image_io import DataError

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:
        raise DataError(path, f"unreadable or corrupt training checkpoint ({type(err).__name__}: {str(err)[:200]}); "
                              "delete it to resume from an earlier one, or start a new run in another --output_dir") from err  # fmt: skip
