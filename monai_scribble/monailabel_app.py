"""Make a MONAI Label app that serves this bundle and trains it from scribbles drawn in MONAI Label.

Usage (in the environment where ``monailabel`` is installed, together with this package)::

    python -m monai_scribble.monailabel_app --app_dir apps/scribble --model runs/dsb_bf/models/model.pt

creates ``apps/scribble`` from MONAI Label's ``monaibundle`` sample app with our bundle deployed as
``apps/scribble/model/scribble_cell_segmentation/`` (configs, docs, LICENSE and, if given, ``model.pt``),
its ``train.json`` set to ``label_kind: scribble_zero_unlabeled`` and ``scribble_format: zero_unlabeled``
(labels saved from MONAI Label are scribbles: 0 unlabeled, 1 background, 2 nucleus), ``output_dir`` to a new
run folder per training request and ``ckpt_dir`` to the deployed ``models/`` folder
(so each training request updates the served model) plus any ``--set id=value`` overrides, its
``inference.json`` to ``monailabel_layout: true`` (the 2-D array layout MONAI Label's writer expects),
and prints the ``monailabel start_server`` command. The sample's ``main.py`` is kept as ``monaibundle_main.py``;
the app's ``main.py`` (:data:`APP_MAIN`) extends its app with the ``scribble_next`` next-sample strategy
(:mod:`monai_scribble.monailabel_strategy`). See ``bundles/scribble_cell_segmentation/docs/monailabel.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

BUNDLE_NAME = "scribble_cell_segmentation"
BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / BUNDLE_NAME
MONAILABEL_DEFAULTS = {
    "label_kind": "scribble_zero_unlabeled",
    "scribble_format": "zero_unlabeled",
    "output_dir": "$monai_scribble.engines.run_checks.monailabel_run_dir(os.path.join(@bundle_root, 'output', 'monailabel'))",
    "ckpt_dir": "$os.path.join(@bundle_root, 'models')",
}
"""Overrides of the deployed train.json: MONAI Label's labels are scribbles in the zero-unlabelled format, each
training request is a fresh run folder, and it replaces the deployed ``models/model.pt`` (a command-line run
keeps its model in ``<output_dir>/models``)."""

SAMPLE_MAIN = "monaibundle_main.py"
APP_MAIN = f'''"""MONAI Label app for {BUNDLE_NAME}: the monaibundle sample app ({SAMPLE_MAIN}) plus the scribble_next strategy.

Written by ``python -m monai_scribble.monailabel_app``; MONAI Label loads the class here whose direct base is MONAILabelApp.
"""

import os

import torch
from monailabel.interfaces.app import MONAILabelApp

import {SAMPLE_MAIN[:-3]}
from monai_scribble.monailabel_strategy import ScribbleNext


class ScribbleApp({SAMPLE_MAIN[:-3]}.MyApp, MONAILabelApp):
    def init_strategies(self):
        strategies = super().init_strategies()
        device = "cuda" if torch.cuda.is_available() else "cpu"
        strategies["scribble_next"] = ScribbleNext(os.path.join(self.model_dir, "{BUNDLE_NAME}"), device=device)
        return strategies
'''
"""The app's ``main.py``. MONAI Label takes the first class of ``main.py`` whose *direct* base is named ``MONAILabelApp``, so
the sample's ``MyApp`` is reached through its module (not imported by name, which would be found first) and
``MONAILabelApp`` is named as a base again."""


def sample_app_dir() -> Path:
    """The ``monaibundle`` sample app shipped with the installed monailabel."""
    candidates = [Path(sys.prefix) / "monailabel" / "sample-apps" / "monaibundle"]
    try:
        import monailabel

        candidates.append(Path(monailabel.__file__).resolve().parents[1] / "sample-apps" / "monaibundle")
    except ImportError:
        pass
    for path in candidates:
        if (path / "main.py").is_file():
            return path
    raise FileNotFoundError(f"MONAI Label's monaibundle sample app not found (looked in {[str(c) for c in candidates]}); install monailabel")


def make_app(app_dir: str | Path, model: str | Path | None = None, overrides: dict | None = None, bundle: str | Path = BUNDLE) -> Path:
    """Create (or refresh) the app folder; returns the deployed bundle folder.

    Raises:
        FileNotFoundError: no monailabel sample app, no bundle configs, or a missing ``model``.
    """
    app_dir, bundle = Path(app_dir), Path(bundle)
    if not (bundle / "configs" / "train.json").is_file():
        raise FileNotFoundError(f"{bundle}: no configs/train.json (not a bundle folder)")
    if model is not None and not Path(model).is_file():
        raise FileNotFoundError(f"{model}: model file not found")
    shutil.copytree(sample_app_dir(), app_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    os.replace(app_dir / "main.py", app_dir / SAMPLE_MAIN)
    (app_dir / "main.py").write_text(APP_MAIN)
    deployed = app_dir / "model" / BUNDLE_NAME
    for name in ("configs", "docs"):
        shutil.copytree(bundle / name, deployed / name, dirs_exist_ok=True)
    shutil.copy2(bundle / "LICENSE", deployed / "LICENSE")
    (deployed / "models").mkdir(parents=True, exist_ok=True)
    if model is not None:
        shutil.copy2(model, deployed / "models" / "model.pt")
    _update_json(deployed / "configs" / "train.json", {**MONAILABEL_DEFAULTS, **(overrides or {})})
    _update_json(deployed / "configs" / "inference.json", {"monailabel_layout": True})
    return deployed


def _update_json(path: Path, values: dict) -> None:
    config = json.loads(path.read_text())
    config.update(values)
    path.write_text(json.dumps(config, indent=4) + "\n")


def _parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--app_dir", required=True)
    parser.add_argument("--model", default=None, help="a trained model.pt to deploy (else the app starts untrained)")
    parser.add_argument("--set", action="append", default=[], metavar="ID=VALUE", help="train.json override in the deployed copy (JSON value)")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set expects ID=VALUE, got {item!r}")
        overrides[key] = _parse_value(value)
    deployed = make_app(args.app_dir, args.model, overrides)
    print(f"deployed {deployed}")
    print(f"monailabel start_server --app {args.app_dir} --studies STUDIES --conf models {BUNDLE_NAME} --conf zoo_source local --conf sam2 false")


if __name__ == "__main__":
    main()
