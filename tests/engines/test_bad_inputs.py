"""Bad inputs and interruptions, through the bundle command a user runs (``python -m monai.bundle run ...``).

Each case asserts the exit code, the one-line message naming the file or argument as the last line of
the output (no traceback), and that nothing was written or lost: a folder that did not exist is not
created, and every file of an existing run keeps its bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_scribble.data.image_io import read_instance_label
from monai_scribble.data.scribbles import image_rng, synthesize_scribble, write_scribble
from monai_scribble.data.synthetic import write_synthetic_dataset
from tests.conftest import file_digest, is_online

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN_CONFIG = REPO_ROOT / "bundles" / "scribble_cell_segmentation" / "configs" / "train.json"
FOLDER_PRESET = TRAIN_CONFIG.parent / "datasets" / "folder.json"
TINY = ["--num_synthetic_images", "5", "--crop_size", "64", "--batch_size", "2", "--val_interval", "1", "--ema_period", "1",
        "--max_samples", "200", "--warmup_epochs", "1"]  # fmt: skip


def bundle(run_id: str, *args: str, preset: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m monai.bundle run <run_id>`` on train.json (with the dataset ``preset`` overlay), as a user runs it."""
    config = str([str(TRAIN_CONFIG), str(preset)]) if preset else str(TRAIN_CONFIG)
    command = [sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file", config, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MONAI_SCRIBBLE_DEBUG", None)
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)


def snapshot(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` (empty if it does not exist)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): file_digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def own_data(tmp_path_factory) -> Path:
    """A lab's folder: ``images/`` and ``scribbles/`` (zero-unlabeled PNGs), no ``labels/``."""
    root = tmp_path_factory.mktemp("own_data")
    (root / "images").mkdir()
    for sample in write_synthetic_dataset(root / "generated", num_images=6, seed=2, shape=(64, 64)):
        shutil.copy2(sample.image, root / "images" / Path(sample.image).name)
        scribble = synthesize_scribble(read_instance_label(sample.label), 1.0, image_rng(0, sample.id))
        write_scribble(root / "scribbles" / f"{sample.id}.png", scribble, "zero_unlabeled")
    shutil.rmtree(root / "generated")
    return root


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A tiny synthetic run, trained to the end (2 epochs, main stage in epoch 2)."""
    output = tmp_path_factory.mktemp("finished_run") / "run"
    result = bundle("training", "--output_dir", str(output), "--max_epochs", "2", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    return output


def _copy_data(own_data: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(own_data, data)
    return data


def _zero_byte_image(data: Path) -> str:
    image = sorted((data / "images").iterdir())[1]
    image.write_bytes(b"")
    return f"{image}: unreadable or corrupt image"


def _text_as_image(data: Path) -> str:
    image = sorted((data / "images").iterdir())[2]
    image.write_text("not an image\n")
    return f"{image}: unreadable or corrupt image"


def _truncated_image(data: Path) -> str:
    image = sorted((data / "images").iterdir())[0]
    image.write_bytes(image.read_bytes()[:200])
    return f"{image}: unreadable or corrupt image"


def _scribble_of_another_size(data: Path) -> str:
    scribble = sorted((data / "scribbles").iterdir())[3]
    Image.fromarray(np.zeros((60, 64), np.uint8)).save(scribble)
    return f"{scribble}: scribble is 60x64 pixels but its image {data / 'images' / scribble.name} is 64x64"


def _unknown_scribble_values(data: Path) -> str:
    scribble = sorted((data / "scribbles").iterdir())[0]
    Image.fromarray(np.full((64, 64), 7, np.uint8)).save(scribble)
    return f"{scribble}: unknown scribble values [7] for format 'zero_unlabeled'"


def _no_nucleus_scribbled(data: Path) -> str:
    for scribble in (data / "scribbles").iterdir():
        Image.fromarray(np.where(np.asarray(Image.open(scribble)) == 2, 0, np.asarray(Image.open(scribble)))).save(scribble)
    return f"{data}: no training image left: all 4 were skipped"


DATA_CASES: list[tuple[str, str, Callable[[Path], str]]] = [
    ("prepare", "zero-byte image", _zero_byte_image),
    ("prepare", "text file named .png", _text_as_image),
    ("prepare", "truncated image", _truncated_image),
    ("prepare", "scribble of another size", _scribble_of_another_size),
    ("prepare", "unknown scribble values", _unknown_scribble_values),
    ("prepare", "every scribble lacks a nucleus", _no_nucleus_scribbled),
    ("training", "zero-byte image", _zero_byte_image),  # training goes through the same prepare step
    ("training", "scribble of another size", _scribble_of_another_size),
]


@pytest.mark.slow
@pytest.mark.parametrize("run_id, name, corrupt", DATA_CASES, ids=[f"{c[0]}: {c[1]}" for c in DATA_CASES])
def test_bad_data_is_named_before_anything_is_written(tmp_path, own_data, run_id, name, corrupt):
    data = _copy_data(own_data, tmp_path)
    expected = corrupt(data)
    before = snapshot(data)
    output = tmp_path / "run"
    result = bundle(run_id, "--dataset_dir", str(data), "--scribble_format", "zero_unlabeled",
                    "--output_dir", str(output), "--max_epochs", "1", preset=FOLDER_PRESET)  # fmt: skip
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 1, result.stderr[-3000:]
    assert lines[-1].startswith(f"error: {expected}"), lines[-1]
    assert "Traceback" not in result.stderr
    assert not output.exists()  # nothing written
    assert snapshot(data) == before  # the dataset is never written


ARGUMENT_CASES = [
    (["--crop_size", "100"], "error: --crop_size: must be a multiple of 32 (the network halves it 5 times), got 100; use 96 or 128"),
    (["--max_epochs", "-1"], "error: --max_epochs: must be an integer >= 1, got -1"),
    (["--fold", "7"], "error: --fold: must be in 0..3 for dataset 'synthetic', got 7; fold 4 is the test fold"),
    (["--scribble_format", "bogus"], "error: --scribble_format: unknown value 'bogus'; choose one of s2l, zero_unlabeled"),
    (["--method", "s2l_r9"], "error: --method: unknown value 's2l_r9'; choose one of supervised, scribble_only, s2l, s2l_r1, s2l_r4, s2l_r1r4"),
    (["--resume", "maybe"], "error: --resume: must be true or false, got 'maybe'"),
    (["--dataset", "folder", "--dataset_dir", "/nonexistent/lab"], "error: --dataset_dir: folder not found: /nonexistent/lab"),
    (["--dataset", "monuseg", "--dataset_dir", "."], "error: --dataset: 'monuseg' runs with its preset (schedule, EMA momentum and "
     "threshold, augmentation), but the config holds the 'synthetic' one; add bundles/scribble_cell_segmentation/configs/datasets/"
     "monuseg.json to --config_file (README: Training)"),
    (["--resume", "true"], "error: --resume true but there is no checkpoint in"),
    (["--init_from", "/nonexistent/model.pt"], "error: --init_from: no model file '/nonexistent/model.pt'; pass a model.pt written by training"),
    (["--pretrained", "true"], "error: --pretrained: downloads torchvision's ImageNet weights, which need torchvision's encoder layout; "
     "add --encoder_layout torchvision"),
    (["--encoder_layout", "resnet"], "error: --encoder_layout: unknown value 'resnet'; choose one of monai, torchvision"),
]


@pytest.mark.slow
@pytest.mark.parametrize("args, expected", ARGUMENT_CASES, ids=[" ".join(c[0]) for c in ARGUMENT_CASES])
def test_bad_arguments_are_refused_before_any_output(tmp_path, args, expected):
    output = tmp_path / "run"
    result = bundle("training", "--output_dir", str(output), *TINY, *args)
    assert result.returncode == 1
    assert (result.stdout + result.stderr).strip().splitlines()[-1].startswith(expected)
    assert "Traceback" not in result.stderr
    assert not output.exists()  # not even synthetic data was generated


@pytest.mark.slow
@pytest.mark.skipif(is_online(), reason="this machine is online: the offline error cannot be observed (the download would run)")
def test_imagenet_download_offline_is_one_line_before_any_output(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no cached checkpoint: the real download is tried
    output = tmp_path / "run"
    result = bundle("training", "--output_dir", str(output), *TINY, "--encoder_layout", "torchvision", "--pretrained", "true")
    assert result.returncode == 1
    last = (result.stdout + result.stderr).strip().splitlines()[-1]
    assert last.startswith("error: https://download.pytorch.org/models/resnet34-b627a593.pth: cannot download the ImageNet weights")
    assert last.endswith("pass it as pretrained_weights (--pretrained_weights PATH)") and "Traceback" not in result.stderr
    assert not output.exists()


def _corrupt_checkpoint(run: Path) -> str:
    checkpoint = run / "checkpoints" / "checkpoint_epoch=2.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    return f"error: {checkpoint}: unreadable or corrupt training checkpoint"


RUN_CASES = [
    ("new run over a checkpoint", [], None, "error: {run} already holds a training checkpoint (checkpoint_epoch=2.pt); pass --resume true"),
    ("new run over a checkpoint, other fold", ["--fold", "1"], None, "error: {run} already holds a training checkpoint"),
    ("resume with another fold", ["--resume", "true", "--fold", "1", "--max_epochs", "3"], None,
     "error: {run} holds a training run (checkpoint_epoch=2.pt) prepared with other data arguments: --fold 1 (the run has 0)"),
    ("resume from a corrupt checkpoint", ["--resume", "true", "--max_epochs", "3"], _corrupt_checkpoint, None),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, args, damage, expected", RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_refused_runs_leave_the_run_untouched(tmp_path, finished_run, name, args, damage, expected):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    if damage is not None:
        expected = damage(run)
    before = snapshot(run)
    result = bundle("training", "--output_dir", str(run), *TINY, "--max_epochs", "2", *args)
    assert result.returncode == 1, result.stderr[-3000:]
    assert (result.stdout + result.stderr).strip().splitlines()[-1].startswith(expected.format(run=run))
    assert "Traceback" not in result.stderr
    assert snapshot(run) == before  # datalist, checkpoint, EMA maps and model.pt all kept


@pytest.mark.slow
def test_resuming_a_finished_run_is_a_no_op(tmp_path):
    run = tmp_path / "run"  # trained in place: a copied run's datalist would point at the original's files
    assert bundle("training", "--output_dir", str(run), *TINY, "--max_epochs", "2").returncode == 0
    kept = {k: v for k, v in snapshot(run).items() if not k.startswith("tensorboard")}
    result = bundle("training", "--output_dir", str(run), *TINY, "--max_epochs", "2", "--resume", "true")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "nothing to do: the run finished epoch 2 of max_epochs 2; pass a larger --max_epochs" in result.stdout + result.stderr
    assert {k: v for k, v in snapshot(run).items() if not k.startswith("tensorboard")} == kept
    # ... and it can still be extended afterwards
    result = bundle("training", "--output_dir", str(run), *TINY, "--max_epochs", "3", "--resume", "true")
    assert result.returncode == 0, result.stderr[-3000:]
    state = torch.load(run / "checkpoints" / "checkpoint_epoch=3.pt", weights_only=True)
    assert (state["trainer"]["iteration"] // state["trainer"]["epoch_length"], state["ema"]["updates"]) == (3, 3)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["checkpoint_epoch=3.pt"]


@pytest.mark.slow
def test_new_run_discards_stale_ema_maps_without_checkpoint(tmp_path, finished_run):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    shutil.rmtree(run / "checkpoints")  # e.g. killed before its first checkpoint, or checkpoints deleted
    assert json.loads((run / "ema" / "current.json").read_text())["updates"] == 2
    result = bundle("training", "--output_dir", str(run), *TINY, "--max_epochs", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run / "ema" / "current.json").read_text()) == {"generation": 1, "updates": 1}  # restarted from zero maps


@pytest.mark.slow
def test_own_data_without_labels_trains_end_to_end(tmp_path, own_data):
    """README's "Training on your own data": images + scribbles, no labels, model selected by the scribbles."""
    output = tmp_path / "run"
    result = bundle("training", "--dataset_dir", str(own_data), "--scribble_format", "zero_unlabeled",
                    "--output_dir", str(output), "--max_epochs", "2", "--warmup_epochs", "1", "--crop_size", "64",
                    "--batch_size", "2", "--ema_period", "1", "--max_samples", "200", "--val_interval", "1",
                    preset=FOLDER_PRESET)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    datalist = json.loads((output / "datalist.json").read_text())
    assert datalist["test"] == [] and not any("label" in item for item in datalist["training"] + datalist["validation"])
    assert "val_scribble_accuracy" in result.stdout + result.stderr
    state = torch.load(output / "models" / "model.pt", weights_only=True)
    assert state["metadata"]["dataset"] == "folder" and state["metadata"]["metric"] == "val_scribble_accuracy"
