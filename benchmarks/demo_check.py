"""Does the embedded demo show the method working? S2L + R1 + R4 beside a supervised run of the same schedule.

Usage::

    python benchmarks/demo_check.py [--out runs/demo_check] [--methods s2l_r1r4 supervised] [--set ID=VALUE ...]

Runs the README's default training (``train.json``, synthetic data) once per method, with the bundle's
defaults plus any ``--set`` overrides, and reads each run's TensorBoard log. Prints one JSON object:
per method the wall time, the validation IoU per validation and its best, and, over the main-stage
iterations, the share with a non-zero 1x1 / 4x4 contrastive term and the mean share of pixels with a
foreground / background pseudo-label; then the gap between the best validation IoU of the scribble
method and of ``supervised``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN = REPO_ROOT / "bundles" / "scribble_cell_segmentation" / "configs" / "train.json"


def summarize(log_dir: Path) -> dict:
    """The quantities of the module docstring from one run's TensorBoard scalars."""
    from monai_scribble.visualize import learning_curves

    curves = learning_curves(log_dir)
    epochs, iou = curves.get("val_iou", ([], []))
    summary: dict = {"val_iou": {int(e): round(float(v), 4) for e, v in zip(epochs, iou)}}
    summary["best_val_iou"] = round(float(max(iou)), 4) if len(iou) else None
    summary["best_epoch"] = int(epochs[int(np.argmax(iou))]) if len(iou) else None
    if "pseudo_fg_share" in curves:  # logged per main-stage iteration only
        steps = curves["pseudo_fg_share"][0]
        summary["main_stage_iterations"] = int(len(steps))
        for tag, name in (("contrastive_d5_delta1", "r1_nonzero_share"), ("contrastive_d3_delta4", "r4_nonzero_share")):
            if tag in curves:
                values = dict(zip(*curves[tag]))
                summary[name] = round(float(np.mean([values.get(s, 0.0) != 0.0 for s in steps])), 3)
        for tag in ("pseudo_fg_share", "pseudo_bg_share"):
            values = curves[tag][1]
            summary[f"mean_{tag}"] = round(float(np.mean(values)), 4)
            summary[f"last_{tag}"] = round(float(values[-1]), 4)
    return summary


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/demo_check")
    parser.add_argument("--methods", nargs="+", default=["s2l_r1r4", "supervised"])
    parser.add_argument("--set", action="append", default=[], metavar="ID=VALUE", help="bundle override, e.g. --set max_epochs=40")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    overrides = [item.split("=", 1) for item in args.set]
    result: dict = {"benchmark": "demo_check", "overrides": dict(overrides), "runs": {}}
    for method in args.methods:
        run = out / method
        shutil.rmtree(run, ignore_errors=True)
        command = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN), "--output_dir", str(run),
                   "--method", method]  # fmt: skip
        for key, value in overrides:
            command += [f"--{key}", value]
        start = time.perf_counter()
        completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if completed.returncode:
            raise SystemExit(f"{method} failed: {completed.stderr[-2000:]}")
        result["runs"][method] = {"seconds": round(seconds, 1), **summarize(run / "tensorboard")}
    scribble = [m for m in args.methods if m != "supervised"]
    if "supervised" in result["runs"] and scribble:
        best = result["runs"][scribble[0]]["best_val_iou"]
        result["gap_to_supervised"] = round(result["runs"]["supervised"]["best_val_iou"] - best, 4)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
