"""Which label-free criterion picks the model a lab without full masks should keep? (README: How robust is it?)

Usage::

    python benchmarks/selection_study.py RUN_DIR [--out RUN_DIR/selection_study.json]

``RUN_DIR`` is a training run of the bundle that kept a training checkpoint at every validation (train with
``--train#checkpoint#n_saved 100``; its ``val_interval`` equal to its ``checkpoint_interval``). For every checkpoint
this script predicts the validation and the test images with the checkpoint's network, the way the bundle's
``validate`` and ``evaluating`` do (same preprocessing, inferer and post-processing), and records:

- on the validation images, with their full masks: ``val_iou`` (the paper's selection);
- on the validation images, label-free (scribbles and predictions only):
  ``scribble_accuracy`` (the bundle's ``--select_by scribble``), ``balanced_scribble_accuracy`` (mean of the
  nucleus and the background accuracy on the scribbles), ``scribble_instances`` (share of nucleus strokes whose
  predicted instance is theirs alone, :func:`monai_scribble.metrics.scribble_instance_matches`), ``scribble_nll`` (negative log-likelihood of the scribbled
  classes, negated so that larger is better), ``confidence`` (mean max-probability over all pixels) and
  ``ema_agreement`` (share of pixels whose class agrees with an exponential moving average, momentum ``--ema_momentum``,
  of the earlier validations' probabilities);
- on the test images: the bundle's test metrics (``iou``, ``mdice_legacy``, ...).

Then, for each criterion, the checkpoint it picks (largest value; first on ties, as the bundle's saver does)
and that checkpoint's test metrics, beside the choice by ``val_iou``. Prints the summary as JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import table1  # noqa: E402  (the harness beside this script)

CRITERIA = ("scribble_accuracy", "balanced_scribble_accuracy", "scribble_instances", "scribble_nll", "confidence", "ema_agreement")
CACHE = "selection_study_cache"
"""``RUN_DIR/<CACHE>/epoch=N.npz``: each checkpoint's validation probabilities (float16) and foreground, so that a new
criterion is scored without the checkpoints (pruned once the study is done)."""


def bundle_parts(run: Path) -> dict:
    """Network, inferers and datasets of ``run``'s bundle call (its first ``$ ... run training`` line in ``log.txt``,
    as ``benchmarks/table1.py`` writes it, or in ``command.txt``)."""
    from monai.bundle import ConfigParser

    log = run / "log.txt" if (run / "log.txt").is_file() else run / "command.txt"
    line = next(line for line in log.read_text().splitlines() if line.startswith("$ ") and " run training " in line)
    configs = [Path(p) for p in re.findall(r"'([^']+\.json)'", line.split("--config_file", 1)[1].split(" --", 1)[0])]
    overrides = dict(re.findall(r"--(\S+) (\S+)", line.split("] ", 1)[1]))
    parser = ConfigParser()
    parser.read_config([str(c) for c in configs] + [str(table1.EVALUATE)])
    for key in ("dataset_dir", "fold", "seed", "output_dir", "ckpt_dir", "num_workers", "scribble_ratio", "scribble_style", "split_file"):
        if key in overrides:
            parser[key] = overrides[key]
    return {name: parser.get_parsed_content(name) for name in
            ("network", "validate#dataset", "evaluate#dataset", "validate#inferer", "evaluate#inferer", "legacy_clip_ids", "min_size")}  # fmt: skip


@torch.inference_mode()
def predictions(network: torch.nn.Module, dataset, inferer) -> list[tuple[torch.Tensor, dict]]:
    """Nucleus probability ``(H, W)`` of each item of ``dataset``, one image at a time (as the bundle's evaluators)."""
    network.eval()
    out = []
    for item in dataset:
        logits = inferer(item["image"][None], network)
        out.append((torch.softmax(logits.float(), dim=1)[0, 1], item))
    return out


def validation_scores(predicted: list, ema: list[torch.Tensor] | None, momentum: float, min_size: int) -> tuple[dict, list[torch.Tensor]]:
    """Validation metrics of one checkpoint, and the updated moving average of the validation probabilities.

    ``predicted``: ``(probability, foreground, item)`` of each validation image."""
    from monai_scribble.constants import IGNORE
    from monai_scribble.inference import foreground_to_instances
    from monai_scribble.metrics.foreground_iou import foreground_iou
    from monai_scribble.metrics.scribble_instances import scribble_instance_matches

    ious, correct, count, nll, confidence, agree, pixels, new_ema = [], np.zeros(2), np.zeros(2), 0.0, 0.0, 0.0, 0, []
    matched_strokes = np.zeros(2)
    for index, (probability, foreground, item) in enumerate(predicted):
        ious.append(foreground_iou(foreground.numpy(), np.asarray(item["label"]).squeeze()))
        scribble = torch.as_tensor(item["scribble"]).reshape(probability.shape)
        for cls in (0, 1):
            at = scribble == cls
            correct[cls] += float((foreground[at] == bool(cls)).sum())
            count[cls] += float(at.sum())
        matched_strokes += scribble_instance_matches(foreground_to_instances(foreground.numpy(), min_size=min_size), scribble)
        scribbled = scribble != IGNORE
        p_true = torch.where(scribble[scribbled] == 1, probability[scribbled], 1 - probability[scribbled]).clamp_min(1e-6)
        nll += float(-p_true.log().sum())
        confidence += float(torch.maximum(probability, 1 - probability).sum())
        pixels += probability.numel()
        if ema is not None:
            agree += float(((ema[index] > 0.5) == foreground).sum())
        new_ema.append(probability.clone() if ema is None else momentum * probability + (1 - momentum) * ema[index])
    scores = {
        "val_iou": float(np.nanmean(ious)),
        "scribble_accuracy": float(correct.sum() / count.sum()),
        "balanced_scribble_accuracy": float(np.mean(correct / count)),
        "scribble_instances": float(matched_strokes[0] / matched_strokes[1]),
        "scribble_nll": -nll / float(count.sum()),
        "confidence": confidence / pixels,
        "ema_agreement": agree / pixels if ema is not None else float("nan"),
    }
    return scores, new_ema


def cached_validation(cached: Path, network: torch.nn.Module, parts: dict) -> list[tuple[torch.Tensor, torch.Tensor, dict]]:
    """``(probability, foreground, item)`` of each validation image: read from ``cached``, or predicted and written there."""
    items = list(parts["validate#dataset"])
    if cached.is_file():
        with np.load(cached) as data:
            return [(torch.from_numpy(data[f"p{i}"].astype(np.float32)), torch.from_numpy(np.unpackbits(data[f"f{i}"])[: item["scribble"].numel()].reshape(data[f"p{i}"].shape).astype(bool)), item)
                    for i, item in enumerate(items)]  # fmt: skip
    out = [(p, p > 0.5, item) for p, item in predictions(network, items, parts["validate#inferer"])]
    cached.parent.mkdir(exist_ok=True)
    arrays = {}
    for i, (probability, foreground, _) in enumerate(out):
        arrays[f"p{i}"], arrays[f"f{i}"] = probability.numpy().astype(np.float16), np.packbits(foreground.numpy())
    partial = cached.with_suffix(".partial.npz")
    np.savez(partial, **arrays)
    partial.rename(cached)  # never a half-written cache
    return out


def test_metrics(predicted: list, min_size: int, clip_ids: bool) -> dict:
    """The bundle's test summary (``metrics.json``'s ``metrics``) of one checkpoint's test predictions."""
    from monai_scribble.inference import foreground_to_instances
    from monai_scribble.metrics.evaluation import image_metrics, summarize

    rows = []
    for probability, item in predicted:
        foreground = (probability > 0.5).numpy()
        instances = foreground_to_instances(foreground, min_size=min_size)
        rows.append(image_metrics(foreground, instances, np.asarray(item["label"]).squeeze(), clip_ids=clip_ids))
    summary = summarize(rows)
    return {name: value["mean"] for name, value in summary["metrics"].items()}


def choose(rows: list[dict], criterion: str) -> dict:
    """The row with the largest ``criterion`` (NaN never; first on ties, as ``BestModelSaver``)."""
    values = [row[criterion] for row in rows]
    best = max(range(len(rows)), key=lambda i: (-np.inf if np.isnan(values[i]) else values[i], -i))
    return rows[best]


def checkpoints(run: Path, wait_for: int | None, earlier: Path | None = None):
    """``(epoch, path)`` of ``run``'s training checkpoints (its warm-up copy's too, ``benchmarks/table1.py``), of those
    pruned whose validation is cached, and of ``earlier``'s (a re-run of the same command) before them; with
    ``wait_for``, also each one written later, up to that epoch's (the bundle writes a checkpoint under a temporary
    name and renames it when complete)."""
    seen: set[int] = set()
    while True:
        found = {int(p.stem.split("=")[1]): p for p in run.glob(f"{CACHE}/epoch=*.npz") if ".partial" not in p.name}
        found = {epoch: run / "checkpoints" / f"checkpoint_epoch={epoch}.pt" for epoch in found}
        for folder in ([earlier / "checkpoints"] if earlier else []) + [run / "warmup" / "checkpoints", run / "checkpoints"]:
            found.update({int(p.stem.split("=")[1]): p for p in folder.glob("checkpoint_epoch=*.pt")})
        for epoch in sorted(set(found) - seen):
            seen.add(epoch)
            yield epoch, found[epoch]
        if wait_for is None or any(epoch >= wait_for for epoch in seen):
            return
        time.sleep(30)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--wait_for", type=int, default=None, metavar="EPOCH",
                        help="follow a run still training: take each checkpoint as it is written, up to this epoch's")
    parser.add_argument("--earlier", type=Path, default=None, metavar="RUN_DIR",
                        help="a re-run of RUN_DIR's training command (e.g. with a smaller --max_epochs) whose checkpoints fill in those "
                             "RUN_DIR did not keep; each one's validation IoU must equal the one RUN_DIR logged at that epoch")
    parser.add_argument("--ema_momentum", type=float, default=0.2, help="weight of the newest validation (the bundle's ema_momentum)")
    args = parser.parse_args(argv)
    out = args.out or args.run / "selection_study.json"
    done = {row["epoch"]: row for row in json.loads(out.read_text())["checkpoints"]} if out.is_file() else {}
    parts = bundle_parts(args.run)
    network = parts["network"]
    logged = dict(zip(*table1.validation_curve(args.run, tag="val_iou"))) if args.earlier else {}
    rows, ema = [], None
    for epoch, path in checkpoints(args.run, args.wait_for, args.earlier):
        start = time.perf_counter()
        cached = args.run / CACHE / f"epoch={epoch}.npz"
        if not cached.is_file() or not (epoch in done and "test" in done[epoch]):
            network.load_state_dict(torch.load(path, map_location="cpu", weights_only=False, mmap=True)["network"])
        validation = cached_validation(cached, network, parts)
        scores, ema = validation_scores(validation, ema, args.ema_momentum, parts["min_size"])
        del validation
        if args.earlier and args.earlier in path.parents and not abs(scores["val_iou"] - logged.get(epoch, np.nan)) <= 1e-3:
            raise SystemExit(f"{path}: validation IoU {scores['val_iou']:.6f}, but {args.run} logged {logged.get(epoch)} at epoch {epoch}; "
                             f"--earlier must be a re-run of the same training command")
        if epoch in done and "test" in done[epoch]:
            test = done[epoch]["test"]
        else:
            test = test_metrics(predictions(network, parts["evaluate#dataset"], parts["evaluate#inferer"]), parts["min_size"], parts["legacy_clip_ids"])
        rows.append({"epoch": epoch, **scores, "test": test, "seconds": round(time.perf_counter() - start, 1)})
        print(json.dumps(rows[-1]), flush=True)
        later = [row for row_epoch, row in sorted(done.items()) if row_epoch > epoch]  # keeps their test metrics if stopped here
        out.write_text(json.dumps({"run": str(args.run), "checkpoints": rows + later}, indent=1))
    by_iou = choose(rows, "val_iou")
    summary = {"run": str(args.run), "ema_momentum": args.ema_momentum, "by_val_iou": {"epoch": by_iou["epoch"], **by_iou["test"]}, "criteria": {}}
    for criterion in CRITERIA:
        row = choose(rows, criterion)
        summary["criteria"][criterion] = {"epoch": row["epoch"], "val_iou": row["val_iou"], **row["test"],
                                          "iou_gap": by_iou["test"]["iou"] - row["test"]["iou"]}  # fmt: skip
    out.write_text(json.dumps({"run": str(args.run), "checkpoints": rows, "summary": summary}, indent=1))
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
