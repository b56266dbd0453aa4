"""evaluate.json (merged onto train.json) and the standalone inference.json, on a tiny synthetic model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile
from monai.bundle import ConfigWorkflow
from PIL import Image

from monai_scribble.data.image_io import read_array
from monai_scribble.metrics import METRIC_NAMES

CONFIGS = Path(__file__).resolve().parents[2] / "bundles" / "scribble_cell_segmentation" / "configs"
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
    run(configs, "evaluating", **TINY, output_dir=str(tmp_path), ckpt_dir=str(trained / "models"), split=split)
    datalist = json.loads((tmp_path / "datalist.json").read_text())
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


def test_evaluating_a_split_without_labels_is_an_error(trained, tmp_path):
    configs = [str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json")]
    with pytest.raises(Exception) as err:
        run(configs, "evaluating", **TINY, output_dir=str(tmp_path), ckpt_dir=str(trained / "models"), split="holdout")
    assert "unknown split 'holdout'" in "".join(str(e) for e in (err.value, err.value.__cause__) if e)


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


def test_inference_without_a_model_names_the_file(tmp_path):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "in" / "a.png")
    with pytest.raises(Exception) as err:
        run(str(CONFIGS / "inference.json"), "run", input_dir=str(tmp_path / "in"), output_dir=str(tmp_path / "out"), ckpt_dir=str(tmp_path / "none"))
    assert "model.pt" in "".join(str(e) for e in (err.value, err.value.__cause__) if e)
