"""evaluate.json (merged onto train.json) and the standalone inference.json, on a tiny synthetic model."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile
import torch
from monai.bundle import ConfigWorkflow
from PIL import Image

from monai_scribble.data.image_io import file_stem, read_array, read_instance_label
from monai_scribble.errors import find_user_error
from monai_scribble.inference import segment
from monai_scribble.metrics import METRIC_NAMES
from monai_scribble.networks import MultiscaleUNet
from tests.conftest import file_digest

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "bundles" / "scribble_cell_segmentation" / "configs"
DEMO_WARNING = "was trained on the synthetic demo data; it is meant to show the workflow, not to segment real images"
TINY = {"num_synthetic_images": 6, "crop_size": 64, "batch_size": 2, "val_interval": 1, "max_samples": 200}


def run(config_file, run_id: str, workflow_type: str | None = None, **overrides) -> ConfigWorkflow:
    workflow = ConfigWorkflow(config_file=config_file, workflow_type=workflow_type, run_id=run_id, **overrides)
    workflow.initialize()
    if workflow_type:
        assert workflow.check_properties() == []
    workflow.run()
    workflow.finalize()
    return workflow


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    run(str(CONFIGS / "train.json"), "training", "train", **TINY, output_dir=str(out), ckpt_dir=str(out / "models"),
        method="supervised", max_epochs=2)  # fmt: skip
    assert (out / "models" / "model.pt").is_file()
    return out


@pytest.mark.parametrize("split", ["test", "validation"])
def test_evaluating_writes_one_row_per_image_and_a_summary(trained, tmp_path, split):
    configs = [str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json")]
    run(configs, "evaluating", **TINY, output_dir=str(tmp_path), ckpt_dir=str(trained / "models"), split=split,
        datalist=str(trained / "datalist.json"))  # the training run's: evaluation never prepares again
    datalist = json.loads((trained / "datalist.json").read_text())
    assert not (tmp_path / "datalist.json").exists() and not (tmp_path / "synthetic").exists()
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [item["id"] for item in datalist[split]]
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["n_images"] == len(rows) and summary["settings"]["split"] == split
    for name in ("iou", "mdice_legacy", "mdice", "aji", "pq", "f1_50"):
        assert set(summary["metrics"][name]) == {"mean", "std", "n"}
    iou = [float(r["iou"]) for r in rows]
    assert summary["metrics"]["iou"]["mean"] == pytest.approx(np.mean(iou)) and all(0 <= v <= 1 for v in iou)
    assert set(METRIC_NAMES) <= set(rows[0])
    for row in rows:  # contour overlays of the post-processed prediction, image size
        overlay = read_array(tmp_path / "overlays" / f"{row['id']}_overlay.png")
        assert overlay.shape[-1] == 3 and overlay.dtype == np.uint8


def test_evaluating_another_model_file_of_the_run(trained, tmp_path):
    state = torch.load(trained / "models" / "model.pt", weights_only=True)
    weights = {k: torch.zeros_like(v) if v.is_floating_point() else v for k, v in state["model"].items()}
    weights["segmentation_head.0.bias"] = torch.tensor([-10.0, 10.0])  # every pixel a nucleus, whatever the image
    torch.save({"model": weights, "metadata": state["metadata"]}, tmp_path / "all_nucleus.pt")
    configs = [str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json")]
    common = {**TINY, "ckpt_dir": str(trained / "models"), "datalist": str(trained / "datalist.json"), "save_overlays": False}
    run(configs, "evaluating", **common, output_dir=str(tmp_path / "selected"))
    run(configs, "evaluating", **common, output_dir=str(tmp_path / "other"), model_file=str(tmp_path / "all_nucleus.pt"))
    selected, other = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("selected", "other"))
    assert (selected["settings"]["model"], other["settings"]["model"]) == (str(trained / "models" / "model.pt"), str(tmp_path / "all_nucleus.pt"))
    label = read_instance_label(json.loads((trained / "datalist.json").read_text())["test"][0]["label"])
    assert other["metrics"]["iou"]["mean"] > 0.05 and selected["metrics"]["iou"]["mean"] != other["metrics"]["iou"]["mean"]
    assert float(next(csv.DictReader(open(tmp_path / "other" / "metrics.csv")))["iou"]) == pytest.approx((label > 0).mean(), abs=1e-6)


def test_evaluating_a_split_without_labels_is_an_error(trained, tmp_path):
    configs = [str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json")]
    with pytest.raises(Exception) as err:
        run(configs, "evaluating", **TINY, output_dir=str(tmp_path), ckpt_dir=str(trained / "models"), split="holdout",
            datalist=str(trained / "datalist.json"))
    assert str(find_user_error(err.value)) == "--split: unknown value 'holdout'; choose training, validation or test"


def test_evaluating_a_folder_without_a_datalist_says_what_to_do(trained, tmp_path):
    configs = [str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json")]
    with pytest.raises(Exception) as err:
        run(configs, "evaluating", **TINY, output_dir=str(tmp_path / "eval"), ckpt_dir=str(trained / "models"))
    assert str(find_user_error(err.value)) == (f"{tmp_path / 'eval' / 'datalist.json'}: no datalist here: evaluate the --output_dir of a "
                                               "training run (or run prepare into it first), or pass --datalist <that run's output_dir>/datalist.json")
    assert not (tmp_path / "eval").exists()  # nothing prepared, nothing written


def test_evaluating_a_synthetic_demo_model_warns(trained, tmp_path, capsys):
    state = torch.load(trained / "models" / "model.pt", weights_only=True)
    (tmp_path / "models").mkdir()
    torch.save({"model": state["model"], "metadata": {"dataset": "synthetic", "method": "supervised"}}, tmp_path / "models" / "model.pt")
    configs = [str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json")]
    run(configs, "evaluating", **TINY, output_dir=str(tmp_path / "eval"), ckpt_dir=str(tmp_path / "models"),
        datalist=str(trained / "datalist.json"))
    warnings = [line for line in capsys.readouterr().out.splitlines() if DEMO_WARNING in line]  # the bundle's logging.conf logs to stdout
    assert len(warnings) == 1 and f"WARNING - {tmp_path / 'models' / 'model.pt'} {DEMO_WARNING}" in warnings[0]


def write_inputs(folder: Path) -> dict[str, tuple[int, int]]:
    """Every input kind the inference config accepts; returns stem -> (H, W)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (70, 45, 3), dtype=np.uint8)).save(folder / "rgb.png")
    Image.fromarray(rng.integers(0, 255, (64, 64, 4), dtype=np.uint8)).save(folder / "rgba.png")
    Image.fromarray(rng.integers(0, 255, (33, 90, 3), dtype=np.uint8)).save(folder / "photo.jpg")
    tifffile.imwrite(folder / "gray16.tif", rng.integers(0, 65535, (50, 40), dtype=np.uint16))
    nib.save(nib.Nifti1Image(rng.random((40, 30)).astype(np.float32), np.eye(4)), str(folder / "volume.nii.gz"))
    (folder / "corrupt.png").write_bytes(b"\x89PNG broken")
    return {"rgb": (70, 45), "rgba": (64, 64), "photo": (33, 90), "gray16": (50, 40), "volume": (30, 40)}


@pytest.mark.parametrize("output_ext", [".tif", ".nii.gz"])
def test_inference_segments_every_readable_image(trained, tmp_path, output_ext):
    sizes = write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    run(str(CONFIGS / "inference.json"), "run", "infer", input_dir=str(tmp_path / "in"), output_dir=str(out),
        ckpt_dir=str(trained / "models"), output_ext=output_ext)  # fmt: skip
    for stem, size in sizes.items():
        labels = read_array(out / f"{stem}_label{output_ext}")
        assert labels.dtype == np.uint16 and labels.shape == size, stem
        assert read_array(out / f"{stem}_overlay.png").shape == (*size, 3)
    assert not list(out.glob("corrupt*"))  # reported and skipped; the others finished


def test_segment_gives_what_the_bundle_inference_writes(tmp_path):
    torch.manual_seed(0)  # an untrained network, its head biased to call about half the pixels nucleus: many objects
    network = MultiscaleUNet().eval()
    with torch.no_grad():
        logits = network(torch.randn(1, 3, 64, 64))
        network.segmentation_head[0].bias[1] -= (logits[:, 1] - logits[:, 0]).median()
    (tmp_path / "models").mkdir()
    torch.save({"model": network.state_dict()}, tmp_path / "models" / "model.pt")
    write_inputs(tmp_path / "in")
    run(str(CONFIGS / "inference.json"), "run", "infer", input_dir=str(tmp_path / "in"), output_dir=str(tmp_path / "out"),
        ckpt_dir=str(tmp_path / "models"), min_size=4)  # fmt: skip
    paths = sorted(p for p in (tmp_path / "in").iterdir() if not p.name.startswith("corrupt"))
    maps = segment(paths, model=tmp_path / "models", min_size=4)  # the user-level call, same parameter names
    for path, instances in zip(paths, maps):
        np.testing.assert_array_equal(instances, read_array(tmp_path / "out" / f"{file_stem(path)}_label.tif"), err_msg=path.name)
    assert sum(int(m.max()) for m in maps) > 20  # the comparison is not between empty maps


def bundle_inference(input_dir: Path, output_dir: Path, ckpt_dir: Path) -> str:
    """Run inference.json as a user does (repository root, command line); the exit status and all output."""
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", "bundles/scribble_cell_segmentation/configs/inference.json",
               "--input_dir", str(input_dir), "--output_dir", str(output_dir), "--ckpt_dir", str(ckpt_dir)]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    return done.returncode, done.stdout + done.stderr


def error_line(output: str, path: Path, problem: str) -> str:
    """The one line of ``output`` saying ``<path>: <problem>...`` (the error as raised, whatever prints it)."""
    lines = [line for line in output.splitlines() if re.search(re.escape(f"{path}: {problem}"), line)]
    assert lines, output[-3000:]
    return lines[-1]


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> Path:
    """``<kind>/model.pt`` of a full-size (untrained) network: trained on the synthetic demo, on MoNuSeg, without metadata, corrupt."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    weights = MultiscaleUNet().state_dict()
    metadata = {"synthetic": {"dataset": "synthetic", "method": "s2l_r1r4", "epoch": 20, "metric": "iou", "value": 0.55},
                "monuseg": {"dataset": "monuseg", "method": "s2l_r1r4", "epoch": 80, "metric": "iou", "value": 0.61}}  # fmt: skip
    for kind in ("synthetic", "monuseg", "no_metadata", "corrupt"):
        (root / kind).mkdir()
        torch.save({"model": weights, **({"metadata": metadata[kind]} if kind in metadata else {})}, root / kind / "model.pt")
    corrupt = root / "corrupt" / "model.pt"
    corrupt.write_bytes(corrupt.read_bytes()[:100_000])  # an interrupted copy
    return root


def one_image_folder(folder: Path) -> Path:
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(folder / "a.png")
    return folder


@pytest.mark.parametrize(
    "kind, error, warned",
    [("synthetic", None, True), ("monuseg", None, False), ("no_metadata", None, False),
     ("missing", "model file not found: train a model first (README: Training) and pass --ckpt_dir <training output_dir>/models", False),
     ("corrupt", "cannot be read as a model file (corrupt, truncated or not written by torch.save)", False)],  # fmt: skip
)
def test_inference_reports_the_model_it_loads(model_dirs, tmp_path, kind, error, warned):
    inputs, out = one_image_folder(tmp_path / "in"), tmp_path / "out"
    model = model_dirs / kind / "model.pt"
    rc, output = bundle_inference(inputs, out, model.parent)
    warnings = [line for line in output.splitlines() if f"{model} {DEMO_WARNING}" in line]
    assert len(warnings) == int(warned) and all("WARNING" in line for line in warnings), output[-3000:]
    if error is None:
        assert rc == 0, output[-3000:]
        assert read_array(out / "a_label.tif").shape == (48, 40)
        return
    assert rc != 0
    error_line(output, model, error)
    assert not out.exists()  # stopped before writing anything


@pytest.mark.parametrize("spelling", ["same", "symlink"])
def test_inference_refuses_to_write_into_its_input_folder(model_dirs, tmp_path, spelling):
    inputs = one_image_folder(tmp_path / "in")
    tifffile.imwrite(inputs / "a_label.tif", np.ones((48, 40), np.uint16))  # an input that a result would overwrite
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(inputs / "b_overlay.png")
    before = {p.name: file_digest(p) for p in inputs.iterdir()}
    output_dir = inputs
    if spelling == "symlink":
        output_dir = tmp_path / "results"
        output_dir.symlink_to(inputs, target_is_directory=True)
    rc, output = bundle_inference(inputs, output_dir, model_dirs / "monuseg")
    assert rc != 0
    line = error_line(output, output_dir, f"--output_dir is the same folder as --input_dir {inputs}")
    assert line.endswith("pass another --output_dir")
    assert {p.name: file_digest(p) for p in inputs.iterdir()} == before  # nothing written, nothing changed
