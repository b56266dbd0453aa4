"""How confident is the network on each class while it trains? The quantity the EMA pseudo-labels need.

Usage::

    python benchmarks/calibration.py [--every 25] [--maps DIR] [--recalibrate_bn] [ID=VALUE ...]

Trains the bundle's train.json with its defaults plus the ``ID=VALUE`` overrides (e.g. ``method=s2l
crop_size=128 batch_size=auto max_epochs=300 warmup_epochs=150 ema_period=3``; values are Python
literals where they parse as one) in a temporary folder and, every ``--every`` epochs, prints one JSON
line: the epoch and iteration, seconds so far, validation IoU (the paper's per-image foreground IoU, mean
and per image, whole-image inference in eval mode), the 10 / 50 / 90 % quantiles of the predicted foreground probability on the true
background and on the true nuclei of the training images (label maps), the last iteration's loss terms,
and the pseudo-label coverage / precision / recall the last EMA refresh measured. A pixel becomes a
background pseudo-label only once its EMA falls below ``1 - ema_threshold`` (0.2 at the DSB threshold
0.8), so the background quantiles say when the method can start to work.

``--maps DIR`` also writes, at every report, ``DIR/epoch<e>.png``: image, scribbles and predicted foreground
probability (blue 0, white 0.5, red 1) of the first four training images. ``--recalibrate_bn`` also reports the
validation IoU and background median after re-estimating the batch-norm statistics on one pass over the training
loader (``torch.optim.swa_utils.update_bn``, network restored afterwards): whether a swing in validation IoU is
running-statistics lag or the weights themselves.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import tempfile
import time

import numpy as np
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

from monai_scribble.inference import WholeImageInferer
from monai_scribble.metrics.foreground_iou import foreground_iou

TRAIN = "bundles/scribble_cell_segmentation/configs/train.json"


def _literal(value: str):
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--every", type=int, default=25, help="epochs between reports")
    parser.add_argument("--maps", default=None, metavar="DIR", help="write probability maps of four training images per report")
    parser.add_argument("--recalibrate_bn", action="store_true", help="also report with batch-norm statistics re-estimated")
    parser.add_argument("overrides", nargs="*", metavar="ID=VALUE")
    args = parser.parse_args(argv)
    overrides = {k: _literal(v) for k, v in (item.split("=", 1) for item in args.overrides)}
    with tempfile.TemporaryDirectory(prefix="calibration_") as out:
        workflow = ConfigWorkflow(config_file=TRAIN, workflow_type="train", output_dir=out, **overrides)
        workflow.initialize()
        trainer = workflow.parser.get_parsed_content("train#trainer")
        network = workflow.parser.get_parsed_content("network")
        validation = workflow.parser.get_parsed_content("validate#dataset")
        training = workflow.parser.get_parsed_content("ema_dataset")
        validation_items = [validation[i] for i in range(len(validation))]
        training_items = [training[i] for i in range(len(training))]
        amp = workflow.parser.get_parsed_content("amp_dtype")
        inferer = WholeImageInferer(amp_dtype=amp)
        start, last_output = time.perf_counter(), {}

        def foreground_probability(items: list[dict]) -> list[torch.Tensor]:
            network.eval()
            try:
                return [torch.softmax(inferer(item["image"][None], network), 1)[0, 1] for item in items]
            finally:
                network.train()

        @trainer.on(Events.ITERATION_COMPLETED)
        def keep_output(engine) -> None:
            last_output.update({k: round(float(v), 4) for k, v in engine.state.output.items()})

        def validation_ious() -> list[float]:
            return [foreground_iou((p > 0.5).numpy(), np.asarray(item["label"])[0])
                    for p, item in zip(foreground_probability(validation_items), validation_items)]

        def background_probabilities(probabilities: list[torch.Tensor]) -> torch.Tensor:
            return torch.cat([p[~t] for p, t in zip(probabilities, truths)])

        def recalibrated_bn() -> dict:
            saved = {k: v.clone() for k, v in network.state_dict().items()}
            try:
                torch.optim.swa_utils.update_bn((batch["image"] for batch in trainer.data_loader), network)
                background = background_probabilities(foreground_probability(training_items))
                return {"val_iou_recalibrated_bn": round(float(np.mean(validation_ious())), 3),
                        "p_fg_on_background_median_recalibrated_bn": round(float(background.median()), 3)}
            finally:
                network.load_state_dict(saved)
                network.train()

        def write_maps(epoch: int, probabilities: list[torch.Tensor]) -> None:
            import matplotlib.pyplot as plt

            from monai_scribble.data.image_io import read_array
            from monai_scribble.visualize import probability_map_view, scribble_overlay, to_rgb_uint8

            figure, axes = plt.subplots(4, 3, figsize=(9, 12), squeeze=False)
            for row, (item, source, p) in enumerate(zip(training_items[:4], train_items[:4], probabilities[:4])):
                image = np.asarray(source_image(item))
                axes[row, 0].imshow(to_rgb_uint8(image))
                axes[row, 1].imshow(scribble_overlay(image, np.asarray(read_array(source["scribble"])).squeeze(), thickness=3))
                axes[row, 2].imshow(probability_map_view(p.numpy()))
                background = p[torch.as_tensor(item["label"])[0] == 0]
                axes[row, 2].set_title(f"p(fg), background median {float(background.median()):.2f}", fontsize=8)
            for axis in axes.flat:
                axis.axis("off")
            figure.suptitle(f"epoch {epoch}")
            os.makedirs(args.maps, exist_ok=True)
            figure.savefig(os.path.join(args.maps, f"epoch{epoch}.png"), dpi=60)
            plt.close(figure)

        def source_image(item: dict) -> np.ndarray:
            image = np.asarray(item["image"], dtype=np.float32)
            return (image - image.min()) / max(float(np.ptp(image)), 1e-6)  # the normalised tensor, rescaled to [0, 1] for display

        train_items = workflow.parser.get_parsed_content("train_items")
        truths = [torch.as_tensor(item["label"])[0] > 0 for item in training_items]

        @trainer.on(Events.EPOCH_COMPLETED(every=args.every))
        def report(engine) -> None:
            ious = validation_ious()
            probabilities = foreground_probability(training_items)
            background = background_probabilities(probabilities)
            nuclei = torch.cat([p[t] for p, t in zip(probabilities, truths)])
            levels = torch.tensor([0.1, 0.5, 0.9])
            if args.maps:
                write_maps(engine.state.epoch, probabilities)
            extra = recalibrated_bn() if args.recalibrate_bn else {}

            def quantiles(x: torch.Tensor) -> list[float]:
                return [round(float(v), 3) for v in torch.quantile(x[:: max(1, x.numel() // 2_000_000 + 1)].float(), levels)]

            print(json.dumps({
                "epoch": engine.state.epoch, "iteration": engine.state.iteration, "seconds": round(time.perf_counter() - start),
                "val_iou": round(float(np.mean(ious)), 3), "val_iou_per_image": [round(v, 2) for v in ious],
                "p_fg_on_background_q10_50_90": quantiles(background), "p_fg_on_nuclei_q10_50_90": quantiles(nuclei),
                "last_iteration": dict(last_output),
                **{k: round(v, 4) for k, v in engine.state.metrics.items() if k.startswith("pseudo_")}, **extra,
            }), flush=True)  # fmt: skip

        workflow.run()


if __name__ == "__main__":
    main()
