"""Synthetic nuclei generator: image/label contract, realism cues, determinism, on-disk caching, errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from monai_scribble.data.image_io import read_array, read_instance_label
from monai_scribble.data.records import Sample
from monai_scribble.data.synthetic import (
    GENERATOR_VERSION,
    MIN_INSTANCE_PIXELS,
    STYLES,
    generate_dataset,
    generate_nuclei_image,
    write_synthetic_dataset,
)

SEEDS = range(6)


def touching_pairs(label: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of distinct ids that are 4-neighbours somewhere (i.e. dilating one by 1 px hits the other)."""
    pairs = set()
    for a, b in ((label[:, 1:], label[:, :-1]), (label[1:], label[:-1])):
        hit = (a > 0) & (b > 0) & (a != b)
        pairs |= {(min(x, y), max(x, y)) for x, y in zip(a[hit].tolist(), b[hit].tolist())}
    return pairs


@pytest.fixture(scope="module")
def examples() -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
    return {
        (style, seed): generate_nuclei_image((256, 256), style, rng=np.random.default_rng(seed))
        for style in STYLES
        for seed in SEEDS
    }


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("shape", [(256, 256), (64, 64), (96, 200)])
def test_image_and_label_contract(style, shape):
    image, label = generate_nuclei_image(shape, style, rng=np.random.default_rng(3))
    assert image.shape == (*shape, 3) and image.dtype == np.uint8
    assert label.shape == shape and label.dtype == np.int32
    n = int(label.max())
    assert n >= 1
    assert np.array_equal(np.unique(label), np.arange(n + 1)), "ids must be 0 and 1..N consecutive"
    assert np.bincount(label.ravel())[1:].min() >= MIN_INSTANCE_PIXELS


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("seed", SEEDS)
def test_instances_are_large_enough_and_some_touch(examples, style, seed):
    image, label = examples[style, seed]
    sizes = np.bincount(label.ravel())[1:]
    assert 10 <= len(sizes) <= 40
    assert sizes.min() >= MIN_INSTANCE_PIXELS
    assert len(touching_pairs(label)) >= 1, "a typical image has nuclei sharing a boundary"


@pytest.mark.parametrize(
    "style, nuclei_brighter",
    [("fluorescence", True), ("brightfield", False)],
)
@pytest.mark.parametrize("seed", SEEDS)
def test_nuclei_contrast_with_background(examples, style, seed, nuclei_brighter):
    image, label = examples[style, seed]
    gray = image.astype(np.float64).mean(-1)
    inside, outside = gray[label > 0].mean(), gray[label == 0].mean()
    assert (inside > outside + 20) if nuclei_brighter else (inside < outside - 20)


@pytest.mark.parametrize("seed", SEEDS)
def test_brightfield_nuclei_are_purple_or_gray_not_green(examples, seed):
    image, label = examples["brightfield", seed]
    r, g, b = (image[..., c][label > 0].mean() for c in range(3))
    assert g <= min(r, b) + 5  # hematoxylin absorbs green most; gray absorbs evenly


@pytest.mark.parametrize("style", STYLES)
def test_uneven_background_and_noise(examples, style):
    image, label = examples[style, 0]
    gray = image.astype(np.float64).mean(-1)
    background = label == 0
    assert gray[background].std() > 1.0  # not a flat background
    # neighbouring background pixels differ: there is pixel noise, not only a smooth field
    horizontal = background[:, 1:] & background[:, :-1]
    assert np.abs(np.diff(gray, axis=1))[horizontal].mean() > 0.3


@pytest.mark.parametrize("style", STYLES)
def test_same_rng_seed_same_image_different_seed_different(style):
    a = generate_nuclei_image((128, 128), style, rng=np.random.default_rng(7))
    b = generate_nuclei_image((128, 128), style, rng=np.random.default_rng(7))
    c = generate_nuclei_image((128, 128), style, rng=np.random.default_rng(8))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1]) and not np.array_equal(a[0], c[0])


@pytest.mark.parametrize(
    "num_nuclei, radius_range, max_n",
    [(1, (5, 8), 1), ((3, 5), (5, 16), 5), ((30, 40), (4, 6), 40)],
)
def test_num_nuclei_and_radius_range_are_honoured(num_nuclei, radius_range, max_n):
    _, label = generate_nuclei_image((128, 128), rng=np.random.default_rng(0), num_nuclei=num_nuclei,
                                     radius_range=radius_range)
    assert 1 <= label.max() <= max_n
    for ys, xs in (np.nonzero(label == k) for k in range(1, label.max() + 1)):
        extent = max(np.ptp(ys), np.ptp(xs)) + 1
        assert extent <= 2 * radius_range[1] * 1.2 + 2  # semi-major axis bound, plus outline wobble


def test_dataset_ids_styles_and_index_independence():
    small = generate_dataset(2, seed=5, shape=(96, 96))
    large = generate_dataset(4, seed=5, shape=(96, 96))
    assert [i for i, _, _ in large] == ["synth_000", "synth_001", "synth_002", "synth_003"]
    for (id_a, image_a, label_a), (id_b, image_b, label_b) in zip(small, large):
        assert id_a == id_b and np.array_equal(image_a, image_b) and np.array_equal(label_a, label_b)
    # styles alternate: fluorescence (dark background) then brightfield (bright background)
    backgrounds = [image[label == 0].mean() for _, image, label in large]
    assert backgrounds[0] < 100 < backgrounds[1] and backgrounds[2] < 100 < backgrounds[3]
    only_bf = generate_dataset(2, seed=5, shape=(96, 96), styles=("brightfield",))
    assert all(image[label == 0].mean() > 100 for _, image, label in only_bf)
    other_seed = generate_dataset(1, seed=6, shape=(96, 96))
    assert not np.array_equal(other_seed[0][2], small[0][2])


def _files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_write_then_reuse_without_rewriting(tmp_path):
    root = tmp_path / "synth"
    samples = write_synthetic_dataset(root, num_images=3, seed=1, shape=(96, 96))
    assert [s.id for s in samples] == ["synth_000", "synth_001", "synth_002"]
    assert all(isinstance(s, Sample) and s.scribble is None for s in samples)
    for s in samples:
        image, label = read_array(s.image), read_instance_label(s.label)
        assert image.shape == (96, 96, 3) and image.dtype == np.uint8
        assert read_array(s.label).dtype == np.uint16
        assert np.array_equal(np.unique(label), np.arange(label.max() + 1))
    _, image0, label0 = generate_dataset(1, seed=1, shape=(96, 96))[0]
    assert np.array_equal(read_array(samples[0].image), image0)
    assert np.array_equal(read_instance_label(samples[0].label), label0)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["version"] == GENERATOR_VERSION
    assert (manifest["num_images"], manifest["seed"], manifest["shape"]) == (3, 1, [96, 96])

    files = _files(root)
    assert len(files) == 7 and not any(p.name.startswith(".") for p in files)  # no temp files left
    past = 1_000_000_000
    for p in files:
        os.utime(p, ns=(past, past))
    again = write_synthetic_dataset(root, num_images=3, seed=1, shape=(96, 96))
    assert again == samples
    assert all(p.stat().st_mtime_ns == past for p in files), "reuse must not rewrite any file"

    # a missing file or changed parameters regenerate
    os.unlink(samples[1].label)
    write_synthetic_dataset(root, num_images=3, seed=1, shape=(96, 96))
    assert os.path.isfile(samples[1].label)
    fewer = write_synthetic_dataset(root, num_images=2, seed=1, shape=(96, 96))
    assert len(fewer) == 2 and not os.path.exists(samples[2].image) and not os.path.exists(samples[2].label)


@pytest.mark.parametrize("seed_b, identical", [(4, True), (5, False)])
def test_files_are_byte_identical_for_the_same_seed(tmp_path, seed_b, identical):
    a = write_synthetic_dataset(tmp_path / "a", num_images=2, seed=4, shape=(64, 64))
    b = write_synthetic_dataset(tmp_path / "b", num_images=2, seed=seed_b, shape=(64, 64))
    for sa, sb in zip(a, b):
        for pa, pb in ((sa.image, sb.image), (sa.label, sb.label)):
            with open(pa, "rb") as fa, open(pb, "rb") as fb:
                assert (fa.read() == fb.read()) is identical


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: generate_nuclei_image((32, 256)), r"\(32, 256\)"),
        (lambda: generate_nuclei_image((256,)), r"\(256,\)"),
        (lambda: generate_nuclei_image((64.5, 64)), r"64\.5"),
        (lambda: generate_nuclei_image(style="histology"), "'histology'"),
        (lambda: generate_nuclei_image(num_nuclei=0), "num_nuclei.*0"),
        (lambda: generate_nuclei_image(num_nuclei=(9, 3)), r"\(9, 3\)"),
        (lambda: generate_nuclei_image(radius_range=(1, 5)), r"\(1, 5\)"),
        (lambda: generate_nuclei_image((64, 64), radius_range=(5, 30)), r"\(5, 30\)"),
        (lambda: generate_nuclei_image(rng="seed"), "'seed'"),
        (lambda: generate_dataset(0, seed=0), "num_images.*0"),
        (lambda: generate_dataset(2, seed=-1), "seed.*-1"),
        (lambda: generate_dataset(2, seed=0, styles=("fluorescence", "phase")), "'phase'"),
        (lambda: generate_dataset(2, seed=0, styles=()), "styles"),
        (lambda: write_synthetic_dataset("unused", num_images=0), "num_images.*0"),
        (lambda: write_synthetic_dataset("unused", shape=(63, 128)), r"\(63, 128\)"),
        (lambda: write_synthetic_dataset("unused", num_images=2.5), r"2\.5"),
    ],
)
def test_bad_arguments_raise_value_error_quoting_the_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()
