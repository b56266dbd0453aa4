"""Does the embedded demo show the method working? S2L + R1 + R4 beside a supervised run of the same schedule.

Usage::

    python benchmarks/demo_check.py [--out runs/demo_check] [--methods s2l_r1r4 supervised] [--set ID=VALUE ...]

Runs the README's default training (``train.json``, synthetic data) once per method, with the bundle's
defaults plus any ``--set`` overrides, and reads each run's TensorBoard log. Prints one JSON object:
per method the wall time, the validation IoU per validation and its best, and, over the main-stage
iterations, the share with a non-zero 1x1 / 4x4 contrastive term (and the first such iteration) and the
mean share of pixels with a foreground / background pseudo-label, and the last coverage, precision and
recall of each pseudo-label class against the training label maps; then the gap between the best validation IoU of the scribble
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

from monai_scribble.visualize import training_summary

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN = REPO_ROOT / "bundles" / "scribble_cell_segmentation" / "configs" / "train.json"


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
        result["runs"][method] = {"seconds": round(seconds, 1), **training_summary(run / "tensorboard")}
    scribble = [m for m in args.methods if m != "supervised"]
    if "supervised" in result["runs"] and scribble:
        best = result["runs"][scribble[0]]["best_val_iou"]
        result["gap_to_supervised"] = round(result["runs"]["supervised"]["best_val_iou"] - best, 4)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
