"""Draw the pictures of the default run: overview.png (README: scribbles, EMA pseudo-labels and predicted
nuclei on a synthetic image) and default_run_curves.png (loss terms and validation IoU from the run's
TensorBoard logs). Needs a run of the README's default command (its output folder and model.pt).

    python docs/make_overview_picture.py [--run bundles/scribble_cell_segmentation/output]
        [--model bundles/scribble_cell_segmentation/output/models/model.pt] [--out runs/pictures] [--curves_out DIR]

By default both pictures go to ``runs/pictures/`` (not tracked), so the committed ones are never
overwritten by accident. To redraw the committed pictures:

    python docs/make_overview_picture.py --out docs/images --curves_out bundles/scribble_cell_segmentation/docs/images
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from monai.bundle import ConfigParser

from monai_scribble.data.image_io import read_image, write_png
from monai_scribble.data.scribbles import read_scribble
from monai_scribble.data.transforms import eval_transforms
from monai_scribble.inference import WholeImageInferer, foreground_to_instances
from monai_scribble.networks import MultiscaleUNet
from monai_scribble.pseudo_labels import LoadPseudoLabelMapd, PseudoLabelConfig
from monai_scribble.visualize import contour_overlay, plot_learning_curves, probability_map_view, scribble_overlay

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLE = REPO_ROOT / "bundles" / "scribble_cell_segmentation"
DEFAULT_OUT = REPO_ROOT / "runs" / "pictures"


def ema_settings(dataset: str) -> PseudoLabelConfig:
    """The pseudo-label settings train.json uses for ``dataset`` (its ``ema_config``)."""
    config = ConfigParser()
    config.read_config(str(BUNDLE / "configs" / "train.json"))
    config["dataset"] = dataset
    config.get_parsed_content("imports")
    return config.get_parsed_content("ema_config")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default=str(BUNDLE / "output"))
    parser.add_argument("--model", default=None, help="model.pt to draw the prediction of (default: <run>/models/model.pt)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for overview.png (default: %(default)s)")
    parser.add_argument("--curves_out", default=None, help="folder for default_run_curves.png (default: --out)")
    args = parser.parse_args()
    overview = Path(args.out) / "overview.png"
    curves = Path(args.curves_out or args.out) / "default_run_curves.png"
    datalist = json.loads((Path(args.run) / "datalist.json").read_text())
    item = datalist["training"][0]
    image = read_image(item["image"])
    network = MultiscaleUNet()
    network.load_state_dict(torch.load(args.model or Path(args.run) / "models" / "model.pt", weights_only=True)["model"])
    network.eval()
    with torch.no_grad():
        logits = WholeImageInferer()(eval_transforms(keys=("image",))({"image": item["image"]})["image"][None], network)
    instances = foreground_to_instances(logits.argmax(dim=1)[0].numpy())
    ema_config = ema_settings(datalist["dataset"])
    read_ema = LoadPseudoLabelMapd(Path(args.run) / "ema", ema_config)
    panels = [
        scribble_overlay(image, read_scribble(item["scribble"], datalist["scribble_format"]), thickness=3),
        probability_map_view(read_ema({"id": item["id"]})["ema"][0].numpy(), threshold=ema_config.threshold),  # as the trainer reads it
        contour_overlay(image, instances),
    ]
    gap = np.full((image.shape[0], 6, 3), 255, np.uint8)
    overview.parent.mkdir(parents=True, exist_ok=True)
    write_png(overview, np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1))
    print(overview)
    curves.parent.mkdir(parents=True, exist_ok=True)
    tags = ["loss", "scribble_ce", "pseudo_ce", "contrastive_d5_delta1", "contrastive_d3_delta4", "val_iou"]
    plot_learning_curves(Path(args.run) / "tensorboard", tags=tags, path=curves)
    print(curves)


if __name__ == "__main__":
    main()
