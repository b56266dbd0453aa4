"""Training-workflow timings: the default synthetic run, and dsb_fluo epochs and an EMA refresh.

Usage::

    python benchmarks/bench_training.py [--part all|default|dsb_fluo] [--data_root ../shared/data]

- ``default``: wall time of ``python -m monai.bundle run training --config_file .../train.json`` (the README
  command, in a temporary output folder) and its best validation metric.
- ``dsb_fluo``: with the bundle's dsb_fluo settings (batch 8, crop 256, automatic AMP choice), the time of
  one warm-up epoch, one main-stage epoch (both contrastive terms) and one EMA refresh over all training
  images (the refresh is triggered by hand after the epochs).

Prints one JSON object as its last line.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fire
from ignite.engine import Events

from monai_scribble.data.data_root import default_data_root

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_CONFIG = REPO_ROOT / "bundles" / "scribble_cell_segmentation" / "configs" / "train.json"


def default_run() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_default_") as out:
        command = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN_CONFIG),
                   "--output_dir", out, "--ckpt_dir", str(Path(out) / "models")]
        start = time.perf_counter()
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if result.returncode:
            raise RuntimeError(result.stderr[-3000:])
        best = re.findall(r"new best (\w+) = ([0-9.]+)", result.stdout + result.stderr)
        return {"default_run_wall_s": round(wall, 1), "default_run_best": {best[-1][0]: float(best[-1][1])} if best else None,
                "default_run_model_saved": (Path(out) / "models" / "model.pt").is_file()}


def dsb_fluo(data_root: str) -> dict:
    from monai.bundle import ConfigWorkflow

    stage_dir = Path(data_root) / "dsb2018" / "stage1_train"
    with tempfile.TemporaryDirectory(prefix="bench_dsb_") as out:
        workflow = ConfigWorkflow(
            config_file=str(TRAIN_CONFIG), workflow_type="train", dataset="dsb_fluo", dataset_dir=str(stage_dir),
            output_dir=out, ckpt_dir=str(Path(out) / "models"), max_epochs=2, warmup_epochs=1, ema_period=10**6,
            val_interval=10**6,
        )
        workflow.initialize()
        trainer = workflow.parser.get_parsed_content("train#trainer")
        ema_handler = workflow.parser.get_parsed_content("train#handlers#1")
        marks: dict[str, float] = {}
        trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: marks.__setitem__(f"start{e.state.epoch}", time.perf_counter()))
        trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: marks.__setitem__(f"end{e.state.epoch}", time.perf_counter()))
        workflow.run()
        start = time.perf_counter()
        ema_handler(trainer)
        refresh = time.perf_counter() - start
        warmup_epoch = marks["end1"] - marks["start1"]
        main_epoch = marks["end2"] - marks["start2"]
        return {
            "dsb_fluo_training_images": len(workflow.parser.get_parsed_content("train#dataset#data")),
            "dsb_fluo_iterations_per_epoch": trainer.state.epoch_length,
            "amp": str(workflow.parser.get_parsed_content("amp_dtype")),
            "dsb_fluo_warmup_epoch_s": round(warmup_epoch, 1),
            "dsb_fluo_main_epoch_s": round(main_epoch, 1),
            "dsb_fluo_ema_refresh_s": round(refresh, 1),
            "ema_refresh_over_main_epoch": round(refresh / main_epoch, 3),
        }


def main(part: str = "all", data_root: str | None = None) -> dict:
    data_root = data_root or str(default_data_root())
    result: dict = {"benchmark": "bench_training"}
    if part in ("all", "dsb_fluo"):
        result.update(dsb_fluo(data_root))
    if part in ("all", "default"):
        result.update(default_run())
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    fire.Fire(main, serialize=lambda _: None)
