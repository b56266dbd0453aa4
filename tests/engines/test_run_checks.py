"""Run checks (arguments, output folder state) in isolation; the bundle-level cases are in test_bad_inputs.py."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import torch

from monai_scribble.data.arguments import check_prepare_arguments
from monai_scribble.engines.run_checks import check_training_arguments, check_training_run
from monai_scribble.errors import ArgumentError, DataError, RunStateError
from monai_scribble.utils.arguments import as_bool
from monai_scribble.utils.checkpoint_files import find_last_checkpoint


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"crop_size": 100}, "--crop_size: must be a multiple of 32 (the network halves it 5 times), got 100; use 96 or 128"),
        ({"crop_size": 16}, "--crop_size: must be an integer >= 32, got 16"),
        ({"max_epochs": -1}, "--max_epochs: must be an integer >= 1, got -1"),
        ({"max_epochs": "ten"}, "--max_epochs: must be an integer >= 1, got 'ten'"),
        ({"warmup_epochs": -2}, "--warmup_epochs: must be an integer >= 0, got -2"),
        ({"ema_period": 0}, "--ema_period: must be an integer >= 1, got 0"),
        ({"ema_momentum": 0}, "--ema_momentum: must be a number in (0, 1], got 0"),
        ({"ema_threshold": 0.4}, "--ema_threshold: must be a number in (0.5, 1), got 0.4"),
        ({"ema_background_threshold": 1.0}, "--ema_background_threshold: must be a number in (0.5, 1), got 1.0"),
        ({"batch_size": 0}, "--batch_size: must be an integer >= 1, got 0; or auto (the authors' min(30, training images))"),
        ({"method": "s2l_r2"}, "--method: unknown value 's2l_r2'; choose one of supervised, scribble_only, s2l, s2l_r1, s2l_r4, s2l_r1r4"),
        ({"select_by": "dice"}, "--select_by: unknown value 'dice'; choose one of auto, iou, scribble, scribble_instances"),
        ({"resume": "maybe"}, "--resume: must be true or false, got 'maybe'"),
        ({"learning_rate": -1}, "--learning_rate: must be a number in (0, inf], got -1"),
        ({"encoder_layout": "timm"}, "--encoder_layout: unknown value 'timm'; choose one of monai, torchvision"),
        ({"pretrained_weights": "/no/resnet34.pth"}, "--pretrained_weights: no file '/no/resnet34.pth'; download torchvision's "
                                                     "ImageNet ResNet-34 checkpoint (README: Start from weights) and pass its path"),
        ({"init_from": "/no/model.pt"}, "--init_from: no model file '/no/model.pt'; pass a model.pt written by training (<output_dir>/models/model.pt)"),
    ],
)
def test_training_argument_errors_name_the_argument(bundle_training_args, overrides, message):
    with pytest.raises(ArgumentError) as err:
        check_training_arguments(**{**bundle_training_args, **overrides})
    assert str(err.value) == message


@pytest.fixture(scope="module")
def bundle_training_args():
    """train.json's ``training_args`` (its defaults), resolved as the bundle resolves them."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(Path(__file__).resolve().parents[2] / "bundles" / "scribble_cell_segmentation" / "configs" / "train.json"))
    return parser.get_parsed_content("training_args")


def test_train_json_passes_every_training_argument_and_they_are_valid(bundle_training_args):
    assert set(bundle_training_args) == set(inspect.signature(check_training_arguments).parameters)
    check_training_arguments(**bundle_training_args)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"dataset": "dsb"}, "--dataset: unknown value 'dsb'; choose one of synthetic, dsb_fluo, dsb_bf, dsb_histo, monuseg, folder"),
        ({"dataset": "folder"}, "--dataset_dir: dataset 'folder' needs --dataset_dir (the folder that holds it)"),
        ({"dataset": "monuseg", "dataset_dir": "/nonexistent/monuseg"}, "--dataset_dir: folder not found: /nonexistent/monuseg"),
        ({"fold": 4}, "--fold: must be in 0..3 for dataset 'synthetic', got 4; fold 4 is the test fold"),
        ({"fold": -1}, "--fold: must be an integer >= 0, got -1"),
        ({"scribble_ratio": 0}, "--scribble_ratio: must be a number in (0, 1], got 0"),
        ({"scribble_format": "bogus"}, "--scribble_format: unknown value 'bogus'; choose one of s2l, zero_unlabeled"),
        ({"scribble_style": "dots"}, "--scribble_style: unknown value 'dots'; choose one of skeleton, strokes"),
        ({"num_synthetic": 3}, "--num_synthetic_images: must be an integer >= 5, got 3; 5 seeded folds need at least 5 images"),
        ({"split_file": "/nonexistent/split.json"}, "--split_file: file not found: /nonexistent/split.json"),
    ],
)
def test_prepare_argument_errors_name_the_argument(tmp_path, overrides, message):
    with pytest.raises(ArgumentError) as err:
        check_prepare_arguments(**{"output_dir": str(tmp_path / "out"), **overrides})
    assert str(err.value) == message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value, expected", [(True, True), ("true", True), ("YES", True), ("1", True), (False, False), ("false", False), ("no", False), (0, False)])
def test_command_line_flags(value, expected):
    assert as_bool(value) is expected


def _checkpoint(output_dir, epoch, payload=None):
    folder = output_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"checkpoint_epoch={epoch}.pt"
    if payload is None:
        torch.save({"trainer": {"epoch": epoch}}, path)
    else:
        path.write_bytes(payload)
    return path


def test_output_folder_guard(tmp_path, bundle_training_args):
    prepare = {"output_dir": str(tmp_path)}
    assert check_training_run(prepare, {**bundle_training_args, "resume": "false"}) is None  # the string "false" must not mean resume
    with pytest.raises(RunStateError, match="--resume true but there is no checkpoint in"):
        check_training_run(prepare, {**bundle_training_args, "resume": True})
    _checkpoint(tmp_path, 3)
    last = _checkpoint(tmp_path, 12)
    assert find_last_checkpoint(tmp_path) == str(last)
    with pytest.raises(RunStateError, match=r"already holds a training checkpoint \(checkpoint_epoch=12.pt\); pass --resume true"):
        check_training_run(prepare, {**bundle_training_args, "resume": False})
    assert check_training_run(prepare, {**bundle_training_args, "resume": "true"}) == str(last)


@pytest.mark.parametrize("payload", [b"", b"not a checkpoint", b"PK\x03\x04 truncated zip"])
def test_corrupt_checkpoint_is_named(tmp_path, payload, bundle_training_args):
    path = _checkpoint(tmp_path, 2, payload)
    with pytest.raises(DataError) as err:
        check_training_run({"output_dir": str(tmp_path)}, {**bundle_training_args, "resume": True})
    assert str(err.value).startswith(f"{path}: unreadable or corrupt training checkpoint")


def test_resume_with_other_data_arguments_is_refused(tmp_path):
    _checkpoint(tmp_path, 1)
    recorded = {"dataset": "synthetic", "dataset_dir": None, "fold": 0, "seed": 0, "scribble_ratio": 0.3, "scribble_format": "s2l", "split_file": None}
    (tmp_path / "datalist.json").write_text(json.dumps(recorded))
    check_prepare_arguments(output_dir=str(tmp_path))  # same arguments (a datalist from before scribble_style: skeletons): fine
    with pytest.raises(RunStateError, match=r"--scribble_style strokes \(the run has skeleton\)"):
        check_prepare_arguments(output_dir=str(tmp_path), scribble_style="strokes")
    with pytest.raises(RunStateError, match=r"prepared with other data arguments: --fold 1 \(the run has 0\), --seed 3 \(the run has 0\)"):
        check_prepare_arguments(output_dir=str(tmp_path), fold=1, seed=3)
