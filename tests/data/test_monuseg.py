"""MoNuSeg reader (monai_scribble.data.monuseg): fake layouts in tmp_path, then the shared real data."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_scribble.constants import CACHE_ENV_VAR
from monai_scribble.data.cache import dataset_cache_dir
from monai_scribble.data.image_io import image_size, read_array, read_instance_label, write_png
from monai_scribble.data.monuseg import read_monuseg, read_monuseg_split, validate_sample_sizes
from monai_scribble.data.records import Sample
from monai_scribble.errors import DataError

H, W = 20, 24


def write_tif(path: Path, height: int = H, width: int = W, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path, compression="tiff_lzw")
    return path


def write_label(path: Path, height: int = H, width: int = W) -> Path:
    label = np.zeros((height, width), np.uint16)
    label[2:6, 3:9] = 1
    label[10:15, 10:20] = 300  # id above 255 survives
    return write_png(path, label)


def xml_text(squares) -> str:
    regions = "".join(
        f'<Region Id="{i}"><Vertices>'
        + "".join(f'<Vertex X="{x}" Y="{y}"/>' for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)))
        + "</Vertices></Region>"
        for i, (x0, y0, x1, y1) in enumerate(squares, start=1)
    )
    return f'<Annotations><Annotation Id="1"><Regions>{regions}</Regions></Annotation></Annotations>'


def write_xml(path: Path, squares) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(xml_text(squares), encoding="utf-8")
    return path


SQUARES = [(1.5, 1.5, 5.5, 4.5), (10.5, 10.5, 14.5, 18.5), (-3.5, 15.5, 2.5, 30.5)]


def make_shared_layout(root: Path, ids=("b", "a", "c")) -> Path:
    for i, stem in enumerate(ids):
        write_tif(root / "train" / "images" / f"{stem}.tif", seed=i)
        write_label(root / "train" / "instance_labels_bruceyang2012" / f"{stem}.png")
        write_tif(root / "test" / "images" / f"{stem}.tif", seed=10 + i)
        write_xml(root / "test" / "annotations" / f"{stem}.xml", SQUARES[: i + 1])
    return root


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def no_home_cache(tmp_path, monkeypatch):
    """Any default-cache write lands in tmp_path, never in the user's home."""
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "default_cache"))
    return tmp_path / "default_cache"


# ------------------------------------------------------------------------------------------ fake data


def test_train_split_with_label_maps(tmp_path, no_home_cache):
    root = make_shared_layout(tmp_path / "monuseg")
    samples = read_monuseg(root, "train", cache_dir=tmp_path / "cache")
    assert [s.id for s in samples] == ["a", "b", "c"]
    for s in samples:
        assert isinstance(s, Sample) and s.scribble is None
        assert s.image == str(root / "train" / "images" / f"{s.id}.tif")
        assert s.label == str(root / "train" / "instance_labels_bruceyang2012" / f"{s.id}.png")
    assert np.unique(read_instance_label(samples[0].label)).tolist() == [0, 1, 300]
    assert not (tmp_path / "cache").exists()  # label maps need no conversion


def test_test_split_xml_is_converted_once_into_the_cache(tmp_path, no_home_cache):
    root = make_shared_layout(tmp_path / "monuseg")
    source_before = snapshot(root)
    cache_root = tmp_path / "cache"
    samples = read_monuseg(root, "test", cache_dir=cache_root)
    cache = dataset_cache_dir("monuseg_xml", root / "test", cache_root)
    assert [s.id for s in samples] == ["a", "b", "c"]
    n_regions = {"b": 1, "a": 2, "c": 3}  # make_shared_layout writes SQUARES[: i + 1] in ("b", "a", "c") order
    for s in samples:
        assert s.label == str(cache / f"{s.id}.png")
        label = read_instance_label(s.label)
        assert label.shape == (H, W)
        assert np.unique(label[label > 0]).tolist() == list(range(1, n_regions[s.id] + 1))  # one id per <Region>
        with Image.open(s.label) as img:
            assert img.mode.startswith("I")  # 16-bit PNG
    label_a = read_instance_label(samples[0].label)
    assert (label_a[2:5, 2:6] == 1).all() and np.count_nonzero(label_a == 1) == 12
    assert (label_a[11:19, 11:15] == 2).all() and np.count_nonzero(label_a == 2) == 32
    manifest = json.loads((cache / "manifest.json").read_text())
    assert sorted(manifest["entries"]) == ["a", "b", "c"]
    assert manifest["entries"]["c"]["n_regions"] == 3 and manifest["entries"]["c"]["shape"] == [H, W]

    cached = snapshot(cache)
    again = read_monuseg(root, "test", cache_dir=cache_root)
    assert again == samples
    assert snapshot(cache) == cached  # nothing rewritten
    assert snapshot(root) == source_before  # the source is never written
    assert not no_home_cache.exists()


def test_changed_xml_or_missing_png_is_regenerated(tmp_path, no_home_cache):
    root = make_shared_layout(tmp_path / "monuseg")
    cache_root = tmp_path / "cache"
    read_monuseg(root, "test", cache_dir=cache_root)
    cache = dataset_cache_dir("monuseg_xml", root / "test", cache_root)
    before = snapshot(cache)

    xml_a = root / "test" / "annotations" / "a.xml"
    write_xml(xml_a, SQUARES)  # 1 -> 3 regions: different size
    stat = xml_a.stat()
    os.utime(xml_a, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    (cache / "b.png").unlink()
    samples = read_monuseg(root, "test", cache_dir=cache_root)
    after = snapshot(cache)
    assert after[str(cache / "a.png")] != before[str(cache / "a.png")]
    assert after[str(cache / "c.png")] == before[str(cache / "c.png")]
    assert (cache / "b.png").is_file()
    label_a = read_instance_label(samples[0].label)
    assert np.unique(label_a[label_a > 0]).tolist() == [1, 2, 3]

    # same size, only a newer mtime: still regenerated (content may differ)
    os.utime(xml_a, ns=(stat.st_atime_ns, stat.st_mtime_ns + 9_000_000_000))
    mid = snapshot(cache)
    read_monuseg(root, "test", cache_dir=cache_root)
    assert snapshot(cache)[str(cache / "a.png")] != mid[str(cache / "a.png")]


def test_default_cache_root_comes_from_the_environment(tmp_path, no_home_cache):
    root = make_shared_layout(tmp_path / "monuseg")
    samples = read_monuseg(root, "test")
    assert all(Path(s.label).is_relative_to(no_home_cache) for s in samples)


def test_original_release_layouts(tmp_path, no_home_cache):
    root = tmp_path / "release"
    train = root / "MoNuSegTrainingData"
    write_tif(train / "Tissue Images" / "t1.tif")
    write_xml(train / "Annotations" / "t1.xml", SQUARES)
    test = root / "MoNuSegTestData"  # .tif and .xml side by side
    write_tif(test / "s1.tif")
    write_xml(test / "s1.xml", SQUARES[:2])
    cache_root = tmp_path / "cache"
    (t1,) = read_monuseg(root, "train", cache_dir=cache_root)
    (s1,) = read_monuseg(root, "test", cache_dir=cache_root)
    assert t1.id == "t1" and np.unique(read_instance_label(t1.label)).tolist() == [0, 1, 2, 3]
    assert s1.id == "s1" and np.unique(read_instance_label(s1.label)).tolist() == [0, 1, 2]
    assert Path(s1.label).parent != Path(t1.label).parent  # one cache folder per split directory


def test_generic_split_dir_with_tif_label_maps_and_explicit_dirs(tmp_path):
    split = tmp_path / "mine"
    write_tif(split / "images" / "x.tif")
    label = np.zeros((H, W), np.uint16)
    label[4:8, 4:8] = 7
    (split / "labels").mkdir()
    Image.fromarray(label).save(split / "labels" / "x.tif")
    (sample,) = read_monuseg_split(split, cache_dir=tmp_path / "cache")
    assert sample.label == str(split / "labels" / "x.tif")
    assert np.unique(read_instance_label(sample.label)).tolist() == [0, 7]

    other = tmp_path / "elsewhere"
    write_label(other / "x.png")
    (sample,) = read_monuseg_split(split, labels_dir=other, images_dir=split / "images", cache_dir=tmp_path / "c")
    assert sample.label == str(other / "x.png")


def test_label_map_wins_over_xml_in_the_same_split(tmp_path, no_home_cache):
    split = tmp_path / "split"
    write_tif(split / "images" / "x.tif")
    write_label(split / "instance_labels_mine" / "x.png")
    write_xml(split / "annotations" / "x.xml", SQUARES)
    (sample,) = read_monuseg_split(split, cache_dir=tmp_path / "cache")
    assert sample.label == str(split / "instance_labels_mine" / "x.png")


def test_require_labels_false_gives_unlabeled_samples(tmp_path):
    split = tmp_path / "split"
    write_tif(split / "images" / "x.tif")
    (sample,) = read_monuseg_split(split, require_labels=False)
    assert sample.label is None and sample.to_dict() == {"id": "x", "image": str(split / "images" / "x.tif")}


# ---------------------------------------------------------------------------------------------- errors


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="MoNuSeg root directory not found") as info:
        read_monuseg(tmp_path / "nowhere", "train")
    assert info.value.path == str(tmp_path / "nowhere")


def test_missing_split_dir(tmp_path):
    (tmp_path / "root").mkdir()
    with pytest.raises(DataError, match="'test' split directory not found") as info:
        read_monuseg(tmp_path / "root", "test")
    assert info.value.path == str(tmp_path / "root" / "test")


def test_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        read_monuseg(tmp_path, "validation")


def test_missing_images_dir(tmp_path):
    (tmp_path / "root" / "train" / "instance_labels_x").mkdir(parents=True)
    with pytest.raises(DataError, match="image directory not found") as info:
        read_monuseg(tmp_path / "root", "train")
    assert str(info.value).startswith(str(tmp_path / "root" / "train" / "images"))


def test_empty_images_dir(tmp_path):
    images = tmp_path / "root" / "train" / "images"
    images.mkdir(parents=True)
    (images / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"no images \(\*\.tif") as info:
        read_monuseg(tmp_path / "root", "train")
    assert info.value.path == str(images)


def test_image_without_label_names_image_and_expected_path(tmp_path):
    root = make_shared_layout(tmp_path / "monuseg")
    write_tif(root / "train" / "images" / "d.tif")
    with pytest.raises(DataError) as info:
        read_monuseg(root, "train")
    message = str(info.value)
    assert message.startswith(str(root / "train" / "images" / "d.tif"))
    assert str(root / "train" / "instance_labels_bruceyang2012" / "d.png") in message

    write_tif(root / "test" / "images" / "d.tif")
    with pytest.raises(DataError) as info:
        read_monuseg(root, "test", cache_dir=tmp_path / "cache")
    assert info.value.path == str(root / "test" / "images" / "d.tif")
    assert str(root / "test" / "annotations") in str(info.value)


def test_label_size_mismatch_names_both_sizes(tmp_path):
    root = make_shared_layout(tmp_path / "monuseg")
    write_label(root / "train" / "instance_labels_bruceyang2012" / "b.png", height=H + 1, width=W - 2)
    with pytest.raises(DataError) as info:
        read_monuseg(root, "train")
    assert info.value.path == str(root / "train" / "instance_labels_bruceyang2012" / "b.png")
    assert f"{H + 1}x{W - 2}" in str(info.value) and f"{H}x{W}" in str(info.value)
    assert len(read_monuseg(root, "train", check_sizes=False)) == 3


def test_malformed_xml_names_the_xml(tmp_path):
    root = make_shared_layout(tmp_path / "monuseg")
    bad = root / "test" / "annotations" / "b.xml"
    bad.write_text("<Annotations><Region>", encoding="utf-8")
    with pytest.raises(DataError, match="malformed XML") as info:
        read_monuseg(root, "test", cache_dir=tmp_path / "cache")
    assert info.value.path == str(bad)


def test_duplicate_image_ids(tmp_path):
    split = tmp_path / "split"
    write_tif(split / "images" / "x.tif")
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(split / "images" / "x.png")
    with pytest.raises(DataError, match="two images with the id 'x'"):
        read_monuseg_split(split, require_labels=False)


def test_validate_sample_sizes_and_image_size(tmp_path):
    image = write_tif(tmp_path / "i.tif", height=7, width=9)
    assert image_size(image) == (7, 9)
    good = write_label(tmp_path / "good.png", height=7, width=9)
    scribble = write_label(tmp_path / "scribble.png", height=9, width=7)
    validate_sample_sizes([Sample("i", str(image), str(good))])
    with pytest.raises(DataError, match=r"scribble size 9x7 \(HxW\) differs from image size 7x9"):
        validate_sample_sizes([Sample("i", str(image), str(good), str(scribble))])
    with pytest.raises(DataError, match="file not found"):
        image_size(tmp_path / "absent.tif")
    (tmp_path / "junk.tif").write_bytes(b"not a tiff")
    with pytest.raises(DataError, match="unreadable or corrupt image"):
        image_size(tmp_path / "junk.tif")


# ------------------------------------------------------------------------------------------ real data


REGION_TAG = re.compile(rb"<Region[\s/>]")  # not <Regions> nor <RegionAttributeHeaders>


@pytest.fixture(scope="module")
def real_test_read(tmp_path_factory, monuseg_root):
    """Reads the real test split twice into a fresh cache: (samples, first s, second s, mtimes, cache)."""
    root = monuseg_root
    cache_root = tmp_path_factory.mktemp("monuseg_cache")
    start = time.perf_counter()
    samples = read_monuseg(root, "test", cache_dir=cache_root)
    first = time.perf_counter() - start
    cache = dataset_cache_dir("monuseg_xml", root / "test", cache_root)
    written = snapshot(cache)
    start = time.perf_counter()
    again = read_monuseg(root, "test", cache_dir=cache_root)
    second = time.perf_counter() - start
    return root, samples, again, first, second, written, snapshot(cache), cache


@pytest.mark.real_data
def test_real_train_split(monuseg_root):
    root = monuseg_root
    samples = read_monuseg(root, "train", cache_dir=None)  # label maps: nothing to cache
    assert len(samples) == 30
    assert [s.id for s in samples] == sorted(p.stem for p in (root / "train" / "images").glob("*.tif"))
    for s in samples:
        assert Path(s.label).parent == root / "train" / "instance_labels_bruceyang2012"
        assert image_size(s.image) == image_size(s.label) == (1000, 1000)


@pytest.mark.real_data
def test_real_test_split_region_counts_and_shapes(real_test_read):
    root, samples, _, _, _, _, _, cache = real_test_read
    assert len(samples) == 14
    assert [s.id for s in samples] == sorted(p.stem for p in (root / "test" / "annotations").glob("*.xml"))
    total = 0
    for s in samples:
        n_regions = len(REGION_TAG.findall((root / "test" / "annotations" / f"{s.id}.xml").read_bytes()))
        label = read_instance_label(s.label)
        assert Path(s.label).parent == cache
        assert label.shape == image_size(s.image) == (1000, 1000), s.id
        ids = np.unique(label[label > 0])
        assert ids.size == n_regions, s.id
        assert ids.tolist() == list(range(1, n_regions + 1)), s.id
        total += n_regions
    assert total == 6697  # data README
    assert read_array(samples[0].image).shape == (1000, 1000, 3)  # one full decode agrees with the header


@pytest.mark.real_data
def test_real_test_split_second_read_uses_the_cache(real_test_read):
    root, samples, again, first, second, written, after, cache = real_test_read
    assert again == samples
    assert after == written  # same sizes and mtimes: nothing rewritten
    assert sorted(Path(p).name for p in written) == sorted([f"{s.id}.png" for s in samples] + ["manifest.json"])
