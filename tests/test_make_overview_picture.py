"""docs/make_overview_picture.py: draws both pictures of a (fake) default run, by default outside the tracked tree."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_scribble.data.image_io import write_png
from monai_scribble.data.scribbles import synthesize_scribble, write_scribble
from monai_scribble.data.synthetic import generate_nuclei_image
from monai_scribble.networks import MultiscaleUNet
from monai_scribble.pseudo_labels.store import PseudoLabelStore

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_script():
    path = REPO_ROOT / "docs" / "make_overview_picture.py"
    spec = importlib.util.spec_from_file_location("make_overview_picture", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_default_run(root: Path) -> tuple[Path, Path]:
    """A run folder (datalist, one image and scribble, EMA store, TensorBoard scalars) and an untrained model.pt."""
    from torch.utils.tensorboard import SummaryWriter

    run = root / "run"
    image, labels = generate_nuclei_image((64, 64), rng=0)
    write_png(run / "image.png", image)
    write_scribble(run / "scribble.png", synthesize_scribble(labels, rng=0))
    item = {"id": "img0", "image": str(run / "image.png"), "scribble": str(run / "scribble.png")}
    datalist = {"training": [item], "dataset": "synthetic", "scribble_format": "s2l"}
    (run / "datalist.json").write_text(json.dumps(datalist))
    store = PseudoLabelStore(run / "ema", shapes={"img0": (64, 64)})
    store.update({"img0": np.full((64, 64), 0.9, np.float32)}, momentum=0.2)
    tags = ("loss", "scribble_ce", "pseudo_ce", "contrastive_d5_delta1", "contrastive_d3_delta4", "val_iou")
    with SummaryWriter(str(run / "tensorboard")) as writer:
        for step in (1, 2):
            for tag in tags:
                writer.add_scalar(tag, 1.0 / step, step)
    model = root / "model.pt"
    torch.save({"model": MultiscaleUNet().state_dict()}, model)
    return run, model


def test_default_output_is_not_tracked():
    script = load_script()
    assert script.DEFAULT_OUT.is_relative_to(REPO_ROOT / "runs")
    assert "/runs/" in (REPO_ROOT / ".gitignore").read_text().splitlines()


def test_draws_both_pictures_where_asked(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    run, model = fake_default_run(tmp_path)
    script = load_script()
    out, curves_out = tmp_path / "pictures", tmp_path / "curves"
    argv = ["make_overview_picture.py", "--run", str(run), "--model", str(model), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", [*argv, "--curves_out", str(curves_out)])
    script.main()
    assert (out / "overview.png").stat().st_size > 0
    assert (curves_out / "default_run_curves.png").stat().st_size > 0
    monkeypatch.setattr(sys, "argv", argv)  # without --curves_out both go to --out
    script.main()
    assert (out / "default_run_curves.png").stat().st_size > 0
