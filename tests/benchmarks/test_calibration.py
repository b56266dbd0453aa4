from __future__ import annotations

import importlib.util
import json
from pathlib import Path

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "calibration.py"
spec = importlib.util.spec_from_file_location("calibration", PATH)
calibration = importlib.util.module_from_spec(spec)
spec.loader.exec_module(calibration)


def test_reports_calibration_pseudo_label_quality_maps_and_recalibrated_batch_norm(tmp_path, capsys):
    calibration.main(["--every", "1", "--maps", str(tmp_path / "maps"), "--recalibrate_bn", "method=s2l", "num_synthetic_images=8", "crop_size=64",
                      "batch_size=4", "max_epochs=2", "warmup_epochs=1", "ema_period=1", "val_interval=1000000", "checkpoint_interval=100"])  # fmt: skip
    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"epoch"')]
    assert [r["epoch"] for r in reports] == [1, 2]
    for report in reports:
        assert 0.0 <= report["val_iou"] <= 1.0 and 0.0 <= report["val_iou_recalibrated_bn"] <= 1.0
        q10, q50, q90 = report["p_fg_on_background_q10_50_90"]
        assert 0.0 <= q10 <= q50 <= q90 <= 1.0
        assert 0.0 <= report["p_fg_on_background_median_recalibrated_bn"] <= 1.0
        assert report["pseudo_bg_coverage"] + report["pseudo_fg_coverage"] <= 1.0
    assert "pseudo_ce" in reports[1]["last_iteration"]  # epoch 2 is a main-stage epoch
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["epoch1.png", "epoch2.png"]
