"""The Table-1 harness's schedules and report (the runs themselves are benchmarks, not tests)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "table1.py"
spec = importlib.util.spec_from_file_location("table1", PATH)
table1 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(table1)


@pytest.mark.parametrize("profile, dataset, expected", [
    ("full", "monuseg", {"max_epochs": 1000, "warmup_epochs": 100, "ema_period": 5, "batch_size": "auto", "crop_size": 256}),
    ("cpu-budget", "dsb_bf", {"max_epochs": 32, "warmup_epochs": 16, "ema_period": 4, "batch_size": 4, "ema_bias_correction": True}),
    ("cpu", "monuseg", {"max_epochs": 300, "warmup_epochs": 100, "ema_period": 5, "batch_size": "auto", "ema_bias_correction": False}),
])  # fmt: skip
def test_schedules(profile, dataset, expected):
    chosen = table1.schedule(profile, dataset)
    assert {k: chosen[k] for k in expected} == expected
    assert chosen["warmup_epochs"] < chosen["max_epochs"]


def test_unknown_profile():
    with pytest.raises(ValueError, match="unknown profile 'gpu'"):
        table1.schedule("gpu", "dsb_bf")


def _record(method, seed, iou, **extra):
    metrics = {name: {"mean": 0.5, "std": 0.1, "n": 3} for name in ("iou", "mdice_legacy", "mdice", "aji", "pq", "f1_50")}
    metrics["iou"]["mean"] = iou
    return {"dataset": "dsb_bf", "method": method, "fold": 0, "seed": seed, "metrics": metrics, "dataset_iou": 0.75, "epochs": 32,
            "train_seconds": 512.3, **extra}  # fmt: skip


def test_report_puts_ours_beside_the_paper_with_mean_and_std_over_seeds():
    records = [_record("s2l", 0, 0.8, convergence={"converged": True, "best": 0.81, "best_epoch": 30}, dynamics={"r4_nonzero_share": 0.5},
                       cpu="Xeon", native_bf16=True, torch_threads=2),
               _record("s2l", 1, 0.7), _record("s2l_r1r4", 0, 0.9, dynamics={"r4_nonzero_share": 0.25})]  # fmt: skip
    text = table1.results_markdown(records, "cpu")
    assert "| s2l | 0.5000 ± 0.0000 / 0.7500 ± 0.0707 | 2 | 0.6980 / 0.8108 |" in text  # sample std of 0.8 and 0.7
    assert "| s2l_r1r4 | 0.5000 / 0.9000 | 1 | 0.7199 / 0.8368 |" in text
    assert "| supervised | not run | 0 | 0.7305 / 0.8665 |" in text
    # a branched S2L cell's logs hold the warm-up's 4x4 scalars: no share is shown for a method without the term
    assert "| dsb_bf | s2l | 0 | 0.5000 | 0.5000 | 0.5000 | 0.5000 | 0.7500 | 0.8100 (30) | yes | – | 32 | 512 |" in text
    assert "| dsb_bf | s2l_r1r4 | 0 | 0.5000 | 0.5000 | 0.5000 | 0.5000 | 0.7500 | – | – | 25% | 32 | 512 |" in text
    assert "| dsb_bf | s2l | 1 | 0.5000 | 0.5000 | 0.5000 | 0.5000 | 0.7500 | – | – | – | 32 | 512 |" in text
    assert "CPU: Xeon (native bf16, 2 threads)" in text


def test_command_line_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit):
        table1.main(["--datasets", "imagenet"])
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err


@pytest.mark.parametrize("epochs, values, max_epochs, converged, best_last", [
    ([25, 50, 75, 100], [0.50, 0.60, 0.70, 0.695], 100, True, 0.695),   # best in the last quarter, or within 0.01
    ([25, 50, 75, 100], [0.50, 0.72, 0.70, 0.69], 100, False, 0.69),    # fell 0.03 below an earlier best
    ([25, 50, 75, 100], [0.50, 0.71, 0.70, 0.70], 100, True, 0.70),     # exactly 0.01 below: within the tolerance
    ([10, 20, 30], [0.4, 0.5, 0.6], 100, False, None),                 # no validation in the last quarter: cannot tell
    ([80, 90], [float("nan"), 0.3], 100, True, 0.3),                   # NaN validations are ignored
    ([], [], 100, False, None),
])  # fmt: skip
def test_convergence_flag(epochs, values, max_epochs, converged, best_last):
    result = table1.convergence(epochs, values, max_epochs)
    assert result["converged"] is converged
    assert result["best_last_quarter"] == best_last


def test_subset_split_file_keeps_validation_and_test_and_is_seeded(tmp_path, monkeypatch):
    import json

    monkeypatch.setattr(table1, "SPLITS", tmp_path / "splits")
    (tmp_path / "splits").mkdir()
    path = table1.subset_split_file("synthetic", 5, 0, tmp_path, tmp_path / "out")
    assert path.name == "synthetic_seed0_fold0_train5.json"
    full = json.loads((tmp_path / "splits" / "synthetic_seed0_fold0.json").read_text())
    subset = json.loads(path.read_text())
    assert len(subset["training"]) == 5 and set(subset["training"]) < set(full["training"])
    assert (subset["validation"], subset["test"]) == (full["validation"], full["test"])
    assert subset["training_subset"] == {"size": 5, "of": len(full["training"]), "seed": 0}
    path.unlink()  # made again from the full split: the same seeded subset
    assert json.loads(table1.subset_split_file("synthetic", 5, 0, tmp_path, tmp_path / "out").read_text()) == subset
    assert table1.schedule("cpu", "dsb_fluo")["train_subset"] == 60


def test_publish_merges_records_replaces_a_rerun_cell_and_copies_the_curves(tmp_path):
    import json

    results, images, out = tmp_path / "results", tmp_path / "images", tmp_path / "runs"
    results.mkdir()
    (results / "table1_cpu_profile.json").write_text(json.dumps([_record("supervised", 0, 0.7), _record("s2l", 0, 0.5)]))
    (out / "dsb_bf_s2l_fold0_seed0").mkdir(parents=True)
    (out / "dsb_bf_s2l_fold0_seed0" / "curves.png").write_bytes(b"png")
    path = table1.publish([_record("s2l", 0, 0.6), _record("s2l_r1r4", 0, 0.65)], "cpu", out, results, images)
    merged = json.loads(path.read_text())
    assert [(r["method"], r["metrics"]["iou"]["mean"]) for r in merged] == [("supervised", 0.7), ("s2l", 0.6), ("s2l_r1r4", 0.65)]
    assert "0.6000" in path.with_suffix(".md").read_text()
    assert (images / "dsb_bf_s2l_seed0.png").read_bytes() == b"png"
    assert not (images / "dsb_bf_s2l_r1r4_seed0.png").exists()  # no curves for that cell: nothing copied


def test_publish_mends_the_validation_curve_of_a_resumed_cell_logged_twice(tmp_path):
    curve = {"epochs": [10, 20, 30, 40, 30, 40], "val_iou": [0.1, 0.2, 0.9, 0.3, 0.25, 0.35]}  # resumed at 20, after 40
    resumed = _record("s2l", 0, 0.6, resumed=True, validation_curve=curve, epochs=40)
    path = table1.publish([resumed, _record("s2l", 1, 0.6, validation_curve=dict(curve), epochs=40)], "cpu", tmp_path, tmp_path, tmp_path)
    mended, untouched = json.loads(path.read_text())
    assert mended["validation_curve"] == {"epochs": [10, 20, 30, 40], "val_iou": [0.1, 0.2, 0.25, 0.35]}  # the resumed run's values
    assert mended["convergence"] == {"converged": True, "best": 0.35, "best_epoch": 40, "best_last_quarter": 0.35}
    assert mended["curves_one_per_step"].startswith("validation curve only")  # dynamics need the log
    assert untouched["validation_curve"] == curve and "curves_one_per_step" not in untouched  # not resumed: left as it is


def test_a_finished_resumed_cell_reads_its_curves_again_one_value_per_step(tmp_path, monkeypatch):
    from torch.utils.tensorboard import SummaryWriter

    cell = tmp_path / table1.cell_name("dsb_bf", "s2l", 0, 0)
    for values in ({10: 0.1, 20: 0.2, 30: 0.9}, {30: 0.3, 40: 0.4}):  # the interrupted run, then the resumed one
        writer = SummaryWriter(str(cell / "tensorboard"))
        for epoch, value in values.items():
            writer.add_scalar("val_iou", value, epoch)
        writer.close()
    old = _record("s2l", 0, 0.8, resumed=True, watershed={}, validation_curve={"epochs": [10, 20, 30, 30, 40], "val_iou": [0.1, 0.2, 0.9, 0.3, 0.4]})
    (cell / "record.json").write_text(json.dumps(old))
    monkeypatch.setattr(table1, "_bundle", lambda *args: pytest.fail("a finished cell is not trained or evaluated again"))
    record = table1.run_cell("dsb_bf", "s2l", 0, "cpu", tmp_path, tmp_path, 0)
    assert record["validation_curve"]["epochs"] == [10, 20, 30, 40]
    assert record["validation_curve"]["val_iou"] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert record["convergence"]["best"] == 0.4 and record["curves_one_per_step"] is True
    assert json.loads((cell / "record.json").read_text())["curves_one_per_step"] is True


def test_report_shows_metrics_without_and_with_the_watershed_split():
    split = {"metrics": {name: {"mean": 0.6, "std": 0.0, "n": 3} for name in ("iou", "mdice_legacy", "mdice", "aji", "pq", "f1_50")},
             "dataset_iou": 0.7}  # fmt: skip
    text = table1.results_markdown([_record("s2l", 0, 0.8, watershed=split), _record("s2l_r1r4", 0, 0.9)], "cpu")
    assert "| dsb_bf | s2l | 0 | 0.5000 → 0.6000 | 0.5000 → 0.6000 | 0.5000 → 0.6000 | 0.5000 → 0.6000 | 0.5000 → 0.6000 | 0.8000 → 0.6000 |" in text
    assert "| dsb_bf | s2l_r1r4 | 0 | 0.5000 →" not in text  # a record without watershed metrics has no row


def test_a_finished_cell_from_before_the_watershed_column_is_evaluated_with_it_once(tmp_path, monkeypatch):
    cell = tmp_path / table1.cell_name("dsb_bf", "s2l", 0, 0)
    (cell / "models").mkdir(parents=True)
    (cell / "models" / "model.pt").write_bytes(b"")
    (cell / "record.json").write_text(json.dumps(_record("s2l", 0, 0.8)))
    calls = []

    def fake_bundle(run_id, configs, args, log):
        calls.append((run_id, args))
        Path(args["output_dir"]).mkdir(parents=True, exist_ok=True)
        (Path(args["output_dir"]) / "metrics.json").write_text(json.dumps({"metrics": {"iou": {"mean": 0.7}}, "dataset_iou": 0.71}))
        return 1.0

    monkeypatch.setattr(table1, "_bundle", fake_bundle)
    for _ in range(2):
        record = table1.run_cell("dsb_bf", "s2l", 0, "cpu", tmp_path, tmp_path, 0)
    assert [(run_id, args["watershed_split"], args["output_dir"]) for run_id, args in calls] == [("evaluating", True, cell / "watershed")]
    assert record["watershed"] == {"metrics": {"iou": {"mean": 0.7}}, "dataset_iou": 0.71, "eval_seconds": 1.0}
    assert json.loads((cell / "record.json").read_text())["watershed"] == record["watershed"]


@pytest.mark.parametrize("method", ["s2l", "s2l_r1", "s2l_r4"])
def test_a_warmup_checkpoint_of_s2l_r1r4_loads_into_each_ablation(method):
    import torch

    from monai_scribble.engines.methods import contrastive_terms
    from monai_scribble.engines.optimizer import optimizer_param_groups
    from monai_scribble.losses import MultiscaleContrastiveLoss
    from monai_scribble.networks import MultiscaleUNet

    def run(method):
        torch.manual_seed(0)
        network = MultiscaleUNet(feature_names=("d5", "d3"))
        terms = contrastive_terms(method)
        loss = MultiscaleContrastiveLoss(terms, seed=0) if terms else None
        optimizer = torch.optim.RAdam(optimizer_param_groups(network, loss, 1e-3), lr=1e-3)
        return network, loss, optimizer

    network, loss, optimizer = run("s2l_r1r4")
    network(torch.randn(2, 3, 64, 64)).sum().backward()  # a warm-up step: the heads get no gradient
    optimizer.step()
    state = {"network": network.state_dict(), "contrastive": loss.state_dict(), "optimizer": optimizer.state_dict(),
             "rng": {"samplers": [loss.rng_state()]}}  # fmt: skip
    branched = table1.warmup_checkpoint_for(state, method)
    network_b, loss_b, optimizer_b = run(method)
    network_b.load_state_dict(branched["network"])
    optimizer_b.load_state_dict(branched["optimizer"])  # group sizes match, or this raises
    assert ("contrastive" in branched) == (loss_b is not None)
    if loss_b is not None:
        loss_b.load_state_dict(branched["contrastive"])  # strict: exactly the heads of the method's terms
        for name, value in loss_b.state_dict().items():
            torch.testing.assert_close(value, state["contrastive"][name])
    assert len(branched["rng"]["samplers"]) == (1 if loss_b is not None else 0)
    for p, q in zip(network.parameters(), network_b.parameters()):
        torch.testing.assert_close(optimizer.state[p]["exp_avg"], optimizer_b.state[q]["exp_avg"])
    assert set(state["contrastive"]) > set(branched.get("contrastive", {}))  # the source state is left as it was


def test_a_checkpoint_whose_heads_trained_is_not_a_warmup_one():
    import torch

    from monai_scribble.engines.methods import contrastive_terms
    from monai_scribble.engines.optimizer import optimizer_param_groups
    from monai_scribble.losses import MultiscaleContrastiveLoss
    from monai_scribble.networks import MultiscaleUNet

    network, loss = MultiscaleUNet(feature_names=("d5", "d3")), MultiscaleContrastiveLoss(contrastive_terms("s2l_r1r4"), seed=0)
    optimizer = torch.optim.RAdam(optimizer_param_groups(network, loss, 1e-3), lr=1e-3)
    sum(p.sum() for p in loss.parameters()).backward()
    optimizer.step()
    state = {"network": network.state_dict(), "contrastive": loss.state_dict(), "optimizer": optimizer.state_dict()}
    with pytest.raises(ValueError, match="not an end-of-warm-up checkpoint"):
        table1.warmup_checkpoint_for(state, "s2l")
    with pytest.raises(ValueError, match="no contrastive heads"):
        table1.warmup_checkpoint_for({"network": {}, "optimizer": {}}, "s2l")


def test_a_variant_is_its_own_cell_listed_beside_the_default_and_kept_out_of_table1(tmp_path):
    settings = {"ema_background_threshold": "0.6"}
    assert table1.cell_name("dsb_bf", "s2l_r1r4", 0, 1, "bg06") == "dsb_bf_s2l_r1r4-bg06_fold0_seed1"
    assert table1.cell_command("dsb_bf", "s2l_r1r4", 0, "cpu", 1, "bg06", settings).endswith(
        "--seeds 1 --variant bg06 --set ema_background_threshold=0.6")
    assert table1.cell_command("dsb_bf", "s2l", 0, "cpu", 1, warmup_from="runs/t1/dsb_bf_s2l_r1r4_fold0_seed1").endswith(
        "--seeds 1 --warmup_from runs/t1/dsb_bf_s2l_r1r4_fold0_seed1")
    variant = _record("s2l_r1r4", 0, 0.2, variant="bg06", settings=settings)
    results, out = tmp_path / "results", tmp_path / "runs"
    (out / "dsb_bf_s2l_r1r4-bg06_fold0_seed0").mkdir(parents=True)
    (out / "dsb_bf_s2l_r1r4-bg06_fold0_seed0" / "curves.png").write_bytes(b"png")
    results.mkdir()
    path = table1.publish([_record("s2l_r1r4", 0, 0.9), variant], "cpu", out, results, tmp_path / "images")
    assert len(json.loads(path.read_text())) == 2  # the variant does not replace the default cell
    text = path.with_suffix(".md").read_text()
    assert "| s2l_r1r4 | 0.5000 / 0.9000 | 1 |" in text  # Table 1 holds the default only
    assert "| dsb_bf | s2l_r1r4 (bg06) | 0 |" in text and "bg06: `ema_background_threshold=0.6`" in text
    assert (tmp_path / "images" / "dsb_bf_s2l_r1r4-bg06_seed0.png").is_file()


@pytest.mark.parametrize("argv", [["--variant", "bg06"], ["--set", "ema_background_threshold=0.6"], ["--variant", "x", "--set", "novalue"]])
def test_variant_and_set_go_together(argv, capsys):
    with pytest.raises(SystemExit):
        table1.main(argv)
    assert "--variant NAME and --set ID=VALUE go together" in capsys.readouterr().err


def test_an_s2l_r1r4_cell_keeps_a_copy_of_itself_at_the_end_of_its_warmup(tmp_path, monkeypatch):
    import time

    cell = tmp_path / table1.cell_name("dsb_bf", "s2l_r1r4", 0, 0)
    warmup = table1.schedule("cpu", "dsb_bf")["warmup_epochs"]

    def fake_bundle(run_id, configs, args, log):
        out = Path(args["output_dir"])
        out.mkdir(parents=True, exist_ok=True)
        if run_id == "training":  # the checkpoint of the last warm-up epoch exists for a while, then is replaced
            (out / "checkpoints").mkdir()
            (out / "ema").mkdir()
            (out / "ema" / "current.json").write_text('{"generation": 20}')
            (out / "checkpoints" / f"checkpoint_epoch={warmup}.pt").write_bytes(b"warm-up end")
            time.sleep(0.5)
            (out / "checkpoints" / f"checkpoint_epoch={warmup}.pt").unlink()
            (out / "checkpoints" / f"checkpoint_epoch={warmup + 10}.pt").write_bytes(b"later")
            (out / "ema" / "current.json").write_text('{"generation": 22}')
        else:
            (out / "metrics.json").write_text(json.dumps({"metrics": {}, "dataset_iou": 0.5, "n_images": 1}))
        return 1.0

    monkeypatch.setattr(table1, "_bundle", fake_bundle)
    monkeypatch.setattr(table1, "validation_curve", lambda cell: ([], []))
    monkeypatch.setattr(table1, "plot_cell_curves", lambda cell: None)
    monkeypatch.setattr("monai_scribble.visualize.training_summary", lambda folder: {})
    monkeypatch.setattr(table1, "WARMUP_POLL_SECONDS", 0.05)
    table1.run_cell("dsb_bf", "s2l_r1r4", 0, "cpu", tmp_path, tmp_path, 0)
    assert (cell / "warmup" / "checkpoints" / f"checkpoint_epoch={warmup}.pt").read_bytes() == b"warm-up end"
    assert (cell / "warmup" / "ema" / "current.json").read_text() == '{"generation": 20}'
    assert not (cell / ".warmup.partial").exists()


def test_a_resumed_cell_records_the_epoch_its_train_seconds_count_from(tmp_path, monkeypatch):
    cell = tmp_path / table1.cell_name("dsb_bf", "s2l", 0, 0)
    (cell / "checkpoints").mkdir(parents=True)
    for epoch in (90, 120):  # the newest by epoch, not by name
        (cell / "checkpoints" / f"checkpoint_epoch={epoch}.pt").write_bytes(b"state")
    seen = {}

    def fake_bundle(run_id, configs, args, log):
        seen.setdefault(run_id, args)
        out = Path(args["output_dir"])
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps({"metrics": {}, "dataset_iou": 0.5, "n_images": 1}))
        return 42.0

    monkeypatch.setattr(table1, "_bundle", fake_bundle)
    monkeypatch.setattr(table1, "validation_curve", lambda cell: ([], []))
    monkeypatch.setattr(table1, "plot_cell_curves", lambda cell: None)
    monkeypatch.setattr("monai_scribble.visualize.training_summary", lambda folder: {})
    record = table1.run_cell("dsb_bf", "s2l", 0, "cpu", tmp_path, tmp_path, 0)
    assert seen["training"]["resume"] is True
    assert (record["resumed"], record["resumed_from_epoch"], record["train_seconds"]) == (True, 120, 42.0)
    fresh = table1.run_cell("dsb_bf", "supervised", 0, "cpu", tmp_path, tmp_path, 0)
    assert fresh["resumed"] is False and "resumed_from_epoch" not in fresh
