from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_scribble.data.datalist import prepare_datalist, unscribbled_items, write_split_file
from monai_scribble.data.scribbles import read_scribble, scribble_class_counts
from monai_scribble.errors import ArgumentError, DataError

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN_CONFIG = REPO_ROOT / "bundles" / "scribble_cell_segmentation" / "configs" / "train.json"
SPLITS = ("training", "validation", "test")


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def scribble_bytes(datalist: dict) -> dict[str, bytes]:
    return {item["id"]: Path(item["scribble"]).read_bytes() for key in SPLITS for item in datalist[key]}


def assert_valid_scribbles(datalist: dict) -> None:
    for key in SPLITS:
        for item in datalist[key]:
            scribble = read_scribble(item["scribble"], datalist["scribble_format"])
            assert set(np.unique(scribble)) <= {0, 1, 250}
            num_bg, num_fg = scribble_class_counts(scribble)
            assert num_bg > 0 and num_fg > 0, item["id"]


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic_run")
    return out, load(prepare_datalist("synthetic", output_dir=out, num_synthetic=10, seed=0))


def test_synthetic_datalist_layout(synthetic_run):
    out, datalist = synthetic_run
    assert [len(datalist[k]) for k in SPLITS] == [6, 2, 2]
    assert datalist["scribble_format"] == "s2l" and datalist["skipped"] == []
    ids = [item["id"] for k in SPLITS for item in datalist[k]]
    assert len(set(ids)) == 10
    for item in datalist["training"]:
        assert set(item) == {"id", "image", "scribble", "label"}
        assert all(Path(item[k]).is_file() and Path(item[k]).is_absolute() for k in ("image", "scribble", "label"))
        assert Path(item["scribble"]).parent.name == "synthetic_ratio0.3_seed0_s2l"
    assert_valid_scribbles(datalist)


def test_strokes_style_synthesises_hand_drawn_like_scribbles(synthetic_run, tmp_path):
    from monai_scribble.data.image_io import read_instance_label
    from monai_scribble.data.scribbles import image_rng
    from monai_scribble.data.strokes import synthesize_strokes

    out, skeletons = synthetic_run
    strokes = load(prepare_datalist("synthetic", output_dir=tmp_path, num_synthetic=10, seed=0, scribble_style="strokes"))
    assert strokes["scribble_style"] == "strokes" and skeletons["scribble_style"] == "skeleton"
    assert [[i["id"] for i in strokes[k]] for k in SPLITS] == [[i["id"] for i in skeletons[k]] for k in SPLITS]  # same split
    item = strokes["training"][0]
    assert Path(item["scribble"]).parent.name == "synthetic_ratio0.3_seed0_s2l_strokes"
    expected = synthesize_strokes(read_instance_label(item["label"]), 0.3, image_rng(0, item["id"]))
    assert np.array_equal(read_scribble(item["scribble"], "s2l"), expected)  # the generator, seeded per image as the skeletons
    assert load(Path(item["scribble"]).parent / "manifest.json")["style"] == "strokes"
    assert scribble_bytes(strokes) != scribble_bytes(skeletons)
    assert_valid_scribbles(strokes)


def test_rerun_reuses_files_and_same_seed_is_byte_identical(synthetic_run, tmp_path):
    out, datalist = synthetic_run
    first = Path(datalist["training"][0]["scribble"])
    mtime = first.stat().st_mtime_ns
    assert load(prepare_datalist("synthetic", output_dir=out, num_synthetic=10, seed=0)) == datalist
    assert first.stat().st_mtime_ns == mtime

    other = load(prepare_datalist("synthetic", output_dir=tmp_path / "again", num_synthetic=10, seed=0))
    assert [[i["id"] for i in other[k]] for k in SPLITS] == [[i["id"] for i in datalist[k]] for k in SPLITS]
    assert scribble_bytes(other) == scribble_bytes(datalist)


def test_different_seed_changes_split_and_scribbles(synthetic_run, tmp_path):
    _, datalist = synthetic_run
    other = load(prepare_datalist("synthetic", output_dir=tmp_path, num_synthetic=10, seed=1))
    assert [[i["id"] for i in other[k]] for k in SPLITS] != [[i["id"] for i in datalist[k]] for k in SPLITS]
    assert scribble_bytes(other) != scribble_bytes(datalist)


def ids_by_split(datalist: dict) -> list[list[str]]:
    return [[item["id"] for item in datalist[key]] for key in SPLITS]


def test_published_split_file_round_trip(synthetic_run, tmp_path):
    out, datalist = synthetic_run
    split_file = write_split_file(out / "datalist.json", tmp_path / "split.json")
    published = load(split_file)
    assert [published[k] for k in SPLITS] == ids_by_split(datalist)
    assert "/" not in json.dumps({k: published[k] for k in SPLITS})  # ids only, no paths
    # another fold would give another split; the published file wins
    refold = load(prepare_datalist("synthetic", output_dir=out, num_synthetic=10, seed=0, fold=2, split_file=split_file))
    assert ids_by_split(refold) == ids_by_split(datalist) and refold["split_file"] == str(split_file)


def test_split_file_with_unknown_ids_names_the_file(synthetic_run, tmp_path):
    out, datalist = synthetic_run
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"training": ["synth_000", "nope"], "validation": [], "test": []}))
    with pytest.raises(DataError, match=r"bad.json.*1 ids of the split file are not in the dataset: \['nope'\]"):
        prepare_datalist("synthetic", output_dir=out, num_synthetic=10, seed=0, split_file=bad)
    bad.write_text(json.dumps({"training": []}))
    with pytest.raises(DataError, match=r"no id list for \['validation', 'test'\]"):
        prepare_datalist("synthetic", output_dir=out, num_synthetic=10, seed=0, split_file=bad)


def test_zero_unlabeled_format(tmp_path):
    datalist = load(prepare_datalist("synthetic", output_dir=tmp_path, num_synthetic=5, scribble_format="zero_unlabeled"))
    raw = np.array(Image.open(datalist["training"][0]["scribble"]))
    assert set(np.unique(raw)) == {0, 1, 2}
    assert_valid_scribbles(datalist)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"dataset": "dsb"}, ArgumentError, "--dataset: unknown value 'dsb'; choose one of synthetic, dsb_fluo"),
        ({"dataset": "dsb_fluo"}, ArgumentError, "--dataset_dir: dataset 'dsb_fluo' needs --dataset_dir"),
        ({"scribble_ratio": 0.0}, ArgumentError, r"--scribble_ratio: must be a number in \(0, 1\]"),
        ({"scribble_format": "napari"}, ArgumentError, "--scribble_format: unknown value 'napari'; choose one of s2l, zero_unlabeled"),
        ({"fold": 4}, ArgumentError, "fold 4 is the test fold"),
        ({"dataset": "dsb_bf", "dataset_dir": "/nonexistent/stage1_train"}, ArgumentError, "folder not found: /nonexistent/stage1_train"),
        ({"dataset": "monuseg", "dataset_dir": "/nonexistent/monuseg"}, ArgumentError, "folder not found: /nonexistent/monuseg"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        prepare_datalist(output_dir=tmp_path, num_synthetic=5, **kwargs)
    assert list(tmp_path.iterdir()) == []  # nothing written


def make_folder_dataset(root: Path, scribbles: dict[str, np.ndarray]) -> None:
    for sub in ("images", "scribbles"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for stem, scribble in scribbles.items():
        Image.fromarray(np.full((16, 16, 3), 100, np.uint8)).save(root / "images" / f"{stem}.png")
        Image.fromarray(scribble).save(root / "scribbles" / f"{stem}.png")


def test_folder_dataset_skips_one_class_scribbles(tmp_path):
    good = np.zeros((16, 16), np.uint8)  # zero-unlabeled: 0 unlabeled, 1 bg, 2 fg
    good[2, 2:6], good[8, 2:6] = 1, 2
    only_bg = np.zeros((16, 16), np.uint8)
    only_bg[3, 3] = 1
    make_folder_dataset(tmp_path / "data", {f"ok{i}": good for i in range(5)} | {"bgonly": only_bg})
    datalist = load(prepare_datalist("folder", tmp_path / "data", tmp_path / "out", scribble_format="zero_unlabeled"))
    assert datalist["skipped"] == [
        {"id": "bgonly", "split": datalist["skipped"][0]["split"], "scribble": str((tmp_path / "data/scribbles/bgonly.png").resolve()),
         "reason": "scribble has no foreground pixel"}
    ]
    # no labels -> no test split; the user's scribble files are used in place
    assert datalist["test"] == [] and len(datalist["training"]) + len(datalist["validation"]) == 5
    assert all("label" not in item and "/data/scribbles/" in item["scribble"] for item in datalist["training"])


def test_folder_dataset_lists_unannotated_images_as_unscribbled(tmp_path):
    good = np.zeros((16, 16), np.uint8)
    good[2, 2:6], good[8, 2:6] = 1, 2
    make_folder_dataset(tmp_path / "data", {f"ok{i}": good for i in range(5)})
    for stem in ("new1", "new0"):  # images only: no scribble, no label
        Image.fromarray(np.full((16, 16, 3), 50, np.uint8)).save(tmp_path / "data" / "images" / f"{stem}.png")
    datalist = load(prepare_datalist("folder", tmp_path / "data", tmp_path / "out", scribble_format="zero_unlabeled"))
    assert datalist["unscribbled"] == [{"id": stem, "image": str((tmp_path / "data" / "images" / f"{stem}.png").resolve())}
                                       for stem in ("new0", "new1")]  # fmt: skip
    split_ids = {item["id"] for key in ("training", "validation", "test") for item in datalist[key]}
    assert split_ids == {f"ok{i}" for i in range(5)}  # the split is made of the annotated images only
    assert unscribbled_items(tmp_path / "out" / "datalist.json") == datalist["unscribbled"]


def test_folder_dataset_wrong_format_names_file(tmp_path):
    s2l = np.full((16, 16), 250, np.uint8)
    s2l[1, 1], s2l[5, 5] = 0, 1
    make_folder_dataset(tmp_path / "data", {f"im{i}": s2l for i in range(5)})
    with pytest.raises(DataError, match=r"im\d\.png: unknown scribble values \[250\] for format 'zero_unlabeled'"):
        prepare_datalist("folder", tmp_path / "data", tmp_path / "out", scribble_format="zero_unlabeled")
    assert not (tmp_path / "out" / "datalist.json").exists()


def run_bundle(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "monai.bundle", "run", "prepare", "--config_file", str(TRAIN_CONFIG), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_bundle_prepare_command(tmp_path):
    result = run_bundle("--output_dir", str(tmp_path), "--num_synthetic_images", "5", "--seed", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    datalist = load(tmp_path / "datalist.json")
    assert datalist["dataset"] == "synthetic" and datalist["seed"] == 3
    assert sum(len(datalist[k]) for k in SPLITS) == 5


def test_bundle_prepare_unknown_dataset(tmp_path):
    result = run_bundle("--dataset", "cells", "--output_dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --dataset: unknown value 'cells'; choose one of synthetic, dsb_fluo, dsb_bf, dsb_histo, monuseg, folder"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.real_data
@pytest.mark.parametrize("dataset, counts", [("dsb_bf", (9, 4, 3)), ("dsb_fluo", (327, 110, 109)), ("dsb_histo", (65, 22, 21))])
def test_real_dsb_datalists(dsb_stage_dir, tmp_path, dataset, counts):
    datalist = load(prepare_datalist(dataset, dsb_stage_dir, tmp_path, seed=0))
    assert tuple(len(datalist[k]) for k in SPLITS) == counts
    assert datalist["skipped"] == []
    assert_valid_scribbles(datalist)
    if dataset == "dsb_bf":  # same seed -> byte-identical; other seed -> other split and scribbles
        again = load(prepare_datalist(dataset, dsb_stage_dir, tmp_path / "again", seed=0))
        assert scribble_bytes(again) == scribble_bytes(datalist)
        other = load(prepare_datalist(dataset, dsb_stage_dir, tmp_path / "other", seed=1))
        assert [i["id"] for i in other["test"]] != [i["id"] for i in datalist["test"]]
        assert scribble_bytes(other) != scribble_bytes(datalist)


@pytest.mark.real_data
@pytest.mark.parametrize("split_file", sorted((REPO_ROOT / "bundles" / "scribble_cell_segmentation" / "configs" / "splits").glob("*.json")), ids=lambda p: p.stem)
def test_committed_split_files_match_the_seeded_split(split_file, dsb_stage_dir, monuseg_root, tmp_path):
    """The published splits behind the README's numbers are what ``prepare`` computes from the shared data.

    A ``training_subset`` file (table1's cpu profile) keeps the split's validation and test images and a subset of its
    training images (that the subset is the seeded one is tested in tests/benchmarks/test_table1.py).
    """
    published = load(split_file)
    dataset_dir = monuseg_root if published["dataset"] == "monuseg" else dsb_stage_dir
    datalist = load(prepare_datalist(published["dataset"], dataset_dir, tmp_path, fold=published["fold"], seed=published["seed"]))
    training, *held_out = ids_by_split(datalist)
    assert held_out == [published[k] for k in SPLITS[1:]]
    if "training_subset" in published:
        assert published["training_subset"] == {"size": len(published["training"]), "of": len(training), "seed": published["seed"]}
        assert set(published["training"]) < set(training) and published["training"] == sorted(published["training"], key=training.index)
    else:
        assert published["training"] == training


@pytest.mark.real_data
def test_real_monuseg_datalist(monuseg_root, tmp_path):
    datalist = load(prepare_datalist("monuseg", monuseg_root, tmp_path, fold=1, seed=0))
    assert tuple(len(datalist[k]) for k in SPLITS) == (24, 6, 14)
    assert_valid_scribbles(datalist)
    other = load(prepare_datalist("monuseg", monuseg_root, tmp_path / "other", fold=1, seed=5))
    assert [i["id"] for i in other["validation"]] != [i["id"] for i in datalist["validation"]]
    assert [i["id"] for i in other["test"]] == [i["id"] for i in datalist["test"]]  # fixed official test set


def test_scribbled_ids_keep_those_scribbles_and_list_the_rest_unscribbled(synthetic_run, tmp_path):
    _, full = synthetic_run
    training = [item["id"] for item in full["training"]]
    ids_file = tmp_path / "round1.txt"
    ids_file.write_text(f"# round 1\n{training[3]}\n\n{training[0]}\n")
    datalist = load(prepare_datalist("synthetic", output_dir=tmp_path / "out", num_synthetic=10, seed=0, scribbled_ids=ids_file))
    assert [item["id"] for item in datalist["training"]] == [training[0], training[3]]  # the split's order
    assert [item["id"] for item in datalist["unscribbled"]] == [i for i in training if i not in (training[0], training[3])]
    assert all(set(item) == {"id", "image", "label"} and Path(item["image"]).is_file() for item in datalist["unscribbled"])
    assert [item["id"] for item in datalist["validation"]] == [item["id"] for item in full["validation"]]  # only training changes
    assert datalist["scribbled_ids"] == str(ids_file.resolve()) and full["scribbled_ids"] is None and full["unscribbled"] == []


@pytest.mark.parametrize("content, error, message", [
    ("", ArgumentError, "--scribbled_ids: .* lists no image id; write one training image id per line"),
    ("a\na\n", ArgumentError, r"--scribbled_ids: .* lists \['a'\] more than once"),
    ("no_such_image\n", DataError, r"1 id\(s\) are not training images of this split, e.g. \['no_such_image'\]"),
])  # fmt: skip
def test_bad_scribbled_ids(tmp_path, content, error, message):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(content)
    with pytest.raises(error, match=message):
        prepare_datalist("synthetic", output_dir=tmp_path / "out", num_synthetic=5, seed=0, scribbled_ids=ids_file)
    with pytest.raises(ArgumentError, match="--scribbled_ids: file not found: /no/ids.txt"):
        prepare_datalist("synthetic", output_dir=tmp_path / "out", num_synthetic=5, seed=0, scribbled_ids="/no/ids.txt")
