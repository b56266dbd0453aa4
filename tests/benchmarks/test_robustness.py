from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monai_scribble.data.synthetic import generate_nuclei_image

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "robustness.py"
sys.path.insert(0, str(PATH.parent))
spec = importlib.util.spec_from_file_location("robustness", PATH)
robustness = importlib.util.module_from_spec(spec)
spec.loader.exec_module(robustness)


@pytest.fixture(scope="module")
def label_maps():
    return {f"img{i}": generate_nuclei_image(rng=i)[1] for i in range(4)}


def test_stroke_ratio_matches_the_skeletons_labelled_pixels(label_maps):
    ratio, skeleton_px, stroke_px = robustness.matched_stroke_ratio(label_maps, 0.5, seed=0)
    assert skeleton_px == robustness.labelled_pixels(label_maps, "skeleton", 0.5, 0)
    assert stroke_px == robustness.labelled_pixels(label_maps, "strokes", ratio, 0)
    assert 0 < ratio <= 1 and abs(stroke_px - skeleton_px) <= 0.25 * skeleton_px
    for other in (ratio / 2, min(1.0, ratio * 2)):  # a clearly other ratio is further from the budget
        assert abs(robustness.labelled_pixels(label_maps, "strokes", other, 0) - skeleton_px) >= abs(stroke_px - skeleton_px)


METRICS = {"mdice_legacy": {"mean": 0.7}, "iou": {"mean": 0.6}}
BY_SCRIBBLE = {"metrics": {"mdice_legacy": {"mean": 0.65}, "iou": {"mean": 0.5}}, "epoch": 40}
RECORD = {"method": "s2l", "style": "strokes", "scribble_ratio": 0.125, "pixels": {"nucleus_pixels": 10, "background_pixels": 20},
          "metrics": METRICS, "label_free_choice": BY_SCRIBBLE, "convergence": {"best_epoch": 90}, "train_seconds": 12.3}  # fmt: skip
BY_INSTANCES = {"metrics": {"mdice_legacy": {"mean": 0.69}, "iou": {"mean": 0.58}}, "epoch": 80}
STUDY = {"epochs": [70, 300], "checkpoints": 24, "criteria": {"scribble_instances": {"mdice_legacy": 0.68, "iou": 0.55, "epoch": 100, "iou_gap": 0.05},
                                                                "confidence": {"mdice_legacy": 0.3, "iou": 0.2, "epoch": 300, "iou_gap": 0.4}}}


@pytest.mark.parametrize(
    "extra, row",
    [
        ({}, "| s2l | strokes | 0.125 | 10 / 20 | 0.7000 / 0.6000 (90) | 0.6500 / 0.5000 (40) | +0.1000 | n/a | n/a | 12 |"),
        ({"label_free_instances_choice": BY_INSTANCES},
         "| s2l | strokes | 0.125 | 10 / 20 | 0.7000 / 0.6000 (90) | 0.6500 / 0.5000 (40) | +0.1000 | 0.6900 / 0.5800 (80) | +0.0200 | 12 |"),
        ({"label_free_instances_choice": BY_INSTANCES, "selection_study": STUDY},  # the study saw every kept checkpoint
         "| s2l | strokes | 0.125 | 10 / 20 | 0.7000 / 0.6000 (90) | 0.6500 / 0.5000 (40) | +0.1000 | 0.6800 / 0.5500 (100) † | +0.0500 | 12 |"),
    ],
)
def test_markdown_row_gives_each_choice_and_its_gap(extra, row):
    lines = robustness.markdown([{**RECORD, **extra}]).splitlines()
    assert row in lines and lines.index(row) == 2
    assert any(line.startswith("† chosen by `benchmarks/selection_study.py`") for line in lines) == ("†" in row)
    criteria_row = "| s2l | strokes | 0.125 | 24 | +0.0500 (100) | +0.4000 (300) |"  # every criterion of the study
    assert (criteria_row in lines) == ("†" in row)
    assert ("| mean of 1 | | | | +0.0500 | +0.4000 |" in lines) == ("†" in row)


def test_a_cell_is_claimed_by_one_live_process_at_a_time(tmp_path):
    cell = tmp_path / "cell"
    assert robustness.claim(cell) and (cell / robustness.LOCK).read_text() == str(os.getpid())
    assert not robustness.claim(cell)  # held (by this live process)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    (cell / robustness.LOCK).write_text(finished.stdout.strip())  # the pid of a process that has exited
    assert robustness.claim(cell) and (cell / robustness.LOCK).read_text() == str(os.getpid())  # a stale lock is taken over


def test_published_cells_and_studies_are_restored_without_overwriting_a_finished_one(tmp_path):
    published, studies = tmp_path / "robustness_cpu.json", tmp_path / "selection_study_cpu.json"
    records = [{**RECORD, "method": "s2l_r1r4", "dataset": "dsb_fluo", "fold": 0, "seed": 0, "variant": variant} for variant in ("ratio0.1", "ratio0.3")]
    published.write_text(json.dumps(records))
    names = ["dsb_fluo_s2l_r1r4-ratio0.1_fold0_seed0", "dsb_fluo_s2l_r1r4-ratio0.3_fold0_seed0"]
    studies.write_text(json.dumps({name: {"checkpoints": [{"epoch": 10}], "summary": {"run": name}} for name in names}))
    out = tmp_path / "runs"
    kept, kept_study = out / names[1] / robustness.RECORD_FILE, out / names[1] / robustness.STUDY_FILE
    kept.parent.mkdir(parents=True)
    kept.write_text('{"mine": 1}')
    kept_study.write_text('{"checkpoints": []}')
    assert robustness.restore_published(out, published, studies) == [f"{names[0]}/{robustness.RECORD_FILE}", f"{names[0]}/{robustness.STUDY_FILE}"]
    assert json.loads((out / names[0] / robustness.RECORD_FILE).read_text()) == records[0]
    assert json.loads((out / names[0] / robustness.STUDY_FILE).read_text()) == {"checkpoints": [{"epoch": 10}], "summary": {"run": names[0]}}
    assert json.loads(kept.read_text()) == {"mine": 1} and json.loads(kept_study.read_text()) == {"checkpoints": []}
    assert robustness.restore_published(out, tmp_path / "absent.json", tmp_path / "absent_too.json") == []


def test_results_carry_each_finished_study_and_publish_them(tmp_path, monkeypatch):
    monkeypatch.setattr(robustness, "RESULTS", tmp_path / "published")
    monkeypatch.setattr(robustness, "PUBLISHED_STUDIES", tmp_path / "published" / "selection_study_cpu.json")
    monkeypatch.setattr(robustness, "plot_results", lambda records, path: None)
    (tmp_path / "published").mkdir()
    out = tmp_path / "runs"
    study = {"checkpoints": [{"epoch": 70}, {"epoch": 300}], "summary": {"criteria": STUDY["criteria"]}}  # its "checkpoints": the rows
    for name, study_text in (("done", json.dumps(study)), ("running", '{"checkpoints": [{"epoch": 10}]}'), ("none", None)):
        (out / name).mkdir(parents=True)
        (out / name / robustness.RECORD_FILE).write_text(json.dumps({**RECORD, "variant": name}))
        if study_text is not None:
            (out / name / robustness.STUDY_FILE).write_text(study_text)
    records = {r["variant"]: r for r in robustness.write_results(out, publish=True)}
    assert records["done"]["selection_study"] == {"epochs": [70, 300], "checkpoints": 2, "criteria": STUDY["criteria"]}
    assert "selection_study" not in records["running"] and "selection_study" not in records["none"]  # unfinished or absent
    assert json.loads(robustness.PUBLISHED_STUDIES.read_text()) == {"done": study}
    assert (tmp_path / "published" / "robustness_cpu.md").read_text() == (out / "results.md").read_text()
