"""Training requests the way MONAI Label's ``BundleTrainTask`` (monailabel 0.8.5) sends them, without the server.

``BundleTrainTask`` reads the deployed bundle's raw ``train#handlers`` list, prepends a ``CheckpointLoader``
for ``models/model.pt`` when that file exists, and calls ``monai.bundle.run("run", init_id=None,
final_id=None, ...)`` in-process with overrides for ``bundle_root``, ``train#trainer#max_epochs``,
``train#dataset#data`` / ``validate#dataset#data`` (``{image, label}`` items from the datastore; the label
is the scribble drawn in MONAI Label: 0 unlabeled, 1 background, 2 nucleus), ``train#handlers`` and
``device``. The real server is exercised by tests/monailabel (needs the monailabel venv).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import monai.bundle
import pytest
import torch
from monai.bundle import ConfigParser

from monai_scribble.data.image_io import read_instance_label
from monai_scribble.data.scribbles import ScribbleFormat, image_rng, synthesize_scribble, write_scribble
from monai_scribble.data.synthetic import write_synthetic_dataset
from monai_scribble.monailabel_app import MONAILABEL_DEFAULTS
from tests.conftest import file_digest

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "scribble_cell_segmentation"


@pytest.fixture()
def app_bundle(tmp_path) -> Path:
    """A deployed copy ``<app>/model/scribble_cell_segmentation`` set up for MONAI Label scribbles."""
    bundle = tmp_path / "app" / "model" / "scribble_cell_segmentation"
    shutil.copytree(BUNDLE / "configs", bundle / "configs")
    (bundle / "models").mkdir()
    config = json.loads((bundle / "configs" / "train.json").read_text())
    # what the setup script writes into the deployed copy; the small schedule reaches the main stage in one epoch
    config.update(**MONAILABEL_DEFAULTS, warmup_epochs=0, ema_period=1, crop_size=64, batch_size=2, max_samples=200)
    (bundle / "configs" / "train.json").write_text(json.dumps(config, indent=1))
    return bundle


@pytest.fixture()
def studies(tmp_path) -> list[dict]:
    """Three synthetic images with MONAI Label-style scribble labels (zero-unlabeled PNGs)."""
    samples = write_synthetic_dataset(tmp_path / "studies_src", num_images=3, seed=4)
    items = []
    for sample in samples:
        scribble = synthesize_scribble(read_instance_label(sample.label), 0.5, image_rng(0, sample.id))
        label = write_scribble(tmp_path / "studies" / "labels" / "final" / f"{sample.id}.png", scribble, ScribbleFormat.ZERO_UNLABELED)
        items.append({"image": sample.image, "label": str(label)})
    return items


def train_request(bundle: Path, train_items: list[dict], val_items: list[dict], max_epochs: int = 1) -> None:
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "train.json"))
    train_handlers = parser.get("train#handlers", [])
    model = bundle / "models" / "model.pt"
    if model.exists() and not [t for t in train_handlers if t.get("_target_") == "CheckpointLoader"]:  # as monailabel does
        train_handlers.insert(0, {"_target_": "CheckpointLoader", "load_path": str(model), "load_dict": {"model": "$@network"}, "strict": False})
    monai.bundle.run(
        run_id="run", init_id=None, final_id=None, meta_file=str(bundle / "configs" / "metadata.json"),
        config_file=str(bundle / "configs" / "train.json"), bundle_root=str(bundle), device=torch.device("cpu"),
        **{"train#trainer#max_epochs": max_epochs, "train#dataset#data": train_items, "validate#dataset#data": val_items,
           "train#handlers": train_handlers},
    )  # fmt: skip


def test_two_training_requests_from_scribbles(app_bundle, studies):
    model = app_bundle / "models" / "model.pt"
    train_request(app_bundle, studies[:2], [])  # no validation images: the final network is saved
    assert model.is_file()
    first = file_digest(model)
    runs = sorted((app_bundle / "output" / "monailabel").iterdir())
    assert len(runs) == 1
    store = json.loads((runs[0] / "ema" / "current.json").read_text())
    assert store["updates"] == 1  # full method: main stage + EMA refresh, maps keyed by image file stem
    assert sorted(p.stem for p in (runs[0] / "ema" / f"{store['generation']:06d}").glob("*.npy")) == sorted(
        Path(item["image"]).stem for item in studies[:2]
    )

    # next request: fine-tunes model.pt (CheckpointLoader prepended), validates on a scribble, new run folder
    train_request(app_bundle, studies[:2], studies[2:])
    assert len(list((app_bundle / "output" / "monailabel").iterdir())) == 2
    assert file_digest(model) != first
    state = torch.load(model, weights_only=True)
    assert list(state) == ["model", "metadata"] and state["metadata"]["metric"] == "val_scribble_accuracy"


def test_unknown_label_kind(app_bundle, studies):
    config = json.loads((app_bundle / "configs" / "train.json").read_text())
    config["label_kind"] = "polygons"
    (app_bundle / "configs" / "train.json").write_text(json.dumps(config))
    with pytest.raises(Exception) as err:
        train_request(app_bundle, studies[:2], [])
    assert "unknown label_kind 'polygons'" in "".join(str(e) for e in (err.value, err.value.__cause__) if e)
