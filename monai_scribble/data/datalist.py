"""Prepare a run's datalist: read a dataset, split it, synthesise scribbles, write ``datalist.json``.

This is what the bundle's ``prepare`` id calls::

    python -m monai.bundle run prepare --config_file bundles/scribble_cell_segmentation/configs/train.json \\
        --dataset dsb_fluo --dataset_dir ../shared/data/dsb2018/stage1_train --output_dir OUT

``OUT/datalist.json`` holds ``training`` / ``validation`` / ``test`` lists of items
``{"id", "image", "scribble", "label"}`` (absolute paths; ``label`` only where a label map exists) and
the parameters that produced it. Synthesised scribbles go to
``OUT/scribbles/<dataset>_ratio<r>_seed<s>_<format>/<id>.png``; they are written once and reused by
later calls with the same dataset, ratio, seed and format, so a run is reproducible from its datalist.

Scribbles with no foreground or no background pixel are **skipped with a warning** and listed under
``"skipped"`` in the datalist (with the reason), never silently used or silently dropped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import ignite.distributed as idist
import numpy as np

from monai_scribble.data.image_io import read_array, read_instance_label
from monai_scribble.data.records import Sample
from monai_scribble.data.scribbles import (
    ScribbleFormat,
    image_rng,
    read_scribble,
    scribble_class_counts,
    synthesize_scribble,
    write_scribble,
)
from monai_scribble.data.splits import split_ids
from monai_scribble.data.strokes import synthesize_strokes
from monai_scribble.errors import ArgumentError, DataError
from monai_scribble.utils.atomic import atomic_write

__all__ = ["DATASETS", "DSB_MODALITIES", "LABEL_KINDS", "SCRIBBLE_STYLES", "apply_split_file", "as_scribble_item", "check_label_kind", "check_samples", "as_scribble_items", "labelled_items", "prepare_datalist", "unscribbled_items", "load_split_samples", "synthesize_scribbles", "write_split_file"]

logger = logging.getLogger(__name__)

DSB_MODALITIES: dict[str, str] = {"dsb_fluo": "fluorescence", "dsb_bf": "brightfield", "dsb_histo": "histology"}
DATASETS: tuple[str, ...] = ("synthetic", "dsb_fluo", "dsb_bf", "dsb_histo", "monuseg", "folder")
SPLIT_KEYS: tuple[str, str, str] = ("training", "validation", "test")
SCRIBBLE_CACHE_VERSION = 1
NUM_SYNTHETIC_IMAGES = 40  # the bundle's num_synthetic_images default: the CPU demo's data
SCRIBBLE_STYLES = {"skeleton": synthesize_scribble, "strokes": synthesize_strokes}
"""``--scribble_style`` -> the generator of the scribbles synthesised from label maps: the S2L skeletons
(:func:`~monai_scribble.data.scribbles.synthesize_scribble`) or hand-drawn-like strokes
(:func:`~monai_scribble.data.strokes.synthesize_strokes`)."""
LABEL_KINDS: tuple[str, ...] = ("scribble", "scribble_zero_unlabeled")
"""``scribble``: our datalist items ``{id, image, scribble[, label]}``; ``scribble_zero_unlabeled``: MONAI Label
items ``{image, label}`` whose ``label`` is a scribble drawn in MONAI Label (0 unlabeled, 1 background, 2 nucleus)."""


def check_label_kind(label_kind: str) -> str:
    """``label_kind`` if it is one of :data:`LABEL_KINDS`, else ``ValueError`` naming the choices."""
    if label_kind not in LABEL_KINDS:
        raise ValueError(f"unknown label_kind '{label_kind}'; choose one of {', '.join(LABEL_KINDS)}")
    return label_kind


def as_scribble_item(item: dict, label_kind: str = "scribble") -> dict:
    """One datalist item in our layout: for ``scribble_zero_unlabeled`` the ``label`` becomes the ``scribble``
    (there is no full mask) and the ``id`` is the image's file stem.

    Raises:
        ValueError: unknown ``label_kind``, or a MONAI Label item without ``image`` or ``label``.
    """
    if check_label_kind(label_kind) == "scribble" or "scribble" in item:
        return dict(item)
    if not item.get("image") or not item.get("label"):
        raise ValueError(f"label_kind '{label_kind}' needs items with 'image' and 'label' (the scribble), got {sorted(item)}")
    from monai_scribble.data.image_io import file_stem

    converted = {k: v for k, v in item.items() if k != "label"}
    converted["scribble"] = item["label"]
    converted.setdefault("id", file_stem(item["image"]))
    return converted


def as_scribble_items(items: Sequence[dict] | None, label_kind: str = "scribble") -> list[dict]:
    """:func:`as_scribble_item` of every item (``None`` -> ``[]``)."""
    return [as_scribble_item(item, label_kind) for item in items or []]


def load_split_samples(
    dataset: str,
    dataset_dir: str | os.PathLike | None,
    output_dir: str | os.PathLike,
    fold: int = 0,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    num_synthetic: int = NUM_SYNTHETIC_IMAGES,
) -> dict[str, list[Sample]]:
    """Read ``dataset`` and split it into ``training`` / ``validation`` / ``test`` samples.

    Args:
        dataset: one of :data:`DATASETS`.
        dataset_dir: the dataset folder (DSB: ``stage1_train``; MoNuSeg: the folder holding ``train/``
            and ``test/``; folder: the folder holding ``images/``...). Ignored for ``synthetic``.
        output_dir: run folder; synthetic images are generated into ``<output_dir>/synthetic``.
        fold: validation fold (DSB, synthetic, folder: 0-3 with fold 4 the test set; MoNuSeg: 0-4).
        seed: seed of the splits (and of the synthetic images).
        cache_dir: cache root for converted label maps.
        num_synthetic: number of synthetic images.

    Returns:
        ``{"training", "validation", "test"}`` sample lists; a folder dataset adds ``"unscribbled"``, its images with
        neither scribble nor label (in no split).
    """
    if dataset not in DATASETS:
        raise ArgumentError("dataset", f"unknown value {dataset!r}", f"choose one of {', '.join(DATASETS)}")
    if dataset != "synthetic" and not dataset_dir:
        raise ArgumentError("dataset_dir", f"dataset '{dataset}' needs --dataset_dir (the folder that holds it)")

    def by_split(samples: Sequence[Sample], test_fold: int | None) -> dict[str, list[Sample]]:
        index = {s.id: s for s in samples}
        try:
            ids = split_ids(list(index), fold=fold, seed=seed, test_fold=test_fold)
        except ValueError as err:
            raise ArgumentError("fold", str(err)) from err
        return {key: [index[i] for i in ids[key]] for key in SPLIT_KEYS}

    if dataset == "synthetic":
        from monai_scribble.data.synthetic import write_synthetic_dataset

        samples = write_synthetic_dataset(Path(output_dir) / "synthetic", num_images=num_synthetic, seed=seed)
        return by_split(samples, test_fold=4)
    if dataset in DSB_MODALITIES:
        from monai_scribble.data.dsb2018 import read_dsb2018
        from monai_scribble.data.splits import cluster_modalities

        infos = read_dsb2018(dataset_dir, cache_dir=cache_dir, progress=True)
        modalities = cluster_modalities(np.array([info.mean_hsv for info in infos]), seed=seed)
        wanted = DSB_MODALITIES[dataset]
        return by_split([i.sample for i, m in zip(infos, modalities) if m == wanted], test_fold=4)
    if dataset == "monuseg":
        from monai_scribble.data.monuseg import read_monuseg

        split = by_split(read_monuseg(dataset_dir, "train", cache_dir=cache_dir), test_fold=None)
        split["test"] = read_monuseg(dataset_dir, "test", cache_dir=cache_dir)
        return split
    from monai_scribble.data.folder import is_annotated, read_folder

    samples = read_folder(dataset_dir)
    annotated = [s for s in samples if is_annotated(s)]
    split = by_split(annotated, test_fold=4 if all(s.label for s in annotated) else None)
    split["unscribbled"] = [s for s in samples if not is_annotated(s)]  # ranked by scribble_next.csv, in no split
    return split


def apply_split_file(split: dict[str, list[Sample]], split_file: str | os.PathLike) -> dict[str, list[Sample]]:
    """Re-split the samples of ``split`` by the id lists of a published split file.

    The file (see :func:`write_split_file`) holds ``{"training": [ids], "validation": [ids], "test": [ids]}``
    (plus provenance fields). Every listed id must be a sample of the dataset.

    Raises:
        DataError: unreadable file, a missing key, or ids the dataset does not have (listed).
    """
    path = Path(split_file)
    try:
        published = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(path, f"unreadable split file ({type(err).__name__}: {err})") from err
    missing_keys = [key for key in SPLIT_KEYS if not isinstance(published.get(key), list)]
    if missing_keys:
        raise DataError(path, f"split file has no id list for {missing_keys}")
    index = {sample.id: sample for key in SPLIT_KEYS for sample in split[key]}
    unknown = sorted({i for key in SPLIT_KEYS for i in published[key]} - set(index))
    if unknown:
        raise DataError(path, f"{len(unknown)} ids of the split file are not in the dataset: {unknown[:5]}")
    return {key: [index[i] for i in published[key]] for key in SPLIT_KEYS}


def write_split_file(datalist_path: str | os.PathLike, split_file: str | os.PathLike) -> Path:
    """Publish the ids (only ids: no paths, no data) of each split of a datalist, for :func:`apply_split_file`."""
    datalist = json.loads(Path(datalist_path).read_text())
    published = {k: datalist.get(k) for k in ("dataset", "fold", "seed", "scribble_ratio")}
    published.update({key: [item["id"] for item in datalist[key]] for key in SPLIT_KEYS})
    published["skipped"] = [{k: v for k, v in item.items() if k in ("id", "split", "reason")} for item in datalist.get("skipped", [])]
    text = json.dumps(published, indent=1) + "\n"
    return atomic_write(split_file, lambda tmp: Path(tmp).write_text(text))


def synthesize_scribbles(
    samples: Sequence[Sample],
    scribble_dir: str | os.PathLike,
    ratio: float,
    seed: int,
    scribble_format: ScribbleFormat | str = ScribbleFormat.S2L,
    progress: bool = False,
    style: str = "skeleton",
) -> dict[str, Path]:
    """Write one synthesised scribble per sample (from its label map) unless it already exists.

    The scribble of image ``id`` depends only on its label map, ``ratio``, ``seed`` and ``id``
    (see :func:`~monai_scribble.data.scribbles.image_rng`), so reruns are byte-identical.
    A ``manifest.json`` records the parameters; a folder made with other parameters is an error.

    Returns:
        ``{id: scribble path}``.
    """
    scribble_format = ScribbleFormat(scribble_format)
    folder = Path(scribble_dir)
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / "manifest.json"
    synthesize = SCRIBBLE_STYLES[style]
    manifest = {"version": SCRIBBLE_CACHE_VERSION, "ratio": ratio, "seed": seed, "format": scribble_format.value,
                **({"style": style} if style != "skeleton" else {})}  # skeleton folders keep the manifest they had  # fmt: skip
    if manifest_path.is_file():
        existing = json.loads(manifest_path.read_text())
        if existing != manifest:
            raise DataError(manifest_path, f"scribbles here were made with {existing}, not {manifest}; use another output_dir")
    else:
        atomic_write(manifest_path, lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=1)))
    paths: dict[str, Path] = {}
    todo = [s for s in samples if not (folder / f"{s.id}.png").is_file()]
    iterator = todo
    if progress and todo:
        from tqdm import tqdm

        iterator = tqdm(todo, desc="scribbles", unit="image", disable=None)  # silent when not a terminal
    for sample in iterator:
        if sample.label is None:
            raise DataError(sample.image, "no scribble and no label map to synthesise one from")
        scribble = synthesize(read_instance_label(sample.label), ratio=ratio, rng=image_rng(seed, sample.id))
        write_scribble(folder / f"{sample.id}.png", scribble, scribble_format)
    for sample in samples:
        paths[sample.id] = folder / f"{sample.id}.png"
    return paths


def check_samples(samples: Sequence[Sample], scribble_format: ScribbleFormat | str, progress: bool = False) -> dict[str, np.ndarray]:
    """Decode every image, label map and given scribble of ``samples`` and check that their sizes agree.

    Run by :func:`prepare_datalist` before anything is written, so a corrupt, empty or non-image file, or
    a scribble or label map of another size than its image, is reported at once instead of at the first
    batch or validation, hours later.

    Returns:
        ``{id: scribble}`` (S2L values) of the samples that come with a scribble file.

    Raises:
        DataError: naming the first bad file and the problem, and how many other files are bad.
    """
    problems: list[DataError] = []
    scribbles: dict[str, np.ndarray] = {}
    iterator = samples
    if progress and samples:
        from tqdm import tqdm

        iterator = tqdm(samples, desc="checking images", unit="image", disable=None)
    for sample in iterator:
        try:
            height, width = read_array(sample.image).shape[:2]
            others = []
            if sample.scribble:
                scribbles[sample.id] = read_scribble(sample.scribble, scribble_format)
                others.append(("scribble", sample.scribble, scribbles[sample.id].shape))
            if sample.label:
                others.append(("label map", sample.label, read_instance_label(sample.label).shape))
            for kind, path, shape in others:
                if tuple(shape[:2]) != (height, width):
                    raise DataError(path, f"{kind} is {shape[0]}x{shape[1]} pixels but its image {sample.image} is {height}x{width}; "
                                          "they must have the same size")  # fmt: skip
        except DataError as err:
            problems.append(err)
    if problems:
        more = f" ({len(problems) - 1} more bad files, e.g. {', '.join(e.path for e in problems[1:4])})" if len(problems) > 1 else ""
        raise DataError(problems[0].path, f"{problems[0].problem}; fix or remove it and run again{more}")
    return scribbles


def prepare_datalist(
    dataset: str = "synthetic",
    dataset_dir: str | os.PathLike | None = None,
    output_dir: str | os.PathLike = "output",
    fold: int = 0,
    seed: int = 0,
    scribble_ratio: float = 0.3,
    scribble_format: ScribbleFormat | str = ScribbleFormat.S2L,
    cache_dir: str | os.PathLike | None = None,
    num_synthetic: int = NUM_SYNTHETIC_IMAGES,
    split_file: str | os.PathLike | None = None,
    scribbled_ids: str | os.PathLike | None = None,
    scribble_style: str = "skeleton",
) -> Path:
    """Read, split, check, synthesise scribbles and write ``<output_dir>/datalist.json``.

    Every image, label map and given scribble is decoded and size-checked first (:func:`check_samples`).
    Scribbles given by the dataset (folder datasets) are read in ``scribble_format``; missing ones are
    synthesised from label maps at ``scribble_ratio`` with ``seed``, in ``scribble_style`` (:data:`SCRIBBLE_STYLES`:
    ``skeleton``, the S2L skeletons, or ``strokes``, short hand-drawn-like strokes). With ``split_file`` (a published
    split, :func:`write_split_file`) the id lists of that file are used instead of the seeded split. With
    ``scribbled_ids`` (a file of training image ids, one per line) only those training images keep their
    scribbles; the others are listed under ``"unscribbled"`` (``id``, ``image``, ``label`` if any) for
    ``scribble_next.csv`` to rank, not trained on (README: Scribble in rounds). A folder dataset's images with
    neither scribble nor label are listed there too.

    Under data-parallel training rank 0 prepares first; the other ranks then find its generated files and
    write the same datalist.

    Returns:
        The path of the written datalist.

    Raises:
        ArgumentError: unknown dataset, bad fold, ratio or format.
        DataError: unreadable or invalid data (the message names the file), or no training image left.
    """
    from monai_scribble.data.arguments import check_prepare_arguments

    scribble_format = str(getattr(scribble_format, "value", scribble_format))
    check_prepare_arguments(dataset=dataset, dataset_dir=dataset_dir, output_dir=output_dir, fold=fold, seed=seed, scribble_ratio=scribble_ratio,
                            scribble_format=scribble_format, cache_dir=cache_dir, num_synthetic=num_synthetic, split_file=split_file,
                            scribbled_ids=scribbled_ids, scribble_style=scribble_style)  # fmt: skip
    with idist.one_rank_first(rank=0):
        return _write_datalist(dataset, dataset_dir, output_dir, fold, seed, scribble_ratio, scribble_format, cache_dir, num_synthetic, split_file,
                               scribbled_ids, scribble_style)  # fmt: skip


def _write_datalist(
    dataset: str, dataset_dir: str | os.PathLike | None, output_dir: str | os.PathLike, fold: int, seed: int, scribble_ratio: float,
    scribble_format: str, cache_dir: str | os.PathLike | None, num_synthetic: int, split_file: str | os.PathLike | None,
    scribbled_ids: str | os.PathLike | None = None, scribble_style: str = "skeleton",
) -> Path:  # fmt: skip
    """:func:`prepare_datalist` after its arguments were checked (every rank; rank 0 first)."""
    scribble_format = ScribbleFormat(scribble_format)
    output = Path(output_dir).resolve()
    split = load_split_samples(dataset, dataset_dir, output, fold=fold, seed=seed, cache_dir=cache_dir, num_synthetic=num_synthetic)
    unscribbled: list[Sample] = split.pop("unscribbled", [])
    if split_file:
        split = apply_split_file(split, split_file)
    if scribbled_ids:
        from monai_scribble.data.arguments import read_id_list

        keep = read_id_list(scribbled_ids, "scribbled_ids")
        unknown = sorted(set(keep) - {s.id for s in split["training"]})
        if unknown:
            raise DataError(scribbled_ids, f"{len(unknown)} id(s) are not training images of this split, e.g. {unknown[:3]}; "
                                           "list ids of the training split (datalist.json 'training')")  # fmt: skip
        unscribbled += [s for s in split["training"] if s.id not in set(keep)]
        split = {**split, "training": [s for s in split["training"] if s.id in set(keep)]}
    all_samples = [s for key in SPLIT_KEYS for s in split[key]]
    if not all_samples:
        raise DataError(dataset_dir or output, f"dataset '{dataset}' has no images")
    given = check_samples(all_samples, scribble_format, progress=True)

    ratio_tag = f"{float(scribble_ratio):g}"
    style_tag = "" if scribble_style == "skeleton" else f"_{scribble_style}"
    scribble_dir = output / "scribbles" / f"{dataset}_ratio{ratio_tag}_seed{seed}_{scribble_format.value}{style_tag}"
    to_synthesize = [s for s in all_samples if s.scribble is None]
    synthesized = (synthesize_scribbles(to_synthesize, scribble_dir, float(scribble_ratio), seed, scribble_format, progress=True, style=scribble_style)
                   if to_synthesize else {})  # fmt: skip

    datalist: dict = {
        "dataset": dataset,
        "dataset_dir": str(Path(dataset_dir).resolve()) if dataset_dir else None,
        "fold": fold,
        "seed": seed,
        "scribble_ratio": float(scribble_ratio),
        "scribble_format": scribble_format.value,
        "scribble_style": scribble_style,
        "split_file": str(Path(split_file).resolve()) if split_file else None,
        "scribbled_ids": str(Path(scribbled_ids).resolve()) if scribbled_ids else None,
        "skipped": [],
        "unscribbled": [{"id": s.id, "image": str(Path(s.image).resolve()), **({"label": str(Path(s.label).resolve())} if s.label else {})}
                        for s in unscribbled],
    }  # fmt: skip
    for key in SPLIT_KEYS:
        items = []
        for sample in split[key]:
            scribble_path = Path(sample.scribble) if sample.scribble else synthesized[sample.id]
            scribble = given[sample.id] if sample.id in given else read_scribble(scribble_path, scribble_format)
            num_bg, num_fg = scribble_class_counts(scribble)
            if num_fg == 0 or num_bg == 0:
                reason = f"scribble has no {'foreground' if num_fg == 0 else 'background'} pixel"
                logger.warning("skipping %s (%s): %s", sample.id, scribble_path, reason)
                datalist["skipped"].append({"id": sample.id, "split": key, "scribble": str(scribble_path), "reason": reason})
                continue
            item = {"id": sample.id, "image": str(Path(sample.image).resolve()), "scribble": str(scribble_path.resolve())}
            if sample.label:
                item["label"] = str(Path(sample.label).resolve())
            items.append(item)
        datalist[key] = items
    if not datalist["training"]:
        skipped = [s for s in datalist["skipped"] if s["split"] == "training"]
        detail = f"all {len(skipped)} were skipped, e.g. {skipped[0]['scribble']}: {skipped[0]['reason']}" if skipped else "the split is empty"
        raise DataError(dataset_dir or output, f"no training image left: {detail}; a scribble needs at least one nucleus and one "
                                               "background pixel (check --scribble_format)")  # fmt: skip
    path = output / "datalist.json"
    text = json.dumps(datalist, indent=1)
    if not path.is_file() or path.read_text() != text:  # a resumed run's unchanged datalist is not rewritten
        atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    counts = {key: len(datalist[key]) for key in SPLIT_KEYS}
    logger.info("wrote %s: %s, %d skipped", path, counts, len(datalist["skipped"]))
    return path


def unscribbled_items(datalist_path: str | os.PathLike) -> list[dict]:
    """The images ``prepare`` listed as ``datalist["unscribbled"]``: training-split images a ``--scribbled_ids`` run left
    without scribbles and a folder dataset's images with neither scribble nor label (ranked, not trained on)."""
    return list(json.loads(Path(datalist_path).read_text()).get("unscribbled", []))


def labelled_items(datalist_path, split: str = "test") -> list[dict]:
    """Items of ``split`` in the datalist that ``prepare`` wrote, each with a label map (evaluation needs full masks).

    Raises:
        ArgumentError: unknown split.
        DataError: no datalist file, an empty split, or items without ``label`` (listed by id).
    """
    from monai.data import load_decathlon_datalist

    if split not in ("training", "validation", "test"):
        raise ArgumentError("split", f"unknown value {split!r}", "choose training, validation or test")
    if not Path(datalist_path).is_file():
        raise DataError(datalist_path, "no datalist here: evaluate the --output_dir of a training run (or run prepare into it "
                                       "first), or pass --datalist <that run's output_dir>/datalist.json")
    items = load_decathlon_datalist(str(datalist_path), data_list_key=split)
    if not items:
        raise DataError(datalist_path, f"the '{split}' split is empty; evaluate another --split")
    unlabelled = [str(item.get("id")) for item in items if not item.get("label")]
    if unlabelled:
        raise DataError(datalist_path, f"evaluation needs label maps, but {len(unlabelled)} '{split}' images have none: {unlabelled[:5]}; "
                                       "add them under labels/ or evaluate a split that has them")
    return items
