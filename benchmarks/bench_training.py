"""Training-workflow timings: the parts of a training loop per dataset, and the default synthetic run.

Usage::

    python benchmarks/bench_training.py [--part all|loop|default] [--datasets "[synthetic,dsb_bf,monuseg]"] [--data_root ../shared/data]

- ``loop``: per dataset, with the bundle's settings for it (batch ``auto``, its crop, automatic AMP
  choice), the median seconds of a warm-up iteration and of a main-stage iteration (both contrastive
  terms), the seconds of one EMA refresh over all training images and of one validation pass.
- ``default``: wall time of ``python -m monai.bundle run training --config_file .../train.json`` (the README
  command, in a temporary output folder) and its best validation metric.

Prints one JSON object as its last line (with the torch thread count and whether the CPU has native bf16).
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
import torch
from ignite.engine import Events

from monai_scribble.data.data_root import default_data_root
from monai_scribble.pseudo_labels import EMAPseudoLabelHandler
from monai_scribble.utils.precision import default_amp_dtype

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


def loop(dataset: str, data_root: str, **overrides) -> dict:
    """Seconds per warm-up iteration, main-stage iteration, EMA refresh and validation pass on ``dataset``.

    The bundle's own train.json with the preset of ``dataset`` (``configs/datasets/<dataset>.json``; plus
    ``overrides``): one warm-up epoch,
    one main-stage epoch (the method's terms), then one EMA refresh over all training images and one
    validation pass, each triggered by hand and timed; iterations are timed from Ignite's events, so
    data loading is included. Medians over the epoch's iterations.
    """
    import statistics

    from monai.bundle import ConfigWorkflow

    from table1 import DATASET_DIRS  # benchmarks/ is on sys.path when this script runs

    dataset_dir = None if dataset == "synthetic" else str(Path(data_root) / DATASET_DIRS[dataset])
    configs = [str(TRAIN_CONFIG)] + ([] if dataset == "synthetic" else [str(TRAIN_CONFIG.parent / "datasets" / f"{dataset}.json")])
    with tempfile.TemporaryDirectory(prefix=f"bench_{dataset}_") as out:
        workflow = ConfigWorkflow(
            config_file=configs, workflow_type="train", dataset_dir=dataset_dir,
            output_dir=out, max_epochs=2, warmup_epochs=1, ema_period=10**6, val_interval=10**6, **overrides,
        )
        workflow.initialize()
        trainer = workflow.parser.get_parsed_content("train#trainer")
        ema_handler = EMAPseudoLabelHandler.find(workflow.parser.get_parsed_content("train#handlers"))
        evaluator = workflow.parser.get_parsed_content("validate#evaluator")
        seconds: dict[int, list[float]] = {1: [], 2: []}
        marks: dict[str, float] = {}
        trainer.add_event_handler(Events.ITERATION_STARTED, lambda e: marks.__setitem__("it", time.perf_counter()))
        trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seconds[e.state.epoch].append(time.perf_counter() - marks["it"]))
        trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: marks.__setitem__(f"start{e.state.epoch}", time.perf_counter()))
        trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: marks.__setitem__(f"end{e.state.epoch}", time.perf_counter()))
        workflow.run()
        start = time.perf_counter()
        ema_handler(trainer)
        refresh = time.perf_counter() - start
        start = time.perf_counter()
        evaluator.run()
        validation = time.perf_counter() - start
        return {
            f"{dataset}_training_images": len(workflow.parser.get_parsed_content("train_items")),
            f"{dataset}_validation_images": len(workflow.parser.get_parsed_content("validate#dataset#data")),
            f"{dataset}_batch_size": workflow.parser.get_parsed_content("train#dataloader#batch_size"),
            f"{dataset}_iterations_per_epoch": trainer.state.epoch_length,
            "amp": str(workflow.parser.get_parsed_content("amp_dtype")),
            f"{dataset}_warmup_iteration_s": round(statistics.median(seconds[1]), 3),
            f"{dataset}_main_iteration_s": round(statistics.median(seconds[2]), 3),
            f"{dataset}_warmup_epoch_s": round(marks["end1"] - marks["start1"], 2),
            f"{dataset}_main_epoch_s": round(marks["end2"] - marks["start2"], 2),
            f"{dataset}_ema_refresh_s": round(refresh, 2),
            f"{dataset}_validation_s": round(validation, 2),
        }


def main(part: str = "all", data_root: str | None = None, datasets: tuple[str, ...] = ("synthetic", "dsb_bf", "monuseg")) -> dict:
    data_root = data_root or str(default_data_root())
    result: dict = {"benchmark": "bench_training", "torch_threads": torch.get_num_threads(),
                    "cpu_native_bf16": default_amp_dtype("cpu") is not None}
    if part in ("all", "loop"):
        for dataset in (datasets,) if isinstance(datasets, str) else datasets:
            result.update(loop(dataset, data_root))
    if part in ("all", "default"):
        result.update(default_run())
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    fire.Fire(main, serialize=lambda _: None)
