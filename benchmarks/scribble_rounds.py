"""Scribble in rounds: does adding the images ``scribble_next.csv`` ranks first beat adding random ones?

Usage::

    python benchmarks/scribble_rounds.py [--dataset dsb_fluo] [--method s2l] [--start 0.2] [--add 0.2] [--seed 0] \
        [--out runs/scribble_rounds] [--publish]

Three cells at the ``cpu`` profile of ``benchmarks/table1.py`` (the same split, schedule and evaluation):

1. ``round1``: scribbles on a seeded ``start`` fraction of the training images (``--scribbled_ids``);
2. ``round2-score``: those plus the ``add`` fraction that ``round1``'s ``scribble_next.csv`` ranks first among the
   images without scribbles;
3. ``round2-random``: those plus as many seeded random images without scribbles.

Both second rounds train from scratch with the same schedule, so only the choice of images differs. Writes
``<out>/results.json`` / ``results.md`` (test metrics, wall time, which images were added) after every cell;
``--publish`` copies them to ``benchmarks/results/scribble_rounds_cpu.{json,md}``. Resumable like table1 (a finished cell is not rerun).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import table1  # noqa: E402  (the harness beside this script)


def seeded_subset(ids: list[str], fraction: float, seed: int) -> list[str]:
    """A seeded ``fraction`` (at least one) of ``ids``, in their order."""
    count = max(1, round(fraction * len(ids)))
    chosen = np.random.default_rng([seed, 7]).choice(len(ids), size=count, replace=False)
    return [ids[i] for i in sorted(chosen)]


def next_by_score(ranking: Path, count: int) -> list[str]:
    """The first ``count`` images without scribbles in a ``scribble_next.csv`` (most unconfident first)."""
    with open(ranking, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["scribbled"] == "0"]
    return [row["id"] for row in rows[:count]]


def next_at_random(candidates: list[str], count: int, seed: int) -> list[str]:
    """``count`` seeded random ids of ``candidates``."""
    chosen = np.random.default_rng([seed, 11]).choice(len(candidates), size=min(count, len(candidates)), replace=False)
    return [candidates[i] for i in sorted(chosen)]


def resumed(record: dict) -> str:
    """Note for a resumed cell, whose ``train_seconds`` count from the checkpoint it resumed from."""
    return f" (resumed at epoch {record['resumed_from_epoch']}: from there)" if record.get("resumed") else ""


def markdown(records: list[dict]) -> str:
    lines = ["| cell | scribbled images | mDice legacy / IoU | AJI | F1@0.5 | best val IoU (epoch) | train s |", "|---|---|---|---|---|---|---|"]
    for r in records:
        m = r["metrics"]
        lines.append(f"| {r['variant']} | {r['scribbled_images']} | {m['mdice_legacy']['mean']:.4f} / {m['iou']['mean']:.4f} | {m['aji']['mean']:.4f} | "
                     f"{m['f1_50']['mean']:.4f} | {r['convergence']['best']:.4f} ({r['convergence']['best_epoch']}) | {r['train_seconds']:.0f}{resumed(r)} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> Path:
    from monai_scribble.data.data_root import default_data_root

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="dsb_fluo", choices=list(table1.DATASET_DIRS))
    parser.add_argument("--method", default="s2l", choices=list(table1.METHODS))
    parser.add_argument("--start", type=float, default=0.2, help="fraction of the training images scribbled in round 1")
    parser.add_argument("--add", type=float, default=0.2, help="fraction of the training images added in round 2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data_root", default=None)
    parser.add_argument("--out", default="runs/scribble_rounds")
    parser.add_argument("--publish", action="store_true")
    args = parser.parse_args(argv)
    root = Path(args.data_root or default_data_root()).resolve()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    subset = table1.schedule("cpu", args.dataset).get("train_subset")
    split = table1.subset_split_file(args.dataset, int(subset), 0, root, out) if subset else table1.SPLITS / f"{args.dataset}_seed0_fold0.json"
    training = json.loads(Path(split).read_text())["training"]
    round1_ids = seeded_subset(training, args.start, args.seed)
    count = max(1, round(args.add * len(training)))

    records: list[dict] = []

    def cell(variant: str, ids: list[str]) -> None:
        ids_file = out / f"{variant}_ids.txt"
        ids_file.write_text("\n".join(ids) + "\n")
        record = table1.run_cell(args.dataset, args.method, 0, "cpu", root, out, args.seed, variant=variant, settings={"scribbled_ids": str(ids_file)})
        records.append({**record, "scribbled_images": len(ids), "scribbled_ids": ids})
        write_results(records, out, args.publish)  # after every cell, as table1: a stopped session keeps the finished ones

    cell("round1", round1_ids)
    ranking = out / table1.cell_name(args.dataset, args.method, 0, args.seed, "round1") / "scribble_next.csv"
    candidates = [i for i in training if i not in round1_ids]
    cell("round2-score", round1_ids + next_by_score(ranking, count))
    cell("round2-random", round1_ids + next_at_random(candidates, count, args.seed))
    print(out / "results.json")
    return out / "results.json"


def write_results(records: list[dict], out: Path, publish: bool) -> None:
    """``<out>/results.{json,md}`` of the finished cells; with ``publish``, copied to ``benchmarks/results/scribble_rounds_cpu.*``."""
    (out / "results.json").write_text(json.dumps(records, indent=1) + "\n")
    (out / "results.md").write_text(markdown(records))
    if publish:
        for suffix in (".json", ".md"):
            shutil.copyfile(out / f"results{suffix}", table1.REPO_ROOT / "benchmarks" / "results" / f"scribble_rounds_cpu{suffix}")


if __name__ == "__main__":
    main()
