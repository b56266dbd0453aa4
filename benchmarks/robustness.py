"""How robust is it? Scribble amount, scribble style, and choosing the model without full masks.

Usage::

    python benchmarks/robustness.py [--dataset dsb_fluo] [--methods s2l_r1r4 s2l] [--ratios 0.1 0.3 0.5 1.0] \
        [--strokes_budget 0.3] [--seed 0] [--out runs/robustness] [--publish] [--report_only]

Cells at the ``cpu`` profile of ``benchmarks/table1.py`` (the same split, schedule and evaluation), per method:

- ``ratio<r>``: S2L skeleton scribbles on a fraction ``r`` of the nuclei (``--scribble_ratio``);
- ``strokes-budget<r>``: hand-drawn-like strokes (``--scribble_style strokes``) on as many nuclei as give the same
  number of labelled pixels, over the training images, as the skeletons at ratio ``r`` (:func:`matched_stroke_ratio`).

Every cell selects ``model.pt`` by validation IoU (full masks, the paper's choice) and also keeps
``model_by_scribble.pt``, the model its validation scribbles alone pick; both are evaluated on the test images, so
the cost of selecting without masks is measured on the same run. Writes ``<out>/results.{json,md}`` after every cell
from every finished cell in ``<out>`` (two processes, e.g. one per method, may share ``--out``); ``--publish`` copies
them to ``benchmarks/results/robustness_cpu.{json,md}`` and draws ``docs/images/robustness_cpu.png`` (:func:`plot_results`);
``--report_only`` does only that, from the cells finished so far; ``--from_published`` counts the published cells as
finished (a fresh checkout continues the sweep). Resumable like table1: a finished cell is not rerun, an
interrupted one resumes from its last checkpoint. An S2L cell starts its main stage from the end of
its S2L+R1+R4 twin's warm-up when that has passed it (the warm-up does not depend on the method). Run the same command twice at once (one process per core, each
with ``OMP_NUM_THREADS=1``) and the two share the cells (:func:`claim`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import table1  # noqa: E402  (the harness beside this script)

RESULTS = table1.REPO_ROOT / "benchmarks" / "results"
FIGURE = table1.REPO_ROOT / "docs" / "images" / "robustness_cpu.png"


def labelled_pixels(label_maps: dict[str, np.ndarray], style: str, ratio: float, seed: int) -> int:
    """Labelled (nucleus + background) pixels of the scribbles ``prepare`` synthesises for these label maps."""
    from monai_scribble.constants import IGNORE
    from monai_scribble.data.datalist import SCRIBBLE_STYLES
    from monai_scribble.data.scribbles import image_rng

    synthesize = SCRIBBLE_STYLES[style]
    return int(sum((synthesize(label, ratio=ratio, rng=image_rng(seed, image_id)) != IGNORE).sum() for image_id, label in label_maps.items()))


def matched_stroke_ratio(label_maps: dict[str, np.ndarray], skeleton_ratio: float, seed: int, steps: int = 7) -> tuple[float, int, int]:
    """The stroke ratio whose scribbles label as many pixels as the skeletons at ``skeleton_ratio`` (bisection).

    Returns:
        ``(stroke ratio rounded to 3 decimals, skeleton pixels, stroke pixels at that ratio)``.
    """
    target = labelled_pixels(label_maps, "skeleton", skeleton_ratio, seed)
    low, high = 0.0, 1.0
    for _ in range(steps):
        middle = (low + high) / 2
        low, high = (middle, high) if labelled_pixels(label_maps, "strokes", middle, seed) < target else (low, middle)
    candidates = sorted({round(low, 3), round(high, 3)} - {0.0})
    counts = {r: labelled_pixels(label_maps, "strokes", r, seed) for r in candidates}
    best = min(counts, key=lambda r: abs(counts[r] - target))
    return best, target, counts[best]


def training_label_maps(dataset: str, data_root: Path, out: Path) -> dict[str, np.ndarray]:
    """``{id: instance map}`` of the training images of the ``cpu`` profile's split."""
    from monai_scribble.data.datalist import apply_split_file, load_split_samples
    from monai_scribble.data.image_io import read_instance_label

    subset = table1.schedule("cpu", dataset).get("train_subset")
    split_file = table1.subset_split_file(dataset, int(subset), 0, data_root, out) if subset else table1.SPLITS / f"{dataset}_seed0_fold0.json"
    split = apply_split_file(load_split_samples(dataset, data_root / table1.DATASET_DIRS[dataset], out), split_file)
    return {sample.id: read_instance_label(sample.label) for sample in split["training"]}


LABEL_FREE_CHOICES = {"label_free_choice": "val_scribble_accuracy", "label_free_instances_choice": "val_scribble_instances"}
"""Record key -> the label-free metric whose model (``LABEL_FREE_MODELS``) it evaluates."""


def evaluate_label_free_choice(cell: Path, dataset: str, data_root: Path, seed: int, metric: str = "val_scribble_accuracy") -> dict | None:
    """Test metrics of the model the validation scribbles alone pick by ``metric`` (``model_by_scribble.pt`` for pixel
    accuracy, evaluated into ``<cell>/by_scribble/``; ``model_by_scribble_instances.pt``, ``by_scribble_instances/``), its
    epoch and its ``metric``; ``None`` where the cell has no such model (trained before the bundle kept it)."""
    from monai_scribble.engines.model_selection import LABEL_FREE_MODELS
    from monai_scribble.inference.model_file import read_model_file

    model = cell / "models" / LABEL_FREE_MODELS[metric]
    if not model.is_file():
        return None
    run_id = model.stem.replace("model_", "")
    _, metadata = read_model_file(model, mmap=True)  # the metadata only
    if (cell / run_id / "metrics.json").is_file():  # evaluated before an interruption
        summary = json.loads((cell / run_id / "metrics.json").read_text())
    else:
        common = {"dataset_dir": data_root / table1.DATASET_DIRS[dataset], "ckpt_dir": cell / "models", "num_workers": 0, "fold": 0, "seed": seed}
        summary, _ = table1.evaluate_test_split(cell, [table1.TRAIN, table1.DATASET_PRESETS / f"{dataset}.json"], common, cell / "log.txt",
                                                run_id, model_file=model)  # fmt: skip
    return {"metrics": summary["metrics"], "dataset_iou": summary["dataset_iou"], "epoch": metadata["epoch"], metric: metadata["value"]}


def cell_pixels(cell: Path) -> dict:
    """Labelled nucleus / background pixels of the cell's training scribbles (from its datalist)."""
    from monai_scribble.data.scribbles import read_scribble, scribble_class_counts

    datalist = json.loads((cell / "datalist.json").read_text())
    counts = np.array([scribble_class_counts(read_scribble(item["scribble"], datalist["scribble_format"])) for item in datalist["training"]])
    return {"background_pixels": int(counts[:, 0].sum()), "nucleus_pixels": int(counts[:, 1].sum()), "training_images": len(counts)}


LOCK = ".robustness.lock"


def claim(cell: Path) -> bool:
    """Take the cell for this process (``<cell>/.robustness.lock`` holds the pid); false while another live process holds it.

    So the same command run twice in parallel (one process per core) shares the cells instead of training one twice.
    """
    cell.mkdir(parents=True, exist_ok=True)
    lock = cell / LOCK
    for _ in range(2):
        try:
            with open(lock, "x") as handle:
                handle.write(str(os.getpid()))
            return True
        except FileExistsError:
            text = lock.read_text().strip()
            if not text.isdigit():
                return False  # just created by another process, its pid not written yet
            try:
                os.kill(int(text), 0)
                return False  # held by a live process
            except ProcessLookupError:
                lock.unlink(missing_ok=True)  # left by a killed process: take it over
            except PermissionError:
                return False
    return False


def instances_choice(record: dict) -> tuple[dict, int, bool] | None:
    """``(test metric means, epoch, from the study)`` of the model chosen by validation scribble instances: the choice
    of the cell's selection study where it has one (every kept checkpoint, scored as the bundle scores validations),
    else the cell's ``model_by_scribble_instances.pt`` (a cell resumed from a checkpoint written before the bundle
    kept that model chose it among the resumed validations only)."""
    if "selection_study" in record:
        choice = record["selection_study"]["criteria"]["scribble_instances"]
        return choice, choice["epoch"], True
    if "label_free_instances_choice" in record:
        choice = record["label_free_instances_choice"]
        return {name: value["mean"] for name, value in choice["metrics"].items()}, choice["epoch"], False
    return None


def markdown(records: list[dict]) -> str:
    lines = ["| method | scribbles | ratio | labelled px (nucleus / background) | by validation IoU: mDice legacy / IoU (epoch) "
             "| by validation scribbles: mDice legacy / IoU (epoch) | IoU gap | by scribble instances: mDice legacy / IoU (epoch) "
             "| IoU gap | train s |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    studied = False
    for r in records:
        m, s = r["metrics"], r["label_free_choice"]
        gap = m["iou"]["mean"] - s["metrics"]["iou"]["mean"]
        by_instances = instances_choice(r)
        if by_instances is None:
            instances = "n/a | n/a"
        else:
            means, epoch, from_study = by_instances
            studied |= from_study
            instances = (f"{means['mdice_legacy']:.4f} / {means['iou']:.4f} ({epoch}){' †' if from_study else ''} | "
                         f"{m['iou']['mean'] - means['iou']:+.4f}")  # fmt: skip
        lines.append(f"| {r['method']} | {r['style']} | {r['scribble_ratio']:g} | {r['pixels']['nucleus_pixels']} / {r['pixels']['background_pixels']} | "
                     f"{m['mdice_legacy']['mean']:.4f} / {m['iou']['mean']:.4f} ({r['convergence']['best_epoch']}) | "
                     f"{s['metrics']['mdice_legacy']['mean']:.4f} / {s['metrics']['iou']['mean']:.4f} ({s['epoch']}) | {gap:+.4f} | "
                     f"{instances} | {r['train_seconds']:.0f}{' (resumed)' if r.get('resumed') else ''} |")  # fmt: skip
    if studied:
        lines.append("\n† chosen by `benchmarks/selection_study.py` among the kept training checkpoints of the cell, or of a re-run "
                     "of its command that reproduces it (`selection_study.run`; epochs in `selection_study.epochs`), scoring them "
                     "as the bundle scores its validations.")  # fmt: skip
        lines += ["", *criteria_markdown(records)]
    return "\n".join(lines) + "\n"


def criteria_markdown(records: list[dict]) -> list[str]:
    """Lines of a table of every label-free criterion of the cells' selection studies: the test IoU given up against
    the choice by validation IoU, and the epoch chosen."""
    studied = [r for r in records if "selection_study" in r]
    criteria = list(studied[0]["selection_study"]["criteria"])
    lines = ["Test IoU given up by each label-free criterion of `benchmarks/selection_study.py` against the choice by validation IoU "
             "(epoch chosen):", "", "| method | scribbles | ratio | checkpoints | " + " | ".join(criteria) + " |",
             "|---|---|---|---|" + "---|" * len(criteria)]  # fmt: skip
    for r in studied:
        study = r["selection_study"]
        gaps = [f"{study['criteria'][c]['iou_gap']:+.4f} ({study['criteria'][c]['epoch']})" if c in study["criteria"] else "n/a" for c in criteria]
        lines.append(f"| {r['method']} | {r['style']} | {r['scribble_ratio']:g} | {study['checkpoints']} | " + " | ".join(gaps) + " |")
    means = [np.mean([r["selection_study"]["criteria"][c]["iou_gap"] for r in studied if c in r["selection_study"]["criteria"]]) for c in criteria]
    lines.append(f"| mean of {len(studied)} | | | | " + " | ".join(f"{m:+.4f}" for m in means) + " |")
    return lines


def plot_results(records: list[dict], path: str | os.PathLike | None = None):
    """Test IoU and legacy mDice against the scribble ratio, per method: skeletons as lines, the strokes cell as a marker at
    the skeleton ratio whose labelled pixels it matches; dashed: the model chosen by validation scribbles (pixel accuracy);
    crosses, dotted: by validation scribble instances (where measured). Returns the figure."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    for ax, (metric, title) in zip(axes, (("iou", "test IoU"), ("mdice_legacy", "test mDice (legacy)"))):
        for k, method in enumerate(sorted({r["method"] for r in records}, key=lambda m: m != "s2l_r1r4")):
            colour = f"C{k}"
            skeletons = sorted((r for r in records if r["method"] == method and r["style"] == "skeleton"), key=lambda r: r["scribble_ratio"])
            x = [r["scribble_ratio"] for r in skeletons]
            ax.plot(x, [r["metrics"][metric]["mean"] for r in skeletons], "o-", color=colour, label=f"{method} skeletons (by val IoU)")
            ax.plot(x, [r["label_free_choice"]["metrics"][metric]["mean"] for r in skeletons], "o--", color=colour, alpha=0.5,
                    label=f"{method} skeletons (by val scribbles)")  # fmt: skip
            by_instances = [(r["scribble_ratio"], choice[0][metric]) for r in skeletons if (choice := instances_choice(r))]
            if by_instances:
                ax.plot(*zip(*by_instances), "x:", color=colour, markersize=8, label=f"{method} skeletons (by val scribble instances)")
            for r in (r for r in records if r["method"] == method and r["style"] == "strokes"):
                budget = r["strokes_budget"]["skeleton_ratio"]
                ax.plot([budget], [r["metrics"][metric]["mean"]], "*", markersize=13, color=colour,
                        label=f"{method} strokes at {r['scribble_ratio']:g} (skeleton-{budget:g} pixels)")  # fmt: skip
                ax.plot([budget], [r["label_free_choice"]["metrics"][metric]["mean"]], "*", markersize=13, color=colour, alpha=0.4)
                if choice := instances_choice(r):
                    ax.plot([budget], [choice[0][metric]], "x", markersize=10, color=colour)
        ax.set_xlabel("scribble ratio (fraction of nuclei)")
        ax.set_xlim(0, 1.05)
        ax.set_title(title)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    # below both panels, where it hides no point
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


RECORD_FILE = "robustness_record.json"
"""A finished cell's record, in its folder under ``--out``."""
STUDY_FILE = "selection_study.json"
"""``benchmarks/selection_study.py``'s result on a cell's kept checkpoints, in its folder under ``--out``."""
PUBLISHED_STUDIES = RESULTS / "selection_study_cpu.json"
"""Every finished study, by cell folder name, with its per-checkpoint scores (published with ``--publish``)."""


def write_text(path: Path, text: str) -> None:
    """``path`` holds the old text or the whole new one, never a part (a kill mid-write leaves the cell as it was)."""
    from monai_scribble.utils.atomic import atomic_write

    atomic_write(path, lambda temporary: Path(temporary).write_text(text))


def restore_published(out: Path, published: Path = RESULTS / "robustness_cpu.json", studies: Path = PUBLISHED_STUDIES) -> list[str]:
    """Write the records of ``published`` and the selection studies of ``studies`` into the cells of ``out`` that have
    none, so a fresh checkout continues the sweep instead of retraining what is already measured, and republishes the
    studies it has not rerun (``--from_published``). Returns the files restored, relative to ``out``."""
    restored = []
    for record in json.loads(published.read_text()) if published.is_file() else []:
        cell = out / table1.cell_name(record["dataset"], record["method"], record["fold"], record["seed"], record.get("variant"))
        if not (cell / RECORD_FILE).is_file():
            write_text(cell / RECORD_FILE, json.dumps(record, indent=1) + "\n")
            restored.append(f"{cell.name}/{RECORD_FILE}")
    for name, study in (json.loads(studies.read_text()) if studies.is_file() else {}).items():
        if not (out / name / STUDY_FILE).is_file():
            write_text(out / name / STUDY_FILE, json.dumps(study, indent=1))
            restored.append(f"{name}/{STUDY_FILE}")
    return restored


def write_results(out: Path, publish: bool) -> list[dict]:
    """``<out>/results.{json,md}`` of every finished cell in ``out`` (atomic); with ``publish``, copied to ``benchmarks/results``,
    and the cells' finished selection studies to :data:`PUBLISHED_STUDIES`."""
    order = {"s2l_r1r4": 0, "s2l": 1}
    records, studies = [], {}
    for path in sorted(out.glob(f"*/{RECORD_FILE}")):
        record = json.loads(path.read_text())
        if "scribble_accuracy_curve" not in record and (path.parent / "tensorboard").is_dir():  # the label-free choice's curve
            epochs, values = table1.validation_curve(path.parent, tag="val_scribble_accuracy")
            record["scribble_accuracy_curve"] = {"epochs": epochs, "val_scribble_accuracy": values}
            write_text(path, json.dumps(record, indent=1) + "\n")
        study = path.parent / STUDY_FILE  # benchmarks/selection_study.py on the cell's kept checkpoints
        if study.is_file() and "summary" in (study_result := json.loads(study.read_text())):
            epochs = [row["epoch"] for row in study_result["checkpoints"]]
            record["selection_study"] = {"epochs": [min(epochs), max(epochs)], "checkpoints": len(epochs), **study_result["summary"]}
            studies[path.parent.name] = study_result
        records.append(record)
    records.sort(key=lambda r: (order.get(r["method"], 9), r["style"], r["scribble_ratio"]))
    for name, text in (("results.json", json.dumps(records, indent=1) + "\n"), ("results.md", markdown(records))):
        write_text(out / name, text)
        if publish:
            shutil.copyfile(out / name, RESULTS / f"robustness_cpu{Path(name).suffix}")
    if publish and studies:
        write_text(PUBLISHED_STUDIES, json.dumps(studies, indent=1) + "\n")
    if publish and records:
        plot_results(records, FIGURE)
    return records


def main(argv: list[str] | None = None) -> Path:
    from monai_scribble.data.data_root import default_data_root

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="dsb_fluo", choices=list(table1.DATASET_DIRS))
    parser.add_argument("--methods", nargs="+", default=["s2l_r1r4", "s2l"], choices=list(table1.METHODS[1:]))
    parser.add_argument("--ratios", nargs="+", type=float, default=[0.3, 0.1, 1.0, 0.5], help="skeleton ratios, run in this order")
    parser.add_argument("--strokes_budget", type=float, default=0.3, help="skeleton ratio whose labelled pixels the strokes match (0: no strokes cell)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data_root", default=None)
    parser.add_argument("--out", default="runs/robustness")
    parser.add_argument("--publish", action="store_true")
    parser.add_argument("--keep_checkpoints", action="store_true",
                        help="keep every training checkpoint of the cells trained from now on (for benchmarks/selection_study.py; ~0.3 GB each)")
    parser.add_argument("--report_only", action="store_true", help="write (and with --publish publish) the results of the finished cells; run none")
    parser.add_argument("--from_published", action="store_true",
                        help="cells of benchmarks/results/robustness_cpu.json that --out lacks count as finished (their records are copied in)")
    args = parser.parse_args(argv)
    root = Path(args.data_root or default_data_root()).resolve()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.from_published:
        for name in restore_published(out):
            print(f"restored from the published results: {name}")
    if args.report_only:
        write_results(out, args.publish)
        return out / "results.json"

    budget = out / f"strokes_budget{args.strokes_budget:g}.json"
    if args.strokes_budget and not budget.is_file():
        ratio, skeleton_px, stroke_px = matched_stroke_ratio(training_label_maps(args.dataset, root, out), args.strokes_budget, args.seed)
        write_text(budget, json.dumps({"skeleton_ratio": args.strokes_budget, "stroke_ratio": ratio, "skeleton_pixels": skeleton_px,
                                           "stroke_pixels": stroke_px, "seed": args.seed}, indent=1) + "\n")  # fmt: skip
    cells = [(f"ratio{r:g}", "skeleton", r) for r in args.ratios[:1]]
    if args.strokes_budget:
        cells.append((f"strokes-budget{args.strokes_budget:g}", "strokes", json.loads(budget.read_text())["stroke_ratio"]))
    cells += [(f"ratio{r:g}", "skeleton", r) for r in args.ratios[1:]]

    keep = {"train#checkpoint#n_saved": 10**6} if args.keep_checkpoints else None  # for benchmarks/selection_study.py
    for method in args.methods:
        for variant, style, ratio in cells:
            cell = out / table1.cell_name(args.dataset, method, 0, args.seed, variant)
            record_path = cell / RECORD_FILE
            if record_path.is_file() or not claim(cell):  # finished, or being run by another process of this command
                continue
            try:
                settings = {"scribble_ratio": ratio, **({"scribble_style": style} if style != "skeleton" else {})}
                # the warm-up trains on the scribbles alone, so an S2L cell starts from its S2L+R1+R4 twin's (table1 --warmup_from)
                twin = out / table1.cell_name(args.dataset, "s2l_r1r4", 0, args.seed, variant)
                warmup_from = twin if method != "s2l_r1r4" and (twin / "warmup").is_dir() else None
                record = table1.run_cell(args.dataset, method, 0, "cpu", root, out, args.seed, variant=variant, settings=settings,
                                         warmup_from=warmup_from, keep_warmup=True, training_overrides=keep)  # fmt: skip
                record.update(style=style, scribble_ratio=ratio, pixels=cell_pixels(cell))
                for key, metric in LABEL_FREE_CHOICES.items():
                    choice = evaluate_label_free_choice(cell, args.dataset, root, args.seed, metric)
                    if choice is not None:
                        record[key] = choice
                if style == "strokes":
                    record["strokes_budget"] = json.loads(budget.read_text())
                write_text(record_path, json.dumps(record, indent=1) + "\n")
            finally:
                (cell / LOCK).unlink(missing_ok=True)
            write_results(out, args.publish)  # after every cell: a stopped session keeps the finished ones
    print(out / "results.json")
    return out / "results.json"


if __name__ == "__main__":
    main()
