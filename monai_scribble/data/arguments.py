"""Checks of ``prepare``'s arguments and of the datalist a run recorded, before anything is written."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai_scribble.data.scribbles import ScribbleFormat
from monai_scribble.errors import ArgumentError, RunStateError
from monai_scribble.utils.arguments import integer_at_least, number_in, one_of
from monai_scribble.utils.checkpoint_files import find_last_checkpoint

__all__ = ["DATALIST_PARAMETERS", "check_datalist_matches", "check_prepare_arguments", "read_id_list"]

DATALIST_PARAMETERS: tuple[str, ...] = ("dataset", "dataset_dir", "fold", "seed", "scribble_ratio", "scribble_format", "split_file", "scribbled_ids",
                                      "scribble_style")
"""Arguments of ``prepare`` recorded in ``datalist.json``; a resumed run must give the same."""


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
    scribbled_ids: str | os.PathLike | None = None,
    scribble_style: str = "skeleton",
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
    from monai_scribble.data.datalist import DATASETS, SCRIBBLE_STYLES

    one_of("dataset", dataset, DATASETS)
    if dataset == "synthetic":
        integer_at_least("num_synthetic_images", num_synthetic, 5, "5 seeded folds need at least 5 images")
    elif not dataset_dir:
        raise ArgumentError("dataset_dir", f"dataset '{dataset}' needs --dataset_dir (the folder that holds it)")
    elif not Path(dataset_dir).is_dir():
        raise ArgumentError("dataset_dir", f"folder not found: {dataset_dir}")
    last_fold = 4 if dataset in ("monuseg", "folder") else 3  # fold 4 is the test fold elsewhere
    fold = integer_at_least("fold", fold, 0)
    if fold > last_fold:
        raise ArgumentError("fold", f"must be in 0..{last_fold} for dataset '{dataset}', got {fold}",
                            "fold 4 is the test fold" if last_fold == 3 else "")  # fmt: skip
    integer_at_least("seed", seed, 0)
    number_in("scribble_ratio", scribble_ratio, 0.0, 1.0)
    one_of("scribble_format", scribble_format, [f.value for f in ScribbleFormat])
    one_of("scribble_style", scribble_style, list(SCRIBBLE_STYLES))
    if split_file and not Path(split_file).is_file():
        raise ArgumentError("split_file", f"file not found: {split_file}")
    if scribbled_ids:
        read_id_list(scribbled_ids, "scribbled_ids")
    if Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise ArgumentError("output_dir", f"{output_dir} exists and is not a folder")
    if check_run:
        check_datalist_matches(output_dir, dict(dataset=dataset, dataset_dir=dataset_dir, fold=fold, seed=seed,
                                                 scribble_ratio=scribble_ratio, scribble_format=scribble_format, split_file=split_file,
                                                 scribbled_ids=scribbled_ids, scribble_style=scribble_style))  # fmt: skip


def read_id_list(path: str | os.PathLike, argument: str = "scribbled_ids") -> list[str]:
    """The image ids in a text file, one per line (blank lines and ``#`` comments ignored), in file order.

    Raises:
        ArgumentError: a missing or empty file, or an id listed twice (named as ``--<argument>``).
    """
    if not Path(path).is_file():
        raise ArgumentError(argument, f"file not found: {path}", "write one training image id per line")
    ids = [line.split("#", 1)[0].strip() for line in Path(path).read_text().splitlines()]
    ids = [i for i in ids if i]
    if not ids:
        raise ArgumentError(argument, f"{path} lists no image id", "write one training image id per line")
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ArgumentError(argument, f"{path} lists {twice[:5]} more than once")
    return ids


def check_datalist_matches(output_dir: str | os.PathLike, requested: Mapping[str, Any]) -> None:
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
        if name in ("dataset_dir", "split_file", "scribbled_ids"):
            value = str(Path(value).resolve()) if value else None
        elif name == "scribble_ratio":
            value, before = float(value), float(before) if before is not None else None
        elif name in ("fold", "seed"):
            value = int(value)
        elif name == "scribble_style":
            before = before or "skeleton"  # datalists written before the option have skeletons
        if value != before:
            differing.append(f"--{name} {value} (the run has {before})")
    if differing:
        raise RunStateError(
            f"{output_dir} holds a training run ({Path(last).name}) prepared with other data arguments: {', '.join(differing)}; "
            "give the run's own arguments to resume it, or choose another --output_dir for a new run"
        )
