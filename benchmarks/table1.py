"""Table-1 harness: prepare -> train -> evaluate for every (dataset, method, fold) cell, beside the paper.

Usage::

    python benchmarks/table1.py --profile cpu --datasets dsb_bf monuseg --methods supervised s2l s2l_r1r4 \
        --folds 0 [--data_root ../shared/data] [--seeds 0 1] --out runs/table1_cpu

Each cell runs the bundle's own commands in a subprocess (``training`` with train.json, then
``evaluating`` with train.json + evaluate.json on the test split, model selected by validation IoU as
in the paper) in ``<out>/<dataset>_<method>_fold<k>_seed<s>/``. A finished cell (``record.json`` present)
is not rerun; an interrupted one resumes from its training checkpoint. Every cell is also evaluated with
the watershed split of touching nuclei (``<cell>/watershed/``; a finished cell from before that column gets it
when its model is still there).

Ablations from one warm-up: the warm-up does not depend on the contrastive terms, so an s2l_r1r4 cell keeps a
copy of itself at its end-of-warm-up checkpoint (``<cell>/warmup/``), and ``--warmup_from <that cell>`` starts new
S2L, +R1 and +R4 cells (and variants) there: main stages compared from one warm-up on one machine, each for two
thirds of a cell's time. ``--variant NAME --set ID=VALUE ...`` trains and evaluates cells with bundle overrides
(an option against the authors' defaults) in their own folders, ``<dataset>_<method>-<NAME>_fold<k>_seed<s>``;
they are listed per cell, not in Table 1. ``--publish`` merges the records into the committed
``benchmarks/results/`` files (a rerun cell replaces its record) and copies each cell's
curves to ``docs/images/table1_<profile>/``; rerunning a finished grid with it only publishes.

Splits: the ids of every split used are published in ``bundles/scribble_cell_segmentation/configs/splits/``
(``<dataset>_seed<s>_fold<k>.json``). When such a file exists the cell uses it (``--split_file``); when
not, the cell's seeded split is written there after its first ``prepare``.

Writes ``<out>/results.json`` (one record per cell: all metric means and stds, dataset-level IoU, train
and evaluation seconds, schedule, profile, seed, git commit) and ``<out>/results.md`` (our mDice-legacy /
IoU beside the paper's Table 1, and the other metrics). Prints the path of results.json as the last line.

Profiles (``select_by iou``, bundle defaults elsewhere):

- ``full``: the authors' schedule for a GPU: 1000 epochs, warm-up 100, EMA every 5 epochs, batch
  min(30, training images) (``auto``), crop 256, validation every epoch, EMA bias correction off.
- ``cpu``: the same regime shortened for a CPU (docs/method.md#cpu-protocol): 300 epochs (one iteration
  each on dsb_bf and monuseg), warm-up 100, EMA every 5 epochs (60 refreshes), batch ``auto``, crop 256,
  validation every 10 epochs, a training checkpoint every 10 epochs. Measured with native bf16 and one
  torch thread beside other work: dsb_bf supervised 1152 s of training; fp32 on a 2-core AVX2 CPU, 2 threads:
  129 s per 10 dsb_bf warm-up epochs (about 65 min a cell).
- ``cpu-budget``: the old 10-minute smoke test (16-32 epochs, batch 4, EMA bias correction on): the
  pipeline end to end, not the method.

Cells are named ``<dataset>_<method>_fold<k>_seed<s>``; ``--seeds`` runs one cell per seed, each on the
published split of seed 0 (the same test images), with its own scribbles, initialisation and sampling.
Each record also holds the CPU (model, native bf16 or not, torch threads), the training dynamics of
:func:`monai_scribble.visualize.training_summary`, ``curves.png`` and the command of the cell.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLE = REPO_ROOT / "bundles" / "scribble_cell_segmentation"
TRAIN = BUNDLE / "configs" / "train.json"
EVALUATE = BUNDLE / "configs" / "evaluate.json"
DATASET_PRESETS = BUNDLE / "configs" / "datasets"
SPLITS = BUNDLE / "configs" / "splits"

DATASET_DIRS = {"dsb_bf": "dsb2018/stage1_train", "dsb_fluo": "dsb2018/stage1_train", "dsb_histo": "dsb2018/stage1_train", "monuseg": "monuseg"}
METHODS = ("supervised", "s2l", "s2l_r1", "s2l_r4", "s2l_r1r4")
SPLIT_SEED = 0
"""Every cell uses the published split of seed 0; a cell's ``--seeds`` value changes its scribbles, initialisation,
augmentation and sampling, not its training / validation / test images."""

PROFILES: dict[str, dict[str, dict]] = {
    "full": {
        "*": {"max_epochs": 1000, "warmup_epochs": 100, "ema_period": 5, "batch_size": "auto", "crop_size": 256, "val_interval": 1,
              "ema_bias_correction": False},
    },
    "cpu": {
        "*": {"max_epochs": 300, "warmup_epochs": 100, "ema_period": 5, "batch_size": "auto", "crop_size": 256, "val_interval": 10,
              "checkpoint_interval": 10, "ema_bias_correction": False},
        "dsb_fluo": {"train_subset": 60},  # 60 of its 327 training images (two iterations per epoch), seeded; not run yet
    },
    "cpu-budget": {
        "*": {"batch_size": 4, "crop_size": 256, "ema_bias_correction": True},
        "dsb_bf": {"max_epochs": 32, "warmup_epochs": 16, "ema_period": 4, "val_interval": 8},
        "dsb_histo": {"max_epochs": 16, "warmup_epochs": 8, "ema_period": 4, "val_interval": 8},
        "dsb_fluo": {"max_epochs": 4, "warmup_epochs": 2, "ema_period": 1, "val_interval": 2},
        "monuseg": {"max_epochs": 16, "warmup_epochs": 8, "ema_period": 4, "val_interval": 8},
    },
}

PAPER_TABLE1: dict[str, dict[str, tuple[float, float]]] = {
    # method -> dataset -> (mDice, IoU), Oh, Lee & Jeong, ISBI 2022, Table 1
    "s2l": {"dsb_bf": (0.6980, 0.8108), "dsb_fluo": (0.8235, 0.8419), "monuseg": (0.7098, 0.6586)},
    "s2l_r1": {"dsb_bf": (0.7068, 0.8153), "dsb_fluo": (0.8267, 0.8565), "monuseg": (0.7165, 0.6715)},
    "s2l_r4": {"dsb_bf": (0.7078, 0.8292), "dsb_fluo": (0.8234, 0.8505), "monuseg": (0.7205, 0.6603)},
    "s2l_r1r4": {"dsb_bf": (0.7199, 0.8368), "dsb_fluo": (0.8268, 0.8570), "monuseg": (0.7128, 0.6639)},
    "supervised": {"dsb_bf": (0.7305, 0.8665), "dsb_fluo": (0.8204, 0.8790), "monuseg": (0.7646, 0.6867)},
}


def schedule(profile: str, dataset: str) -> dict:
    """Bundle overrides of ``profile`` for ``dataset``."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile '{profile}'; choose one of {', '.join(PROFILES)}")
    return {**PROFILES[profile]["*"], **PROFILES[profile].get(dataset, {})}


def convergence(epochs: Sequence[int], values: Sequence[float], max_epochs: int, tolerance: float = 0.01) -> dict:
    """Whether a run converged: the best validation value of its last quarter is within ``tolerance`` of its best.

    Args:
        epochs: the epochs at which validation ran.
        values: the validation values (e.g. IoU) at those epochs.
        max_epochs: the run's length; the last quarter is ``epoch > 0.75 * max_epochs``.
        tolerance: allowed gap.

    Returns:
        ``{"converged", "best", "best_epoch", "best_last_quarter"}``; a run without a validation in its last
        quarter is not called converged (``best_last_quarter`` is ``None``).
    """
    curve = [(int(e), float(v)) for e, v in zip(epochs, values) if not math.isnan(float(v))]
    if not curve:
        return {"converged": False, "best": None, "best_epoch": None, "best_last_quarter": None}
    best_epoch, best = max(curve, key=lambda point: (point[1], -point[0]))
    last = [v for e, v in curve if e > 0.75 * max_epochs]
    best_last = max(last) if last else None
    converged = best_last is not None and best - best_last <= tolerance + 1e-12
    return {"converged": converged, "best": round(best, 4), "best_epoch": best_epoch,
            "best_last_quarter": None if best_last is None else round(best_last, 4)}  # fmt: skip


def validation_curve(cell: Path, tag: str = "val_iou") -> tuple[list[int], list[float]]:
    """The validation curve a cell's training logged to TensorBoard (``(epochs, values)``; empty if none)."""
    from monai_scribble.visualize import learning_curves

    try:
        steps, values = learning_curves(cell / "tensorboard").get(tag, ([], []))
    except FileNotFoundError:
        return [], []
    return [int(s) for s in steps], [float(v) for v in values]


def git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    return result.stdout.strip() + ("-dirty" if dirty else "") if result.returncode == 0 else "unknown"


def _bundle(run_id: str, configs: list[Path], args: dict, log: Path) -> float:
    config = str([str(c) for c in configs]) if len(configs) > 1 else str(configs[0])
    command = [sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file", config]
    for key, value in args.items():
        command += [f"--{key}", str(value)]
    start = time.perf_counter()
    with open(log, "a") as stream:
        stream.write("$ " + " ".join(command) + "\n")
        stream.flush()
        result = subprocess.run(command, cwd=REPO_ROOT, stdout=stream, stderr=subprocess.STDOUT)
    if result.returncode:
        raise RuntimeError(f"{run_id} failed (exit {result.returncode}); see {log}")
    return time.perf_counter() - start


def cpu_info() -> dict:
    """The CPU a cell ran on: model name, core count, native bf16 (AMX / AVX-512-BF16) or not."""
    import platform

    import torch

    from monai_scribble.utils.precision import default_amp_dtype

    name = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": name, "cores": os.cpu_count(), "native_bf16": default_amp_dtype("cpu") is not None,
            "torch_threads": torch.get_num_threads()}  # fmt: skip


CURVE_TAGS = ("val_iou", "scribble_ce", "pseudo_ce", "contrastive_d5_delta1", "contrastive_d3_delta4", "pseudo_fg_share", "pseudo_bg_share",
              "pseudo_fg_precision", "pseudo_bg_precision")  # fmt: skip


def plot_cell_curves(cell: Path) -> Path | None:
    """``<cell>/curves.png``: validation IoU, the loss terms and the pseudo-label shares / precision the run logged."""
    from monai_scribble.visualize import learning_curves, plot_learning_curves

    try:
        logged = learning_curves(cell / "tensorboard")
    except FileNotFoundError:
        return None
    tags = [t for t in CURVE_TAGS if t in logged]
    import matplotlib.pyplot as plt

    plt.close(plot_learning_curves(cell / "tensorboard", tags, cell / "curves.png"))
    return cell / "curves.png"


def subset_split_file(dataset: str, size: int, fold: int, data_root: Path, out: Path) -> Path:
    """``<dataset>_seed0_fold<k>_train<size>.json``: the published split with a seeded subset of ``size`` training images.

    Made once from the full published split (written first, by a ``prepare`` into ``<out>/_split_<dataset>``,
    if it does not exist yet); validation and test images are those of the full split.
    """
    import numpy as np

    path = SPLITS / f"{dataset}_seed{SPLIT_SEED}_fold{fold}_train{size}.json"
    if path.is_file():
        return path
    full = SPLITS / f"{dataset}_seed{SPLIT_SEED}_fold{fold}.json"
    if not full.is_file():
        from monai_scribble.data.datalist import prepare_datalist, write_split_file

        dataset_dir = data_root / DATASET_DIRS[dataset] if dataset in DATASET_DIRS else None
        write_split_file(prepare_datalist(dataset, dataset_dir, out / f"_split_{dataset}", fold=fold, seed=SPLIT_SEED), full)
    published = json.loads(full.read_text())
    training = published["training"]
    chosen = np.random.default_rng([SPLIT_SEED, size]).choice(len(training), size=min(size, len(training)), replace=False)
    published["training"] = [training[i] for i in sorted(chosen)]
    published["training_subset"] = {"size": len(chosen), "of": len(training), "seed": SPLIT_SEED}
    path.write_text(json.dumps(published, indent=1) + "\n")
    return path


def warmup_checkpoint_for(state: dict, method: str) -> dict:
    """The end-of-warm-up training checkpoint ``state`` of an S2L + contrastive cell, made into ``method``'s.

    The warm-up trains the network alone (projection heads get no gradient and hold no optimiser state, and
    the sampling generator is untouched), so ``method``'s warm-up is ``state``'s: only the heads ``method``
    has no term for are dropped, from the loss, from the optimiser's head group (the last) and, with no term
    left, the sampler's generator state.

    Raises:
        ValueError: ``state`` lacks a head ``method`` needs, or its heads already hold optimiser state
            (not a warm-up checkpoint).
    """
    import copy

    from monai_scribble.engines.methods import contrastive_terms
    from monai_scribble.losses import MultiscaleContrastiveLoss

    state = dict(state)
    if "contrastive" not in state:
        raise ValueError("the checkpoint has no contrastive heads: branch from an S2L + contrastive cell (e.g. s2l_r1r4)")
    have = [term for term in contrastive_terms("s2l_r1r4") if any(k.startswith(f"heads.{term.name}.") for k in state["contrastive"])]
    want = [term.name for term in contrastive_terms(method)]
    missing = sorted(set(want) - {term.name for term in have})
    if missing:
        raise ValueError(f"the checkpoint has no head {missing} that {method} needs")
    # the owner of each parameter of the optimiser's head group, in the order the loss's parameters() lists them
    owners = [name.split(".")[1] for name, _ in MultiscaleContrastiveLoss(have).named_parameters()]
    optimizer = copy.deepcopy(state["optimizer"])
    head_group = optimizer["param_groups"][-1]
    if len(head_group["params"]) != len(owners):
        raise ValueError(f"the optimiser's last group has {len(head_group['params'])} parameters, the heads have {len(owners)}")
    if any(index in optimizer["state"] for index in head_group["params"]):
        raise ValueError("the heads already hold optimiser state: not an end-of-warm-up checkpoint")
    if want:
        head_group["params"] = [index for index, owner in zip(head_group["params"], owners) if owner in want]
        state["contrastive"] = {k: v for k, v in state["contrastive"].items() if not k.startswith("heads.") or k.split(".")[1] in want}
    else:
        del state["contrastive"]
        optimizer["param_groups"] = optimizer["param_groups"][:-1]
        if "rng" in state:
            state["rng"] = {**state["rng"], "samplers": []}
    state["optimizer"] = optimizer
    return state


WARMUP_POLL_SECONDS = 2.0
"""How often :func:`keep_warmup_copy` looks for the end-of-warm-up checkpoint (the next one comes 10 epochs later)."""


def _copy_run_state(source: Path, target: Path) -> None:
    """Copy a cell's EMA maps, best model and TensorBoard logs (what a run resumed from a copied checkpoint needs)."""
    import shutil

    for folder in ("ema", "models", "tensorboard"):
        if (source / folder).is_dir():
            shutil.copytree(source / folder, target / folder)


def keep_warmup_copy(cell: Path, warmup_epochs: int, done: threading.Event, poll_seconds: float = WARMUP_POLL_SECONDS) -> None:
    """Copy ``cell`` to ``<cell>/warmup/`` as soon as its end-of-warm-up checkpoint exists, for ``--warmup_from``.

    Runs beside the training subprocess until ``done`` is set. The training checkpoint of epoch
    ``warmup_epochs`` is replaced 10 epochs later and the EMA generation it records at a later refresh, so the
    checkpoint, the EMA maps, the best model and the TensorBoard logs are copied when it appears (the
    checkpoint is written under another name and renamed, so it is complete once it exists).
    """
    import shutil

    checkpoint = cell / "checkpoints" / f"checkpoint_epoch={warmup_epochs}.pt"
    target = cell / "warmup"
    while not target.exists() and not done.wait(poll_seconds):
        if checkpoint.is_file():
            partial = cell / ".warmup.partial"
            shutil.rmtree(partial, ignore_errors=True)
            (partial / "checkpoints").mkdir(parents=True)
            shutil.copy2(checkpoint, partial / "checkpoints" / checkpoint.name)
            _copy_run_state(cell, partial)
            partial.rename(target)


def branch_from_warmup(source: Path, cell: Path, method: str, warmup_epochs: int) -> None:
    """Start ``cell`` (``method``) from ``source``'s end-of-warm-up checkpoint: ablations that share one warm-up.

    ``source``: an s2l_r1r4 cell folder (its ``warmup/`` copy, which the harness makes, is used) or such a copy.
    Copies its EMA maps, best model and TensorBoard logs and writes :func:`warmup_checkpoint_for` of its
    ``checkpoints/checkpoint_epoch=<warmup_epochs>.pt``; training then resumes there.
    """
    import torch

    from monai_scribble.utils.checkpoint_files import read_training_checkpoint

    if (source / "warmup").is_dir():  # a cell folder: the copy keep_warmup_copy made
        source = source / "warmup"
    checkpoint = source / "checkpoints" / f"checkpoint_epoch={warmup_epochs}.pt"
    if not checkpoint.is_file():
        raise SystemExit(f"--warmup_from {source}: no {checkpoint.name} there; copy the source cell while its end-of-warm-up checkpoint exists")
    state = warmup_checkpoint_for(read_training_checkpoint(checkpoint), method)
    (cell / "checkpoints").mkdir(parents=True)
    _copy_run_state(source, cell)
    torch.save(state, cell / "checkpoints" / checkpoint.name)
    folder = source.parent if source.name == "warmup" else source
    record = {"source": folder.name, "path": _display_path(folder), "epoch": warmup_epochs}
    (cell / "warmup_from.json").write_text(json.dumps(record) + "\n")


def _display_path(path: Path) -> str:
    """``path`` relative to the repository where it lies inside it (as a command line would name it)."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(path)


def cell_name(dataset: str, method: str, fold: int, seed: int, variant: str | None = None) -> str:
    """A cell's folder under ``--out``: ``<dataset>_<method>[-<variant>]_fold<k>_seed<s>``."""
    return f"{dataset}_{method}{'-' + variant if variant else ''}_fold{fold}_seed{seed}"


def method_label(record: dict) -> str:
    """``method``, or ``method (variant)`` for a cell run with ``--variant``."""
    return f"{record['method']} ({record['variant']})" if record.get("variant") else record["method"]


def run_cell(dataset: str, method: str, fold: int, profile: str, data_root: Path, out: Path, seed: int,
             warmup_from: Path | None = None, variant: str | None = None, settings: dict | None = None, keep_warmup: bool | None = None,
             training_overrides: dict | None = None) -> dict:
    """Train and evaluate one cell (skipped when its record exists); returns its record.

    ``warmup_from``: a cell folder of the same dataset, fold and seed holding its end-of-warm-up checkpoint; a new
    scribble cell starts there (:func:`branch_from_warmup`) and trains only the main stage. ``variant`` names a cell
    trained and evaluated with the bundle overrides ``settings`` (an option against the authors' defaults).
    ``keep_warmup``: an s2l_r1r4 cell keeps its end-of-warm-up copy for ``warmup_from`` (default: cells without a variant).
    ``training_overrides``: bundle overrides of the training call only that do not change what is trained (e.g. how
    many checkpoints are kept); not part of the record.
    """
    cell = out / cell_name(dataset, method, fold, seed, variant)
    settings = dict(settings or {})
    record_path = cell / "record.json"
    overrides = schedule(profile, dataset)
    subset = overrides.pop("train_subset", None)
    if subset:  # a seeded subset of the training images (validation and test images unchanged)
        split_file = subset_split_file(dataset, int(subset), fold, data_root, out)
    else:
        split_file = SPLITS / f"{dataset}_seed{SPLIT_SEED}_fold{fold}.json"  # the same test images for every seed
    common = {"dataset_dir": data_root / DATASET_DIRS[dataset], "fold": fold, "seed": seed,
              "output_dir": cell, "ckpt_dir": cell / "models", "num_workers": 0, **settings}
    train_configs = [TRAIN, DATASET_PRESETS / f"{dataset}.json"]  # the dataset's preset overlay sets --dataset
    if split_file.is_file():
        common["split_file"] = split_file
    log = cell / "log.txt"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if "watershed" not in record and (cell / "models" / "model.pt").is_file():  # a record from before the watershed column
            record["watershed"] = evaluate_with_watershed(cell, train_configs, common, log)
        if record.get("resumed") and not record.get("curves_one_per_step") and (cell / "tensorboard").is_dir():
            record.update(curve_fields(cell, int(overrides.get("max_epochs") or 1)))  # resumed steps were counted twice
        record_path.write_text(json.dumps(record, indent=1))
        return record
    if warmup_from is not None and method != "supervised" and not (cell / "checkpoints").is_dir():
        branch_from_warmup(Path(warmup_from), cell, method, int(overrides["warmup_epochs"]))
    cell.mkdir(parents=True, exist_ok=True)
    checkpoints = sorted((cell / "checkpoints").glob("checkpoint_epoch=*.pt"), key=lambda path: int(path.stem.split("=")[1]))
    resume = bool(checkpoints)
    resumed_from_epoch = int(checkpoints[-1].stem.split("=")[1]) if checkpoints else 0  # train_seconds counts from here
    done = threading.Event()
    keeper = threading.Thread(target=keep_warmup_copy, args=(cell, int(overrides["warmup_epochs"]), done, WARMUP_POLL_SECONDS), daemon=True)
    if keep_warmup is None:
        keep_warmup = not variant
    if method == "s2l_r1r4" and keep_warmup and not (cell / "warmup_from.json").is_file():  # for --warmup_from
        keeper.start()
    try:
        train_seconds = _bundle("training", train_configs, {**common, **overrides, "method": method, "select_by": "iou", "resume": resume, **(training_overrides or {})}, log)
    finally:
        done.set()
    if not split_file.is_file():
        from monai_scribble.data.datalist import write_split_file

        write_split_file(cell / "datalist.json", split_file)
    eval_seconds = _bundle("evaluating", [*train_configs, EVALUATE], {**common, "split": "test"}, log)
    summary = json.loads((cell / "metrics.json").read_text())
    watershed = evaluate_with_watershed(cell, train_configs, common, log)
    fields = curve_fields(cell, int(overrides.get("max_epochs") or 1))
    curves = cell / "curves.png" if (cell / "curves.png").is_file() else None
    warmup_source = json.loads((cell / "warmup_from.json").read_text()) if (cell / "warmup_from.json").is_file() else None
    record = {
        "dataset": dataset, "method": method, **({"variant": variant, "settings": settings} if variant else {}),
        "fold": fold, "seed": seed, "profile": profile,
        "metrics": summary["metrics"], "dataset_iou": summary["dataset_iou"], "n_test_images": summary["n_images"],
        "train_seconds": round(train_seconds, 1), "eval_seconds": round(eval_seconds, 1), "epochs": overrides.get("max_epochs"),
        "schedule": {**overrides, **({"train_subset": subset} if subset else {})}, "resumed": resume,
        **({"resumed_from_epoch": resumed_from_epoch} if resume else {}),
        **({"warmup_from": warmup_source} if warmup_source else {}),
        "split_file": str(split_file.relative_to(REPO_ROOT)),
        "model_selection": "validation IoU (full masks, as in the paper)", "git_commit": git_commit(),
        **cpu_info(),
        **fields,
        "watershed": watershed,
        "curves_png": str(curves.relative_to(out)) if curves else None,
        "command": cell_command(dataset, method, fold, profile, seed, variant, settings,
                                (warmup_source or {}).get("path", (warmup_source or {}).get("source"))),
    }  # fmt: skip
    record_path.write_text(json.dumps(record, indent=1))
    return record


def curve_fields(cell: Path, max_epochs: int) -> dict:
    """The record's fields read from the cell's TensorBoard log: validation curve, convergence, training dynamics.

    ``learning_curves`` keeps one value per step, so a resumed cell's re-logged steps count once
    (``curves_one_per_step``; records published before that counted them twice).
    """
    from monai_scribble.visualize import training_summary

    epochs, values = validation_curve(cell)
    plot_cell_curves(cell)
    return {"validation_curve": {"epochs": epochs, "val_iou": values}, "convergence": convergence(epochs, values, max_epochs),
            "dynamics": {k: v for k, v in training_summary(cell / "tensorboard").items() if k != "val_iou"},
            "curves_one_per_step": True}  # fmt: skip


def evaluate_with_watershed(cell: Path, train_configs: list[Path], common: dict, log: Path) -> dict:
    """Test metrics of the cell's selected model with touching nuclei split by a watershed (``<cell>/watershed/``).

    The same evaluation as the cell's own with ``--watershed_split true`` (docs/method.md#ext-watershed); returns
    ``{"metrics", "dataset_iou", "eval_seconds"}``.
    """
    summary, seconds = evaluate_test_split(cell, train_configs, common, log, "watershed", watershed_split=True)
    return {"metrics": summary["metrics"], "dataset_iou": summary["dataset_iou"], "eval_seconds": round(seconds, 1)}


def evaluate_test_split(cell: Path, train_configs: list[Path], common: dict, log: Path, folder: str, **overrides) -> tuple[dict, float]:
    """Evaluate the cell's test images again into ``<cell>/<folder>/`` with the bundle ``overrides`` (its own datalist, no
    overlays); returns the ``metrics.json`` summary and the seconds it took."""
    out = cell / folder
    args = {**common, "output_dir": out, "datalist": cell / "datalist.json", "split": "test", "save_overlays": False, **overrides}
    seconds = _bundle("evaluating", [*train_configs, EVALUATE], args, log)
    return json.loads((out / "metrics.json").read_text()), seconds


def cell_command(dataset: str, method: str, fold: int, profile: str, seed: int, variant: str | None = None,
                 settings: dict | None = None, warmup_from: str | None = None) -> str:
    """The harness command that (re)runs one cell (``warmup_from``: the cell folder its main stage started from)."""
    options = f" --variant {variant}" + "".join(f" --set {k}={v}" for k, v in (settings or {}).items()) if variant else ""
    options += f" --warmup_from {warmup_from}" if warmup_from else ""
    return f"python benchmarks/table1.py --profile {profile} --datasets {dataset} --methods {method} --folds {fold} --seeds {seed}{options}"


def _fmt(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _mean_std(values: list[float]) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"  # sample std


def results_markdown(records: list[dict], profile: str) -> str:
    """Our Table 1 beside the paper's (mean ± sample std over the seeds run), then every cell's details."""
    from monai_scribble.engines.methods import method_settings

    datasets = [d for d in ("dsb_bf", "dsb_fluo", "monuseg", "dsb_histo") if any(r["dataset"] == d for r in records)]
    by_cell: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        if not r.get("variant"):  # options against the authors' defaults are listed per cell only
            by_cell.setdefault((r["dataset"], r["method"]), []).append(r)
    lines = [f"# Table 1: ours ({profile} profile) beside the paper", "",
             "mDice (legacy evaluation, as the paper's code) / IoU on the test split, mean ± std over seeds (n = seeds); "
             "paper values from Oh, Lee & Jeong, ISBI 2022.", "",
             "| Method | " + " | ".join(f"{d} ours | n | {d} paper" for d in datasets) + " |",
             "|---|" + "---|---|---|" * len(datasets)]  # fmt: skip
    for method in METHODS:
        cells = []
        for dataset in datasets:
            runs = by_cell.get((dataset, method), [])
            ours = (f"{_mean_std([r['metrics']['mdice_legacy']['mean'] for r in runs])} / {_mean_std([r['metrics']['iou']['mean'] for r in runs])}"
                    if runs else "not run")  # fmt: skip
            paper = PAPER_TABLE1.get(method, {}).get(dataset)
            cells += [ours, str(len(runs)), f"{paper[0]:.4f} / {paper[1]:.4f}" if paper else "–"]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "Every cell: mDice corrected, AJI, PQ, F1@0.5, dataset-level IoU; convergence (best validation IoU of the last quarter "
              "within 0.01 of the best); share of main-stage iterations with a non-zero 4x4 term; train seconds.", "",
              "| Dataset | Method | Seed | mDice | AJI | PQ | F1@0.5 | dataset IoU | best val IoU (epoch) | converged | R4 active | epochs | train s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in records:
        m = r["metrics"]
        conv = r.get("convergence") or {}
        dyn = r.get("dynamics") or {}
        best = f"{_fmt(conv.get('best'))} ({conv.get('best_epoch')})" if conv.get("best") is not None else "–"
        r4 = f"{dyn['r4_nonzero_share']:.0%}" if "r4_nonzero_share" in dyn and "r4" in method_settings(r["method"])["terms"] else "–"
        lines.append(f"| {r['dataset']} | {method_label(r)} | {r.get('seed', 0)} | {_fmt(m['mdice']['mean'])} | {_fmt(m['aji']['mean'])} | "
                     f"{_fmt(m['pq']['mean'])} | {_fmt(m['f1_50']['mean'])} | {_fmt(r['dataset_iou'])} | {best} | "
                     f"{'yes' if conv.get('converged') else 'no' if conv else '–'} | {r4} | {r['epochs']} | {r['train_seconds']:.0f} |")  # fmt: skip
    split = [r for r in records if r.get("watershed")]
    if split:
        lines += ["", "Without → with the watershed split of touching nuclei (`--watershed_split true`, the same model and test images):", "",
                  "| Dataset | Method | Seed | mDice legacy | mDice | AJI | PQ | F1@0.5 | IoU |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in split:
            pairs = [f"{_fmt(r['metrics'][k]['mean'])} → {_fmt(r['watershed']['metrics'][k]['mean'])}"
                     for k in ("mdice_legacy", "mdice", "aji", "pq", "f1_50", "iou")]  # fmt: skip
            lines.append(f"| {r['dataset']} | {method_label(r)} | {r.get('seed', 0)} | " + " | ".join(pairs) + " |")
    variants = {r["variant"]: r["settings"] for r in records if r.get("variant")}
    if variants:
        lines += ["", "Variants (bundle overrides on top of the profile): "
                  + "; ".join(f"{name}: " + ", ".join(f"`{k}={v}`" for k, v in settings.items()) for name, settings in sorted(variants.items()))]
    cpus = sorted({f"{r['cpu']} ({'native bf16' if r.get('native_bf16') else 'no native bf16: fp32'}, {r.get('torch_threads')} threads)"
                   for r in records if r.get("cpu")})  # fmt: skip
    if cpus:
        lines += ["", "CPU: " + "; ".join(cpus)]
    return "\n".join(lines) + "\n"


PUBLISHED = {"cpu": "table1_cpu_profile", "cpu-budget": "table1_cpu"}
"""Committed result files per profile: ``benchmarks/results/<name>.{json,md}``."""


def one_per_step(record: dict) -> None:
    """Mend a resumed cell's record published before ``curves_one_per_step`` when its TensorBoard log is not at hand.

    Its validation curve listed the epochs between the last checkpoint and the interruption twice (in write order):
    the later values are kept and convergence is recomputed; the training dynamics, which need the log, are marked.
    """
    curve = record.get("validation_curve") or {}
    by_epoch = dict(zip(curve.get("epochs", []), curve.get("val_iou", [])))
    epochs = sorted(by_epoch)
    record["validation_curve"] = {"epochs": epochs, "val_iou": [by_epoch[e] for e in epochs]}
    record["convergence"] = convergence(epochs, record["validation_curve"]["val_iou"], int(record.get("epochs") or 1))
    record["curves_one_per_step"] = ("validation curve only: where the run was interrupted after its last checkpoint, "
                                     "the dynamics count the iterations it logged again twice")


def publish(records: list[dict], profile: str, out_dir: Path, results_dir: Path = REPO_ROOT / "benchmarks" / "results",
            images_dir: Path | None = None) -> Path:
    """Merge ``records`` into the committed results of ``profile`` (a rerun cell replaces its record) and rewrite its table.

    Each cell's ``curves.png`` is copied to ``docs/images/table1_<profile>/<dataset>_<method>[-<variant>]_seed<s>.png``
    (the name README uses). Returns the JSON path.
    """
    import shutil

    name = PUBLISHED.get(profile, f"table1_{profile}")
    path = results_dir / f"{name}.json"
    key = lambda r: (r["dataset"], r["method"], r.get("variant") or "", r.get("fold", 0), r.get("seed", 0))  # noqa: E731
    merged = {key(r): r for r in (json.loads(path.read_text()) if path.is_file() else [])}
    merged.update({key(r): r for r in records})
    for record in merged.values():
        if record.get("resumed") and not record.get("curves_one_per_step"):
            one_per_step(record)
    order = {m: i for i, m in enumerate(METHODS)}
    ordered = sorted(merged.values(), key=lambda r: (r["dataset"], order.get(r["method"], 99), r.get("variant") or "", r.get("fold", 0), r.get("seed", 0)))
    path.write_text(json.dumps(ordered, indent=1) + "\n")
    path.with_suffix(".md").write_text(results_markdown(ordered, profile))
    images_dir = images_dir or REPO_ROOT / "docs" / "images" / f"table1_{profile}"
    for r in records:
        name = cell_name(r["dataset"], r["method"], r.get("fold", 0), r.get("seed", 0), r.get("variant"))
        curves = out_dir / name / "curves.png"
        if curves.is_file():
            images_dir.mkdir(parents=True, exist_ok=True)
            variant = f"-{r['variant']}" if r.get("variant") else ""
            shutil.copyfile(curves, images_dir / f"{r['dataset']}_{r['method']}{variant}_seed{r.get('seed', 0)}.png")
    return path


def main(argv: list[str] | None = None) -> str:
    import argparse

    from monai_scribble.constants import DATA_ENV_VAR
    from monai_scribble.data.data_root import default_data_root

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=list(PROFILES), default="cpu-budget")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASET_DIRS), default=["dsb_bf", "monuseg"])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=["supervised", "s2l", "s2l_r1r4"])
    parser.add_argument("--folds", nargs="+", type=int, default=[0])
    parser.add_argument("--data_root", default=None, help=f"folder holding dsb2018/ and monuseg/ (default ${DATA_ENV_VAR} or ../shared/data)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="split / scribble / training seeds (one cell each)")
    parser.add_argument("--out", default="runs/table1")
    parser.add_argument("--warmup_from", default=None,
                        help="an s2l_r1r4 cell folder of the same dataset, fold and seed (its warmup/ copy) or a copy holding its end-of-warm-up checkpoint: "
                             "new scribble cells start there and train only the main stage (ablations of one warm-up)")
    parser.add_argument("--variant", default=None, help="name of the cells trained with the --set overrides (cell <dataset>_<method>-<variant>_...)")
    parser.add_argument("--set", action="append", default=[], metavar="ID=VALUE", help="bundle override for --variant, e.g. --set ema_background_threshold=0.6")
    parser.add_argument("--publish", action="store_true",
                        help="after each cell, merge the records into benchmarks/results/ and copy the curves to docs/images/ (to commit)")
    args = parser.parse_args(argv)
    if bool(args.variant) != bool(args.set) or any("=" not in item for item in args.set):
        parser.error("--variant NAME and --set ID=VALUE go together (a variant is the default cell plus its overrides)")
    settings = dict(item.split("=", 1) for item in args.set)
    root = Path(args.data_root or default_data_root()).resolve()
    out_dir = Path(args.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for dataset in args.datasets:
        for method in args.methods:
            for fold in args.folds:
                for seed in args.seeds:
                    print(f"[table1] {args.profile}: {dataset} / {method} / fold {fold} / seed {seed}", flush=True)
                    records.append(run_cell(dataset, method, fold, args.profile, root, out_dir, seed, args.warmup_from, args.variant, settings))
                    (out_dir / "results.json").write_text(json.dumps(records, indent=1))
                    (out_dir / "results.md").write_text(results_markdown(records, args.profile))
                    if args.publish:
                        publish(records, args.profile, out_dir)
    print(out_dir / "results.json")
    return str(out_dir / "results.json")


if __name__ == "__main__":
    main()
