"""The training bundle end to end on tiny synthetic runs (ConfigWorkflow in-process; kill/resume in a subprocess)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN_CONFIG = REPO_ROOT / "bundles" / "scribble_cell_segmentation" / "configs" / "train.json"
TINY = {"num_synthetic_images": 5, "crop_size": 64, "batch_size": 2, "val_interval": 1, "ema_period": 1, "max_samples": 200}


def run_workflow(output_dir: Path, run_id: str = "training", **overrides) -> ConfigWorkflow:
    settings = {**TINY, "output_dir": str(output_dir), "ckpt_dir": str(output_dir / "models"), **overrides}
    workflow = ConfigWorkflow(config_file=str(TRAIN_CONFIG), workflow_type="train", run_id=run_id, **settings)
    workflow.initialize()
    assert workflow.check_properties() == []
    workflow.run()
    workflow.finalize()
    return workflow


@pytest.mark.parametrize("method", ["supervised", "scribble_only", "s2l", "s2l_r1", "s2l_r4", "s2l_r1r4"])
def test_each_method_runs_a_tiny_main_stage_epoch(tmp_path, method):
    workflow = run_workflow(tmp_path, method=method, max_epochs=1, warmup_epochs=0)
    trainer = workflow.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 1
    output = trainer.state.output
    expected = {"loss", "scribble_ce"}
    if method.startswith("s2l"):
        expected |= {"pseudo_ce", "pseudo_fg_share", "pseudo_bg_share"}
    expected |= {"s2l_r1": {"contrastive_d5_delta1"}, "s2l_r4": {"contrastive_d3_delta4"},
                 "s2l_r1r4": {"contrastive_d5_delta1", "contrastive_d3_delta4"}}.get(method, set())
    assert set(output) == expected and all(torch.isfinite(v) for v in output.values())
    state = torch.load(tmp_path / "models" / "model.pt", weights_only=True)
    assert list(state) == ["model", "metadata"]
    assert (state["metadata"]["dataset"], state["metadata"]["method"], state["metadata"]["epoch"]) == ("synthetic", method, 1)
    updates = json.loads((tmp_path / "ema" / "current.json").read_text())["updates"]
    assert updates == (1 if method.startswith("s2l") else 0)  # no EMA refresh where no pseudo-labels are used


def test_run_and_training_ids_do_the_same(tmp_path):
    workflow = run_workflow(tmp_path, run_id="run", max_epochs=2, warmup_epochs=1)
    trainer = workflow.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 2 and trainer.state.stage == "main"
    store = json.loads((tmp_path / "ema" / "current.json").read_text())
    assert store["updates"] == 2  # EMA refreshed after epochs 1 and 2 (period 1)
    assert (tmp_path / "checkpoints" / "checkpoint_epoch=2.pt").is_file()
    ranked = (tmp_path / "scribble_next.csv").read_text().splitlines()  # what to scribble next, written at the end
    training_ids = {item["id"] for item in workflow.parser.get_parsed_content("train_items")}
    assert ranked[0].startswith("rank,id,image,scribbled,unconfident_share") and {line.split(",")[1] for line in ranked[1:]} == training_ids


@pytest.mark.parametrize("select_by, metric", [("scribble", "val_scribble_accuracy"), ("scribble_instances", "val_scribble_instances")])
def test_scribble_based_model_selection(tmp_path, select_by, metric):
    workflow = run_workflow(tmp_path, max_epochs=1, select_by=select_by)
    evaluator = workflow.parser.get_parsed_content("validate#evaluator")
    assert 0.0 <= evaluator.state.metrics[metric] <= 1.0 and set(evaluator.state.metrics) == {metric}
    assert torch.load(tmp_path / "models" / "model.pt", weights_only=True)["metadata"]["metric"] == metric
    assert not list((tmp_path / "models").glob("model_by_*.pt"))  # selected without masks already: no second choice


def test_selection_by_iou_also_keeps_the_models_validation_scribbles_would_pick(tmp_path):
    workflow = run_workflow(tmp_path, max_epochs=3, warmup_epochs=1, select_by="iou")
    metrics = workflow.parser.get_parsed_content("validate#evaluator").state.metrics
    assert set(metrics) == {"val_iou", "val_scribble_accuracy", "val_scribble_instances"}
    by_instances = torch.load(tmp_path / "models" / "model_by_scribble_instances.pt", weights_only=True)["metadata"]
    assert by_instances["metric"] == "val_scribble_instances"
    assert by_instances["value"] == workflow.parser.get_parsed_content("validate#label_free_instances_model").best
    by_iou = torch.load(tmp_path / "models" / "model.pt", weights_only=True)["metadata"]
    by_scribble = torch.load(tmp_path / "models" / "model_by_scribble.pt", weights_only=True)["metadata"]
    assert (by_iou["metric"], by_scribble["metric"]) == ("val_iou", "val_scribble_accuracy")
    assert by_scribble["value"] == workflow.parser.get_parsed_content("validate#label_free_model").best
    assert by_iou["value"] == workflow.parser.get_parsed_content("validate#best_model").best
    assert 1 <= by_scribble["epoch"] <= 3 and by_scribble["dataset"] == "synthetic"
    checkpoint = torch.load(tmp_path / "checkpoints" / "checkpoint_epoch=3.pt", weights_only=False)
    assert checkpoint["best_by_scribble"] == {"best": by_scribble["value"]}  # resumes with its best


def test_existing_checkpoint_without_resume_is_refused(tmp_path):
    run_workflow(tmp_path, max_epochs=1)
    with pytest.raises(Exception) as err:
        run_workflow(tmp_path, max_epochs=2)
    assert "already holds a training checkpoint" in "".join(str(e) for e in (err.value, err.value.__cause__) if e)


def test_missing_image_in_datalist_names_the_file(tmp_path):
    run_workflow(tmp_path, run_id="prepare")
    datalist = json.loads((tmp_path / "datalist.json").read_text())
    missing = str(tmp_path / "gone.png")
    datalist["training"][0]["image"] = missing
    (tmp_path / "datalist.json").write_text(json.dumps(datalist))
    overrides = {**TINY, "output_dir": str(tmp_path), "ckpt_dir": str(tmp_path / "models"), "max_epochs": 1,
                 "datalist": str(tmp_path / "datalist.json")}
    workflow = ConfigWorkflow(config_file=str(TRAIN_CONFIG), workflow_type="train", **overrides)
    workflow.initialize()
    with pytest.raises(Exception) as err:
        workflow.run()
    chain, e = [], err.value
    while e is not None:
        chain.append(str(e))
        e = e.__cause__ or e.__context__
    assert any(missing in message and "file not found" in message for message in chain)


def _cli(output_dir: Path, *extra: str) -> list[str]:
    args = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN_CONFIG),
            "--output_dir", str(output_dir), "--ckpt_dir", str(output_dir / "models")]
    for key, value in TINY.items():
        args += [f"--{key}", str(value)]
    return args + list(extra)


@pytest.mark.slow
def test_kill_and_resume(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = _cli(tmp_path, "--max_epochs", "8", "--warmup_epochs", "2")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        done = sorted(int(p.stem.split("=")[-1]) for p in checkpoints.glob("checkpoint_epoch=*.pt"))
        if done and done[-1] >= 3:  # the main stage has started
            break
        time.sleep(0.2)
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()

    # nothing corrupt: the newest checkpoint loads, the EMA generation it records is complete
    last = max(checkpoints.glob("checkpoint_epoch=*.pt"), key=lambda p: int(p.stem.split("=")[-1]))
    state = torch.load(last, weights_only=True)
    killed_epoch = state["trainer"]["iteration"] // state["trainer"]["epoch_length"]
    ema_generation = state["ema"]["generation"]
    maps = {p.name: np.load(p) for p in (tmp_path / "ema" / f"{ema_generation:06d}").glob("*.npy")}
    assert len(maps) == 3 and not list(tmp_path.rglob("*.tmp*"))

    resumed = subprocess.run(_cli(tmp_path, "--max_epochs", "9", "--warmup_epochs", "2", "--resume", "true"),
                             cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from iteration {state['trainer']['iteration']}, epoch {killed_epoch} until 9 epochs" in resumed.stderr + resumed.stdout
    final = torch.load(checkpoints / "checkpoint_epoch=9.pt", weights_only=True)
    assert final["trainer"]["iteration"] == 9 * final["trainer"]["epoch_length"]
    assert final["ema"]["updates"] == 9  # one refresh per epoch, none repeated or lost across the kill


@pytest.mark.parametrize("stop_at, total, checkpoint_interval", [(1, 3, 1), (2, 4, 2)])
def test_interrupted_and_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, stop_at, total, checkpoint_interval):
    """Checkpoints hold every RNG (torch, NumPy, Python, each transform's, the contrastive sampler's), every interval."""
    schedule = {"method": "s2l_r1r4", "warmup_epochs": 1, "max_samples": 50, "checkpoint_interval": checkpoint_interval}
    run_workflow(tmp_path / "whole", max_epochs=total, **schedule)
    run_workflow(tmp_path / "split", max_epochs=stop_at, **schedule)
    run_workflow(tmp_path / "split", max_epochs=total, resume=True, **schedule)
    name = f"checkpoint_epoch={total}.pt"
    whole, split = (torch.load(tmp_path / run / "checkpoints" / name, weights_only=True) for run in ("whole", "split"))
    for part in ("network", "contrastive"):
        assert whole[part].keys() == split[part].keys()
        assert all(torch.equal(whole[part][k], split[part][k]) for k in whole[part]), part
    assert torch.equal(whole["rng"]["torch"], split["rng"]["torch"])
    assert len(whole["rng"]["transforms"]) == len(split["rng"]["transforms"]) > 5
    assert all(torch.equal(a["keys"], b["keys"]) and a["position"] == b["position"]
               for a, b in zip(whole["rng"]["transforms"], split["rng"]["transforms"]))  # fmt: skip
    for name in ("whole", "split"):  # the same EMA maps too
        assert json.loads((tmp_path / name / "ema" / "current.json").read_text())["updates"] == total
    last = f"{total:06d}"
    ids = sorted(p.name for p in (tmp_path / "whole" / "ema" / last).glob("*.npy"))
    assert ids and all(np.array_equal(np.load(tmp_path / "whole" / "ema" / last / i), np.load(tmp_path / "split" / "ema" / last / i)) for i in ids)


@pytest.mark.parametrize("batch_size, expected_batch, drop_last, iterations", [("auto", 3, False, 1), (2, 2, True, 1), (1, 1, False, 3)])
def test_training_batches(tmp_path, batch_size, expected_batch, drop_last, iterations):
    """``auto`` is the authors' min(30, training images): one iteration per epoch here; a last batch of one is dropped."""
    workflow = run_workflow(tmp_path, num_synthetic_images=6, batch_size=batch_size, max_epochs=1, method="scribble_only")
    assert len(workflow.parser.get_parsed_content("train_items")) == 3
    loader = workflow.parser.get_parsed_content("train#dataloader")
    assert (loader.batch_size, loader.drop_last) == (expected_batch, drop_last)
    assert workflow.parser.get_parsed_content("train#trainer").state.epoch_length == iterations


def test_short_synthetic_run_gives_pseudo_labels_of_both_classes_and_both_contrastive_terms(tmp_path):
    """The method at work, not only the plumbing: after a 90-iteration warm-up the zero-initialised EMA gives
    confident, mostly right pseudo-labels of both classes (measured against the label maps), and the main
    stage trains the 1x1 term and the 4x4 term (which needs fully labelled 4x4 blocks of both classes).

    At this length the network is confident on the background only next to its scribbles
    (docs/method.md#measured-weak-background): at the authors' threshold 0.8 whether background
    pseudo-labels appear depends on the random trajectory (they did on some, not on others), so the test
    uses 0.7, where they appeared on both trajectories we ran (validation every 5 epochs and once at the end:
    validation draws from the global torch generator, so its interval changes the crops)."""
    from monai_scribble.visualize import learning_curves, training_summary

    schedule = {"num_synthetic_images": 40, "crop_size": 128, "batch_size": 8, "max_epochs": 36, "warmup_epochs": 30, "ema_period": 2,
                "val_interval": 36, "max_samples": 2000, "ema_threshold": 0.7}  # fmt: skip
    workflow = run_workflow(tmp_path, method="s2l_r1r4", **schedule)
    assert workflow.parser.get_parsed_content("train#trainer").state.iteration == 108
    summary = training_summary(tmp_path / "tensorboard")
    curves = learning_curves(tmp_path / "tensorboard")
    assert summary["main_stage_iterations"] == 18, summary
    assert summary["mean_pseudo_fg_share"] > 0.02 and summary["mean_pseudo_bg_share"] > 0.02, summary
    for name, precision in (("fg", 0.8), ("bg", 0.9)):  # the label maps hold ~12 % nucleus pixels
        coverage, measured = curves[f"pseudo_{name}_coverage"][1], curves[f"pseudo_{name}_precision"][1]
        assert max(measured[coverage > 0.02]) > precision, (name, coverage, measured)
    assert summary["r1_nonzero_share"] == 1.0, summary
    assert summary["r4_first_nonzero_iteration"] is not None and summary["r4_nonzero_share"] > 0.2, summary


def test_a_round_with_scribbled_ids_trains_on_those_and_ranks_the_rest(tmp_path):
    from monai_scribble.data.datalist import prepare_datalist

    full = json.loads(prepare_datalist("synthetic", output_dir=tmp_path / "probe", num_synthetic=TINY["num_synthetic_images"]).read_text())
    training = [item["id"] for item in full["training"]]
    (tmp_path / "round1.txt").write_text("\n".join(training[:2]) + "\n")
    workflow = run_workflow(tmp_path / "run", max_epochs=2, warmup_epochs=1, scribbled_ids=str(tmp_path / "round1.txt"))
    assert [item["id"] for item in workflow.parser.get_parsed_content("train_items")] == training[:2]
    with open(tmp_path / "run" / "scribble_next.csv", newline="") as handle:
        table = {row["id"]: row for row in csv.DictReader(handle)}
    assert set(table) == set(training)  # the scribbled ones and the rest of the training split
    assert {i for i, row in table.items() if row["scribbled"] == "0"} == set(training[2:])
    assert all(0.0 <= float(row["unconfident_share"]) <= 1.0 for row in table.values())
